"""The exporter's HTTP server: the standard library's threading server around
:class:`~maildoctor.exporter.app.Exporter`, with every wait bounded.

- a client has ``REQUEST_TIMEOUT`` seconds to send its request (a slow client cannot hold a
  thread), and at most ``max_connections`` are served at once (more get a 503);
- one response per connection (``Connection: close``);
- :meth:`ExporterServer.stop` (SIGTERM, SIGINT) stops accepting, lets the requests in progress
  finish (each bounded by the probe deadline) and returns; probes still running in the
  background are abandoned within their own timeouts.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from maildoctor.exporter.app import Exporter
from maildoctor.exporter.probe_metrics import printable

REQUEST_TIMEOUT = 10.0
MAX_CONNECTIONS = 64


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``; raises ``ValueError`` with a plain message."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r}: expected HOST:PORT, e.g. 127.0.0.1:9176")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{value!r}: the port is not a number") from None
    if not 0 <= port < 65536:
        raise ValueError(f"{value!r}: the port is out of range")
    return host, port


def _family(host: str) -> socket.AddressFamily:
    try:
        return (socket.AF_INET6 if ipaddress.ip_address(host).version == 6
                else socket.AF_INET)
    except ValueError:  # a name: let getaddrinfo decide
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return infos[0][0] if infos else socket.AF_INET


class _Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    server_version = "maildoctor-exporter"
    sys_version = ""
    timeout = REQUEST_TIMEOUT
    # Errors http.server answers itself (a malformed request line, a header too long) get a
    # status line (not HTTP/0.9's bare body) and plain text.
    default_request_version = "HTTP/1.0"
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def __getattr__(self, name: str) -> Any:
        # Any other method (POST, PUT, BREW...) is answered 405 by the app, not 501.
        if name.startswith("do_"):
            return self._answer
        raise AttributeError(name)

    def _answer(self, head: bool = False) -> None:
        headers = {key: value for key, value in self.headers.items()}
        response = self.server.app.handle(self.command, self.path, headers)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Connection", "close")
        for key, value in response.headers:
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(response.body)
        self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # no access log: Prometheus scrapes every few seconds

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log(printable(f"{self.client_address[0]}: {format % args}", 300))


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # stop() waits for the answers in progress
    request_queue_size = 64
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: Exporter, *,
                 log: Callable[[str], None] | None = None,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.address_family = _family(address[0])
        self.app = app
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._connections = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        self.log(printable(f"{client_address[0]}: request failed: {type(exc).__name__}", 300))

    def stop(self) -> None:
        """Stop serving (from any thread but the one in :meth:`serve_forever`)."""
        self.shutdown()
