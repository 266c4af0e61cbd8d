"""Loopback ports for tests, benchmarks and demos."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out and nothing listens on now: connecting to it is
    refused, and a server started right after can bind it."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
