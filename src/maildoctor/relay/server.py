"""``Relay``: the listener, the queue and the delivery workers on one event loop.

Two ways to run it:

- :meth:`Relay.run_forever` in the foreground (the CLI, systemd): SIGTERM or SIGINT start a
  graceful stop;
- :meth:`Relay.start` / :meth:`Relay.stop` with the loop in a background thread (tests, and
  anything embedding the relay).

Graceful stop, in order: stop accepting connections; let SMTP sessions in a transaction
finish (idle ones get ``421``); let deliveries in flight finish; close the upstream
connections; finish pending database writes and close the file. Whatever was not finished is
still queued on disk, so the next start picks it up: a stop loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Self

from maildoctor import errors
from maildoctor.relay.delivery import Deliverer
from maildoctor.relay.listener import Listener, RelayHandler
from maildoctor.relay.logs import EventLog
from maildoctor.relay.metrics import Counters, Snapshot, UpstreamState, serve
from maildoctor.relay.options import AllowList, RelayOptions
from maildoctor.relay.queue import Queue
from maildoctor.relay.routes import HOLD_MAX, Route
from maildoctor.relay.store import Store
from maildoctor.relay.throttle import Pace
from maildoctor.relay.upstream import Upstream
from maildoctor.secrets import Redactor


class Relay:
    """A maildoctor relay. Configuration errors raise here, before anything listens."""

    def __init__(self, options: RelayOptions) -> None:
        self.options = options
        self.allow = AllowList(options.allow)
        self.upstream = Upstream(options)  # raises NotConfiguredError for an unusable config
        self.fallback = Upstream(options, "fallback") if options.fallback else None
        if self.fallback is not None and self.fallback.name == self.upstream.name:
            raise errors.UsageError(f"the fallback is the same server as the primary "
                                    f"({self.upstream.name}): give it another one")
        redactor = Redactor()
        redactor.add(options.upstream.smtp_pass, [self.upstream.endpoint.user])
        if self.fallback is not None and options.fallback is not None:
            redactor.add(options.fallback.smtp_pass, [self.fallback.endpoint.user])
        self.log = EventLog(redactor)
        self.counters = Counters()
        self.port = 0
        self.metrics_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop_timeout = 10.0
        self._routes: list[Route] = []
        self.listener: Listener | None = None
        """The SMTP side, once started (its ``sessions``)."""
        self._deliverer: Deliverer | None = None

    def __repr__(self) -> str:
        return (f"Relay({self.options.listen_host}:{self.port or self.options.listen_port} -> "
                f"{self.upstream.name}, queue={self.options.queue_path!r})")

    # -- running ------------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Run in the foreground until SIGTERM/SIGINT, then stop gracefully."""
        asyncio.run(self._main(install_signals=True))

    def start(self) -> Self:
        """Run in a background thread; returns once the relay listens."""
        if self._thread is not None:
            raise RuntimeError("this Relay was already started")
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()),
                                        name="maildoctor-relay", daemon=True)
        self._thread.start()
        if not self._ready.wait(30.0):
            raise RuntimeError("the relay did not start within 30 s")
        if self._startup_error is not None:
            self._thread.join(5.0)
            raise self._startup_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (see the module docstring); waits up to about ``timeout`` seconds
        for sessions and deliveries to finish."""
        self._stop_timeout = timeout
        loop, event = self._loop, self._stop_requested
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
        if self._thread is not None:
            self._thread.join(timeout * 2 + 10.0)
            if self._thread.is_alive():
                raise RuntimeError("the relay did not stop in time")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop ----------------------------------------------------------------------------

    async def _main(self, install_signals: bool = False) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        opts = self.options
        store: Store | None = None
        listener: Listener | None = None
        deliverer: Deliverer | None = None
        metrics: asyncio.Server | None = None
        try:
            store = Store(Queue(opts.queue_path, max_age=opts.max_age))
            self._routes = [Route(u, Pace(opts.retry_base, min(opts.retry_max, HOLD_MAX)))
                            for u in (self.upstream, self.fallback) if u is not None]
            try:
                await store.call(store.queue.register_upstreams,
                                 {r.name: r.role for r in self._routes})
            except errors.StorageError as exc:  # a full disk must not keep the relay down
                self.log(logging.WARNING, "record-failed", error=str(exc),
                         fix="free space on the queue's disk; mails get 452 until then")
            deliverer = self._deliverer = Deliverer(opts, store, self._routes, self.counters,
                                                    self.log)
            handler = RelayHandler(store, self.counters, self.log, deliverer.wake,
                                   max_recipients=opts.max_recipients)
            listener = self.listener = Listener(
                handler, self.allow, self.counters, self.log,
                max_message_size=opts.max_message_size, session_timeout=opts.session_timeout,
                max_connections=opts.max_connections)
            self.port = await listener.start(opts.listen_host, opts.listen_port)
            if opts.metrics_port is not None:
                metrics = await serve(opts.metrics_host, opts.metrics_port, self._snapshot(store))
                self.metrics_port = int(metrics.sockets[0].getsockname()[1])
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    self._loop.add_signal_handler(sig, self._stop_requested.set)
            deliverer.start()
            counts = await store.call(store.queue.counts)
            self.log(logging.INFO, "started", listen=f"{opts.listen_host}:{self.port}",
                     upstream=self.upstream.name,
                     fallback=self.fallback.name if self.fallback else None,
                     queue=opts.queue_path,
                     queued=counts["queued"], dead=counts["dead"], metrics=self.metrics_port,
                     xoauth2="yes" if opts.uses_xoauth2 else None)
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            await self._shutdown(store, listener, deliverer, metrics)
            if install_signals:
                raise
            return
        self._ready.set()
        await self._stop_requested.wait()
        self.log(logging.INFO, "stopping", timeout=self._stop_timeout)
        await self._shutdown(store, listener, deliverer, metrics)
        self.log(logging.INFO, "stopped")

    async def _shutdown(self, store: Store | None, listener: Listener | None,
                        deliverer: Deliverer | None, metrics: asyncio.Server | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stop_timeout

        def left(share: float = 1.0) -> float:
            return max(0.1, (deadline - loop.time()) * share)

        if metrics is not None:
            metrics.close()
        if listener is not None:
            await listener.close(left(0.5))
        if deliverer is not None:
            await deliverer.stop(left(0.8))
        # QUIT to the upstream is a courtesy: a server that never answers it must not hold
        # up the stop (cancelling closes the connections).
        for upstream in (self.upstream, self.fallback):
            if upstream is not None:
                with contextlib.suppress(Exception, TimeoutError):
                    await asyncio.wait_for(upstream.close(), left())
        if store is not None:
            await asyncio.to_thread(store.close)

    def _snapshot(self, store: Store) -> Callable[[], Awaitable[Snapshot]]:
        async def take() -> Snapshot:
            counts = await store.call(store.queue.counts)
            oldest = await store.call(store.queue.oldest_age, time.time())
            states = tuple(UpstreamState(r.name, r.role, r.up, r.pace.level)
                           for r in self._routes)
            parked = self._deliverer.parked if self._deliverer is not None else 0
            return Snapshot(counts, oldest, self.counters, states, parked)

        return take
