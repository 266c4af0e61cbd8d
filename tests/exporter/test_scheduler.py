"""The scheduler's own guarantees, with a probe function the test holds and releases: the
concurrency cap, and a scrape's deadline while probes queue for a slot."""

from __future__ import annotations

import threading
import time

from maildoctor.exporter.scheduler import ProbeOutcome, ProbeScheduler
from maildoctor.exporter.targets import Target


class HeldProbes:
    """Probe functions that block until released, counting how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Condition()
        self.running = 0
        self.most = 0
        self.started: list[str] = []

    def __call__(self, target: Target) -> ProbeOutcome:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.started.append(target.name)
            self.lock.notify_all()
        self.release.wait(timeout=60)
        with self.lock:
            self.running -= 1
        return ProbeOutcome(target.name, time.time(), 0.0, internal_error="held")


def test_at_most_concurrency_probes_run_and_queued_scrapes_time_out() -> None:
    names = [f"t{i}" for i in range(5)]
    held = HeldProbes()
    finished = threading.Semaphore(0)
    scheduler = ProbeScheduler({n: Target(n, (f"{n}.yaml",)) for n in names}, held,
                               min_interval=60, concurrency=2,
                               on_finish=lambda _o: finished.release())
    answers = [scheduler.answer(name, timeout=0.3) for name in names]
    assert all(a.timed_out and a.outcome is None for a in answers)
    with held.lock:
        assert held.lock.wait_for(lambda: held.running == 2, timeout=30)
        assert len(held.started) == 2
    held.release.set()
    for _ in names:
        assert finished.acquire(timeout=60)
    assert held.most == 2 and sorted(held.started) == names
    again = scheduler.answer("t4", timeout=5)
    assert again.cached and again.outcome is not None and again.outcome.target == "t4"


def test_a_failing_probe_function_is_an_internal_error_not_a_crash() -> None:
    def broken(target: Target) -> ProbeOutcome:
        raise RuntimeError("a bug")

    scheduler = ProbeScheduler({"a": Target("a", ("a.yaml",))}, broken, min_interval=0,
                               concurrency=1)
    answer = scheduler.answer("a", timeout=30)
    assert answer.outcome is not None and answer.outcome.internal_error == "RuntimeError"
