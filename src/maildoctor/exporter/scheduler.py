"""When a target is really probed: at most one probe per target at a time, at most
``concurrency`` probes at once, and no new probe of a target within ``min_interval`` seconds of
the last one started (its result is served again instead).

A scrape storm (a dozen Prometheus replicas, a dashboard refreshed in a loop) therefore logs in
to the provider at most once per interval per target, which keeps an account clear of the
failed-login lockouts providers apply to a broken password.

Every wait is bounded: a scrape waits at most until its deadline (the scrape timeout Prometheus
sends, capped by ``--deadline``); a probe still running then goes on in the background within
its own per-step timeouts and its result serves the next scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from maildoctor.errors import ConfigLoadError
from maildoctor.exporter.targets import Target


@dataclass(frozen=True)
class ProbeOutcome:
    """One probe's result: the run (``run``) or why there is none (``load_error``,
    ``internal_error``). ``started`` is a wall-clock timestamp."""

    target: str
    started: float
    seconds: float
    run: Any = None  # maildoctor.doctor.ProbeRun
    load_error: ConfigLoadError | None = None
    internal_error: str = ""


@dataclass(frozen=True)
class Answer:
    """What a scrape gets: the latest outcome (``None`` when the probe did not finish before
    the deadline and nothing was cached), and whether it was served from the cache."""

    outcome: ProbeOutcome | None
    cached: bool
    timed_out: bool


@dataclass
class _State:
    last: ProbeOutcome | None = None
    last_started: float | None = None  # monotonic
    running: Future[ProbeOutcome] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


ProbeFunc = Callable[[Target], ProbeOutcome]
OnFinish = Callable[[ProbeOutcome], None]


class ProbeScheduler:
    def __init__(self, targets: dict[str, Target], probe: ProbeFunc, *, min_interval: float,
                 concurrency: int, on_finish: OnFinish | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.targets = targets
        self._probe = probe
        self.min_interval = min_interval
        self._slots = threading.BoundedSemaphore(concurrency)
        self._states = {name: _State() for name in targets}
        self._on_finish = on_finish
        self._clock = clock
        self._in_flight = 0
        self._count_lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def answer(self, name: str, timeout: float) -> Answer:
        """The result for target ``name`` (which must exist), waiting at most ``timeout``."""
        state = self._states[name]
        with state.lock:
            now = self._clock()
            running = state.running
            fresh = (state.last_started is not None
                     and now - state.last_started < self.min_interval)
            if running is None and fresh and state.last is not None:
                return Answer(state.last, cached=True, timed_out=False)
            if running is None:
                running = self._start(name, state, now)
                joined = False
            else:
                joined = True
        try:
            outcome = running.result(timeout=max(0.0, timeout))
        except FutureTimeout:
            with state.lock:
                last = state.last
            return Answer(last, cached=last is not None, timed_out=True)
        return Answer(outcome, cached=joined, timed_out=False)

    def _start(self, name: str, state: _State, now: float) -> Future[ProbeOutcome]:
        future: Future[ProbeOutcome] = Future()
        state.running = future
        state.last_started = now
        target = self.targets[name]

        def work() -> None:
            with self._slots:  # queue behind the other probes, bounded by their timeouts
                with self._count_lock:
                    self._in_flight += 1
                try:
                    outcome = self._probe(target)
                except Exception as exc:  # never lose the scrape to a bug
                    outcome = ProbeOutcome(name, time.time(), 0.0,
                                           internal_error=type(exc).__name__)
                finally:
                    with self._count_lock:
                        self._in_flight -= 1
            with state.lock:
                state.last = outcome
                state.running = None
            if self._on_finish is not None:
                self._on_finish(outcome)
            future.set_result(outcome)

        # A daemon thread: a probe still inside its timeouts must not hold up a shutdown.
        threading.Thread(target=work, name=f"maildoctor-probe-{name}", daemon=True).start()
        return future
