"""What leaves the relay is what came in: bytes, envelope, and recipients only deferred.

A relay that re-sends SMTP data must undo and redo dot-stuffing exactly, keep 8-bit bytes and
long lines, pass the null sender ``<>`` on, reach an upstream over IPv6, and not drop a
recipient the upstream only deferred (a 4xx to one RCPT): that recipient is tried again on its
own, and the others are not sent twice.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest

from maildoctor.testing.server import ServerOptions, TestServer
from tests.relay_reliability.conftest import RelayFactory
from tests.relay_reliability.harness import EHLO_NAME, HOST, SENDER, message_ids, wait_until
from tests.relay_reliability.sink import PickySink

FROM = {"notif_from": "Matrix <noreply@example.org>", "enable_tls": False}


@pytest.fixture
def upstream() -> Iterator[TestServer]:
    server = TestServer().start()
    yield server
    server.stop()


def tricky_mail() -> bytes:
    """Lines that SMTP transparency (RFC 5321 4.5.2) and 8-bit transport get wrong."""
    lines = [
        b"From: Matrix <noreply@example.org>", b"To: alice@example.org",
        b"Subject: =?utf-8?q?Caf=C3=A9?=", b"Message-ID: <tricky@relay.test>",
        b"MIME-Version: 1.0", b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit", b"",
        b".", b"..", b".leading dot", b"...", b"a line. with dots.",
        "caf\u00e9 \u2013 \u00fcnicode \U0001f600".encode(), b"x" * 998, b"", b" .",
        b"last line",
    ]
    return b"\r\n".join(lines) + b"\r\n"


def test_bytes_arrive_unchanged(relay_factory: RelayFactory, upstream: TestServer) -> None:
    running = relay_factory({"smtp_host": HOST, "smtp_port": upstream.port, **FROM})
    sent = tricky_mail()
    with smtplib.SMTP(HOST, running.port, local_hostname=EHLO_NAME, timeout=10) as client:
        assert client.sendmail(SENDER, ["alice@example.org"], sent,
                               mail_options=["BODY=8BITMIME"]) == {}
    wait_until(lambda: bool(upstream.messages) and running.counts()["queued"] == 0,
               timeout=10, what="the tricky mail delivered")
    [received] = upstream.messages
    # The relay may prepend trace headers; everything it was given must follow unchanged.
    assert received.data.endswith(sent), received.data[-400:]
    extra = received.data[:-len(sent)]
    assert extra == b"" or extra.endswith(b"\r\n"), extra  # whole header lines, if any
    assert (received.mail_from, received.rcpt_tos) == (SENDER, ("alice@example.org",))


def test_temporarily_refused_recipient_is_retried_alone(relay_factory: RelayFactory) -> None:
    """bob's mailbox answers 452 at first: alice and carol get the mail at once, bob gets it
    when his mailbox accepts again, and nobody gets it twice."""
    deferral = "452 4.2.2 <bob@example.org>: Mailbox full, try later"
    with PickySink({"bob@example.org": deferral}) as sink:
        running = relay_factory({"smtp_host": HOST, "smtp_port": sink.port, **FROM})
        data = tricky_mail()
        recipients = ["alice@example.org", "bob@example.org", "carol@example.org"]
        with smtplib.SMTP(HOST, running.port, local_hostname=EHLO_NAME, timeout=10) as client:
            assert client.sendmail(SENDER, recipients, data) == {}
        wait_until(lambda: len(sink.delivered) >= 1
                   and sink.refusals["bob@example.org"] >= 2, timeout=10,
                   what="alice and carol served, bob's copy deferred twice",
                   describe=lambda: repr(running.records()))
        sink.refuse.clear()  # bob's mailbox has room again
        wait_until(lambda: len(sink.delivered) >= 2 and running.counts()["queued"] == 0,
                   timeout=10, what="bob's copy delivered once his mailbox accepts",
                   describe=lambda: repr(running.records()))
        delivered = sorted(d.rcpt_tos for d in sink.delivered)
    assert delivered == [("alice@example.org", "carol@example.org"), ("bob@example.org",)]
    assert sum(message_ids(d.data for d in sink.delivered).values()) == 2
    assert running.counts() == {"queued": 0, "delivered": 2, "dead": 0}


def test_null_sender_is_relayed(relay_factory: RelayFactory, upstream: TestServer) -> None:
    """``MAIL FROM:<>`` (the null reverse-path of bounces and receipts, RFC 5321 4.5.5) is
    valid SMTP: once the relay has said 250 to it, it must reach the upstream as ``<>``."""
    running = relay_factory({"smtp_host": HOST, "smtp_port": upstream.port, **FROM})
    sent = tricky_mail()
    with smtplib.SMTP(HOST, running.port, local_hostname=EHLO_NAME, timeout=10) as client:
        assert client.sendmail("", ["alice@example.org"], sent) == {}  # MAIL FROM:<>
    wait_until(lambda: bool(upstream.messages) and running.counts()["queued"] == 0,
               timeout=10, what="the null-sender mail delivered",
               describe=lambda: repr(running.records()))
    [received] = upstream.messages
    assert received.mail_from in ("", "<>"), received.mail_from
    assert received.data.endswith(sent)


def test_ipv6_upstream(relay_factory: RelayFactory) -> None:
    """An upstream reached over IPv6 loopback (``smtp_host: "::1"``)."""
    with TestServer(ServerOptions(host="::1")) as v6:
        running = relay_factory({"smtp_host": "::1", "smtp_port": v6.port, **FROM})
        sent = tricky_mail()
        with smtplib.SMTP(HOST, running.port, local_hostname=EHLO_NAME, timeout=10) as client:
            assert client.sendmail(SENDER, ["alice@example.org"], sent) == {}
        wait_until(lambda: bool(v6.messages) and running.counts()["queued"] == 0,
                   timeout=10, what="the mail delivered over IPv6",
                   describe=lambda: repr(running.records()))
        assert v6.messages[0].data.endswith(sent)
