"""``Mailer``: send mails through the SMTP server a Synapse config names, quickly and with
an exception that says what went wrong.

- Built from :class:`~maildoctor.config.settings.EmailSettings`, so it connects the way
  Synapse would (host, port, implicit TLS, STARTTLS, tls name, AUTH) but never hangs:
  every step has a timeout (:class:`Timeouts`).
- Connections are pooled (``concurrency`` at most) and reused across mails; a connection
  the server closed is replaced on the next mail.
- ``send_many`` spreads a batch over the pool (one connection per ``MAILS_PER_CONNECTION``
  mails) and, where the server offers PIPELINING, chains each connection's mails so that
  one write and one round trip carry each mail (``pipeline.py``).
- 4xx replies and lost connections are retried with bounded exponential backoff
  (:class:`RetryPolicy`); 5xx never are.
- The mail is plain bytes plus an envelope, so this does not depend on how it was built.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, NamedTuple

from maildoctor import errors
from maildoctor.config.settings import EmailSettings
from maildoctor.mailer.failures import Where
from maildoctor.mailer.pipeline import Job, JobQueue, run_chain
from maildoctor.mailer.retry import RetryPolicy
from maildoctor.mailer.session import Endpoint, Outcome, Session, Timeouts, tls_context
from maildoctor.secrets import Redactor
from maildoctor.smtp.twisted_caps import TWISTED_MECHANISMS

SYNAPSE_ORDER = tuple(m.lower() for m in TWISTED_MECHANISMS)
"""Twisted's fixed preference (spec twisted-smtp.md 2.4)."""
SECURE_CLEAR_ORDER = ("cram-md5",)
SECURE_TLS_ORDER = ("plain", "login")
SUPPORTED = frozenset(SYNAPSE_ORDER)

DEFAULT_CONCURRENCY = 8
"""Connections a batch may use. Against a one-process aiosmtpd sink on 2 shared cores
(bench/send_throughput.py, 1,000 mails), medians of 5 runs at load 1.5: pool 1 ~880/s,
2 ~950/s, 4 ~1,100/s, 8 ~1,230/s; at load 3-4.6 the gap widens (pool 1 250-320/s, pool 8
620-1,390/s), because each wake-up of client or sink then finds work for several
connections. 8 stays far below real servers' per-client limits (Postfix: 50), and a
connection the server refuses beyond the first shrinks the pool (``JobQueue``)."""
MAILS_PER_CONNECTION = 32
"""A batch opens one more connection per this many mails (up to the pool size): a handshake
(TCP, greeting, EHLO, STARTTLS, AUTH) costs several round trips, a chained mail one."""

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
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")


def message_id_of(data: bytes) -> str | None:
    """The Message-ID header of the mail, if it has one (headers end at the blank line).
    Searched in place, so the body is never copied."""
    blank = _END_OF_HEADERS.search(data)
    found = _MESSAGE_ID.search(data, 0, blank.start() if blank else len(data))
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


@dataclass
class _Lane:
    """The connection one send or one batch worker is using; replaced when it fails."""

    session: Session | None


class Mailer:
    """Sends mails over a small pool of reused connections. Use as ``async with``."""

    def __init__(self, endpoint: Endpoint, *, timeouts: Timeouts | None = None,
                 retries: RetryPolicy | None = None, concurrency: int = DEFAULT_CONCURRENCY,
                 pipeline_batches: bool = True) -> None:
        if concurrency < 1:
            raise errors.UsageError("concurrency must be at least 1")
        self.endpoint = endpoint
        self.timeouts = timeouts or Timeouts()
        self.retries = retries or RetryPolicy()
        self.concurrency = concurrency
        self.pipeline_batches = pipeline_batches
        """Chain the mails of ``send_many`` across messages where PIPELINING is offered."""
        redactor = Redactor()
        redactor.add(endpoint.password, [endpoint.user])
        self._where = Where(endpoint.host, endpoint.port, endpoint.tls_name, endpoint.user,
                            redactor)
        # Loading the system trust store takes ~50 ms: done only once TLS is needed, unless a
        # CA file is given (then at once, so a wrong path fails here, not mid-batch).
        self._context: ssl.SSLContext | None = (
            tls_context(endpoint.ca_file) if endpoint.ca_file else None)
        self._idle: list[Session] = []
        self._slots: asyncio.Semaphore | None = None
        self._closed = False
        self.connections_opened = 0
        """Connections made so far (a batch over one connection keeps this at 1)."""

    @classmethod
    def from_settings(cls, settings: EmailSettings, *, ca_file: str | None = None,
                      timeouts: Timeouts | None = None,
                      mechanism_order: MechanismOrder = "synapse", fallback: bool = False,
                      retries: RetryPolicy | None = None,
                      concurrency: int = DEFAULT_CONCURRENCY, local_hostname: str | None = None,
                      pipeline_batches: bool = True) -> Mailer:
        """A Mailer for what Synapse's config says; raises NotConfiguredError before
        connecting when the config cannot work (e.g. smtp_user without smtp_pass)."""
        endpoint = endpoint_from_settings(
            settings, ca_file=ca_file, mechanism_order=mechanism_order, fallback=fallback,
            local_hostname=local_hostname)
        return cls(endpoint, timeouts=timeouts, retries=retries, concurrency=concurrency,
                   pipeline_batches=pipeline_batches)

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
        job = self._job(0, sender, recipients, data)
        async with self._slot():
            lane = _Lane(self._idle.pop() if self._idle else None)
            try:
                return await self._deliver(job, lane)
            finally:
                await self._give_back(lane.session)

    async def send_many(self, mails: Iterable[Mail | tuple[str, Sequence[str] | str, bytes]]
                        ) -> list[SendResult | errors.SMTPFailure]:
        """Deliver every mail over at most ``concurrency`` connections (one per
        ``MAILS_PER_CONNECTION`` mails); results in order.

        A failure is returned in place of its result, not raised, so one bad address
        does not stop the batch. A misuse (a mail without recipients) raises before
        anything is sent. When the server offers PIPELINING (and ``pipeline_batches``),
        each connection sends the end of one mail with the envelope of the next
        (``pipeline.run_chain``); a connection failure sends the mails it left open
        through the per-mail path, on a new connection.
        """
        jobs = [self._job(i, *mail) for i, mail in enumerate(mails)]
        results: list[SendResult | errors.SMTPFailure | None] = [None] * len(jobs)
        queue = JobQueue(jobs)
        lanes = min(self.concurrency, -(-len(jobs) // MAILS_PER_CONNECTION))  # ceil
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(lanes):
                    group.create_task(self._work(queue, results))
        except ExceptionGroup as group_error:  # e.g. close() during the batch: raise it plainly
            raise group_error.exceptions[0] from None
        done = [r for r in results if r is not None]
        assert len(done) == len(jobs), "a mail of the batch was neither sent nor failed"
        return done

    async def _work(self, queue: JobQueue,
                    results: list[SendResult | errors.SMTPFailure | None]) -> None:
        """One connection's share of a batch: the first mail on the per-mail path (it opens
        or revives the connection), the following ones chained while the server pipelines.
        If its connection cannot be opened while other lanes run, it leaves them the work."""
        retry: list[tuple[Job, errors.SMTPFailure]] = []

        def settle(job: Job, outcome: Outcome | errors.SMTPFailure) -> None:
            if isinstance(outcome, Outcome):
                results[job.index] = self._result(job, outcome, 1)
            elif self.retries.should_retry(outcome, 1):
                retry.append((job, outcome))
            else:
                results[job.index] = outcome

        async def one(job: Job, failure: errors.SMTPFailure | None = None) -> None:
            try:
                results[job.index] = await self._deliver(job, lane, failure)
            except errors.SMTPFailure as final:
                results[job.index] = final

        async with self._slot():
            lane = _Lane(self._idle.pop() if self._idle else None)
            queue.pulling += 1
            pulling = True
            try:
                for job in queue:
                    if lane.session is None:
                        try:
                            lane.session = await self._open()
                        except errors.SMTPFailure as refused:
                            if queue.pulling > 1:  # the other lanes take this mail
                                queue.give_back(job)
                                return
                            await one(job, refused)  # the last lane: the per-mail path
                            continue
                    await one(job)
                    session = lane.session
                    if self.pipeline_batches and session and session.is_open and (
                            session.pipelining):
                        for left, failure in await run_chain(session, queue, settle):
                            await one(left, failure)
                queue.pulling -= 1
                pulling = False
                while retry:
                    await one(*retry.pop(0))
            finally:
                if pulling:
                    queue.pulling -= 1
                await self._give_back(lane.session)

    async def _deliver(self, job: Job, lane: _Lane,
                       failure: errors.SMTPFailure | None = None) -> SendResult:
        """The per-mail path: one transaction, reconnecting and retrying per the policy.
        ``failure``: the first attempt already failed so (in a pipeline), so this goes on
        from attempt 2, or raises it if the policy says no."""
        attempt = 0
        if failure is not None:
            attempt = 1
            if not self.retries.should_retry(failure, attempt):
                raise failure
            await asyncio.sleep(self.retries.delay(attempt))
        while True:
            attempt += 1
            session = lane.session
            reused = session is not None
            try:
                if session is None or not session.is_open:
                    reused, lane.session = False, None
                    session = lane.session = await self._open()
                outcome = await session.transact(job.sender, job.recipients, job.data)
                return self._result(job, outcome, attempt)
            except errors.SMTPFailure as error:
                if reused and isinstance(error, errors.ConnectionLost):
                    # A pooled connection the server had closed while idle (its idle
                    # timeout): not an answer to this mail, so reconnect once without
                    # spending an attempt.
                    attempt -= 1
                    lane.session = None
                    continue
                if not self.retries.should_retry(error, attempt):
                    raise
            if lane.session is not None and not lane.session.is_open:
                lane.session = None
            await asyncio.sleep(self.retries.delay(attempt))

    def _job(self, index: int, sender: str, recipients: str | Sequence[str],
             data: bytes) -> Job:
        if self._closed:
            raise errors.UsageError("this Mailer is closed")
        rcpts = [recipients] if isinstance(recipients, str) else list(recipients)
        if not rcpts:
            raise errors.UsageError("a mail needs at least one recipient")
        return Job(index, sender, rcpts, data, time.perf_counter())

    @staticmethod
    def _result(job: Job, outcome: Outcome, attempts: int) -> SendResult:
        return SendResult(message_id_of(job.data), str(outcome.reply),
                          time.perf_counter() - job.started, attempts, outcome.refused)

    def _slot(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._slots

    async def _give_back(self, session: Session | None) -> None:
        if session is not None and session.is_open:
            if self._closed:  # close() ran while this mail was in flight
                await session.close()
            else:
                self._idle.append(session)

    async def _open(self) -> Session:
        self.connections_opened += 1
        return await Session.open(self.endpoint, self.timeouts, self._where, self._tls_context)

    def _tls_context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = tls_context(self.endpoint.ca_file)
        return self._context

    async def close(self) -> None:
        """QUIT every idle connection. The Mailer cannot send afterwards."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(session.close() for session in idle))
