"""``maildoctor shell``: an SMTP session by hand, opened the way Synapse opens it.

Like ``openssl s_client -starttls smtp``, but in the config's TLS mode (implicit TLS
when ``force_tls``), with the certificate checked against Synapse's TLS name, the TLS
boundary marked, and credentials that never appear on screen:

    <line>          sent as is; the reply is shown
    auth [MECH]     authenticate with the configured credentials (default: the
                    mechanism Synapse would pick from the last EHLO)
    starttls        STARTTLS and the handshake Synapse would make
    quit            QUIT and leave (end of input does the same)

Input and output are injected (``read_line``/``write``), so it works with stdin not a
tty and is tested with plain strings.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from maildoctor.errors import ConnectionLost, SMTPFailure
from maildoctor.secrets import Redactor
from maildoctor.smtp import tls as tlsinfo
from maildoctor.smtp.auth import authenticate
from maildoctor.smtp.parse import (
    PROBE_MECHANISMS,
    ehlo_lines,
    offered_mechanisms,
    synapse_mechanism,
    twisted_auth_mechanisms,
)
from maildoctor.smtp.resolve import resolve
from maildoctor.smtp.transcript import Direction, Transcript, TranscriptLine
from maildoctor.smtp.wire import CertificateRejected, ConnectError, Connection
from maildoctor.synapse.settings import EmailSettings

PREFIX = {  # swaks' convention: ~ marks the lines inside TLS
    (Direction.SENT, False): " -> ", (Direction.RECEIVED, False): "<-  ",
    (Direction.SENT, True): " ~> ", (Direction.RECEIVED, True): "<~  ",
    (Direction.NOTE, False): "=== ", (Direction.NOTE, True): "=== ",
}

ReadLine = Callable[[], Awaitable[str | None]]
Write = Callable[[str], None]


def format_line(line: TranscriptLine) -> str:
    return f"{PREFIX[(line.direction, line.tls)]}{line.text}"


@dataclass
class ShellOptions:
    timeout: float = 10.0
    ca_file: str | None = None


class Shell:
    def __init__(self, settings: EmailSettings, options: ShellOptions, write: Write) -> None:
        self.settings = settings
        self.options = options
        self.write = write
        redact = Redactor()
        user = None if settings.smtp_user is None else str(settings.smtp_user)
        redact.add(settings.smtp_pass, users=[user])
        self.redact = redact
        self.transcript = Transcript(redact, on_line=lambda line: write(format_line(line)))
        host = settings.smtp_host
        self.tls_name = settings.tls_name or ("" if host is None else str(host))
        self.conn: Connection | None = None
        self.caps: tuple[str, ...] = ()
        self.address = ""
        self.port = 0

    def say(self, text: str) -> None:
        self.write(f"*** {self.redact(text)}")

    async def open(self) -> bool:
        s = self.settings
        try:
            self.port = int(s.smtp_port)
        except (TypeError, ValueError):
            self.say(f"smtp_port {s.smtp_port!r} is not a port number")
            return False
        found = await resolve(s.smtp_host, self.port, self.options.timeout)
        if not found.addresses:
            self.say(f"cannot resolve {s.smtp_host!r}: {found.problem}")
            return False
        for address in found.addresses:
            try:
                self.conn = await Connection.open(address, self.port, self.options.timeout,
                                                  self.transcript)
                self.address = address
                break
            except ConnectError as exc:
                self.say(str(exc))
        if self.conn is None:
            return False
        if s.implicit_tls:
            self.transcript.note("force_tls: implicit TLS before the greeting")
            if not await self._handshake():
                return False
        await self.conn.read_reply("greeting", self.options.timeout)
        return True

    async def _handshake(self, replay: Callable[[Connection], Awaitable[None]] | None = None,
                         ) -> bool:
        """The verifying handshake; if rejected, say why and continue unverified."""
        assert self.conn is not None
        try:
            await self.conn.start_tls(tlsinfo.verifying_context(self.options.ca_file),
                                      self.tls_name, "tls", self.options.timeout)
            self.transcript.note(f"certificate verified for {self.tls_name}", tls=True)
            return True
        except CertificateRejected as exc:
            self.say(f"certificate not accepted for {self.tls_name!r}: {exc.verify_message}. "
                     "Synapse would hang here. Reconnecting without verification.")
        await self.conn.close()
        quiet = Transcript(self.redact, enabled=False)
        self.conn = await Connection.open(self.address, self.port, self.options.timeout, quiet)
        if replay is not None:
            await replay(self.conn)
        await self.conn.start_tls(tlsinfo.inspecting_context(), None, "tls",
                                  self.options.timeout)
        self.conn.transcript = self.transcript
        self.transcript.note("TLS without verification (the certificate was rejected)",
                             tls=True)
        return True

    async def starttls(self) -> None:
        assert self.conn is not None
        reply = await self.conn.command("STARTTLS", "starttls", self.options.timeout)
        if reply.code != 220:
            return
        t = self.options.timeout

        async def replay(conn: Connection) -> None:
            await conn.read_reply("greeting", t)
            await conn.command(f"EHLO {socket.getfqdn()}", "ehlo", t)
            await conn.command("STARTTLS", "starttls", t)

        await self._handshake(replay)
        self.caps = ()

    async def auth(self, mechanism: str | None) -> None:
        assert self.conn is not None
        s = self.settings
        if s.smtp_user is None or not s.smtp_pass:
            self.say("the config has no smtp_user/smtp_pass to authenticate with")
            return
        if mechanism is None:
            mechanism = synapse_mechanism(twisted_auth_mechanisms(self.caps))
            if mechanism is None:
                offered = " ".join(offered_mechanisms(self.caps)) or "none (send EHLO first?)"
                self.say(f"no mechanism Synapse can use is offered ({offered}); "
                         "name one: auth PLAIN")
                return
            self.say(f"AUTH {mechanism} (the mechanism Synapse would use)")
        if mechanism not in PROBE_MECHANISMS:
            self.say(f"unsupported mechanism {mechanism}; use one of {', '.join(PROBE_MECHANISMS)}")
            return
        outcome = await authenticate(self.conn, mechanism, str(s.smtp_user),
                                     s.smtp_pass.reveal(), self.options.timeout)
        if outcome.error is not None:
            raise outcome.error

    async def handle(self, line: str) -> bool:
        """Run one input line; ``False`` when the session is over."""
        assert self.conn is not None
        words = line.split()
        verb = words[0].lower() if words else ""
        if not verb:
            return True
        if verb in ("quit", "exit") and len(words) == 1:
            await self.conn.command("QUIT", "quit", self.options.timeout)
            return False
        if verb == "starttls" and len(words) == 1:
            await self.starttls()
        elif verb == "auth" and len(words) <= 2:
            await self.auth(words[1].upper() if len(words) == 2 else None)
        else:
            reply = await self.conn.command(line, "command", self.options.timeout)
            if verb in ("ehlo", "lhlo") and reply.code // 100 == 2:
                self.caps = ehlo_lines(reply.text)
        return True

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None


async def run_shell(settings: EmailSettings, options: ShellOptions, read_line: ReadLine,
                    write: Write) -> int:
    """The interactive loop. Returns 0 after QUIT or end of input, 1 on a failure."""
    shell = Shell(settings, options, write)
    try:
        if not await shell.open():
            return 1
        while True:
            line = await read_line()
            if line is None:
                line = "quit"
            if not await shell.handle(line.rstrip("\r\n")):
                return 0
    except ConnectionLost as exc:
        shell.say(f"{exc}")
        return 1
    except SMTPFailure as exc:
        shell.say(f"{exc}")
        return 1
    finally:
        await shell.close()
