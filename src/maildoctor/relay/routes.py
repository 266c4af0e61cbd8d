"""The upstreams a message may go to, in order, and how each one is doing.

A :class:`Route` is one upstream (the primary, or the ``--fallback``) with its own state:

- an *outage hold*: after a failure that says the server (or the way to it) is broken, the
  route is not used for a backoff of its own (at most ``HOLD_MAX``), so queued mail does not
  hammer a server that is down; with a fallback, mail goes there meanwhile;
- a *pace* (``throttle.py``): after a throttling reply, one mail at a time with a growing pause.

:class:`Parked` is a write to the queue that failed (a full disk): the outcome is held in
memory and written again later, and the message is not tried meanwhile.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from maildoctor.relay.throttle import Pace
from maildoctor.relay.upstream import Upstream

HOLD_MAX = 60.0
"""Longest pause of one upstream after it failed; bounds how long a recovered upstream, or a
`relay retry`, waits to be noticed."""

RECORD_RETRY_BASE = 0.2
RECORD_RETRY_MAX = 10.0
"""Backoff for writing an outcome the queue refused (disk full): the first retries come
quickly, then every ``RECORD_RETRY_MAX`` seconds until the disk has room again."""


def backoff(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``attempts`` failed attempts: doubling, capped, +-20 % jitter
    so that a queue of messages that failed together does not retry in lock-step."""
    raw = min(cap, base * 2.0 ** max(0, attempts - 1))
    return min(cap, raw * (0.8 + 0.4 * (rng or random).random()))


@dataclass
class Route:
    upstream: Upstream
    pace: Pace
    outage_rounds: int = 0
    hold_until: float = 0.0
    inflight: int = 0

    @property
    def name(self) -> str:
        return self.upstream.name

    @property
    def role(self) -> str:
        return self.upstream.role

    @property
    def up(self) -> bool:
        """False while the last attempts there failed for a server-side reason."""
        return self.outage_rounds == 0

    def ready_at(self) -> float:
        """When this route may take its next mail."""
        return max(self.hold_until, self.pace.ready_at())

    def free_slots(self, now: float, concurrency: int) -> int:
        """How many more mails may start here now."""
        if self.ready_at() > now:
            return 0
        limit = 1 if self.pace.slowed else concurrency
        return max(0, limit - self.inflight)

    def failed(self, now: float, base: float, cap: float) -> None:
        """The server (or the way to it) is broken: hold this route for a while."""
        if now >= self.hold_until:
            self.outage_rounds += 1
            self.hold_until = now + backoff(self.outage_rounds, base, min(cap, HOLD_MAX))

    def recovered(self) -> bool:
        """A mail went through; True if this ends an outage."""
        self.pace.delivered()
        was_down = self.outage_rounds > 0
        self.outage_rounds, self.hold_until = 0, 0.0
        return was_down


@dataclass
class Parked:
    """An outcome the queue could not record yet (see the module docstring)."""

    what: str
    """``delivered``, ``deferred`` or ``dead``: what the row will say."""
    write: Callable[[], object]
    tries: int = 1
    next_try: float = 0.0
    since: float = field(default=0.0)

    def again_later(self, now: float) -> None:
        self.tries += 1
        self.next_try = now + backoff(self.tries, RECORD_RETRY_BASE, RECORD_RETRY_MAX)
