"""The SMTP side: the allow-list, size limit, malformed input and graceful shutdown; after
each abuse the relay must still accept and deliver a normal mail."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildoctor.errors import UsageError
from maildoctor.relay import Queue, Relay
from tests.relay.conftest import RelayFactory, make_options, plain_upstream, send, wait_until


class Raw:
    """A line-at-a-time SMTP client for input smtplib refuses to send."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.file = self.sock.makefile("rb")

    def reply(self) -> str:
        lines: list[str] = []
        while True:
            line = self.file.readline().decode("utf-8", "replace")
            if not line:
                return "".join(lines) or "<closed>"
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "".join(lines)

    def command(self, data: bytes) -> str:
        self.sock.sendall(data)
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _working(relay: Relay, upstream: Any, count: int) -> None:
    """The relay still accepts and delivers after whatever the test did."""
    send(relay.port, start=100 + count)
    upstream.wait_for_messages(count)


def test_client_outside_allow_list_gets_554(smtp_server: Any,
                                            relay_factory: RelayFactory) -> None:
    upstream = smtp_server()
    relay = relay_factory(upstream.synapse_email_config(), allow=("10.0.0.0/8", "::1/128"))
    raw = Raw(relay.port)
    try:
        greeting = raw.reply()
        assert greeting.startswith("554 5.7.1"), greeting
        assert raw.reply() == "<closed>"
    finally:
        raw.close()
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", relay.port, timeout=5)
    assert refused.value.smtp_code == 554
    assert relay.counters.rejected_clients == 2
    assert upstream.messages == []


def test_empty_allow_list_is_refused(smtp_server: Any, queue_path: str) -> None:
    with pytest.raises(UsageError, match="allow-list is empty"):
        make_options(plain_upstream("127.0.0.1", 25), queue_path, allow=())


def test_public_listen_address_is_refused(queue_path: str) -> None:
    with pytest.raises(UsageError, match="not a loopback address"):
        make_options(plain_upstream("127.0.0.1", 25), queue_path, listen_host="0.0.0.0")


def test_upstream_that_is_the_relay_itself_is_refused(queue_path: str) -> None:
    with pytest.raises(UsageError, match="points at the relay itself"):
        make_options(plain_upstream("127.0.0.1", 2525), queue_path, listen_port=2525)


def test_oversized_message_gets_552(smtp_server: Any, relay_factory: RelayFactory,
                                    queue: Callable[[], Queue]) -> None:
    upstream = smtp_server()
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False},
                          max_message_size=2048)
    big = b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n"
    big = big * 60
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("size") and client.esmtp_features["size"] == "2048"
        # Declared with SIZE: refused at MAIL FROM.
        with pytest.raises(smtplib.SMTPSenderRefused) as early:
            client.sendmail("a@example.org", ["b@example.org"], big)
        assert early.value.smtp_code == 552
    raw = Raw(relay.port)
    try:  # Not declared: refused after the data, and the session goes on.
        raw.reply()
        raw.command(b"EHLO me\r\n")
        assert raw.command(b"MAIL FROM:<a@example.org>\r\n").startswith("250")
        assert raw.command(b"RCPT TO:<b@example.org>\r\n").startswith("250")
        assert raw.command(b"DATA\r\n").startswith("354")
        assert raw.command(big + b".\r\n").startswith("552")
        assert raw.command(b"NOOP\r\n").startswith("250")
    finally:
        raw.close()
    assert queue().counts()["queued"] + queue().counts()["delivered"] == 0
    _working(relay, upstream, 1)


def test_malformed_commands_get_smtp_errors(smtp_server: Any,
                                            relay_factory: RelayFactory) -> None:
    upstream = smtp_server()
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False})
    raw = Raw(relay.port)
    try:
        assert raw.reply().startswith("220")
        assert raw.command(b"BOGUS\r\n").startswith("500")
        assert raw.command(b"MAIL FROM:<a@example.org>\r\n").startswith("503")  # no HELO
        assert raw.command(b"EHLO me\r\n").startswith("250")
        assert raw.command(b"RCPT TO:<b@example.org>\r\n").startswith("503")  # no MAIL
        assert raw.command(b"MAIL TO:<a@example.org>\r\n").startswith("501")
        assert raw.command(b"DATA\r\n").startswith("503")
        assert raw.command(b"X" * 5000 + b"\r\n").startswith("500")  # line too long
        assert raw.command(b"\xff\xfe\x00garbage\r\n")[:1] == "5"
        assert raw.command(b"AUTH PLAIN AGFAYg==\r\n")[:1] == "5"  # no AUTH without TLS
        assert raw.command(b"QUIT\r\n").startswith("221")
    finally:
        raw.close()
    _working(relay, upstream, 1)


def test_client_dropping_mid_data_loses_nothing_it_was_promised(
        smtp_server: Any, relay_factory: RelayFactory, queue: Callable[[], Queue]) -> None:
    upstream = smtp_server()
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False})
    raw = Raw(relay.port)
    raw.reply()
    raw.command(b"EHLO me\r\n")
    raw.command(b"MAIL FROM:<a@example.org>\r\n")
    raw.command(b"RCPT TO:<b@example.org>\r\n")
    assert raw.command(b"DATA\r\n").startswith("354")
    raw.sock.sendall(b"Subject: half\r\n\r\nno end")
    raw.close()  # never said ".", never got 250: nothing may be queued
    _working(relay, upstream, 1)
    wait_until(lambda: queue().counts()["delivered"] == 1, what="the good mail delivered")
    assert queue().counts() == {"queued": 0, "delivered": 1, "dead": 0}


def test_stop_says_421_to_idle_sessions_and_keeps_queued_mail(
        closed_port: int, queue_path: str) -> None:
    relay = Relay(make_options(plain_upstream("127.0.0.1", closed_port), queue_path)).start()
    send(relay.port, count=2)
    raw = Raw(relay.port)
    raw.reply()
    raw.command(b"EHLO me\r\n")
    relay.stop(timeout=5)
    assert raw.reply().startswith("421")
    raw.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", relay.port), timeout=2).close()
    q = Queue(queue_path)
    try:
        wait_until(lambda: q.counts()["queued"] == 2, what="both still queued")
    finally:
        q.close()


def test_port_in_use_fails_start(closed_port: int, queue_path: str, tmp_path: Any) -> None:
    first = Relay(make_options(plain_upstream("127.0.0.1", closed_port), queue_path)).start()
    try:
        options = make_options(plain_upstream("127.0.0.1", closed_port),
                               str(tmp_path / "other.sqlite3"), listen_port=first.port)
        with pytest.raises(OSError):
            Relay(options).start()
    finally:
        first.stop(timeout=5)


def test_queue_write_failure_answers_452_and_keeps_running(
        smtp_server: Any, relay_factory: RelayFactory, queue_path: str,
        caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import sqlite3

    caplog.set_level(logging.INFO, logger="maildoctor.relay")
    upstream = smtp_server()
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False})
    vandal = sqlite3.connect(queue_path, isolation_level=None)
    vandal.execute("DROP TABLE messages")  # the disk went bad, as far as the relay can tell
    vandal.close()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("a@example.org", ["b@example.org"], b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.smtp_code == 452
        assert refused.value.smtp_error.startswith(b"4.3.1 ")
        assert client.noop()[0] == 250  # the session carries on
    wait_until(lambda: any("event=queue-read-failed" in r.getMessage() for r in caplog.records),
               what="the delivery loop hitting the broken queue")
    Queue(queue_path).close()  # the admin repairs the queue (the schema is created again)
    _working(relay, upstream, 1)  # the listener and the delivery loop both survived


ADDRESS_ARGS = [
    "<alice@example.org>", "<alice@example.org> SIZE=1234", " <a.b+c@sub.example.org>",
    "<a@b>", "<a..b@example.org>", "<.a@example.org>", "<\"quoted local\"@example.org>",
    "<a@[127.0.0.1]>", "<>", "alice@example.org", "<alice@example.org", "<a@-x.org> BODY=8BITMIME",
    "<o'hara@example.org>", "<a@example.org>  ", "<ü@example.org>", "<a@example.org>x",
    "<a@example.org> (comment) SIZE=1", "<a@example.org>\tSIZE=1",
]


@pytest.mark.parametrize("arg", ADDRESS_ARGS)
def test_fast_address_parse_agrees_with_aiosmtpd(arg: str) -> None:
    from aiosmtpd.smtp import SMTP

    from maildoctor.relay.listener import RelaySMTP

    class Handler:
        pass

    ours = RelaySMTP(Handler())
    theirs = SMTP(Handler())
    assert ours._getaddr(arg) == theirs._getaddr(arg)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="<>@.a-_ \t()\"[]+=Sü", max_size=30))
def test_fast_address_parse_agrees_on_anything(arg: str) -> None:
    from aiosmtpd.smtp import SMTP

    from maildoctor.relay.listener import RelaySMTP

    class Handler:
        pass

    def outcome(parse: Any) -> object:
        try:
            return parse(arg)
        except Exception as exc:  # aiosmtpd's parser raises on some junk: so must ours
            return type(exc)

    assert outcome(RelaySMTP(Handler())._getaddr) == outcome(SMTP(Handler())._getaddr)


def test_sessions_send_small_replies_at_once(smtp_server: Any,
                                            relay_factory: RelayFactory) -> None:
    """TCP_NODELAY on every session: aiosmtpd writes a multi-line EHLO reply line by line,
    and with Nagle's algorithm the second line waits for the client's delayed ACK (40 ms a
    connection, and Synapse opens one per mail)."""
    import socket

    upstream = smtp_server()
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False})
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=5) as client:
        client.ehlo()
        assert relay.listener is not None
        (session,) = relay.listener.sessions
        transport = session.transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
