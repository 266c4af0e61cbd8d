"""The SMTP side Synapse talks to: aiosmtpd behind an allow-list gate.

- :class:`Gate` is the protocol the listening socket creates. It looks at the peer address
  before a single byte is sent: a client outside the allow-list gets ``554`` and is closed
  (never an open relay); an allowed one is handed to aiosmtpd's ``SMTP`` protocol on the same
  transport.
- :class:`RelayHandler` is the aiosmtpd handler. Its ``handle_DATA`` stores the message
  durably and only then returns the ``250``: if the store fails, the client gets ``451`` and
  keeps the mail.
- Limits, after Postfix's: at most ``max_recipients`` RCPT TO per message (``452 4.5.3``,
  ``smtpd_recipient_limit``), and ``max_connections`` sessions at once
  (``smtpd_client_connection_count_limit``): when full, the longest-idle session (between
  transactions, so nothing is lost) is closed to make room, so idle connections cannot lock
  Synapse out; if every session is busy, the newcomer hears ``421``.
- Out of file descriptors (``EMFILE``), asyncio would log a traceback per attempt and leave
  clients hanging in the listen backlog. Instead a spare descriptor is given up to accept
  the waiting clients and tell them ``421``, idle sessions are closed to get descriptors back,
  and one line per interval is logged.
- It offers PIPELINING (``handle_EHLO``): MAIL, RCPT and DATA may come in one write.
- aiosmtpd does the protocol: ``552`` for a message over the size limit (also refused early at
  ``MAIL FROM ... SIZE=``), ``500``/``501`` for malformed commands, ``503`` for bad sequences.
  It offers no AUTH without TLS, and Synapse sends none, which is what we want on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from maildoctor.mailer.mailer import message_id_of
from maildoctor.relay.logs import EventLog, Throttle
from maildoctor.relay.metrics import Counters
from maildoctor.relay.options import AllowList
from maildoctor.relay.queue import NewMessage
from maildoctor.relay.store import Store

REFUSED = b"554 5.7.1 This relay does not accept mail from your address\r\n"
SHUTTING_DOWN = "421 4.3.2 The relay is shutting down, try again later"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections to the relay, try again later"
OUT_OF_DESCRIPTORS = "421 4.3.2 The relay is out of file descriptors, try again later"
IDLE_CLOSED = "421 4.4.2 Idle too long while the relay is busy, closing"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
_ACCEPT_FAILED = "socket.accept() out of system resource"
NO_STORAGE = "452 4.3.1 Insufficient system storage: could not queue the message, try again later"
"""RFC 3463 4.3.1 "mail system full", Postfix's wording: never 250 (the mail would be lost)
and never 5xx (Synapse would give up on a mail the relay will take in a minute)."""


class RelayHandler:
    """aiosmtpd handler: a message is queued on disk before the client hears 250."""

    def __init__(self, store: Store, counters: Counters, log: EventLog,
                 on_stored: Callable[[], None], *, max_recipients: int = 1000) -> None:
        self.store = store
        self.max_recipients = max_recipients
        self.counters = counters
        self.log = log
        self.on_stored = on_stored
        self.throttle = Throttle()

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        """aiosmtpd's EHLO reply, plus PIPELINING (RFC 2920): aiosmtpd reads commands one
        after the other from its buffer, so a client may send MAIL, RCPT and DATA in one
        write and save two round trips per mail (Twisted does not; maildoctor's mailer and
        Postfix do)."""
        session.host_name = hostname
        return [responses[0], "250-PIPELINING", *responses[1:]]

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            self.counters.refused_recipients += 1
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        # aiosmtpd reports the null sender of bounces and receipts as the text "<>".
        sender = "" if envelope.mail_from in (None, "<>") else envelope.mail_from
        message = NewMessage(sender=sender,
                             recipients=tuple(envelope.rcpt_tos), data=bytes(content),
                             message_id=message_id_of(content), client=peer)
        try:
            queue_id = await self.store.add(message)
        except Exception as exc:  # a full disk, an I/O error, anything: the client keeps it
            self.counters.store_failures += 1
            skipped = self.throttle.due("store-failed")
            if skipped is not None:
                self.log(logging.ERROR, "store-failed", client=peer, error=f"could not write "
                         f"the message to the queue: {exc}", fix="free space on the queue's "
                         "disk, check its permissions; clients are told 452 and try again",
                         similar_since_last=skipped or None)
            return NO_STORAGE
        self.counters.accepted += 1
        self.on_stored()
        self.log(logging.INFO, "accepted", id=queue_id, message_id=message.message_id,
                 client=peer, sender=message.sender, recipients=len(message.recipients),
                 size=len(message.data))
        return f"250 2.0.0 Ok: queued as {queue_id}"


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(
    rf"\s*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*([^(]*)",
    re.DOTALL)
"""``<local@domain>`` with a dot-atom local part and a plain domain: what Synapse sends."""


class RelaySMTP(SMTP):
    """aiosmtpd's SMTP that tells the listener when it ends, and whether a mail transaction
    is under way."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd parses every address with the email package's RFC 5322 header parser,
        a third of the CPU a mail costs the relay; the plain ``<a@b.c>`` form needs no
        parser (same result, tested against aiosmtpd's). Anything else goes the long way."""
        plain = _PLAIN_ADDRESS.fullmatch(arg) if arg else None
        if plain is None:
            return super()._getaddr(arg)
        address = plain.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, plain.group(2)

    on_lost: Callable[[RelaySMTP], None] | None = None
    last_active: float = 0.0

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        super().data_received(data)

    def connection_lost(self, error: Exception | None) -> None:
        if self.on_lost is not None:
            self.on_lost(self)
        super().connection_lost(error)

    def write_and_close(self, reply: str | None, *, abort: bool = False) -> None:
        transport = self.transport
        if not isinstance(transport, asyncio.WriteTransport):
            return
        if abort:
            transport.abort()
            return
        if reply:
            transport.write(reply.encode() + b"\r\n")
        transport.close()

    @property
    def idle(self) -> bool:
        """True between transactions, when closing the session loses nothing."""
        return self.envelope is None or self.envelope.mail_from is None


class Gate(asyncio.Protocol):
    """Refuses disallowed clients at connect; hands the others to a fresh ``RelaySMTP``."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else None
        if not self.listener.allow.allows(host) or self.listener.closing:
            if self.listener.closing:
                transport.write(SHUTTING_DOWN.encode() + b"\r\n")
            else:
                self.listener.counters.rejected_clients += 1
                self.listener.log(logging.WARNING, "client-refused", client=host,
                                  error=f"{host} is not in the relay's allow-list")
                transport.write(REFUSED)
            transport.close()
            return
        if not self.listener.make_room():
            self.listener.counters.refused_connections += 1
            self.listener.warn("too-many-connections", client=host,
                               error=f"{self.listener.max_connections} client sessions are "
                               "busy at once", fix="raise --max-connections if Synapse needs "
                               "more; else find who holds the connections")
            transport.write(TOO_MANY_CONNECTIONS.encode() + b"\r\n")
            transport.close()
            return
        smtp = self.listener.make_smtp()
        smtp.last_active = time.monotonic()
        self.listener.sessions.add(smtp)
        transport.set_protocol(smtp)
        smtp.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        pass  # a refused client; allowed ones belong to their RelaySMTP from the start


class Listener:
    """The listening socket and its sessions."""

    def __init__(self, handler: RelayHandler, allow: AllowList, counters: Counters,
                 log: EventLog, *, max_message_size: int, session_timeout: float,
                 max_connections: int = 50) -> None:
        self.handler = handler
        self.max_connections = max_connections
        self.throttle = Throttle()
        self._listeners: list[socket.socket] = []
        """Duplicates of the listening sockets, to accept (and refuse) with when asyncio
        cannot: out of descriptors, a dup could not be made any more."""
        self._spare: int | None = None
        self.allow = allow
        self.counters = counters
        self.log = log
        self.max_message_size = max_message_size
        self.session_timeout = session_timeout
        self.sessions: set[RelaySMTP] = set()
        self.closing = False
        self._server: asyncio.Server | None = None
        self._hostname = socket.gethostname()

    def make_smtp(self) -> RelaySMTP:
        smtp = RelaySMTP(self.handler, data_size_limit=self.max_message_size,
                         hostname=self._hostname, ident="maildoctor relay",
                         timeout=self.session_timeout, loop=asyncio.get_running_loop())
        smtp.on_lost = self.sessions.discard
        return smtp

    def warn(self, event: str, **fields: object) -> None:
        """A warning that may repeat many times a second: one line per interval."""
        skipped = self.throttle.due(event)
        if skipped is not None:
            self.log(logging.WARNING, event, similar_since_last=skipped or None, **fields)

    def make_room(self) -> bool:
        """True if a new session fits, closing the longest-idle one if that is needed."""
        if len(self.sessions) < self.max_connections:
            return True
        idle = [s for s in self.sessions if s.idle]
        if not idle:
            return False
        oldest = min(idle, key=lambda s: s.last_active)
        oldest.write_and_close(IDLE_CLOSED)
        self.sessions.discard(oldest)
        return True

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        # asyncio's own sockets (getaddrinfo: every address of the name, TCP_NODELAY on each
        # session, as without it multi-line replies wait on Nagle and delayed ACKs: 40 ms).
        self._server = await loop.create_server(lambda: Gate(self), host, port, backlog=128)
        self._listeners = [socket.socket(fileno=os.dup(s.fileno()))
                           for s in self._server.sockets]
        self._spare = _reserve()
        previous = loop.get_exception_handler()

        def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            if context.get("message") == _ACCEPT_FAILED and isinstance(exc, OSError):
                self._out_of_descriptors(exc)
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(on_loop_error)
        bound: Any = self._server.sockets[0].getsockname()
        return int(bound[1])

    def _out_of_descriptors(self, exc: OSError) -> None:
        """accept() failed for want of descriptors: refuse who waits, free idle sessions."""
        refused = 0
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            if self._spare is not None:
                os.close(self._spare)
                self._spare = None
            for listener in self._listeners:
                refused += _refuse_waiting(listener)
            self._spare = _reserve()
        idle = sorted((s for s in self.sessions if s.idle), key=lambda s: s.last_active)
        closed = idle[:max(1, len(idle) // 4)] if idle else []
        for smtp in closed:
            smtp.write_and_close(IDLE_CLOSED)
            self.sessions.discard(smtp)
        self.counters.refused_connections += refused
        self.warn("out-of-descriptors", error=f"cannot accept connections: {exc.strerror}",
                  refused=refused, closed_idle=len(closed), sessions=len(self.sessions),
                  fix="raise the relay's open-files limit (LimitNOFILE= in systemd), lower "
                  "--max-connections, or find who holds idle connections")

    async def close(self, timeout: float) -> None:
        """Stop accepting; end idle sessions with 421; let busy ones finish (``timeout``)."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.sessions and loop.time() < deadline:
            for smtp in list(self.sessions):
                if smtp.idle:
                    smtp.write_and_close(SHUTTING_DOWN)
                    self.sessions.discard(smtp)
            if self.sessions:
                await asyncio.sleep(0.02)  # polling our own sessions, not synchronising a test
        for smtp in list(self.sessions):  # out of time: never answered 250, so nothing lost
            smtp.write_and_close(None, abort=True)
        self.sessions.clear()
        if self._server is not None:
            await self._server.wait_closed()
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
        for listener in self._listeners:
            listener.close()
        self._listeners = []


def _refuse_waiting(listener: socket.socket) -> int:
    """Accept the clients waiting on ``listener`` one at a time (each on the one descriptor
    there is) and tell them 421; how many."""
    refused = 0
    for _ in range(128):  # what the backlog holds at most
        try:
            conn, _peer = listener.accept()
        except OSError:  # BlockingIOError: nobody else waits
            break
        with conn:
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.send(OUT_OF_DESCRIPTORS.encode() + b"\r\n")
        refused += 1
    return refused


def _reserve() -> int | None:
    """A descriptor kept in hand for the moment all others are gone."""
    try:
        return os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return None
