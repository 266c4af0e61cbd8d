"""A deliberately dumb SMTP client for the tests: raw bytes in, raw bytes out.

smtplib and aiosmtplib hide exactly what the fault tests must see (a reply that never comes,
EOF instead of a reply, bytes that are not UTF-8), so these tests talk through a plain socket.
Every read has a timeout; a timeout is the assertion "the server sent nothing", never a way to
wait for something to happen.
"""

from __future__ import annotations

import socket
import ssl

QUIET = 0.3  # how long "nothing arrives" is watched for


class Wire:
    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(
            (host, port), timeout=timeout
        )
        self.timeout = timeout
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.sock.sendall(data + b"\r\n")

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError(f"connection closed; unterminated data: {self.buffer[:80]!r}")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def reply(self) -> list[str]:
        """All lines of one SMTP reply (up to the line with a space after the code)."""
        lines = [self.line().decode()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line().decode())
        return lines

    def command(self, line: str) -> list[str]:
        self.send(line)
        return self.reply()

    def code(self, line: str) -> int:
        return int(self.command(line)[-1][:3])

    def sends_nothing(self, watch: float = QUIET) -> bool:
        """True if no byte arrives within ``watch`` seconds (and the connection stays open)."""
        self.sock.settimeout(watch)
        try:
            chunk = self.sock.recv(1)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(self.timeout)
        self.buffer += chunk
        return False

    def at_eof(self) -> bool:
        """True if the server closed the connection (clean EOF or reset) before sending more."""
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        self.buffer += chunk
        return chunk == b""

    def starttls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        assert not self.buffer
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
