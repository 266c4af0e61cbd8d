"""``maildoctor shell``: an SMTP session by hand, opened the way Synapse opens it.

Like ``openssl s_client -starttls smtp``, but in the config's TLS mode: implicit TLS
when ``force_tls``; otherwise, right after the first successful EHLO, STARTTLS when
Synapse would send it (:func:`starttls_decision`), then EHLO again, as Twisted does.
The certificate is checked against Synapse's TLS name, the TLS boundary is marked, and
credentials never appear on screen:

    <line>          sent as is; the reply is shown
    auth [MECH]     authenticate with the configured credentials (default: the
                    mechanism Synapse would pick from the last EHLO)
    starttls        STARTTLS and the handshake Synapse would make
    quit            QUIT and leave (end of input does the same)

``auth`` follows the probe's rule (:func:`~maildoctor.smtp.auth_stage.refuse_credentials`):
credentials go only over verified TLS or to a loopback address unless
``--allow-plaintext-auth``. After a rejected certificate the session goes on over TLS
without verification, so the later dialogue can be seen; those lines are marked ``!``
instead of ``~`` and ``auth`` is refused there like over clear text.

Input and output are injected (``read_line``/``write``), so it works with stdin not a
tty and is tested with plain strings.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from maildoctor.config.settings import EmailSettings
from maildoctor.errors import CertificateRejected, ConnectionLost, SMTPFailure
from maildoctor.hosts import is_loopback
from maildoctor.secrets import Redactor
from maildoctor.smtp import tls as tlsinfo
from maildoctor.smtp.auth import authenticate
from maildoctor.smtp.auth_stage import ALLOW_FLAG, refuse_credentials
from maildoctor.smtp.parse import (
    PROBE_MECHANISMS,
    ehlo_lines,
    offered_mechanisms,
    synapse_mechanism,
    twisted_auth_mechanisms,
    twisted_offers_starttls,
)
from maildoctor.smtp.resolve import resolve
from maildoctor.smtp.transcript import Direction, Transcript, TranscriptLine
from maildoctor.smtp.wire import ConnectError, Connection

# swaks' convention: ~ marks the lines inside TLS; ! marks TLS that failed verification.
PREFIX = {
    (Direction.SENT, "plain"): " -> ", (Direction.RECEIVED, "plain"): "<-  ",
    (Direction.SENT, "verified"): " ~> ", (Direction.RECEIVED, "verified"): "<~  ",
    (Direction.SENT, "unverified"): " !> ", (Direction.RECEIVED, "unverified"): "<!  ",
}
NOTE_PREFIX = "=== "

ReadLine = Callable[[], Awaitable[str | None]]
Write = Callable[[str], None]


def format_line(line: TranscriptLine, *, verified: bool = True) -> str:
    """One transcript line as shown; ``verified`` is the state of the TLS in use."""
    if line.direction is Direction.NOTE:
        return f"{NOTE_PREFIX}{line.text}"
    state = "plain" if not line.tls else ("verified" if verified else "unverified")
    return f"{PREFIX[(line.direction, state)]}{line.text}"


def starttls_decision(settings: EmailSettings, caps: tuple[str, ...]) -> tuple[bool, str]:
    """Whether to send STARTTLS after the first EHLO, and the line that says why.

    Synapse's Twisted upgrades when it has a TLS context (``enable_tls``) and the server
    lists ``STARTTLS`` (case-sensitively); ``require_transport_security`` without it is
    fatal (``TLSRequiredError``). With ``require_transport_security`` but ``enable_tls``
    off (a config Synapse refuses to start with) the shell still upgrades: the admin
    asked for TLS.
    """
    offered = twisted_offers_starttls(caps)
    if offered and settings.starttls_enabled:
        return True, "the server offers STARTTLS and enable_tls is on: upgrading, as Synapse does"
    if offered and settings.require_tls:
        return True, ("require_transport_security is set: upgrading (Synapse itself refuses "
                      "to start with it and enable_tls: false)")
    if offered:
        return False, ("enable_tls is false: Synapse stays in clear text although the server "
                       "offers STARTTLS")
    other_case = any(line.upper() == "STARTTLS" for line in caps)
    why = ("the server offers STARTTLS only in another case, which Twisted ignores"
           if other_case else "the server does not offer STARTTLS")
    if settings.require_tls:
        return False, (f"{why}, and require_transport_security is set: Synapse stops here "
                       "(TLSRequiredError 502)")
    return False, f"{why}: Synapse goes on in clear text"


@dataclass
class ShellOptions:
    timeout: float = 10.0
    ca_file: str | None = None
    allow_plaintext_auth: bool = False  # --allow-plaintext-auth, as for the probe
    # For tests: treat a loopback server as remote, so the credential rule can be shown
    # against the local test server. Not a CLI option.
    loopback_is_remote: bool = False


class Shell:
    def __init__(self, settings: EmailSettings, options: ShellOptions, write: Write) -> None:
        self.settings = settings
        self.options = options
        self.write = write
        redact = Redactor()
        user = None if settings.smtp_user is None else str(settings.smtp_user)
        redact.add(settings.smtp_pass, users=[user])
        self.redact = redact
        self.verified = False  # the TLS in use passed verification
        self.transcript = Transcript(
            redact, on_line=lambda line: write(format_line(line, verified=self.verified)))
        host = settings.smtp_host
        self.tls_name = settings.tls_name or ("" if host is None else str(host))
        self.conn: Connection | None = None
        self.caps: tuple[str, ...] = ()
        self.address = ""
        self.port = 0
        self.ehlo_line = ""  # the EHLO the user typed, repeated after STARTTLS
        self.tls_decided = False  # the STARTTLS decision is made once, after the first EHLO

    def say(self, text: str) -> None:
        self.write(f"*** {self.redact(text)}")

    @property
    def loopback(self) -> bool:
        if self.options.loopback_is_remote or self.conn is None:
            return False
        return is_loopback(self.conn.address)

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
            self.tls_decided = True
            self.transcript.note("force_tls: implicit TLS before the greeting")
            await self._handshake()
        await self.conn.read_reply("greeting", self.options.timeout)
        return True

    async def _handshake(self, replay: Callable[[Connection], Awaitable[None]] | None = None,
                         ) -> None:
        """The verifying handshake; if rejected, say why and go on unverified."""
        assert self.conn is not None
        try:
            await self.conn.start_tls(tlsinfo.verifying_context(self.options.ca_file),
                                      self.tls_name, "tls", self.options.timeout)
            self.verified = True
            self.transcript.note(f"certificate verified for {self.tls_name}", tls=True)
            return
        except CertificateRejected as exc:
            self.say(f"certificate not accepted for {self.tls_name!r}: {exc.verify_message}. "
                     "Synapse would hang here. Reconnecting without verification.")
        await self.conn.close()
        quiet = Transcript(self.redact, enabled=False)
        self.conn = await Connection.open(self.address, self.port, self.options.timeout, quiet)
        if replay is not None:
            await replay(self.conn)
        name = None if tlsinfo.is_ip(self.tls_name) else self.tls_name or None
        await self.conn.start_tls(tlsinfo.inspecting_context(), name, "tls",
                                  self.options.timeout)
        self.verified = False
        self.conn.transcript = self.transcript
        self.transcript.note("TLS WITHOUT VERIFICATION: the certificate was rejected",
                             tls=True)
        auth = ("`auth` still works: the server is on a loopback address" if self.loopback
                else f"`auth` is refused here unless {ALLOW_FLAG}")
        self.say("this connection is UNVERIFIED: its certificate was rejected, so anyone "
                 f"on the path could read or change it (lines marked '!'). {auth}; Synapse "
                 "would not get this far.")

    async def starttls(self) -> bool:
        """STARTTLS and the handshake; ``True`` when TLS is up (verified or not)."""
        assert self.conn is not None
        if self.conn.tls:
            self.say("already in TLS")
            return False
        reply = await self.conn.command("STARTTLS", "starttls", self.options.timeout)
        if reply.code != 220:
            self.say(f"STARTTLS refused ({reply.code}): Synapse stops here (SMTPTLSError, "
                     "no fallback to clear text)")
            return False
        t = self.options.timeout
        ehlo = self.ehlo_line or f"EHLO {socket.getfqdn()}"

        async def replay(conn: Connection) -> None:
            await conn.read_reply("greeting", t)
            await conn.command(ehlo, "ehlo", t)
            await conn.command("STARTTLS", "starttls", t)

        await self._handshake(replay)
        self.caps = ()
        return True

    async def _after_first_ehlo(self) -> None:
        """Synapse's STARTTLS step, taken automatically, then EHLO again as Twisted does."""
        assert self.conn is not None
        self.tls_decided = True
        upgrade, why = starttls_decision(self.settings, self.caps)
        self.transcript.note(why)
        if upgrade and await self.starttls():
            reply = await self.conn.command(self.ehlo_line, "ehlo", self.options.timeout)
            if reply.code // 100 == 2:
                self.caps = ehlo_lines(reply.text)

    def why_not_auth(self) -> str:
        """The probe's credential rule for this connection (``""``: auth may go ahead)."""
        tls = bool(self.conn and self.conn.tls)
        return refuse_credentials(verified_tls=tls and self.verified, loopback=self.loopback,
                                  tls=tls, allowed=self.options.allow_plaintext_auth)

    async def auth(self, mechanism: str | None) -> None:
        assert self.conn is not None
        s = self.settings
        if s.smtp_user is None or not s.smtp_pass:
            self.say("the config has no smtp_user/smtp_pass to authenticate with")
            return
        refused = self.why_not_auth()
        if refused:
            self.say(refused)
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
        if not (self.conn.tls and self.verified) and not self.loopback:
            kind = "over unverified TLS" if self.conn.tls else "in clear text"
            self.say(f"{ALLOW_FLAG}: sending the credentials {kind}")
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
            self.tls_decided = True
            await self.starttls()
        elif verb == "auth" and len(words) <= 2:
            await self.auth(words[1].upper() if len(words) == 2 else None)
        else:
            reply = await self.conn.command(line, "command", self.options.timeout)
            if verb in ("ehlo", "lhlo") and reply.code // 100 == 2:
                self.caps = ehlo_lines(reply.text)
                self.ehlo_line = line
                if not self.tls_decided and not self.conn.tls:
                    await self._after_first_ehlo()
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
