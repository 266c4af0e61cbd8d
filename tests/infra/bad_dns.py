"""A DNS server on 127.0.0.1 that answers badly on purpose (pytest plugin): SERVFAIL to
everything, silence, or a truncated UDP answer with no TCP to fall back on. Knot answers
correctly; these are the answers a broken or hostile resolver gives, which must each turn
into a clear finding. Built on dnspython's message API; one thread per server, stopped at
teardown."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import dns.flags
import dns.message
import dns.rcode
import pytest


class BadDnsServer:
    MODES = ("servfail", "silent", "truncated")

    def __init__(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(mode)
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.questions = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> BadDnsServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.questions += 1
            with contextlib.suppress(dns.exception.DNSException, OSError):
                query = dns.message.from_wire(data)
                if self.mode == "silent":
                    continue
                reply = dns.message.make_response(query)
                if self.mode == "servfail":
                    reply.set_rcode(dns.rcode.SERVFAIL)
                else:  # truncated: TC set, nothing in it, and no TCP listener on this port
                    reply.flags |= dns.flags.TC
                self.sock.sendto(reply.to_wire(), peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def bad_dns() -> Iterator[Callable[[str], BadDnsServer]]:
    """``bad_dns("servfail")`` starts a misbehaving DNS server for this test."""
    started: list[BadDnsServer] = []

    def start(mode: str) -> BadDnsServer:
        server = BadDnsServer(mode).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
