"""An in-process relay in front of a given upstream, stopped at teardown whatever happens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from maildoctor.config.settings import settings_from_config

# Short enough that a test sees several retries within a second or two.
FAST_RETRY = {"retry_base": 0.1, "retry_max": 0.5}


@dataclass
class RunningRelay:
    """A started relay plus a reader of its queue file (the same API `relay status` uses)."""

    relay: Any
    queue_path: Path
    _queue: Any = None

    @property
    def port(self) -> int:
        return int(self.relay.port)

    @property
    def queue(self) -> Any:
        from maildoctor.relay import Queue

        if self._queue is None:
            self._queue = Queue(str(self.queue_path))
        return self._queue

    def counts(self) -> dict[str, int]:
        return dict(self.queue.counts())

    def records(self, state: str | None = None) -> list[Any]:
        return list(self.queue.list(state=state))

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()


RelayFactory = Callable[..., RunningRelay]


@pytest.fixture
def relay_factory(tmp_path: Path) -> Iterator[RelayFactory]:
    """``relay_factory(email_block, **options)`` starts ``Relay`` on 127.0.0.1, port 0, with its
    queue in ``tmp_path``; ``email_block`` describes the upstream as Synapse's ``email:`` would."""
    from maildoctor.relay import Relay, RelayOptions

    started: list[RunningRelay] = []

    def start(email_block: dict[str, Any], **options: Any) -> RunningRelay:
        queue = tmp_path / f"queue-{len(started)}.sqlite3"
        values: dict[str, Any] = {
            "upstream": settings_from_config({"email": email_block}),
            "listen_host": "127.0.0.1", "listen_port": 0, "queue_path": str(queue),
            "allow": ("127.0.0.1/32", "::1/128"), **FAST_RETRY, **options,
        }
        relay = Relay(RelayOptions(**values))
        relay.start()
        started.append(RunningRelay(relay, queue))
        return started[-1]

    yield start
    for running in reversed(started):
        running.relay.stop(timeout=10)
        running.close()
