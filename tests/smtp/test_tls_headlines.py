"""Issue 10 item 12: a STARTTLS handshake that times out is headlined as a timeout, not as
"protocol error". The server here says 220 to STARTTLS, then never speaks TLS."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from maildoctor.cli.main import cli


@pytest.fixture
def silent_after_starttls() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conns.append(conn)
            conn.settimeout(10)
            conn.sendall(b"220 mail.test ESMTP\r\n")
            buf = b""
            try:
                while b"STARTTLS" not in buf.upper():
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    buf += chunk
                    if b"EHLO" in buf.upper() and b"250" not in buf:
                        conn.sendall(b"250-mail.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n")
                        buf += b"250"
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            except OSError:
                pass  # then silence: the handshake never gets an answer

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    for conn in conns:
        conn.close()
    thread.join(5)


def test_starttls_handshake_timeout_is_named(silent_after_starttls: int, tmp_path: Path) -> None:
    cfg = tmp_path / "hs.yaml"
    cfg.write_text("server_name: example.org\nemail:\n  smtp_host: 127.0.0.1\n"
                   f"  smtp_port: {silent_after_starttls}\n  notif_from: a <a@example.org>\n")
    result = CliRunner().invoke(cli, ["probe", str(cfg), "--timeout", "1", "--no-color"])
    headline = result.output.split("\n\n", 1)[1].splitlines()[0]
    assert "protocol error" not in headline, headline
    assert "no answer to the TLS handshake within the timeout" in headline, headline


@pytest.fixture
def malformed_auth_reply() -> Iterator[int]:
    """A server that offers AUTH LOGIN and answers AUTH with a line that is no SMTP reply."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    conns: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conns.append(conn)
            conn.settimeout(10)
            try:
                conn.sendall(b"220 mail.test ESMTP\r\n")
                for line in conn.makefile("rb"):
                    word = line.split()[0].upper() if line.split() else b""
                    if word in (b"EHLO", b"HELO"):
                        conn.sendall(b"250-mail.test\r\n250 AUTH LOGIN\r\n")
                    elif word == b"AUTH":
                        conn.sendall(b"xyzzy this is not a reply\r\n")
                    elif word == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        break
                    else:
                        conn.sendall(b"250 ok\r\n")
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in conns:
        conn.close()
    thread.join(5)


def test_malformed_auth_reply_is_not_a_refused_login(malformed_auth_reply: int,
                                                     tmp_path: Path) -> None:
    cfg = tmp_path / "hs.yaml"
    cfg.write_text("server_name: example.org\nemail:\n  smtp_host: 127.0.0.1\n"
                   f"  smtp_port: {malformed_auth_reply}\n  smtp_user: synapse@example.org\n"
                   "  smtp_pass: 's3cret-password'\n  enable_tls: false\n"
                   "  notif_from: a <a@example.org>\n")
    result = CliRunner().invoke(cli, ["probe", str(cfg), "--timeout", "1", "--no-color"])
    headline = result.output.split("\n\n", 1)[1].splitlines()[0]
    assert ": None" not in headline and "refused the login" not in headline, headline
    assert "not an SMTP reply" in headline or "malformed" in headline, headline
