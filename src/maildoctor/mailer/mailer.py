"""``Mailer``: send mails through the SMTP server a Synapse config names, quickly and with
an exception that says what went wrong.

- Built from :class:`~maildoctor.synapse.settings.EmailSettings`, so it connects the way
  Synapse would (host, port, implicit TLS, STARTTLS, tls name, AUTH) but never hangs:
  every step has a timeout (:class:`Timeouts`).
- Connections are pooled (``concurrency`` at most) and reused across mails; a connection
  the server closed is replaced on the next mail.
- 4xx replies and lost connections are retried with bounded exponential backoff
  (:class:`RetryPolicy`); 5xx never are.
- The mail is plain bytes plus an envelope, so this does not depend on how it was built.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, NamedTuple

from maildoctor import errors
from maildoctor.mailer.failures import Where
from maildoctor.mailer.retry import RetryPolicy
from maildoctor.mailer.session import Endpoint, Session, Timeouts, tls_context
from maildoctor.secrets import Redactor
from maildoctor.synapse.settings import EmailSettings

SYNAPSE_ORDER = ("cram-md5", "login", "plain")
"""Twisted's fixed preference (spec twisted-smtp.md 2.4)."""
SECURE_CLEAR_ORDER = ("cram-md5",)
SECURE_TLS_ORDER = ("plain", "login")
SUPPORTED = frozenset(SYNAPSE_ORDER)

MechanismOrder = Literal["synapse", "secure"] | Sequence[str]


class Mail(NamedTuple):
    """One mail for :meth:`Mailer.send_many`."""

    sender: str
    recipients: Sequence[str]
    data: bytes


@dataclass(frozen=True)
class SendResult:
    """A delivered mail: the final reply (``250 ... queued as X``), the seconds from the call
    to the reply (waiting for a pooled connection included) and the attempts it took."""

    message_id: str | None
    reply: str
    seconds: float
    attempts: int
    refused: dict[str, str]
    """Recipients the server refused while accepting others (address -> reply)."""


_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


def message_id_of(data: bytes) -> str | None:
    """The Message-ID header of the mail, if it has one (headers end at the blank line)."""
    head = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    found = _MESSAGE_ID.search(head)
    return found.group(1).decode("ascii", "replace") if found else None


def _mechanisms(order: MechanismOrder) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """(order on a clear connection, order on an encrypted one or None for the same)."""
    if order == "synapse":
        return SYNAPSE_ORDER, None
    if order == "secure":
        # In clear only CRAM-MD5 keeps the password off the wire; under TLS, PLAIN/LOGIN work
        # with every password backend, unlike CRAM-MD5 (the failure of synapse#10280).
        return SECURE_CLEAR_ORDER, SECURE_TLS_ORDER
    chosen = tuple(m.lower() for m in order)
    unknown = [m for m in chosen if m not in SUPPORTED]
    if unknown or not chosen:
        raise errors.UsageError(
            f"unsupported AUTH mechanism(s) {unknown or '(none given)'}: choose from "
            f"{', '.join(m.upper() for m in SYNAPSE_ORDER)}")
    return chosen, None


def endpoint_from_settings(settings: EmailSettings, *, ca_file: str | None = None,
                           mechanism_order: MechanismOrder = "synapse",
                           fallback: bool = False,
                           local_hostname: str | None = None) -> Endpoint:
    """The connection Synapse's settings describe; refuses configs that cannot work."""
    if settings.smtp_user is not None and not settings.smtp_pass:
        raise errors.NotConfiguredError(
            f"smtp_user is {settings.smtp_user!r} but no password configured (smtp_pass is "
            "unset or empty), so the server cannot be logged into", stage="config")
    if settings.smtp_pass and settings.smtp_user is None:
        raise errors.NotConfiguredError(
            "smtp_pass is set but smtp_user is not: set smtp_user (Synapse crashes inside "
            "Twisted in this case)", stage="config")
    if settings.smtp_host is None or settings.smtp_port is None:
        raise errors.NotConfiguredError("smtp_host and smtp_port must both be set",
                                        stage="config")
    try:
        port = int(settings.smtp_port)
    except (TypeError, ValueError) as exc:
        raise errors.NotConfiguredError(
            f"smtp_port {settings.smtp_port!r} is not a port number", stage="config") from exc
    clear, secure = _mechanisms(mechanism_order)
    return Endpoint(
        host=str(settings.smtp_host), port=port, implicit_tls=settings.implicit_tls,
        starttls=settings.starttls_enabled, require_tls=settings.require_tls,
        tls_name=settings.tls_name,
        user=None if settings.smtp_user is None else str(settings.smtp_user),
        password=settings.smtp_pass, ca_file=ca_file, mechanisms=clear,
        secure_mechanisms=secure, fallback=fallback,
        local_hostname=local_hostname or socket.getfqdn())


class Mailer:
    """Sends mails over a small pool of reused connections. Use as ``async with``."""

    def __init__(self, endpoint: Endpoint, *, timeouts: Timeouts | None = None,
                 retries: RetryPolicy | None = None, concurrency: int = 1) -> None:
        if concurrency < 1:
            raise errors.UsageError("concurrency must be at least 1")
        self.endpoint = endpoint
        self.timeouts = timeouts or Timeouts()
        self.retries = retries or RetryPolicy()
        self.concurrency = concurrency
        redactor = Redactor()
        redactor.add(endpoint.password, [endpoint.user])
        self._where = Where(endpoint.host, endpoint.port, endpoint.tls_name, endpoint.user,
                            redactor)
        self._context = tls_context(endpoint.ca_file)
        self._idle: list[Session] = []
        self._slots: asyncio.Semaphore | None = None
        self._closed = False
        self.connections_opened = 0
        """Connections made so far (a batch over one connection keeps this at 1)."""

    @classmethod
    def from_settings(cls, settings: EmailSettings, *, ca_file: str | None = None,
                      timeouts: Timeouts | None = None,
                      mechanism_order: MechanismOrder = "synapse", fallback: bool = False,
                      retries: RetryPolicy | None = None, concurrency: int = 1,
                      local_hostname: str | None = None) -> Mailer:
        """A Mailer for what Synapse's config says; raises NotConfiguredError before
        connecting when the config cannot work (e.g. smtp_user without smtp_pass)."""
        endpoint = endpoint_from_settings(
            settings, ca_file=ca_file, mechanism_order=mechanism_order, fallback=fallback,
            local_hostname=local_hostname)
        return cls(endpoint, timeouts=timeouts, retries=retries, concurrency=concurrency)

    def __repr__(self) -> str:
        ep = self.endpoint
        return (f"Mailer(host={ep.host!r}, port={ep.port}, user={ep.user!r}, "
                f"concurrency={self.concurrency})")

    async def __aenter__(self) -> Mailer:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def send(self, sender: str, recipients: str | Sequence[str],
                   data: bytes) -> SendResult:
        """Deliver one mail, retrying per the policy; raise an SMTPFailure subclass if not."""
        if self._closed:
            raise errors.UsageError("this Mailer is closed")
        rcpts = [recipients] if isinstance(recipients, str) else list(recipients)
        if not rcpts:
            raise errors.UsageError("a mail needs at least one recipient")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        started = time.perf_counter()
        async with self._slots:
            session = self._idle.pop() if self._idle else None
            attempt = 0
            try:
                while True:
                    attempt += 1
                    reused = session is not None
                    try:
                        if session is None or not session.is_open:
                            reused, session = False, None
                            session = await self._open()
                        outcome = await session.transact(sender, rcpts, data)
                        break
                    except errors.SMTPFailure as failure:
                        if reused and isinstance(failure, errors.ConnectionLost):
                            # A pooled connection the server had closed while idle (its
                            # idle timeout): not an answer to this mail, so reconnect
                            # once without spending an attempt.
                            attempt -= 1
                            session = None
                            continue
                        if not self.retries.should_retry(failure, attempt):
                            raise
                    session = session if session is not None and session.is_open else None
                    await asyncio.sleep(self.retries.delay(attempt))
            finally:
                if session is not None and session.is_open:
                    if self._closed:  # close() ran while this mail was in flight
                        await session.close()
                    else:
                        self._idle.append(session)
        return SendResult(message_id_of(data), str(outcome.reply),
                          time.perf_counter() - started, attempt, outcome.refused)

    async def send_many(self, mails: Iterable[Mail | tuple[str, Sequence[str] | str, bytes]]
                        ) -> list[SendResult | errors.SMTPFailure]:
        """Deliver every mail over at most ``concurrency`` connections; results in order.

        A failure is returned in place of its result, not raised, so one bad address
        does not stop the batch.
        """
        results: dict[int, SendResult | errors.SMTPFailure] = {}
        queue = iter(enumerate(mails))

        async def worker() -> None:
            for index, (sender, recipients, data) in queue:
                try:
                    results[index] = await self.send(sender, recipients, data)
                except errors.SMTPFailure as failure:
                    results[index] = failure

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.concurrency):
                    group.create_task(worker())
        except ExceptionGroup as group_error:  # a misuse (e.g. no recipient): raise it plainly
            raise group_error.exceptions[0] from None
        return [results[i] for i in range(len(results))]

    async def _open(self) -> Session:
        self.connections_opened += 1
        return await Session.open(self.endpoint, self.timeouts, self._where, self._context)

    async def close(self) -> None:
        """QUIT every idle connection. The Mailer cannot send afterwards."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(session.close() for session in idle))
