"""Clients that misbehave: malformed SMTP, oversized mails, addresses outside the allow-list.

Each gets a proper SMTP reply (a 5xx with a reason, never a silent close or a crash), nothing
of it is queued or delivered, and the relay keeps serving: a normal mail sent right after
every abuse still reaches the upstream.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator

import pytest

from maildoctor.testing.server import TestServer
from tests.relay_reliability.conftest import RelayFactory, RunningRelay
from tests.relay_reliability.harness import (
    EHLO_NAME,
    HOST,
    SENDER,
    make_mail,
    message_ids,
    wait_until,
)

MAX_SIZE = 20_000


class RawClient:
    """A socket speaking SMTP by hand, so it can say what no SMTP library would."""

    def __init__(self, port: int, source: str | None = None) -> None:
        self.sock = socket.create_connection(
            (HOST, port), timeout=5, source_address=(source, 0) if source else None)
        self.buffer = b""

    def reply(self) -> tuple[int, str]:
        """One whole reply (all its lines); (0, "") if the relay closed the connection."""
        lines: list[bytes] = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return 0, b"\n".join(lines).decode(errors="replace")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines).decode(errors="replace")

    def command(self, line: bytes) -> tuple[int, str]:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def upstream() -> Iterator[TestServer]:
    server = TestServer().start()
    yield server
    server.stop()


@pytest.fixture
def running(relay_factory: RelayFactory, upstream: TestServer) -> RunningRelay:
    return relay_factory({"smtp_host": HOST, "smtp_port": upstream.port, "enable_tls": False,
                          "notif_from": "Matrix <noreply@example.org>"},
                         max_message_size=MAX_SIZE)


def still_relays(running: RunningRelay, upstream: TestServer, tag: str) -> None:
    """A normal mail right after the abuse is accepted and delivered."""
    message_id, data = make_mail(tag, 0)
    with smtplib.SMTP(HOST, running.port, local_hostname=EHLO_NAME, timeout=10) as client:
        assert client.sendmail(SENDER, ["alice@example.org"], data) == {}
    wait_until(lambda: message_id in message_ids(m.data for m in upstream.messages)
               and running.counts()["queued"] == 0, timeout=10,
               what=f"the normal mail after {tag} delivered",
               describe=lambda: repr(running.counts()))


# (what is sent after the greeting, the reply class expected for the last line)
MALFORMED = {
    "unknown-command": [b"EHLO x.test", b"HELLO WORLD"],
    "mail-before-ehlo": [b"MAIL FROM:<a@example.org>"],
    "rcpt-before-mail": [b"EHLO x.test", b"RCPT TO:<a@example.org>"],
    "data-before-rcpt": [b"EHLO x.test", b"MAIL FROM:<a@example.org>", b"DATA"],
    "mail-without-from": [b"EHLO x.test", b"MAIL TO:<a@example.org>"],
    "bad-size-param": [b"EHLO x.test", b"MAIL FROM:<a@example.org> SIZE=lots"],
    "binary-junk": [b"\x00\xff\xfe\x80junk"],
    "line-too-long": [b"EHLO x.test", b"NOOP " + b"x" * 5000],
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input(name: str, running: RunningRelay, upstream: TestServer) -> None:
    client = RawClient(running.port)
    try:
        assert client.reply()[0] == 220
        *setup, abuse = MALFORMED[name]
        for line in setup:
            assert client.command(line)[0] // 100 == 2, line
        code, text = client.command(abuse)
        assert 500 <= code < 600, f"{abuse[:40]!r} answered {code} {text!r}"
        assert client.command(b"QUIT")[0] in (221, 0)
    finally:
        client.close()
    still_relays(running, upstream, name)
    assert running.counts() == {"queued": 0, "delivered": 1, "dead": 0}


def test_connection_dropped_mid_data(running: RunningRelay, upstream: TestServer) -> None:
    """A client that vanishes before the final dot: the half mail is neither queued nor sent."""
    client = RawClient(running.port)
    assert client.reply()[0] == 220
    for line, code in ((b"EHLO x.test", 250), (b"MAIL FROM:<a@example.org>", 250),
                       (b"RCPT TO:<b@example.org>", 250), (b"DATA", 354)):
        assert client.command(line)[0] == code, line
    client.sock.sendall(b"Message-ID: <half@relay.test>\r\nSubject: half\r\n\r\nhalf a body")
    client.close()
    still_relays(running, upstream, "after-drop")
    assert "<half@relay.test>" not in message_ids(m.data for m in upstream.messages)
    assert running.counts() == {"queued": 0, "delivered": 1, "dead": 0}


def test_oversized_declared_with_size(running: RunningRelay, upstream: TestServer) -> None:
    client = RawClient(running.port)
    try:
        assert client.reply()[0] == 220
        code, text = client.command(b"EHLO x.test")
        assert code == 250 and f"SIZE {MAX_SIZE}" in text, text
        code, text = client.command(f"MAIL FROM:<a@example.org> SIZE={MAX_SIZE * 5}".encode())
        assert code == 552, text
    finally:
        client.close()
    still_relays(running, upstream, "size-declared")
    assert running.counts() == {"queued": 0, "delivered": 1, "dead": 0}


def test_oversized_body(running: RunningRelay, upstream: TestServer) -> None:
    """No SIZE= declared: the relay must read the whole body and refuse it after the dot."""
    message_id, data = make_mail("huge", 1, body_lines=MAX_SIZE // 20)
    assert len(data) > MAX_SIZE
    with smtplib.SMTP(HOST, running.port, local_hostname=EHLO_NAME, timeout=10) as client:
        client.ehlo()
        client.does_esmtp = False  # keep smtplib from sending SIZE=
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(SENDER, ["alice@example.org"], data)
        assert refused.value.smtp_code == 552
        assert client.noop()[0] == 250  # the connection is still usable
    still_relays(running, upstream, "size-body")
    assert message_id not in message_ids(m.data for m in upstream.messages)
    assert running.counts() == {"queued": 0, "delivered": 1, "dead": 0}


def test_disallowed_client(running: RunningRelay, upstream: TestServer) -> None:
    """127.0.0.2 is loopback but outside the allow-list (127.0.0.1/32, ::1/128): an SMTP
    refusal with a reason, at the greeting or at the envelope, and nothing queued."""
    client = RawClient(running.port, source="127.0.0.2")
    replies: list[tuple[int, str]] = []
    try:
        for line in (None, b"EHLO x.test", b"MAIL FROM:<a@example.org>",
                     b"RCPT TO:<b@example.org>", b"DATA"):
            reply = client.reply() if line is None else client.command(line)
            replies.append(reply)
            if reply[0] == 0 or reply[0] >= 500:
                break
        if replies[-1][0] == 354:  # the relay let it get this far: it must refuse the mail
            client.sock.sendall(b"Subject: open relay?\r\n\r\nhello\r\n.\r\n")
            replies.append(client.reply())
    finally:
        client.close()
    assert any(500 <= code < 600 for code, _ in replies), replies
    assert all(code != 250 for code, _ in replies[3:]), replies  # no RCPT or DATA accepted
    assert running.counts() == {"queued": 0, "delivered": 0, "dead": 0}
    still_relays(running, upstream, "disallowed")
    assert len(upstream.messages) == 1


def test_connection_flood(running: RunningRelay, upstream: TestServer) -> None:
    """200 clients that connect and then say nothing do not lock out a real one: past the
    cap (50, Postfix's smtpd_client_connection_count_limit) the longest-idle session is told
    421 and closed to make room, so at most 50 stay open."""
    idle = [RawClient(running.port) for _ in range(200)]
    try:
        replies = [client.reply() for client in idle]
        assert {code for code, _ in replies} <= {220, 421, 0}, replies
        closed = 0
        for client, (code, text) in zip(idle, replies, strict=True):
            if code == 220:
                code, text = client.reply() if _readable(client) else (220, "")
            if code in (421, 0):
                closed += 1
                assert code == 0 or text.startswith("421 4.4.2"), text
        assert closed >= 150, f"only {closed} of 200 idle clients were closed"
        still_relays(running, upstream, "flood")
    finally:
        for client in idle:
            client.close()
    assert running.counts() == {"queued": 0, "delivered": 1, "dead": 0}


def _readable(client: RawClient) -> bool:
    """True if the relay has said something more (or closed) within a second."""
    import select

    return bool(client.buffer) or bool(select.select([client.sock], [], [], 1.0)[0])


def test_recipient_limit(relay_factory: RelayFactory, upstream: TestServer) -> None:
    """RCPT TO past the limit gets 452 4.5.3 (Postfix's smtpd_recipient_limit); the mail
    goes to the recipients accepted before it, never to the others."""
    running = relay_factory({"smtp_host": HOST, "smtp_port": upstream.port,
                             "enable_tls": False}, max_recipients=5)
    client = RawClient(running.port)
    try:
        assert client.reply()[0] == 220
        assert client.command(b"EHLO x.test")[0] == 250
        assert client.command(b"MAIL FROM:<a@example.org>")[0] == 250
        codes = [client.command(f"RCPT TO:<r{n}@example.org>".encode()) for n in range(8)]
        assert [c for c, _ in codes] == [250] * 5 + [452] * 3, codes
        assert codes[-1][1] == "452 4.5.3 Too many recipients"
        assert client.command(b"DATA")[0] == 354
        client.sock.sendall(b"Message-ID: <many@relay.test>\r\nSubject: many\r\n\r\nx\r\n.\r\n")
        assert client.reply()[0] == 250
    finally:
        client.close()
    wait_until(lambda: running.counts()["delivered"] == 1, timeout=10, what="delivered")
    (message,) = running.records("delivered")
    assert message.recipients == tuple(f"r{n}@example.org" for n in range(5))


def test_pipelined_envelope(running: RunningRelay, upstream: TestServer) -> None:
    """PIPELINING is offered, and MAIL, RCPT, RCPT and DATA in one write get their four
    replies in order (RFC 2920); the mail goes through like any other."""
    client = RawClient(running.port)
    try:
        assert client.reply()[0] == 220
        code, text = client.command(b"EHLO x.test")
        assert code == 250 and "PIPELINING" in text.splitlines()[1], text
        client.sock.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
                            b"RCPT TO:<c@example.org>\r\nDATA\r\n")
        assert [client.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
        client.sock.sendall(b"Message-ID: <piped@relay.test>\r\nSubject: piped\r\n\r\n"
                            b"one write\r\n.\r\nMAIL FROM:<a@example.org>\r\nRSET\r\n")
        assert [client.reply()[0] for _ in range(3)] == [250, 250, 250]
        assert client.command(b"QUIT")[0] == 221
    finally:
        client.close()
    wait_until(lambda: "<piped@relay.test>" in message_ids(m.data for m in upstream.messages),
               timeout=10, what="the pipelined mail delivered")
    (delivered,) = [m for m in upstream.messages if b"piped" in m.data]
    assert delivered.rcpt_tos == ("b@example.org", "c@example.org")
