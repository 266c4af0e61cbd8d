"""The SMTP side Synapse talks to: aiosmtpd behind an allow-list gate.

- :class:`Gate` is the protocol the listening socket creates. It looks at the peer address
  before a single byte is sent: a client outside the allow-list gets ``554`` and is closed
  (never an open relay); an allowed one is handed to aiosmtpd's ``SMTP`` protocol on the same
  transport.
- :class:`RelayHandler` is the aiosmtpd handler. Its ``handle_DATA`` stores the message
  durably and only then returns the ``250``: if the store fails, the client gets ``451`` and
  keeps the mail.
- aiosmtpd does the protocol: ``552`` for a message over the size limit (also refused early at
  ``MAIL FROM ... SIZE=``), ``500``/``501`` for malformed commands, ``503`` for bad sequences.
  It offers no AUTH without TLS, and Synapse sends none, which is what we want on loopback.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from maildoctor.mailer.mailer import message_id_of
from maildoctor.relay.logs import EventLog
from maildoctor.relay.metrics import Counters
from maildoctor.relay.options import AllowList
from maildoctor.relay.queue import NewMessage
from maildoctor.relay.store import Store

REFUSED = b"554 5.7.1 This relay does not accept mail from your address\r\n"
SHUTTING_DOWN = "421 4.3.2 The relay is shutting down, try again later"


class RelayHandler:
    """aiosmtpd handler: a message is queued on disk before the client hears 250."""

    def __init__(self, store: Store, counters: Counters, log: EventLog,
                 on_stored: Callable[[], None]) -> None:
        self.store = store
        self.counters = counters
        self.log = log
        self.on_stored = on_stored

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
        except Exception as exc:
            self.log(logging.ERROR, "store-failed", client=peer, error=f"could not write the "
                     f"message to the queue: {exc}", fix="check the disk and the queue file's "
                     "permissions")
            return "451 4.3.0 Could not queue the message; try again later"
        self.counters.accepted += 1
        self.on_stored()
        self.log(logging.INFO, "accepted", id=queue_id, message_id=message.message_id,
                 client=peer, sender=message.sender, recipients=len(message.recipients),
                 size=len(message.data))
        return f"250 2.0.0 Ok: queued as {queue_id}"


class RelaySMTP(SMTP):
    """aiosmtpd's SMTP that tells the listener when it ends, and whether a mail transaction
    is under way."""

    on_lost: Callable[[RelaySMTP], None] | None = None

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
        smtp = self.listener.make_smtp()
        self.listener.sessions.add(smtp)
        transport.set_protocol(smtp)
        smtp.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        pass  # a refused client; allowed ones belong to their RelaySMTP from the start


class Listener:
    """The listening socket and its sessions."""

    def __init__(self, handler: RelayHandler, allow: AllowList, counters: Counters,
                 log: EventLog, *, max_message_size: int, session_timeout: float) -> None:
        self.handler = handler
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

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Gate(self), host, port)
        bound: Any = self._server.sockets[0].getsockname()
        return int(bound[1])

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
