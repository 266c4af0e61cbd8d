"""The queue seen from the event loop: every database call runs on one store thread.

SQLite connections are not for sharing across threads, and an fsync must not stall the SMTP
listener, so the relay owns one :class:`~maildoctor.relay.queue.Queue` and touches it only
from a single-thread executor.

Accepted messages are committed in groups: while one COMMIT waits for its fsync, the
messages that arrive meanwhile pile up and go out together in the next transaction. Each
sender still waits for the COMMIT that contains its message before it answers ``250``, so
durability is per message while the fsync cost is shared (the classic group commit).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from maildoctor.relay.queue import NewMessage, Queue

T = TypeVar("T")

_Waiting = tuple[NewMessage, "asyncio.Future[int]", asyncio.AbstractEventLoop]


class Store:
    """Owns the relay's Queue; ``await store.add(message)`` returns once it is on disk."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="maildoctor-relay-store")
        self._lock = threading.Lock()
        self._pending: list[_Waiting] = []
        self._flush_scheduled = False

    async def call(self, func: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run ``func(*args, **kwargs)`` on the store thread (usually a Queue method)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor,
                                          functools.partial(func, *args, **kwargs))

    async def add(self, message: NewMessage) -> int:
        """Store ``message`` durably; its queue id. Raises if the database write failed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        with self._lock:
            self._pending.append((message, future, loop))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._executor.submit(self._flush)
        return await asyncio.shield(future)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._flush_scheduled = False
        if not batch:
            return
        try:
            ids = self.queue.add_many([message for message, _, _ in batch])
        except Exception as exc:  # disk full, I/O error: every waiter hears about it
            for _, future, loop in batch:
                loop.call_soon_threadsafe(_settle, future, None, exc)
            return
        for (_, future, loop), new_id in zip(batch, ids, strict=True):
            loop.call_soon_threadsafe(_settle, future, new_id, None)

    def close(self) -> None:
        """Finish queued writes, then close the database."""
        self._executor.shutdown(wait=True)
        self.queue.close()


def _settle(future: asyncio.Future[int], value: int | None, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert value is not None
        future.set_result(value)
