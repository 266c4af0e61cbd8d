"""The fault-injecting SMTP test server: a real aiosmtpd server with switches for every way a
mail server can confuse Synapse (spec/synapse-observed.md, spec/twisted-smtp.md section 3).

Used by the test suite, the benchmarks, ``make demo`` and admins rehearsing a setup
(``maildoctor testserver``). It runs its own asyncio loop in a background thread, so synchronous
and asynchronous code can both drive it::

    with TestServer(ServerOptions(tls="starttls", mechanisms=("CRAM-MD5-BROKEN", "LOGIN"))) as s:
        ...  # connect to s.host:s.port, trust s.ca_file
        s.wait_for(EventKind.AUTH)          # no sleeps: wait for what the server saw
        s.messages[0].message["Subject"]

Stopping is prompt whatever the faults are doing: every connection's transport is tracked and
aborted, then the loop's remaining tasks are cancelled. Why not aiosmtpd's ``Controller``: it
cannot listen on port 0, has no implicit-TLS handshake hook, and leaves open connections behind.

Implicit TLS is done with ``loop.start_tls`` on an accepted plain connection rather than
``create_server(ssl=...)``, so that a client that never sends a ClientHello (Synapse talking
plaintext to port 465, row B4) is a tracked connection with a recorded outcome, not an
invisible one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import tempfile
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from maildoctor.hosts import is_loopback
from maildoctor.secrets import Redactor
from maildoctor.testing.certs import ServerCertificate, issue, trusted_ca_pem
from maildoctor.testing.journal import Event, EventKind, Journal, ReceivedMessage
from maildoctor.testing.options import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    Fault,
    ServerOptions,
)
from maildoctor.testing.session import FaultySMTP, ServerContext

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "Event",
    "EventKind",
    "Fault",
    "ReceivedMessage",
    "ServerOptions",
    "TestServer",
]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


class TestServer:
    """A running test server (after :meth:`start` or inside ``with``/``async with``)."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        on_event: Callable[[Event], None] | None = None,
        on_message: Callable[[ReceivedMessage], None] | None = None,
    ) -> None:
        """``on_event``/``on_message`` are called in the server's thread as things happen."""
        self.options = options or ServerOptions()
        redactor = Redactor()
        for user, password in self.options.credentials.items():
            redactor.add(password, [user])
        self._journal = Journal(redactor, on_event, on_message)
        self._certificate: ServerCertificate | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._port = 0
        self._ctx: ServerContext | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("TestServer already started")
        opts = self.options
        if not opts.allow_remote and not is_loopback(opts.host):
            raise ValueError(
                f"refusing to listen on {opts.host!r}: not a loopback address "
                "(set allow_remote=True / --allow-remote to expose a test server)"
            )
        self._tmp = tempfile.TemporaryDirectory(prefix="maildoctor-testserver-")
        with open(self.ca_file, "wb") as handle:
            handle.write(trusted_ca_pem())
        tls_context = None
        if opts.tls != "plain":
            self._certificate = issue(opts.cert, opts.cert_names)
            tls_context = self._certificate.server_context()
        self._ctx = ServerContext(
            opts, self._journal, tls_context if opts.tls == "starttls" else None
        )
        self._thread = threading.Thread(
            target=self._run, args=(tls_context,), name=f"maildoctor-testserver-{id(self):x}",
            daemon=True,
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError("test server did not start within 10 s")
        if self._startup_error is not None:
            self._cleanup()
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Stop listening, abort every connection (faults included), join the thread."""
        loop, stop = self._loop, self._stop_requested
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                raise RuntimeError("test server thread did not stop within 10 s")
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- what users read ------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.options.host

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def ca_file(self) -> str:
        """PEM of the CA that signs ``trusted`` certificates (use as ``SSL_CERT_FILE``)."""
        if self._tmp is None:
            raise RuntimeError("the CA file exists only while the server runs")
        return os.path.join(self._tmp.name, "ca.pem")

    @property
    def certificate_pem(self) -> bytes | None:
        """The server's leaf certificate (None for a plain server)."""
        return self._certificate.cert_pem if self._certificate else None

    @property
    def events(self) -> list[Event]:
        return self._journal.events

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self._journal.messages

    def wait_for(
        self,
        kind: EventKind | None = None,
        predicate: Callable[[Event], bool] | None = None,
        timeout: float = 5.0,
    ) -> Event:
        """Block until an event matching ``kind``/``predicate`` has happened (TimeoutError)."""
        return self._journal.wait_for(kind, predicate, timeout)

    def wait_for_messages(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        return self._journal.wait_for_messages(count, timeout)

    def synapse_email_config(self, user: str | None = None) -> dict[str, Any]:
        """An ``email:`` section for homeserver.yaml that sends through this server."""
        opts = self.options
        config: dict[str, Any] = {"smtp_host": self.host, "smtp_port": self.port}
        creds = opts.credentials
        user = user if user is not None else (DEFAULT_USER if DEFAULT_USER in creds
                                               else next(iter(creds), None))
        if user is not None and user in creds:
            config["smtp_user"] = user
            config["smtp_pass"] = creds[user]
        if opts.tls == "implicit":
            config["force_tls"] = True
        elif opts.tls == "starttls":
            config["require_transport_security"] = True
        if opts.tls != "plain" and self.host not in opts.cert_names and opts.cert_names:
            config["tlsname"] = opts.cert_names[0]
        config["notif_from"] = "Matrix <noreply@example.org>"
        return config

    # -- the server thread ----------------------------------------------------------------------

    def _run(self, tls_context: ssl.SSLContext | None) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(tls_context))
        except BaseException as exc:  # reported to start(); never lost
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, tls_context: ssl.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        ctx = self._ctx
        assert ctx is not None
        implicit = self.options.tls == "implicit"

        def factory() -> asyncio.Protocol:
            if implicit:
                assert tls_context is not None
                return _ImplicitTLSAcceptor(ctx, tls_context)
            return FaultySMTP(ctx)

        server = await loop.create_server(factory, self.options.host, self.options.port)
        self._port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            server.close()
            ctx.stopping = True
            for transport in list(ctx.transports):
                transport.abort()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0)  # let connection_lost callbacks run


class _ImplicitTLSAcceptor(asyncio.Protocol):
    """Accepts a TCP connection, runs the server-side TLS handshake, then hands the TLS
    transport to a fresh ``FaultySMTP``. Handshake failures and timeouts become events."""

    def __init__(self, ctx: ServerContext, tls_context: ssl.SSLContext) -> None:
        self._ctx = ctx
        self._tls_context = tls_context
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # the ClientHello must reach the TLS layer, not us
        self._ctx.transports.add(transport)
        self._task = asyncio.get_running_loop().create_task(self._handshake(transport))

    async def _handshake(self, transport: asyncio.Transport) -> None:
        smtp = FaultySMTP(self._ctx, implicit_tls=True)
        smtp.record(EventKind.CONNECT, f"from {transport.get_extra_info('peername')}")
        loop = asyncio.get_running_loop()
        try:
            tls_transport = await loop.start_tls(
                transport, smtp, self._tls_context, server_side=True,
                ssl_handshake_timeout=self._ctx.options.tls_handshake_timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            # asyncio's SSL protocol aborts a handshake that outlasts ssl_handshake_timeout
            # with ConnectionAbortedError (a client that goes away resets or closes instead)
            timed_out = isinstance(exc, (TimeoutError, ConnectionAbortedError))
            reason = "no ClientHello in time" if timed_out else repr(exc)
            smtp.record(EventKind.TLS_FAILED, f"implicit TLS handshake failed: {reason}")
            smtp.record(EventKind.DISCONNECT, "closed by the server (TLS handshake failed)")
            transport.abort()
            return
        if tls_transport is None:  # the client went away during the handshake
            smtp.record(EventKind.DISCONNECT, "closed by the client during the TLS handshake")
            return
        ssl_object = tls_transport.get_extra_info("ssl_object")
        smtp.record(EventKind.TLS, f"implicit TLS handshake done ({ssl_object.version()})")
        self._ctx.transports.add(tls_transport)
        smtp.connection_made(tls_transport)

    def connection_lost(self, exc: Exception | None) -> None:
        # Only reached if the connection dies before start_tls took it over.
        if self._task is not None and not self._task.done():
            self._task.cancel()


