"""Pieces the relay's reliability tests share: the relay as a real subprocess, a pushing client
that counts only what got a ``250``, mails with distinct Message-IDs, and bounded waits.

Why a subprocess for the crash test: ``kill -9`` must hit a real process with its own SQLite
handle and sockets; an in-process relay cannot be killed without taking the test with it. The
other tests use the in-process ``Relay`` API, which starts in milliseconds.

Every wait here polls a condition with a deadline (a crashed relay gives us no event to wait
on); none of them synchronises by sleeping a fixed time.
"""

from __future__ import annotations

import contextlib
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maildoctor.testing.ports import free_port

HOST = "127.0.0.1"
SENDER = "noreply@example.org"
EHLO_NAME = "pusher.relay.test"
READY_TIMEOUT = 20.0
RELAY_COMMAND = [sys.executable, "-m", "maildoctor", "relay"]





def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               describe: Callable[[], str] = lambda: "") -> None:
    """Polls ``condition`` every 20 ms until it holds; AssertionError naming ``what`` if not."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}\n{describe()}")
        time.sleep(0.02)


def make_mail(tag: str, number: int, recipients: Sequence[str] = ("alice@example.org",),
              body_lines: int = 20) -> tuple[str, bytes]:
    """(Message-ID, CRLF mail) shaped like a small Synapse mail; the ID names the mail."""
    message_id = f"<{tag}-{number:05d}@relay.test>"
    head = (f"From: Matrix <{SENDER}>\r\nTo: {', '.join(recipients)}\r\n"
            f"Subject: [Matrix] {tag} {number}\r\nMessage-ID: {message_id}\r\n"
            "Date: Fri, 27 Nov 2026 22:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n")
    body = "".join(f"line {i} of mail {number}: the relay must not lose me.\r\n"
                   for i in range(body_lines))
    return message_id, (head + body).encode()


def message_ids(datas: Iterable[bytes]) -> Counter[str]:
    """Message-IDs of raw mails as received upstream (a duplicate counts twice)."""
    found: Counter[str] = Counter()
    for data in datas:
        head = data.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                found[line.split(b":", 1)[1].strip().decode()] += 1
    return found


def send(port: int, mails: Sequence[tuple[str, bytes]], recipients: Sequence[str]) -> None:
    """Send over one connection; every mail must get its 250 from the relay."""
    with smtplib.SMTP(HOST, port, local_hostname=EHLO_NAME, timeout=10) as client:
        for _, data in mails:
            assert client.sendmail(SENDER, list(recipients), data) == {}


def write_upstream_config(path: Path, email_block: dict[str, Any]) -> Path:
    """The relay's CONFIG: a Synapse-style YAML whose ``email:`` describes the upstream."""
    path.write_text(yaml.safe_dump({"server_name": "example.org", "email": email_block},
                                   sort_keys=False))
    return path


def greets(port: int, source: str | None = None) -> bool:
    """True once something on ``port`` answers with a 220 greeting."""
    try:
        with socket.create_connection((HOST, port), timeout=2,
                                      source_address=(source, 0) if source else None) as sock:
            ready = sock.recv(512).startswith(b"220")
            with contextlib.suppress(OSError):
                sock.sendall(b"QUIT\r\n")
            return ready
    except OSError:
        return False


class RelayProcess:
    """``python -m maildoctor relay run CONFIG --listen 127.0.0.1:PORT --queue PATH``, killable.

    The listening port is fixed for the life of this object so that restarts on the same
    queue are what Synapse would see: the same address, back after a while."""

    def __init__(self, config: Path, queue: Path, log_dir: Path,
                 extra_args: Sequence[str] = (), prefix: Sequence[str] = (),
                 preexec: Callable[[], None] | None = None) -> None:
        self.config = config
        self.queue = queue
        self.port = free_port()
        self.log_dir = log_dir
        self.extra_args = list(extra_args)
        self.prefix = list(prefix)
        """Runs the relay through this (``unshare ...``); it must exec the relay in the end."""
        self.preexec = preexec
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def argv(self) -> list[str]:
        return [*self.prefix, *RELAY_COMMAND, "run", str(self.config),
                "--listen", f"{HOST}:{self.port}", "--queue", str(self.queue),
                *self.extra_args]

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "relay already running"
        self.starts += 1
        log = (self.log_dir / f"relay-{self.starts}.log").open("wb")
        with log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=self.preexec)
        proc = self.proc
        deadline = time.monotonic() + READY_TIMEOUT
        while not greets(self.port):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"relay start {self.starts} did not greet "
                                     f"(exit {proc.returncode}):\n{self.logs()}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or the OOM killer."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM (graceful), bounded; SIGKILL if it does not exit. Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"relay ignored SIGTERM for 15 s:\n{self.logs()}") from None

    def logs(self, tail: int = 4000) -> str:
        texts = [f"--- {p.name} ---\n{p.read_text(errors='replace')[-tail:]}"
                 for p in sorted(self.log_dir.glob("relay-*.log"))]
        return "\n".join(texts)


@dataclass
class Pusher:
    """Pushes mails to the relay over ``connections`` reused SMTP connections (threads).

    A mail counts as accepted only once ``sendmail`` returned: the relay said 250 to DATA and
    refused no recipient. Anything else (connection refused or reset, a 4xx, a timeout) makes
    that connection reconnect and send the same mail again, as Synapse's retry would."""

    port: int
    mails: Sequence[tuple[str, bytes]]
    recipients: Sequence[str] = ("alice@example.org",)
    connections: int = 4
    deadline_seconds: float = 45.0
    accepted: list[str] = field(default_factory=list)
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._next = 0
        self._threads: list[threading.Thread] = []

    def start(self) -> Pusher:
        self._deadline = time.monotonic() + self.deadline_seconds
        for n in range(self.connections):
            thread = threading.Thread(target=self._run, name=f"pusher-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def accepted_count(self) -> int:
        with self._lock:
            return len(self.accepted)

    def wait_accepted(self, count: int, timeout: float) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.accepted) >= count or self.done(),
                                       timeout):
                raise AssertionError(f"only {len(self.accepted)} of {count} mails accepted "
                                     f"within {timeout} s; errors: {dict(self.errors)}")

    def done(self) -> bool:
        return all(not t.is_alive() for t in self._threads)

    def join(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        assert self.done(), "pusher threads still running"

    def _take(self) -> tuple[str, bytes] | None:
        with self._lock:
            if self._next >= len(self.mails):
                return None
            self._next += 1
            return self.mails[self._next - 1]

    def _run(self) -> None:
        client: smtplib.SMTP | None = None
        try:
            while (mail := self._take()) is not None:
                message_id, data = mail
                while True:
                    if time.monotonic() > self._deadline:
                        with self._lock:
                            self.failures.append(f"{message_id}: gave up at the deadline")
                        return
                    try:
                        if client is None:
                            client = smtplib.SMTP(HOST, self.port, local_hostname=EHLO_NAME,
                                                  timeout=10)
                        refused = client.sendmail(SENDER, list(self.recipients), data)
                        if refused:
                            raise smtplib.SMTPRecipientsRefused(refused)
                        break
                    except (smtplib.SMTPException, OSError) as exc:
                        with self._lock:
                            self.retries += 1
                            self.errors[type(exc).__name__] += 1
                        if client is not None:
                            with contextlib.suppress(Exception):
                                client.close()
                        client = None
                        time.sleep(0.02)  # pacing between reconnects, not synchronisation
                with self._lock:
                    self.accepted.append(message_id)
                    self._lock.notify_all()
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.quit()
            with self._lock:
                self._lock.notify_all()

