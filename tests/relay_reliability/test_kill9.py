"""kill -9 of the relay at random points while 1,000 mails flow: nothing accepted is lost.

The relay runs as a real process (``python -m maildoctor relay run``) in front of a test
server (the upstream sink, in this process, so it outlives every crash). Four client
connections push 1,000 mails with distinct Message-IDs; a mail counts as accepted only when
the relay answered 250 to its DATA, and a client whose connection breaks sends the same mail
again (as Synapse would have to). Meanwhile the relay is SIGKILLed a few times at points drawn
from a seeded RNG (override with MAILDOCTOR_KILL9_SEED) and restarted on the same queue.

The promise under test: every mail that got a 250 reaches the upstream at least once. Crashes
may cause duplicates (a mail delivered upstream but not yet marked delivered, or queued but
its 250 lost with the connection); they are counted, printed, and bounded by what was in
flight at each kill.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from maildoctor.testing.server import ServerOptions, TestServer
from tests.relay_reliability.harness import (
    Pusher,
    RelayProcess,
    make_mail,
    message_ids,
    wait_until,
    write_upstream_config,
)

MAILS = 1000
CONNECTIONS = 4
KILLS = 4
# What may legitimately be in flight at one kill: each relay delivery worker's current mail
# (the relay's default concurrency is 4) plus each client connection's mail whose 250 the
# kill swallowed. Generous by a factor of two for pipelined batches.
DUPLICATES_PER_KILL = 2 * (4 + CONNECTIONS)


def queue_counts(path: Path) -> dict[str, int]:
    from maildoctor.relay import Queue

    queue = Queue(str(path))
    try:
        return dict(queue.counts())
    finally:
        queue.close()


@pytest.fixture
def upstream() -> Iterator[TestServer]:
    server = TestServer(ServerOptions(idle_timeout=60.0)).start()
    yield server
    server.stop()


def test_kill9_loses_nothing(upstream: TestServer, tmp_path: Path) -> None:
    seed = int(os.environ.get("MAILDOCTOR_KILL9_SEED", "6"))
    rng = random.Random(seed)
    kill_points = sorted(rng.sample(range(60, MAILS - 60), KILLS))
    config = write_upstream_config(tmp_path / "homeserver.yaml", {
        "smtp_host": upstream.host, "smtp_port": upstream.port, "enable_tls": False,
        "notif_from": "Matrix <noreply@example.org>"})
    queue = tmp_path / "queue.sqlite3"
    relay = RelayProcess(config, queue, tmp_path)
    backlog = 0
    mails = [make_mail("kill9", n) for n in range(MAILS)]
    relay.start()
    pusher = Pusher(relay.port, mails, connections=CONNECTIONS).start()
    try:
        for point in kill_points:
            pusher.wait_accepted(point, timeout=30)
            relay.kill()
            relay.start()
        pusher.join(timeout=45)
        assert not pusher.failures, pusher.failures[:5]
        # One more while only deliveries run, if a backlog is left to interrupt.
        backlog = queue_counts(queue)["queued"]
        if backlog:
            relay.kill()
            relay.start()
        accepted = set(pusher.accepted)
        assert len(accepted) == MAILS

        def delivered() -> set[str]:
            return set(message_ids(m.data for m in upstream.messages))

        wait_until(lambda: accepted <= delivered() and queue_counts(queue)["queued"] == 0,
                   timeout=40, what="every accepted mail delivered and the queue drained",
                   describe=lambda: (f"missing {len(accepted - delivered())}, e.g. "
                                     f"{sorted(accepted - delivered())[:5]}; queue "
                                     f"{queue_counts(queue)}\n{relay.logs()}"))
    finally:
        exit_code = relay.stop()
    seen = message_ids(m.data for m in upstream.messages)
    duplicates = sum(count - 1 for count in seen.values())
    counts = queue_counts(queue)
    kills = relay.starts - 1
    print(f"\nkill -9 test (seed {seed}): {MAILS} mails accepted, killed at {kill_points} "
          f"accepted" + (f" and once more with {backlog} queued" if backlog else "") + ", "
          f"{relay.starts} starts, {pusher.retries} client retries {dict(pusher.errors)}; "
          f"upstream received {sum(seen.values())} for {len(seen)} Message-IDs: "
          f"{duplicates} duplicates; queue {counts}")
    assert set(seen) - accepted == set(), "the upstream got mails nobody sent"
    assert counts["dead"] == 0, f"dead letters after a crash: {counts}\n{relay.logs()}"
    assert exit_code == 0, f"graceful stop exited {exit_code}\n{relay.logs()}"
    assert duplicates <= kills * DUPLICATES_PER_KILL, (
        f"{duplicates} duplicates for {kills} kills: more than was in flight\n{relay.logs()}")


# --- kill -9 at random moments, many seeds ------------------------------------------------

SEEDS = [int(s) for s in os.environ.get("MAILDOCTOR_KILL9_SEEDS", "1,2,3,4,5,6,7,8").split(",")]
RANDOM_MAILS = 80
RANDOM_KILLS = 3


def random_mail(rng: random.Random, number: int, seed: int) -> tuple[str, bytes]:
    """A mail of 1 KB to 400 KB whose body the upstream must get byte for byte: lines that
    begin with a dot (SMTP dot-stuffing), UTF-8, long lines, a trailing line without text."""
    message_id = f"<rand{seed}-{number:04d}@relay.test>"
    head = (f"From: Matrix <noreply@example.org>\r\nTo: alice@example.org\r\n"
            f"Subject: [Matrix] random {seed}/{number}\r\nMessage-ID: {message_id}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n")
    size = int(rng.choice([1, 4, 16, 64, 400]) * 1024 * rng.uniform(0.5, 1.0))
    pieces = [".", "..", ". leading dot", "é ü ß — 日本語", "x" * rng.randint(1, 990), ""]
    lines: list[str] = []
    length = 0
    while length < size:
        line = rng.choice(pieces) + f" {number}:{len(lines)}"
        lines.append(line)
        length += len(line.encode()) + 2
    return message_id, (head + "\r\n".join(lines) + "\r\n").encode()


@pytest.mark.parametrize("seed", SEEDS)
def test_kill9_at_random_moments(seed: int, upstream: TestServer, tmp_path: Path) -> None:
    """SIGKILL at random times (so mid-DATA, mid-commit and mid-delivery all happen), the
    relay restarted on the same queue each time: every mail that got its 250 arrives, byte
    for byte, and nothing else does."""
    rng = random.Random(seed)
    config = write_upstream_config(tmp_path / "homeserver.yaml", {
        "smtp_host": upstream.host, "smtp_port": upstream.port, "enable_tls": False,
        "notif_from": "Matrix <noreply@example.org>"})
    queue = tmp_path / "queue.sqlite3"
    relay = RelayProcess(config, queue, tmp_path, extra_args=["--retry-base", "0.05",
                                                              "--retry-max", "0.5"])
    mails = [random_mail(rng, n, seed) for n in range(RANDOM_MAILS)]
    sent = dict(mails)
    relay.start()
    pusher = Pusher(relay.port, mails, connections=CONNECTIONS).start()
    try:
        for _ in range(RANDOM_KILLS):
            # Wait for some progress (no kill before the first mail), then a random moment.
            pusher.wait_accepted(min(RANDOM_MAILS, pusher.accepted_count() + 3), timeout=30)
            threading.Event().wait(rng.uniform(0.0, 0.3))
            relay.kill()
            relay.start()
        pusher.join(timeout=60)
        assert not pusher.failures, pusher.failures[:5]
        accepted = set(pusher.accepted)
        assert accepted == set(sent)

        def delivered() -> set[str]:
            return set(message_ids(m.data for m in upstream.messages))

        wait_until(lambda: accepted <= delivered() and queue_counts(queue)["queued"] == 0,
                   timeout=60, what="every accepted mail delivered and the queue drained",
                   describe=lambda: f"missing {sorted(accepted - delivered())[:5]}; queue "
                   f"{queue_counts(queue)}\n{relay.logs()}")
    finally:
        exit_code = relay.stop()
    received = [(next(iter(message_ids([m.data]))), m.data) for m in upstream.messages]
    for message_id, data in received:
        assert message_id in sent, f"the upstream got {message_id}, which nobody sent"
        assert data == sent[message_id], (
            f"seed {seed}: {message_id} arrived changed ({len(data)} bytes, sent "
            f"{len(sent[message_id])})")
    seen = message_ids(data for _, data in received)
    duplicates = sum(count - 1 for count in seen.values())
    print(f"\nkill -9 seed {seed}: {RANDOM_MAILS} mails, {relay.starts - 1} kills, "
          f"{pusher.retries} client retries, {duplicates} duplicates")
    assert exit_code == 0, relay.logs()
    assert queue_counts(queue)["dead"] == 0
    assert duplicates <= (relay.starts - 1) * DUPLICATES_PER_KILL
