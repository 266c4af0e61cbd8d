"""aiosmtpd handler hooks of the test server: what each SMTP stage answers.

aiosmtpd calls ``handle_<COMMAND>`` on the handler with the protocol object as ``server``, and
finds extra SASL mechanisms as ``auth_<MECH>`` methods (``__`` for ``-``). Everything here reads
the options from ``server.opts`` and writes what happened to ``server.record``; the connection
mechanics (faults, greeting, drops) live in :mod:`maildoctor.testing.session`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import MISSING, AuthResult, TLSSetupException

from maildoctor.testing import auth
from maildoctor.testing.journal import EventKind, ReceivedMessage
from maildoctor.testing.options import Fault, reply_code

if TYPE_CHECKING:
    from maildoctor.testing.session import FaultySMTP


class SessionHandler:
    """aiosmtpd handler hooks: stage replies, EHLO shaping, extra mechanisms, message capture.

    Every hook receives the ``FaultySMTP`` it serves as ``server``; ``handle_exception`` does
    not, so each connection gets its own handler that knows its protocol.
    """

    def __init__(self, protocol: FaultySMTP) -> None:
        self._protocol = protocol

    async def handle_EHLO(
        self, server: FaultySMTP, session: Any, envelope: Any, hostname: str,
        responses: list[str],
    ) -> list[str]:
        override = server.opts.reply("ehlo")
        if override:
            if reply_code(override[0]) // 100 == 2:
                session.host_name = hostname
            return ["\r\n".join(override)]
        session.host_name = hostname
        lines = []
        for response in responses:
            body = response[4:]
            if body.startswith("AUTH"):
                if server.auth_offered():
                    lines.append("AUTH " + " ".join(server.opts.advertised_mechanisms))
            elif body == "STARTTLS" and not server.opts.advertise_starttls:
                continue
            elif body != "HELP":
                lines.append(body)
        if server.opts.has(Fault.HUGE_REPLY):
            lines += [f"X-FILLER-{n:05d} padding" for n in range(server.opts.huge_reply_lines)]
            server.record(EventKind.FAULT, f"huge EHLO reply: {len(lines) + 1} lines")
        lines.append("HELP")
        wire = [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]
        return ["\r\n".join(wire)]

    async def handle_HELO(
        self, server: FaultySMTP, session: Any, envelope: Any, hostname: str
    ) -> str:
        override = server.opts.reply("helo")
        if override is None or reply_code(override[0]) // 100 == 2:
            session.host_name = hostname
        return "\r\n".join(override) if override else f"250 {server.server_name}"

    async def handle_AUTH(
        self, server: FaultySMTP, session: Any, envelope: Any, args: list[str]
    ) -> Any:
        override = server.opts.reply("auth")
        if override is None:
            return MISSING
        ok = reply_code(override[0]) == 235
        session.authenticated = ok
        server.record(
            EventKind.AUTH, f"{args[0]}: answered with the configured reply {override[0][:3]}",
            mechanism=args[0].upper(), success=ok,
        )
        return "\r\n".join(override)

    async def auth_CRAM__MD5(self, server: FaultySMTP, args: list[str]) -> AuthResult:
        return await auth.auth_cram_md5(server, args)

    async def auth_XOAUTH2(self, server: FaultySMTP, args: list[str]) -> AuthResult:
        return await auth.auth_xoauth2(server, args, server.opts.auth_failure == "reply")

    async def handle_MAIL(
        self, server: FaultySMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if server.opts.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        return self._envelope_reply(server, "mail", address, "250 2.1.0 Ok", envelope.mail_options,
                                    options, lambda: setattr(envelope, "mail_from", address))

    async def handle_RCPT(
        self, server: FaultySMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        return self._envelope_reply(server, "rcpt", address, "250 2.1.5 Ok",
                                    envelope.rcpt_options, options,
                                    lambda: envelope.rcpt_tos.append(address))

    @staticmethod
    def _envelope_reply(
        server: FaultySMTP, stage: str, address: str, default: str, option_list: list[str],
        options: list[str], accept: Callable[[], None],
    ) -> str:
        override = server.opts.reply(stage)
        reply = "\r\n".join(override).replace("{address}", address) if override else default
        if reply_code(reply) // 100 == 2:
            accept()
            option_list.extend(options)
        return reply

    async def handle_DATA(self, server: FaultySMTP, session: Any, envelope: Any) -> str:
        content = envelope.original_content or b""
        if server.opts.has(Fault.DROP_AFTER_DATA):
            await server.drop(f"after the final dot ({len(content)} bytes received)")
        override = server.opts.reply("dot")
        if override and reply_code(override[0]) // 100 != 2:
            server.record(EventKind.MESSAGE, f"refused {len(content)} bytes: {override[0]}")
            return "\r\n".join(override)
        journal = server.ctx.journal
        journal.store(ReceivedMessage(
            server.session_id, envelope.mail_from, tuple(envelope.rcpt_tos), bytes(content),
            server.auth_user, server.is_tls,
        ))
        server.record(
            EventKind.MESSAGE,
            f"from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)}: {len(content)} bytes",
        )
        queued = f"250 2.0.0 Ok: queued as MD{len(journal.messages):06d}"
        return "\r\n".join(override) if override else queued

    def handle_STARTTLS(self, server: FaultySMTP, session: Any, envelope: Any) -> bool:
        ssl_object = (session.ssl or {}).get("ssl_object")
        version = ssl_object.version() if ssl_object is not None else "?"
        server.record(EventKind.TLS, f"STARTTLS handshake done ({version})")
        return True

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):  # aiosmtpd closes the connection after this
            cause = error.__cause__ or error
            self._protocol.closing_reason = "STARTTLS handshake failed"
            self._protocol.record(EventKind.TLS_FAILED, f"STARTTLS handshake failed: {cause!r}")
            return "454 4.7.0 TLS handshake failed"
        self._protocol.record(EventKind.ERROR, f"{type(error).__name__}: {error}")
        return f"451 4.3.0 Internal test-server error ({type(error).__name__})"
