"""A full disk, for real: the relay's queue on a small tmpfs in a mount namespace of its own.

The relay runs as ``unshare --mount sh -c 'mount -t tmpfs -o size=... && exec relay'``, so
the tmpfs exists only for it; this test reaches the same files through
``/proc/PID/root/...`` to fill the disk up and free it again. Nothing on the host's disks
fills up, and nothing is left mounted when the relay exits.

What must hold:

- a mail the relay cannot store durably is answered ``452 4.3.1`` (never 250: it would be
  lost; never 5xx: Synapse would give up), and once space is back mail flows again without
  a restart;
- a pending mail the upstream accepts while the disk is full is held in memory as delivered
  (its outcome cannot be written), not sent again and again: at most twice in all (the
  relay's at-least-once contract), however long the disk stays full.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import smtplib
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from maildoctor.testing.ports import free_port
from maildoctor.testing.server import ServerOptions, TestServer
from tests.relay_reliability.harness import (
    EHLO_NAME,
    HOST,
    SENDER,
    RelayProcess,
    make_mail,
    message_ids,
    send,
    wait_until,
    write_upstream_config,
)

TMPFS_KB = 1024


@pytest.fixture(autouse=True)
def _need_root() -> None:
    missing = [tool for tool in ("unshare", "nsenter", "mount") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        why = f"needs root and {', '.join(missing) or 'unshare'} (a mount namespace)"
        if os.environ.get("CI"):
            pytest.fail(f"full-disk tests {why} (scripts/install-system-deps.sh)")
        pytest.skip(why)


class TmpfsRelay:
    """The relay with its queue alone on a ``TMPFS_KB`` tmpfs that only it can see.

    A holder process owns the mount namespace (so the tmpfs outlives a killed relay); the
    relay joins it with ``nsenter``."""

    def __init__(self, tmp_path: Path, upstream_port: int) -> None:
        self.mountpoint = tmp_path / "spool"
        self.mountpoint.mkdir()
        config = write_upstream_config(tmp_path / "upstream.yaml", {
            "smtp_host": HOST, "smtp_port": upstream_port, "enable_tls": False,
            "notif_from": "Matrix <noreply@example.org>"})
        self.metrics_port = free_port()
        script = (f"mount -t tmpfs -o size={TMPFS_KB}k,mode=0700 maildoctor-test-spool "
                  f"'{self.mountpoint}' && echo mounted && exec sleep 600")
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=subprocess.PIPE, text=True)
        assert self.holder.stdout is not None
        assert self.holder.stdout.readline().strip() == "mounted", "tmpfs not mounted"
        self.relay = RelayProcess(
            config, self.mountpoint / "queue.sqlite3", tmp_path,
            extra_args=["--retry-base", "0.05", "--retry-max", "0.2",
                        "--metrics", f"{HOST}:{self.metrics_port}"],
            prefix=["nsenter", "--target", str(self.holder.pid), "--mount"])

    def close(self) -> None:
        with contextlib.suppress(AssertionError):
            self.relay.stop()
        self.holder.kill()
        self.holder.wait(timeout=10)

    @property
    def spool(self) -> Path:
        """The tmpfs as the relay sees it (its mount namespace, through /proc)."""
        return Path(f"/proc/{self.holder.pid}/root") / str(self.mountpoint).lstrip("/")

    def fill(self) -> int:
        """Write a filler file until the tmpfs says ENOSPC; the bytes written."""
        written = 0
        chunk = b"\0" * 65536
        with open(self.spool / "filler", "wb", buffering=0) as filler:
            while True:
                try:
                    written += filler.write(chunk[:4096] if written % 65536 else chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
        return written

    def free(self) -> None:
        (self.spool / "filler").unlink()

    def metric(self, name: str) -> float:
        url = f"http://{HOST}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(f"maildoctor_relay_{name} "):
                    return float(line.split()[1])
        raise AssertionError(f"no metric {name}")

    def counts(self) -> dict[str, int]:
        """``relay status`` run inside the relay's mount namespace (SQLite resolves the
        /proc/PID/root link to the host's path, so it must really be in there)."""
        done = subprocess.run(
            ["nsenter", "--target", str(self.holder.pid), "--mount", sys.executable,
             "-m", "maildoctor", "relay", "status", "--format", "json", "--queue",
             str(self.mountpoint / "queue.sqlite3")],
            capture_output=True, text=True, timeout=30, check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert done.returncode in (0, 1), done.stderr
        counts: dict[str, int] = json.loads(done.stdout)["counts"]
        return counts


@pytest.fixture
def upstream() -> Iterator[TestServer]:
    server = TestServer(ServerOptions(idle_timeout=60.0)).start()
    yield server
    server.stop()


def one(port: int, mail: tuple[str, bytes]) -> tuple[int, bytes]:
    """Send one mail; the relay's reply to it (250, or the refusal's code)."""
    with smtplib.SMTP(HOST, port, local_hostname=EHLO_NAME, timeout=10) as client:
        try:
            client.sendmail(SENDER, ["alice@example.org"], mail[1])
        except smtplib.SMTPResponseException as refused:
            return refused.smtp_code, refused.smtp_error
    return 250, b""


def test_full_disk_answers_452_and_recovers(tmp_path: Path, upstream: TestServer) -> None:
    disk = TmpfsRelay(tmp_path, upstream.port)
    disk.relay.start()
    try:
        send(disk.relay.port, [make_mail("before", 0)], ["alice@example.org"])
        disk.fill()
        accepted, refused = ["<before-00000@relay.test>"], []
        for n in range(300):  # SQLite may reuse WAL pages a little while; then it needs room
            mail = make_mail("full", n, body_lines=200)
            code, text = one(disk.relay.port, mail)
            assert code in (250, 452), (code, text)
            if code == 452:
                assert text.startswith(b"4.3.1 "), text
                refused.append(mail[0])
                if len(refused) == 3:
                    break
            else:
                accepted.append(mail[0])
        assert len(refused) == 3, "the full disk never refused a mail"
        assert disk.metric("store_failures_total") >= 3
        log = disk.relay.logs()
        assert "Traceback" not in log and log.count("event=store-failed") == 1, log

        disk.relay.kill()  # a crash while the disk is full: it must come back all the same
        disk.relay.start()
        mail = make_mail("full-restarted", 0, body_lines=200)
        code, text = one(disk.relay.port, mail)
        assert code in (250, 452), (code, text)
        (accepted if code == 250 else refused).append(mail[0])

        disk.free()  # no restart: the next mail is taken
        after = make_mail("after", 0)
        assert one(disk.relay.port, after) == (250, b"")
        accepted.append(after[0])
        wait_until(lambda: set(accepted) <= set(message_ids(m.data for m in upstream.messages))
                   and disk.counts()["queued"] == 0, timeout=30,
                   what="every accepted mail delivered after the disk was freed",
                   describe=lambda: f"{disk.counts()}\n{disk.relay.logs()}")
        assert not set(refused) & set(message_ids(m.data for m in upstream.messages))
        assert disk.relay.stop() == 0, disk.relay.logs()
    finally:
        disk.close()


def test_upstream_accepts_while_the_disk_is_full(tmp_path: Path) -> None:
    """3 mails wait for an upstream that is down; the disk fills; the upstream comes back and
    takes them. Recording "delivered" fails, so the relay holds that in memory and does not
    send them again; once space is back it writes it down."""
    upstream_port = free_port()
    disk = TmpfsRelay(tmp_path, upstream_port)
    mails = [make_mail("pending", n) for n in range(3)]
    disk.relay.start()
    server: TestServer | None = None
    try:
        send(disk.relay.port, mails, ["alice@example.org"])
        wait_until(lambda: disk.metric('deliveries_failed_total{reason="connect"}') >= 3,
                   timeout=20, what="each mail tried once while the upstream is down",
                   describe=disk.relay.logs)
        disk.fill()
        server = TestServer(ServerOptions(port=upstream_port, idle_timeout=60.0)).start()
        wait_until(lambda: len(server.messages) >= 3, timeout=30,
                   what="the upstream taking the 3 pending mails", describe=disk.relay.logs)
        # Give the relay many chances to send them again: it retries the writes, not the mails.
        wait_until(lambda: disk.metric("record_retries_total") >= 12, timeout=30,
                   what="the relay retrying the writes", describe=disk.relay.logs)
        assert disk.metric("unrecorded_outcomes") == 3
        held = message_ids(m.data for m in server.messages)
        assert held == {mid: 1 for mid, _ in mails}, held

        disk.free()
        wait_until(lambda: disk.metric("unrecorded_outcomes") == 0
                   and disk.counts()["delivered"] == 3, timeout=30,
                   what="the outcomes written once the disk has room",
                   describe=lambda: f"{disk.counts()}\n{disk.relay.logs()}")
        seen = message_ids(m.data for m in server.messages)
        assert set(seen) == {mid for mid, _ in mails}
        assert max(seen.values()) <= 2, seen  # the contract; this run sends each once
        assert sum(seen.values()) == 3, seen
        assert "cannot rollback" not in disk.relay.logs()
    finally:
        disk.close()
        if server is not None:
            server.stop()
