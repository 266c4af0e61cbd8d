"""A DNS server on a loopback address that answers NXDOMAIN to every question.

For Postfix's ``reject_unknown_sender_domain``: Postfix asks the system resolver, so the test
Postfix runs in its own mount namespace where /etc/resolv.conf names this server, and no
query ever leaves the machine. Every name "does not exist", which is the answer the rule is
about. UDP only (answers are tiny); bounded: one thread, stopped with the server.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading


class NxdomainServer:
    def __init__(self) -> None:
        # A loopback address of its own, so port 53 is free whoever else runs a resolver.
        self.address = f"127.{random.randint(64, 250)}.{random.randint(1, 250)}.53"
        self.port = 53
        self.queries = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="nxdomain", daemon=True)

    def start(self) -> NxdomainServer:
        self._sock.bind((self.address, self.port))
        self._sock.settimeout(0.2)
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self._sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(query) < 12:
                continue
            self.queries += 1
            (ident, flags, qdcount) = struct.unpack("!HHH", query[:6])
            end = 12
            with contextlib.suppress(IndexError):
                while query[end]:
                    end += query[end] + 1
                end += 5  # the root label, QTYPE, QCLASS
            # QR=1, opcode and RD copied, RA=1, RCODE=3 (NXDOMAIN); the question echoed.
            answer_flags = 0x8000 | (flags & 0x7900) | 0x0080 | 3
            header = struct.pack("!HHHHHH", ident, answer_flags, min(qdcount, 1), 0, 0, 0)
            with contextlib.suppress(OSError):
                self._sock.sendto(header + query[12:end], peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
