"""One SMTP connection of the test server: aiosmtpd's ``SMTP`` protocol, bent on purpose.

aiosmtpd does the real work (parsing, STARTTLS, AUTH framing, DATA). This module adds what a
fault-injecting server needs on top, mostly through aiosmtpd's documented handler hooks
(``handle_EHLO``, ``handle_MAIL``..., ``auth_<MECH>``) and a few overrides:

- ``_handle_client`` (the per-connection coroutine) runs the faults that replace the dialogue
  (SILENT, ENDLESS_REPLY, NOT_SMTP, a non-220 greeting) and the greeting delay;
- ``push`` (every reply goes through it) rewrites the greeting, drips bytes slowly, records
  replies, and closes after a reply when told to;
- ``_smtp_methods`` (aiosmtpd's command table) is wrapped to record each command and to drop or
  stall the connection at the chosen point.

``_handle_client``, ``_smtp_methods`` and ``_create_session`` are aiosmtpd internals, stable
across 1.4.x (pyproject pins ``<2``); the tests exercise every one of them.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Session

from maildoctor.secrets import MASK
from maildoctor.testing import auth
from maildoctor.testing.hooks import SessionHandler
from maildoctor.testing.journal import EventKind, Journal
from maildoctor.testing.options import Fault, ServerOptions, reply_code

IDENT = "ESMTP maildoctor test server"
_BUILTIN_MECHANISMS = ("LOGIN", "PLAIN", "CRAM-MD5", "XOAUTH2")
_ENDLESS_CHUNK = b"x" * 16384


@dataclass
class ServerContext:
    """What every connection of one server shares."""

    options: ServerOptions
    journal: Journal
    starttls_context: ssl.SSLContext | None
    transports: weakref.WeakSet[asyncio.Transport] = field(default_factory=weakref.WeakSet)
    stopping: bool = False  # set by the server before it aborts every connection
    session_ids: count[int] = field(default_factory=lambda: count(1))


class _QuietSession(Session):
    """aiosmtpd's Session minus the deprecation warning it logs on every successful AUTH."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class FaultySMTP(SMTP):
    """aiosmtpd's SMTP protocol plus the test server's options and faults."""

    AuthLoginUsernameChallenge = "Username:"  # what Postfix sends, not aiosmtpd's "User Name\0"
    AuthLoginPasswordChallenge = "Password:"

    def __init__(self, ctx: ServerContext, *, implicit_tls: bool = False) -> None:
        opts = ctx.options
        self.ctx = ctx
        self.opts = opts
        self.session_id = next(ctx.session_ids)
        self.implicit_tls = implicit_tls
        self.credentials = dict(opts.credentials)
        self.accept_any_login = opts.accept_any_login
        self.cram_broken = "CRAM-MD5-BROKEN" in opts.mechanisms
        self.server_name = opts.server_name
        self.auth_user: str | None = None
        self._greeted = False
        self._close_after_reply = False
        self._drop_next: str | None = None
        self._stall_next = False
        self._lost = False
        self._quit_seen = False
        self.closing_reason: str | None = None  # why the server closed, for the disconnect event
        handler = SessionHandler(self)
        super().__init__(
            handler,
            hostname=opts.server_name,
            ident=IDENT,
            tls_context=ctx.starttls_context,
            require_starttls=opts.starttls_required,
            timeout=opts.idle_timeout,
            auth_require_tls=False,  # the options decide when AUTH is offered
            auth_exclude_mechanism=[
                m for m in _BUILTIN_MECHANISMS if m not in opts.advertised_mechanisms
            ],
            authenticator=auth.check_login_password,
            data_size_limit=opts.max_message_size,
            enable_SMTPUTF8=True,
            loop=asyncio.get_running_loop(),
        )
        self._smtp_methods = {
            name: self._observed(name, method) for name, method in self._smtp_methods.items()
        }

    # -- helpers ------------------------------------------------------------------------------

    def record(self, kind: EventKind, detail: str, **extra: object) -> None:
        self.ctx.journal.record(self.session_id, kind, detail, **extra)

    @property
    def is_tls(self) -> bool:
        transport = self.transport
        return transport is not None and transport.get_extra_info("ssl_object") is not None

    def auth_offered(self) -> bool:
        return bool(
            self.opts.advertise_auth
            and self.opts.mechanisms
            and (self.is_tls or not self.opts.auth_after_starttls_only)
        )

    def auth_outcome(
        self, mechanism: str, user: str | None, ok: bool, fail_reply: str | None = None
    ) -> AuthResult:
        """Record an attempt and turn it into what aiosmtpd should do next."""
        verdict = "accepted" if ok else "refused"
        self.record(
            EventKind.AUTH, f"{mechanism} as {user!r}: {verdict}",
            mechanism=mechanism, username=user, success=ok,
        )
        if ok:
            self.auth_user = user
            return AuthResult(success=True, auth_data=user)
        failure = self.opts.reply("auth_failed")
        message = "\r\n".join(failure) if failure else (fail_reply or _INVALID_CREDENTIALS)
        mode = self.opts.auth_failure
        if mode == "drop":
            self.record(EventKind.FAULT, "authentication failed: closing without a reply")
            self.close("failed AUTH, no reply")
            return AuthResult(success=False, handled=True)
        if mode == "silent":
            self.record(EventKind.FAULT, "authentication failed: sending nothing, staying open")
            return AuthResult(success=False, handled=True)
        if mode == "reply-close":
            self._close_after_reply = True
        return AuthResult(success=False, handled=False, message=message)

    async def drop(self, reason: str) -> None:
        """Close without a reply, then wait to be cancelled by ``connection_lost``."""
        self.record(EventKind.FAULT, f"closing the connection without a reply {reason}")
        self.close(f"fault: no reply {reason}")
        await asyncio.Event().wait()

    def close(self, reason: str) -> None:
        """Close from the server side, remembering why for the disconnect event."""
        self.closing_reason = self.closing_reason or reason
        if self.transport is not None:
            self.transport.close()

    async def _stall(self, command: str) -> None:
        self.record(EventKind.FAULT, f"stalled: {command} and everything after go unanswered")
        await asyncio.Event().wait()

    async def push_lines(self, lines: list[str]) -> None:
        await self.push("\r\n".join(lines))

    # -- aiosmtpd overrides ---------------------------------------------------------------------

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # the first call; a second one follows STARTTLS
            if isinstance(transport, asyncio.Transport):
                self.ctx.transports.add(transport)
            if not self.implicit_tls:
                self.record(EventKind.CONNECT, f"from {transport.get_extra_info('peername')}")
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self.session is None:
            # An implicit-TLS handshake that failed: the SSL layer reports the loss to a
            # protocol that never started. The acceptor has recorded it already.
            self._lost = True
            return
        if not self._lost:
            self._lost = True
            if self.closing_reason:
                who = f"closed by the server ({self.closing_reason})"
            elif self.ctx.stopping:
                who = "closed by the server (stopping)"
            elif self._quit_seen:
                who = "closed after QUIT"
            else:
                who = "closed by the client without QUIT"
            self.record(EventKind.DISCONNECT, who + (f": {error}" if error else ""))
        super().connection_lost(error)

    def _timeout_cb(self) -> None:
        self.closing_reason = self.closing_reason or f"idle for {self.opts.idle_timeout:g} s"
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    async def push(self, status: str | bytes) -> None:
        data = status.encode("utf-8", "surrogateescape") if isinstance(status, str) else status
        if not self._greeted:
            self._greeted = True
            data = self._greeting(data)
        lines = data.split(b"\r\n")
        more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
        self.record(EventKind.REPLY, lines[0][:200].decode("utf-8", "replace") + more)
        payload = data + b"\r\n"
        if self.opts.has(Fault.SLOW_DRIP):
            for index in range(len(payload)):
                self._writer.write(payload[index : index + 1])
                await self._writer.drain()
                await asyncio.sleep(self.opts.drip_interval)
        else:
            self._writer.write(payload)
            await self._writer.drain()
        if self._close_after_reply and self.transport is not None:
            self._close_after_reply = False
            self.record(EventKind.FAULT, "closing the connection after that reply")
            self.close("after a failed AUTH")

    def _greeting(self, default: bytes) -> bytes:
        if self.opts.has(Fault.INVALID_UTF8):
            return b"220 " + self.server_name.encode() + b" ESMTP \xff\xfe not \xc3\x28 UTF-8"
        override = self.opts.reply("greeting")
        return "\r\n".join(override).encode() if override else default

    async def _handle_client(self) -> None:
        try:
            await self._dialogue()
        except (ConnectionResetError, BrokenPipeError):
            # The client vanished mid-write. aiosmtpd re-raises this from a task nobody awaits,
            # which asyncio would later log as "Task exception was never retrieved".
            if self.transport is not None:
                self.transport.close()

    async def _dialogue(self) -> None:
        if self.opts.greeting_delay:
            await asyncio.sleep(self.opts.greeting_delay)
        if self.opts.has(Fault.SILENT):
            self.record(EventKind.FAULT, "silent: accepted the connection, never answering")
            while await self._reader.read(4096):
                pass
            return
        if self.opts.has(Fault.ENDLESS_REPLY):
            await self._endless_reply()
            return
        if self.opts.has(Fault.NOT_SMTP):
            self.record(EventKind.FAULT, "not SMTP: speaking POP3")
            await self._line_loop("+OK Dovecot ready.", "+OK Logging out.", "-ERR Unknown command.")
            return
        greeting = self.opts.reply("greeting")
        if greeting and reply_code(greeting[0]) != 220:
            if reply_code(greeting[0]) == 421:  # RFC 5321 3.8: say 421, then close
                await self.push_lines(greeting)
                self.record(EventKind.FAULT, "greeted with 421: closing")
                self.close("after the 421 greeting")
                return
            # Any other refusal (554...): wait for QUIT, answer 503 to everything else.
            await self._line_loop("\r\n".join(greeting), "221 2.0.0 Bye", _NO_SERVICE)
            return
        if self.opts.has(Fault.DROP_AFTER_GREETING):
            self._drop_next = "after the greeting"
        await super()._handle_client()

    async def _endless_reply(self) -> None:
        self.record(EventKind.FAULT, "endless reply: a greeting line that never ends")
        self._writer.write(b"220 " + self.server_name.encode() + b" ")
        sent = 0
        try:
            while self.transport is not None and not self.transport.is_closing():
                self._writer.write(_ENDLESS_CHUNK)
                sent += len(_ENDLESS_CHUNK)
                await self._writer.drain()
                await asyncio.sleep(0.005)  # at most ~3 MB/s: enough to overflow any client
        finally:
            self.record(EventKind.FAULT, f"endless reply stopped after {sent} bytes")

    async def _line_loop(self, first: str, quit_reply: str, other: str) -> None:
        """A minimal line-based conversation for servers that refuse to speak SMTP."""
        await self.push(first)
        while True:
            try:
                line = await self._reader.readline()
            except ValueError:  # longer than the stream limit
                await self.push(other)
                continue
            if not line:
                return
            text = line.decode("utf-8", "replace").strip()
            name, _, rest = text.partition(" ")
            self.record(EventKind.COMMAND, _mask(name, rest or None))
            if text.upper() == "QUIT":
                self._quit_seen = True
                await self.push(quit_reply)
                self.close("after QUIT")
                return
            await self.push(other)

    def _observed(
        self, name: str, method: Callable[[str | None], Awaitable[None]]
    ) -> Callable[[str | None], Awaitable[None]]:
        async def run(arg: str | None) -> None:
            self.record(EventKind.COMMAND, _mask(name, arg))
            if self._drop_next:
                await self.drop(f"{self._drop_next} (at {name})")
            if self._stall_next:
                await self._stall(name)
            self._quit_seen = self._quit_seen or name == "QUIT"
            await method(arg)
            if name in ("EHLO", "HELO"):
                if self.opts.has(Fault.DROP_AFTER_EHLO):
                    self._drop_next = f"after {name}"
                self._stall_next = self.opts.has(Fault.STALL_AFTER_EHLO)
            elif name == "MAIL" and self.opts.has(Fault.DROP_AFTER_MAIL):
                self._drop_next = "after MAIL"

        return run

    async def smtp_STARTTLS(self, arg: str) -> None:
        override = self.opts.reply("starttls")
        if override and reply_code(override[0]) != 220:
            await self.push_lines(override)
            return
        await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg: str) -> None:
        if self.session is not None and self.session.extended_smtp and not self.auth_offered():
            await self.push("503 5.5.1 Error: authentication not enabled")
            return
        await super().smtp_AUTH(arg)

    async def smtp_DATA(self, arg: str) -> None:
        override = self.opts.reply("data")
        if override and reply_code(override[0]) != 354:
            await self.push_lines(override)
            return
        await super().smtp_DATA(arg)


_INVALID_CREDENTIALS = "535 5.7.8 Authentication credentials invalid"  # aiosmtpd's wording
_NO_SERVICE = "503 5.5.1 Error: no SMTP service here"


def _mask(name: str, arg: str | None) -> str:
    """The command for the log; anything after an AUTH mechanism may carry credentials."""
    if name.upper() == "AUTH" and arg:
        mechanism, _, rest = arg.partition(" ")
        return f"AUTH {mechanism} {MASK}" if rest.strip() else f"AUTH {mechanism}"
    return f"{name} {arg}" if arg else name
