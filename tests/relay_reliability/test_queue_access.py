"""``relay status`` and ``relay list`` on a queue they may only read, and the queue's size
under a steady flow (``--keep``).

Read-only, three ways an operator meets it: a monitoring user without write permission
(the relay's files left as they are), a directory made read-only, and a read-only bind
mount in a mount namespace (as a container that mounts the relay's volume ``:ro``). The
queue is opened with SQLite's ``mode=ro``: nothing is created, nothing is written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from maildoctor.testing.server import TestServer
from tests.relay_reliability.conftest import RelayFactory
from tests.relay_reliability.harness import HOST, make_mail, send, wait_until

MAILDOCTOR = [sys.executable, "-m", "maildoctor", "relay"]


@pytest.fixture
def upstream() -> Iterator[TestServer]:
    server = TestServer().start()
    yield server
    server.stop()


@pytest.fixture
def filled_queue(relay_factory: RelayFactory, upstream: TestServer) -> Iterator[Path]:
    """A queue with 3 delivered mails, its relay stopped, in a directory that another user
    can reach (pytest's own tmp_path is private to root)."""
    running = relay_factory({"smtp_host": HOST, "smtp_port": upstream.port,
                             "enable_tls": False})
    send(running.port, [make_mail("ro", n) for n in range(3)], ["alice@example.org"])
    wait_until(lambda: running.counts()["delivered"] == 3, timeout=15, what="delivered")
    running.relay.stop(timeout=10)
    running.close()
    directory = Path(tempfile.mkdtemp(prefix="maildoctor-ro-queue-"))
    try:
        directory.chmod(0o755)
        for path in running.queue_path.parent.glob(running.queue_path.name + "*"):
            shutil.copy2(path, directory / path.name)
        yield directory / running.queue_path.name
    finally:
        directory.chmod(0o755)
        shutil.rmtree(directory)


def _root_only() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("unshare") is None:
        if os.environ.get("CI"):
            pytest.fail("read-only queue tests need root, setpriv and unshare")
        pytest.skip("needs root, setpriv and unshare")


def run(argv: list[str], prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(prefix or []), *argv], capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}


def check_reads(queue: Path, prefix: list[str] | None = None) -> None:
    status = run([*MAILDOCTOR, "status", "--queue", str(queue), "--format", "json"], prefix)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["counts"] == {"queued": 0, "delivered": 3, "dead": 0}
    listed = run([*MAILDOCTOR, "list", "--queue", str(queue)], prefix)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count(" delivered ") == 3, listed.stdout
    retry = run([*MAILDOCTOR, "retry", "--all", "--queue", str(queue)], prefix)
    assert retry.returncode == 2 and "Traceback" not in retry.stderr, retry.stderr
    assert "read" in retry.stderr, retry.stderr


def test_read_only_directory_and_file(filled_queue: Path) -> None:
    _root_only()
    directory = filled_queue.parent
    for path in directory.iterdir():
        path.chmod(0o444)
    directory.chmod(0o555)
    before = snapshot(directory)
    try:
        check_reads(filled_queue, ["setpriv", "--reuid=nobody", "--regid=nogroup",
                                   "--clear-groups"])
    finally:
        directory.chmod(0o755)
    assert snapshot(directory) == before


def test_monitoring_user_on_the_relays_own_files(filled_queue: Path) -> None:
    """Files as the relay leaves them (0644 under a 0755 directory), read by another user."""
    _root_only()
    directory = filled_queue.parent
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)
    before = snapshot(directory)
    check_reads(filled_queue, ["setpriv", "--reuid=nobody", "--regid=nogroup",
                               "--clear-groups"])
    assert snapshot(directory) == before


def test_read_only_bind_mount(filled_queue: Path) -> None:
    _root_only()
    directory = filled_queue.parent
    before = snapshot(directory)
    script = (f"mount --bind '{directory}' '{directory}' && "
              f"mount -o remount,bind,ro '{directory}' && exec \"$@\"")
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    probe = run(["sh", "-c", f"touch '{directory}/x' 2>/dev/null && echo writable || echo ro"],
                prefix)
    assert probe.stdout.strip() == "ro", probe
    check_reads(filled_queue, prefix)
    assert snapshot(directory) == before


def test_queue_file_bounded_under_steady_flow(relay_factory: RelayFactory,
                                              upstream: TestServer) -> None:
    """Delivered rows older than --keep are pruned and their pages reused: after the first
    rounds the file stops growing however many more mails go through."""
    running = relay_factory({"smtp_host": HOST, "smtp_port": upstream.port,
                             "enable_tls": False}, keep=0.0, poll_interval=0.05)
    sizes = []
    for round_number in range(12):
        mails = [make_mail(f"flow{round_number}", n, body_lines=100) for n in range(50)]
        send(running.port, mails, ["alice@example.org"])
        wanted = 50 * (round_number + 1)
        wait_until(lambda w=wanted: len(upstream.messages) >= w, timeout=30, what="delivered")
        wait_until(lambda: running.counts()["delivered"] == 0, timeout=30,
                   what="delivered rows pruned", describe=lambda: repr(running.counts()))
        sizes.append(sum(p.stat().st_size for p in running.queue_path.parent.iterdir()
                         if p.name.startswith(running.queue_path.name)))
    assert len(upstream.messages) == 600
    assert max(sizes[4:]) <= 1.25 * max(sizes[:4]), sizes


def test_keep_holds_delivered_rows(relay_factory: RelayFactory, upstream: TestServer) -> None:
    running = relay_factory({"smtp_host": HOST, "smtp_port": upstream.port,
                             "enable_tls": False})  # the default: a week
    send(running.port, [make_mail("kept", n) for n in range(3)], ["alice@example.org"])
    wait_until(lambda: running.counts()["delivered"] == 3, timeout=15, what="delivered")
    assert len(running.records("delivered")) == 3
