"""Fixtures for the relay tests: a relay factory, a closed port, a sink that refuses chosen
recipients, and deadline-bound polling (no sleeps used for synchronisation)."""

from __future__ import annotations

import asyncio
import os
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from maildoctor.config.settings import settings_from_config
from maildoctor.relay import Queue, Relay, RelayOptions

RelayFactory = Callable[..., Relay]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.01)


def make_options(upstream: dict[str, Any], queue_path: str, **changes: Any) -> RelayOptions:
    fields: dict[str, Any] = dict(
        upstream=settings_from_config({"email": upstream}), listen_port=0,
        queue_path=queue_path, retry_base=0.05, retry_max=0.2, poll_interval=0.1,
        connect_timeout=2.0, command_timeout=5.0, data_timeout=5.0)
    fields.update(changes)
    return RelayOptions(**fields)


@pytest.fixture
def queue_path(tmp_path: Any) -> str:
    return os.path.join(str(tmp_path), "relay.sqlite3")


@pytest.fixture
def relay_factory(queue_path: str) -> Iterator[RelayFactory]:
    started: list[Relay] = []

    def start(upstream: dict[str, Any], **changes: Any) -> Relay:
        changes.setdefault("queue_path", queue_path)
        relay = Relay(make_options(upstream, **changes)).start()
        started.append(relay)
        return relay

    yield start
    for relay in reversed(started):
        relay.stop(timeout=5)


@pytest.fixture
def queue(queue_path: str) -> Iterator[Callable[[], Queue]]:
    """Opens the queue for reading (after a relay created it); closed at teardown."""
    opened: list[Queue] = []

    def get() -> Queue:
        if not opened:
            opened.append(Queue(queue_path))
        return opened[0]

    yield get
    for q in opened:
        q.close()




def plain_upstream(host: str, port: int) -> dict[str, Any]:
    return {"smtp_host": host, "smtp_port": port, "enable_tls": False}


def mail(number: int, to: str = "bob@example.org") -> bytes:
    return (f"From: a@example.org\r\nTo: {to}\r\nMessage-ID: <m{number}@test>\r\n"
            f"Subject: test {number}\r\n\r\nbody {number}\r\n").encode()


def send(port: int, count: int = 1, recipients: tuple[str, ...] = ("bob@example.org",),
         start: int = 0) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        for n in range(start, start + count):
            client.sendmail("a@example.org", list(recipients), mail(n))


class _SinkHandler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        reply = self.sink.refuse.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.sink.changed:
            self.sink.received.append((tuple(envelope.rcpt_tos), envelope.original_content))
            self.sink.changed.notify_all()
        return "250 2.0.0 Ok"


class Sink:
    """A real aiosmtpd server on 127.0.0.1 that refuses the recipients in ``refuse``."""

    def __init__(self, refuse: dict[str, str]) -> None:
        self.refuse = refuse
        self.received: list[tuple[tuple[str, ...], bytes | None]] = []
        self.changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)

            async def serve() -> None:
                handler = _SinkHandler(self)
                self._server = await self._loop.create_server(
                    lambda: SMTP(handler, loop=self._loop), "127.0.0.1", 0)
                ready.set()

            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10)
        assert self._server is not None
        self.port: int = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        def halt() -> None:
            assert self._server is not None
            self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(halt)
        self._thread.join(10)


@pytest.fixture
def sink() -> Iterator[Callable[[dict[str, str]], Sink]]:
    started: list[Sink] = []

    def start(refuse: dict[str, str]) -> Sink:
        server = Sink(refuse)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
