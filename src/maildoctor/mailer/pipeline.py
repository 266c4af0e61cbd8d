"""Pipelining across the mails of a batch (RFC 2920 3.1) on one open connection.

Per mail, the plain path needs two round trips: MAIL/RCPT/DATA, then the body. But RFC 2920
lets the message content be the *first* "command" of a group, and DATA must be the last, so
the end of mail N and the envelope of mail N+1 can travel in one write::

    write: <body 1> . MAIL RCPT DATA      replies: 250 (mail 1)  250 250 354 (mail 2)
    write: <body 2> . MAIL RCPT DATA      replies: 250 (mail 2)  250 250 354 (mail 3)

One round trip and one write per mail. Replies are still taken strictly in order, one per
command (``Channel``), so each is matched to its own mail; the server ends a transaction at
the final dot whatever it answers (RFC 5321 4.1.1.4), so mail N's outcome cannot affect
mail N+1's envelope.

What can happen, and what each mail gets:

- a refusal (MAIL, RCPT, DATA or the final dot; 4xx or 5xx): that mail settles with its
  exception; the chain goes on (the next envelope starts with RSET when needed);
- an address that could inject commands: refused before anything is written;
- the connection fails (lost, timeout, garbage): the chain stops at once. Replies that did
  arrive still count: if the final reply of the mail whose body was in flight came before
  the failure, that mail is settled by it (else it would be sent twice); if not, it is
  charged with the failure, exactly as on the per-mail path (it may or may not have been
  accepted: SMTP's own ambiguity, RFC 5321 6.1), and the mail whose envelope rode with it,
  having had no body sent, is returned *uncharged*. If the channel failed before writing
  anything, nothing is charged. Mails not yet taken from ``jobs`` are untouched. The caller
  sends what is returned through the per-mail path.

No mail is settled twice and none is dropped: every job taken from ``jobs`` is either settled
through ``settle`` or returned.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from maildoctor import errors
from maildoctor.mailer.replies import Reply
from maildoctor.mailer.session import Outcome, Session


@dataclass(eq=False)
class Job:
    """One mail of a batch, as it moves through the pipeline."""

    index: int
    sender: str
    recipients: list[str]
    data: bytes
    started: float
    """``time.perf_counter()`` when the batch took it, for ``SendResult.seconds``."""
    refused: dict[str, Reply] = field(default_factory=dict)


class JobQueue:
    """The mails of one batch, shared by the connections ("lanes") working on it.

    A lane that cannot open its connection while others are still pulling gives its mail
    back and leaves (a server may cap connections per client): the pool shrinks instead of
    the mail failing. ``pulling`` counts the lanes that will still ask for mails. Nothing
    here suspends, so lanes (tasks on one event loop) never race on it.
    """

    def __init__(self, jobs: list[Job]) -> None:
        self._fresh = iter(jobs)
        self._returned: deque[Job] = deque()
        self.pulling = 0

    def __iter__(self) -> JobQueue:
        return self

    def __next__(self) -> Job:
        if self._returned:
            return self._returned.popleft()
        job = next(self._fresh)
        job.started = time.perf_counter()
        return job

    def give_back(self, job: Job) -> None:
        self._returned.append(job)


Settle = Callable[[Job, "Outcome | errors.SMTPFailure"], None]
Unsettled = list[tuple[Job, "errors.SMTPFailure | None"]]
"""Jobs a failed connection left open, each with the failure charged to it (None: none)."""


async def run_chain(session: Session, jobs: Iterator[Job], settle: Settle) -> Unsettled:
    """Deliver ``jobs`` over ``session`` (which must offer PIPELINING) until they run out or
    the connection fails; see the module docstring for who gets what."""
    pending: Job | None = None  # its DATA got 354; its body goes with the next group
    for job in jobs:
        if not session.is_open:  # the server closed it since its last reply: no body sent
            return [(pending, None), (job, None)] if pending else [(job, None)]
        head = [session.body(pending.data)] if pending else []
        try:
            envelope = session.envelope(job.sender, job.recipients)
        except errors.SMTPFailure as failure:  # an injection attempt: nothing was written
            settle(job, failure)
            continue  # ``pending`` rides with the next envelope (or goes alone at the end)
        writes = session.channel.writes
        try:
            replies = await session.exchange(head + envelope, with_body=pending is not None)
        except errors.SMTPFailure as failure:
            if session.channel.writes == writes:  # refused before writing: nothing was sent
                return [(pending, None), (job, None)] if pending else [(job, None)]
            arrived = session.channel.salvage()
            if pending and arrived:  # its final reply came before the failure
                _finish(pending, arrived[0], session, settle)
                pending = None
            return [(pending, failure), (job, None)] if pending else [(job, failure)]
        if pending:
            _finish(pending, replies[0], session, settle)
            replies = replies[1:]
        pending = None
        try:
            job.refused = await session.check_envelope(envelope, replies, job.sender,
                                                       job.recipients)
        except errors.SMTPFailure as failure:
            settle(job, failure)
            if not session.is_open:
                return []
            continue
        pending = job
    if pending:
        try:
            (final,) = await session.exchange([session.body(pending.data)], with_body=True)
        except errors.SMTPFailure as failure:
            return [(pending, failure)]
        _finish(pending, final, session, settle)
    return []


def _finish(job: Job, final: Reply, session: Session, settle: Settle) -> None:
    """Settle ``job`` with the reply to its final dot."""
    try:
        outcome: Outcome | errors.SMTPFailure = session.check_final(final, job.refused)
    except errors.SMTPFailure as failure:
        outcome = failure
    settle(job, outcome)
