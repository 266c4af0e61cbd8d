"""The queue seen from the event loop: every database call runs on one store thread.

SQLite connections are not for sharing across threads, and an fsync must not stall the SMTP
listener, so the relay owns one :class:`~maildoctor.relay.queue.Queue` and touches it only
from a single-thread executor.

Accepted messages are committed in groups: while one COMMIT waits for its fsync, the
messages that arrive meanwhile pile up and go out together in the next transaction. Each
sender still waits for the COMMIT that contains its message before it answers ``250``, so
durability is per message while the fsync cost is shared (the classic group commit).

Outcome writes (delivered, postponed, dead) ride along: :meth:`Store.write` queues them for
the same trip to the store thread. Waking a thread costs more than a WAL write on a busy
machine, so one trip for everything that piled up is what keeps the relay fast.
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
_Writing = tuple[Callable[[], object], "asyncio.Future[int]", asyncio.AbstractEventLoop]


class Store:
    """Owns the relay's Queue; ``await store.add(message)`` returns once it is on disk."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="maildoctor-relay-store")
        self._lock = threading.Lock()
        self._pending: list[_Waiting] = []
        self._writes: list[_Writing] = []
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
            self._schedule()
        return await asyncio.shield(future)

    async def write(self, change: Callable[[], object]) -> None:
        """Run ``change`` (a Queue method bound to its arguments) on the store thread with
        whatever else is waiting; raises what it raised (StorageError on a full disk)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        with self._lock:
            self._writes.append((change, future, loop))
            self._schedule()
        await asyncio.shield(future)

    def _schedule(self) -> None:
        """Called with the lock held."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._executor.submit(self._flush)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            writes, self._writes = self._writes, []
            self._flush_scheduled = False
        if batch:
            self._add(batch)
        for change, future, loop in writes:
            try:
                change()
            except Exception as exc:
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, 0, None)

    def _add(self, batch: list[_Waiting]) -> None:
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
