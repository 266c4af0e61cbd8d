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

Upstreams (``routes.py``): the primary, and the ``--fallback`` if given. A message that
fails at the primary for any non-permanent reason (connection, TLS, login, a 4xx) is tried
at the fallback at once, like Postfix's ``smtp_fallback_relay``. While an upstream itself is
failing (it cannot be reached, refuses the login...), it is held for a backoff of its own (at
most ``HOLD_MAX``) instead of letting every queued message hammer it in turn; mail goes to
the fallback meanwhile. The first delivery that works after such an outage makes every
queued message due at once, so a long outage does not leave mail waiting out ``retry_max``.
A throttling reply (``throttle.py``) slows the whole upstream down instead.

Recording an outcome can fail (a full disk). The outcome is then *parked* in memory: the
message is not tried again (a delivered one would be sent again and again), and the write is
retried with a backoff until the disk has room. A crash meanwhile sends it once more at most.

Delivered rows are pruned ``keep`` seconds after delivery, so the file stays bounded.

At-least-once: the row is marked delivered only after the upstream's 250, so a crash in
between sends the message again after the restart; nothing is ever marked before it is done.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence

from maildoctor import errors
from maildoctor.relay.explain import Explanation, explain, explain_unexpected
from maildoctor.relay.logs import EventLog, Throttle
from maildoctor.relay.metrics import Counters
from maildoctor.relay.options import RelayOptions
from maildoctor.relay.queue import QueuedMessage, UpstreamError
from maildoctor.relay.routes import HOLD_MAX, Parked, Route, backoff
from maildoctor.relay.store import Store
from maildoctor.relay.throttle import is_throttling

__all__ = ["HOLD_MAX", "SERVER_REASONS", "Deliverer", "backoff"]

SERVER_REASONS = frozenset({"config", "resolve", "connect", "tls", "greeting", "auth",
                            "timeout", "connection_lost"})
"""Failures that say the upstream (or the way to it) is broken, not this message."""

PRUNE_EVERY_MAX = 3600.0

_Tried = list[tuple[Route, Explanation]]


class Deliverer:
    """Runs inside the relay's event loop; :meth:`run` until :meth:`stop`."""

    def __init__(self, options: RelayOptions, store: Store, routes: Sequence[Route],
                 counters: Counters, log: EventLog) -> None:
        self.options = options
        self.store = store
        self.routes = list(routes)
        self.counters = counters
        self.log = log
        self.throttle = Throttle()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._parked: dict[int, Parked] = {}
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None
        self._next_prune = 0.0

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self.run())

    def wake(self) -> None:
        """Something changed (a message arrived): look at the queue now."""
        self._wakeup.set()

    @property
    def parked(self) -> int:
        """Outcomes waiting for the disk (a metric)."""
        return len(self._parked)

    async def run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            try:
                await self._round()
            except Exception as exc:  # e.g. the disk went away: log, wait, keep trying
                skipped = self.throttle.due("queue-read-failed")
                if skipped is not None:
                    self.log(logging.ERROR, "queue-read-failed", error=repr(exc),
                             fix="check the disk and the queue file's permissions",
                             similar_since_last=skipped or None)
                await self._wait(self.options.poll_interval)

    async def _round(self) -> None:
        """Record what waits for the disk, prune, start what is due on the upstreams that may
        take mail now, then sleep until there may be more to do."""
        opts, queue = self.options, self.store.queue
        now = time.time()
        if self._parked:
            await self._flush_parked(now)
        await self._prune(now)
        free = min(opts.concurrency - len(self._inflight),
                   sum(r.free_slots(now, opts.concurrency) for r in self.routes))
        if free <= 0:
            # Paused upstreams: wait for the first to be ready; busy ones: a finishing
            # delivery wakes us (never a busy loop while mails are in flight).
            paused = [r.ready_at() - now for r in self.routes if r.ready_at() > now]
            await self._wait(min(min(paused, default=opts.poll_interval), opts.poll_interval))
            return
        busy = frozenset(self._inflight) | frozenset(self._parked)
        batch, next_due = await self.store.call(queue.due_and_next, now, busy, free)
        if self._stopping:
            return
        for message in batch:
            route = self._pick(time.time())
            if route is None:
                break
            task = asyncio.get_running_loop().create_task(self._guarded(message, route))
            self._inflight[message.id] = task
            task.add_done_callback(functools.partial(self._finished, message.id))
        if len(batch) < free:
            delay = opts.poll_interval if next_due is None else next_due - time.time()
            if delay > 0:
                await self._wait(min(delay, opts.poll_interval))

    def _pick(self, now: float) -> Route | None:
        """The first upstream, in order, that may take a mail now; it is counted busy."""
        for route in self.routes:
            if route.free_slots(now, self.options.concurrency) > 0:
                route.inflight += 1
                route.pace.last_start = now
                return route
        return None

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
        if self._parked:  # a last chance; what stays unrecorded is sent again after restart
            await self._flush_parked(float("inf"))

    # -- the queue, when the disk says no ------------------------------------------------------

    async def _record(self, message: QueuedMessage, what: str,
                      write: Callable[[], object]) -> bool:
        """Write an outcome; if the queue refuses it, park it (module docstring)."""
        try:
            await self.store.write(write)
            return True
        except Exception as exc:
            now = time.time()
            parked = Parked(what, write, since=now)
            parked.again_later(now)
            self._parked[message.id] = parked
            skipped = self.throttle.due("record-failed")
            if skipped is not None:
                self.log(logging.ERROR, "record-failed", id=message.id, outcome=what,
                         error=f"could not record the outcome in the queue: {exc}",
                         fix="free space on the queue's disk; the outcome is kept in memory "
                         "and written once the disk allows", similar_since_last=skipped or None)
            return False

    async def _flush_parked(self, now: float) -> None:
        for message_id, parked in list(self._parked.items()):
            if parked.next_try > now:
                continue
            try:
                await self.store.call(parked.write)
            except Exception:
                self.counters.record_retries += 1
                parked.again_later(time.time())
                continue
            del self._parked[message_id]
            self.log(logging.INFO, "recorded", id=message_id, outcome=parked.what,
                     late_seconds=f"{time.time() - parked.since:.1f}")

    async def _prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        keep = self.options.keep
        self._next_prune = now + max(self.options.poll_interval, min(keep / 10, PRUNE_EVERY_MAX))
        try:
            pruned = await self.store.call(self.store.queue.prune, now - keep)
        except errors.StorageError:
            return  # the disk is full; deleting needs a little room too: next time
        if pruned:
            self.log(logging.DEBUG, "pruned", delivered=pruned, keep_seconds=f"{keep:.0f}")

    # -- one message -------------------------------------------------------------------------

    async def _guarded(self, message: QueuedMessage, route: Route) -> None:
        """Deliver; a bug must not kill the relay: the row is still queued, so the message is
        tried again (at worst sent twice), never dropped."""
        try:
            await self._deliver(message, route)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log(logging.ERROR, "delivery-crashed", id=message.id, error=repr(exc),
                     fix="report this as a maildoctor bug")

    async def _deliver(self, message: QueuedMessage, first: Route) -> None:
        assert message.data is not None
        started = time.monotonic()
        tried: _Tried = []
        route: Route | None = first
        while route is not None:
            why: Explanation | None = None
            throttled = False
            try:
                result = await route.upstream.send(message.sender, list(message.recipients),
                                                   message.data)
            except errors.SMTPFailure as failure:
                why = explain(failure)
                throttled = is_throttling(failure)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not kill the relay or lose the message
                self.log(logging.ERROR, "delivery-crashed", id=message.id, error=repr(exc))
                why = explain_unexpected(exc)
            finally:
                route.inflight -= 1
            if why is None:
                await self._delivered(message, route, result.reply, dict(result.refused),
                                      tried, started)
                return
            self._route_failed(route, why, throttled)
            tried.append((route, why))
            route = None if why.permanent else self._next_route(tried)
        await self._failed(message, tried)

    def _next_route(self, tried: _Tried) -> Route | None:
        """The next upstream to try at once after a non-permanent failure (the fallback)."""
        used = {id(r) for r, _ in tried}
        now = time.time()
        for route in self.routes:
            if id(route) not in used and route.ready_at() <= now:
                route.inflight += 1
                route.pace.last_start = now
                return route
        return None

    def _route_failed(self, route: Route, why: Explanation, throttled: bool) -> None:
        now = time.time()
        self.counters.failures[why.reason] += 1
        self.counters.upstream_failures[(route.name, why.reason)] += 1
        if throttled:
            until = route.pace.throttled(now)
            self.log(logging.WARNING, "upstream-throttled", upstream=route.name,
                     role=route.role, slowed=route.pace.level, paused=f"{until - now:.2f}",
                     error=why.words, fix="the provider limits how fast this account sends; "
                     "the relay slows down by itself (one mail at a time, growing pauses)")
        elif why.reason in SERVER_REASONS:
            route.failed(now, self.options.retry_base, self.options.retry_max)

    async def _delivered(self, message: QueuedMessage, route: Route, reply: str,
                         refused: dict[str, str], tried: _Tried, started: float) -> None:
        temporary = [r for r, answer in refused.items() if answer[:1] == "4"]
        failed = [UpstreamError(r.name, w.words, w.reason, w.fix) for r, w in tried]
        self.counters.delivered[route.name] += 1
        await self._record(message, "delivered", functools.partial(
            self.store.queue.delivered, message, route.name, refused, temporary, time.time(),
            failed=failed))
        if route.recovered():
            try:
                hurried = await self.store.call(self.store.queue.hurry, time.time())
            except errors.StorageError:
                hurried = 0
            self.log(logging.INFO, "upstream-recovered", upstream=route.name, role=route.role,
                     hurried=hurried)
        self.log(logging.INFO, "delivered", id=message.id, message_id=message.message_id,
                 upstream=route.name, role=route.role if len(self.routes) > 1 else None,
                 attempts=message.attempts + 1,
                 recipients=len(message.recipients) - len(refused),
                 seconds=f"{time.monotonic() - started:.3f}",
                 queued_seconds=f"{time.time() - message.received_at:.3f}", reply=reply)
        for recipient, answer in refused.items():
            self.counters.failures["recipient"] += 1
            again = recipient in temporary
            self.log(logging.WARNING, "recipient-retry" if again else "recipient-bounced",
                     id=message.id, message_id=message.message_id, recipient=recipient,
                     error=f"the server refused the recipient <{recipient}> ({answer})",
                     fix="check the recipient address; the server may not relay for it")

    async def _failed(self, message: QueuedMessage, tried: _Tried) -> None:
        route, why = tried[-1]
        queue, now = self.store.queue, time.time()
        attempts = message.attempts + 1
        others = [UpstreamError(r.name, w.words, w.reason, w.fix) for r, w in tried[:-1]
                  if not w.permanent]
        fields: dict[str, object] = dict(
            id=message.id, message_id=message.message_id, upstream=route.name,
            attempts=attempts, reason=why.reason, error=why.words, fix=why.fix)
        if len(tried) > 1:
            fields["also_failed"] = "; ".join(f"{r.name}: {w.words}" for r, w in tried[:-1])
        if why.permanent or now >= message.expires_at:
            error = why.words if why.permanent else (
                f"gave up after {attempts} attempts over "
                f"{_duration(now - message.received_at)}; last error: {why.words}")
            await self._record(message, "dead", functools.partial(
                queue.bury, message, route.name, error, why.reason, why.fix,
                server_failed=not why.permanent, now=now, failed=others))
            fields["error"] = error
            self.log(logging.ERROR, "dead", **fields)
            return
        delay = backoff(attempts, self.options.retry_base, self.options.retry_max)
        failed = [*others, UpstreamError(route.name, why.words, why.reason, why.fix)]
        await self._record(message, "deferred", functools.partial(
            queue.postpone, message, route.name, now + delay, why.words, why.reason,
            why.fix, now, failed=failed))
        self.log(logging.WARNING, "deferred", retry_in=f"{delay:.2f}", **fields)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
