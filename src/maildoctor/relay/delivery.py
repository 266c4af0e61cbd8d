"""Delivery: take due messages from the queue, send them upstream, record what happened.

One scheduler task fills up to ``concurrency`` delivery tasks with the messages that are due,
oldest first, and sleeps until the next one is due, a new message arrives (``wake``), a slot
frees, or ``poll_interval`` passes (so a ``relay retry`` from another process is noticed).

Outcomes (``explain.py`` decides which is which):

- delivered: marked so; recipients the upstream refused are recorded on the row (the
  bounce), and those it refused with a 4xx get a new queued row of their own;
- temporary (4xx, connection, TLS, login, timeout): tried again after an exponential backoff
  with jitter, ``retry_base * 2**(attempts-1)`` capped at ``retry_max``, until ``max_age``;
- permanent (a 5xx to this message): dead-lettered with the reason.

While the upstream itself is failing (it cannot be reached, refuses the login...), the
relay holds all deliveries for a backoff of its own (at most ``HOLD_MAX``) instead of letting
every queued message hammer it in turn; the first delivery that works after such an outage
makes every queued message due at once, so a long outage does not leave mail waiting out
``retry_max``.

At-least-once: the row is marked delivered only after the upstream's 250, so a crash in
between sends the message again after the restart; nothing is ever marked before it is done.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time

from maildoctor import errors
from maildoctor.relay.explain import Explanation, explain, explain_unexpected
from maildoctor.relay.logs import EventLog
from maildoctor.relay.metrics import Counters
from maildoctor.relay.options import RelayOptions
from maildoctor.relay.queue import QueuedMessage
from maildoctor.relay.store import Store
from maildoctor.relay.upstream import Upstream

HOLD_MAX = 60.0
"""Longest pause of all deliveries after the upstream failed; bounds how long a recovered
upstream, or a `relay retry`, waits to be noticed."""

SERVER_REASONS = frozenset({"config", "resolve", "connect", "tls", "greeting", "auth",
                            "timeout", "connection_lost"})
"""Failures that say the upstream (or the way to it) is broken, not this message."""


def backoff(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``attempts`` failed attempts: doubling, capped, +-20 % jitter
    so that a queue of messages that failed together does not retry in lock-step."""
    raw = min(cap, base * 2.0 ** max(0, attempts - 1))
    return min(cap, raw * (0.8 + 0.4 * (rng or random).random()))


class Deliverer:
    """Runs inside the relay's event loop; :meth:`run` until :meth:`stop`."""

    def __init__(self, options: RelayOptions, store: Store, upstream: Upstream,
                 counters: Counters, log: EventLog) -> None:
        self.options = options
        self.store = store
        self.upstream = upstream
        self.counters = counters
        self.log = log
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None
        self._outage_rounds = 0
        self._hold_until = 0.0

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self.run())

    def wake(self) -> None:
        """Something changed (a message arrived): look at the queue now."""
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            try:
                await self._round()
            except Exception as exc:  # e.g. the disk went away: log, wait, keep trying
                self.log(logging.ERROR, "queue-read-failed", error=repr(exc),
                         fix="check the disk and the queue file's permissions")
                await self._wait(self.options.poll_interval)

    async def _round(self) -> None:
        """Start what is due (if the upstream is not on hold), then sleep until there may be
        more to do."""
        opts, queue = self.options, self.store.queue
        held = self._hold_until - time.time()
        if held > 0:
            await self._wait(min(held, opts.poll_interval))
            return
        free = opts.concurrency - len(self._inflight)
        if free > 0:
            batch = await self.store.call(queue.due, time.time(), frozenset(self._inflight),
                                          free)
            if self._stopping:
                return
            for message in batch:
                task = asyncio.get_running_loop().create_task(self._guarded(message))
                self._inflight[message.id] = task
                task.add_done_callback(functools.partial(self._finished, message.id))
            if len(batch) < free:
                next_due = await self.store.call(queue.next_due, frozenset(self._inflight))
                delay = opts.poll_interval if next_due is None else next_due - time.time()
                if delay > 0:
                    await self._wait(min(delay, opts.poll_interval))
                return
        await self._wait(opts.poll_interval)  # every slot busy: a finishing task wakes us

    def _finished(self, message_id: int, _task: object = None) -> None:
        self._inflight.pop(message_id, None)
        self._wakeup.set()

    async def _wait(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._wakeup.wait()
        except TimeoutError:
            pass

    async def stop(self, timeout: float) -> None:
        """Take no new message; let the ones in flight finish (up to ``timeout``)."""
        self._stopping = True
        self._wakeup.set()
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)
        tasks = list(self._inflight.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:  # still queued in the database: retried after restart
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- one message -------------------------------------------------------------------------

    async def _guarded(self, message: QueuedMessage) -> None:
        """Deliver; if even recording the outcome fails, log it: the row is still queued, so
        the message is tried again (at worst sent twice), never dropped."""
        try:
            await self._deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log(logging.ERROR, "record-failed", id=message.id,
                     error=f"could not record the outcome in the queue: {exc!r}",
                     fix="check the disk and the queue file's permissions")

    async def _deliver(self, message: QueuedMessage) -> None:
        assert message.data is not None
        started = time.monotonic()
        try:
            result = await self.upstream.send(message.sender, list(message.recipients),
                                              message.data)
        except errors.SMTPFailure as failure:
            await self._failed(message, explain(failure))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not kill the relay or lose the message
            self.log(logging.ERROR, "delivery-crashed", id=message.id, error=repr(exc))
            await self._failed(message, explain_unexpected(exc))
            return
        refused = dict(result.refused)
        temporary = [r for r, reply in refused.items() if reply[:1] == "4"]
        await self.store.call(self.store.queue.delivered, message, self.upstream.name,
                              refused, temporary)
        if self._outage_rounds:
            self._outage_rounds, self._hold_until = 0, 0.0
            hurried = await self.store.call(self.store.queue.hurry, time.time())
            self.log(logging.INFO, "upstream-recovered", upstream=self.upstream.name,
                     hurried=hurried)
        self.log(logging.INFO, "delivered", id=message.id, message_id=message.message_id,
                 upstream=self.upstream.name, attempts=message.attempts + 1,
                 recipients=len(message.recipients) - len(refused),
                 seconds=f"{time.monotonic() - started:.3f}",
                 queued_seconds=f"{time.time() - message.received_at:.3f}", reply=result.reply)
        for recipient, reply in refused.items():
            self.counters.failures["recipient"] += 1
            again = recipient in temporary
            self.log(logging.WARNING, "recipient-retry" if again else "recipient-bounced",
                     id=message.id, message_id=message.message_id, recipient=recipient,
                     error=f"the server refused the recipient <{recipient}> ({reply})",
                     fix="check the recipient address; the server may not relay for it")

    async def _failed(self, message: QueuedMessage, why: Explanation) -> None:
        self.counters.failures[why.reason] += 1
        queue, now = self.store.queue, time.time()
        attempts = message.attempts + 1
        fields: dict[str, object] = dict(
            id=message.id, message_id=message.message_id, upstream=self.upstream.name,
            attempts=attempts, reason=why.reason, error=why.words, fix=why.fix)
        if why.permanent or now >= message.expires_at:
            error = why.words if why.permanent else (
                f"gave up after {attempts} attempts over "
                f"{_duration(now - message.received_at)}; last error: {why.words}")
            await self.store.call(queue.bury, message, self.upstream.name, error, why.reason,
                                  why.fix, server_failed=not why.permanent)
            fields["error"] = error
            self.log(logging.ERROR, "dead", **fields)
            return
        if why.reason in SERVER_REASONS and now >= self._hold_until:
            self._outage_rounds += 1
            self._hold_until = now + backoff(self._outage_rounds, self.options.retry_base,
                                             min(self.options.retry_max, HOLD_MAX))
        delay = backoff(attempts, self.options.retry_base, self.options.retry_max)
        await self.store.call(queue.postpone, message, self.upstream.name, now + delay,
                              why.words, why.reason, why.fix)
        self.log(logging.WARNING, "deferred", retry_in=f"{delay:.2f}", **fields)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
