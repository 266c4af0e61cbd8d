"""The relay end to end: real SMTP clients in, real aiosmtpd upstreams out, the queue file
read back to check what was recorded."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from typing import Any

from maildoctor.relay import Queue, Relay
from maildoctor.testing.server import ServerOptions, TestServer
from tests.relay.conftest import (
    RelayFactory,
    Sink,
    make_options,
    plain_upstream,
    send,
    wait_until,
)


def _ids(server: TestServer) -> set[str]:
    return {str(m.message["Message-ID"]) for m in server.messages}


def test_delivers_every_mail(smtp_server: Any, relay_factory: RelayFactory,
                             queue: Callable[[], Queue]) -> None:
    upstream = smtp_server()
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False},
                          concurrency=3)
    send(relay.port, count=40)
    upstream.wait_for_messages(40, timeout=20)
    assert _ids(upstream) == {f"<m{n}@test>" for n in range(40)}
    wait_until(lambda: queue().counts() == {"queued": 0, "delivered": 40, "dead": 0},
               what="40 delivered rows")
    row = queue().list("delivered")[0]
    assert row.attempts == 1 and row.upstream == f"127.0.0.1:{upstream.port}"
    assert row.refused == {}
    # The upstream saw the login the email: block asks for.
    assert any(e.success for e in upstream.events if e.kind == "auth")


def test_upstream_down_then_up(relay_factory: RelayFactory, closed_port: int,
                               queue: Callable[[], Queue]) -> None:
    relay = relay_factory(plain_upstream("127.0.0.1", closed_port), retry_base=0.05,
                          retry_max=0.3)
    send(relay.port, count=3)

    def retried() -> bool:
        rows = queue().list("queued")
        return len(rows) == 3 and all(r.attempts >= 2 for r in rows)

    wait_until(retried, what="every message tried twice while the upstream is down")
    row = queue().list("queued")[0]
    assert row.last_reason == "connect"
    assert row.last_error is not None and "refused: nothing listens on that port" in row.last_error
    assert row.next_attempt > row.received_at  # backed off, not due at once
    (status,) = queue().upstreams()
    assert status.failing and status.last_fix is not None and "smtp_port" in status.last_fix

    with TestServer(ServerOptions(port=closed_port)) as upstream:
        upstream.wait_for_messages(3, timeout=10)
        wait_until(lambda: queue().counts()["delivered"] == 3, what="3 delivered")
    assert _ids(upstream) == {"<m0@test>", "<m1@test>", "<m2@test>"}
    (status,) = queue().upstreams()
    assert not status.failing


def test_one_recipient_refused_others_delivered(sink: Callable[[dict[str, str]], Sink],
                                                relay_factory: RelayFactory,
                                                queue: Callable[[], Queue]) -> None:
    upstream = sink({"nobody@example.org": "550 5.1.1 <nobody@example.org>: User unknown"})
    relay = relay_factory(plain_upstream("127.0.0.1", upstream.port))
    send(relay.port, recipients=("ann@example.org", "nobody@example.org", "bob@example.org"))
    wait_until(lambda: queue().counts()["delivered"] == 1, what="the delivery")
    assert [r for r, _ in upstream.received] == [("ann@example.org", "bob@example.org")]
    (row,) = queue().list("delivered")
    assert set(row.refused) == {"nobody@example.org"}
    assert row.refused["nobody@example.org"].startswith("550 5.1.1")
    assert queue().counts()["queued"] == 0  # a 5xx recipient is not retried
    assert [m.id for m in queue().bounces()] == [row.id]


def test_temporarily_refused_recipient_is_retried_alone(
        sink: Callable[[dict[str, str]], Sink], relay_factory: RelayFactory,
        queue: Callable[[], Queue]) -> None:
    upstream = sink({"later@example.org": "450 4.2.0 Greylisted, try again"})
    relay = relay_factory(plain_upstream("127.0.0.1", upstream.port))
    send(relay.port, recipients=("ann@example.org", "later@example.org"))
    wait_until(lambda: any(r.parent for r in queue().list("queued")) and
               queue().list("queued")[0].attempts >= 1, what="the greylisted copy retried")
    upstream.refuse.clear()  # the greylisting ends
    wait_until(lambda: queue().counts() == {"queued": 0, "delivered": 2, "dead": 0},
               what="the second copy delivered")
    delivered_to = [rcpts for rcpts, _ in upstream.received]
    assert delivered_to[0] == ("ann@example.org",)
    assert delivered_to[-1] == ("later@example.org",)


def test_permanent_refusal_is_dead_lettered(smtp_server: Any, relay_factory: RelayFactory,
                                            queue: Callable[[], Queue]) -> None:
    upstream = smtp_server(replies={"data": "554 5.7.1 Message rejected as spam"})
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False})
    send(relay.port)
    wait_until(lambda: queue().counts()["dead"] == 1, what="a dead letter")
    (row,) = queue().list("dead")
    assert row.last_reason == "data"
    assert row.last_error is not None and "554 5.7.1 Message rejected as spam" in row.last_error
    assert row.attempts == 1  # a 5xx is never retried
    assert upstream.messages == []


def test_sender_refused_is_dead_with_the_reason(smtp_server: Any, relay_factory: RelayFactory,
                                                queue: Callable[[], Queue]) -> None:
    upstream = smtp_server(replies={"mail": "553 5.7.1 <{address}>: not owned by user"})
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False})
    send(relay.port)
    wait_until(lambda: queue().counts()["dead"] == 1, what="a dead letter")
    (row,) = queue().list("dead")
    assert row.last_reason == "sender"
    assert row.last_error is not None and "refused the sender <a@example.org>" in row.last_error


def test_message_past_max_age_dies(relay_factory: RelayFactory, closed_port: int,
                                   queue: Callable[[], Queue]) -> None:
    relay = relay_factory(plain_upstream("127.0.0.1", closed_port), max_age=0.3)
    send(relay.port)
    wait_until(lambda: queue().counts()["dead"] == 1, what="the message to expire")
    (row,) = queue().list("dead")
    assert row.last_error is not None and row.last_error.startswith("gave up after")
    assert "nothing listens on that port" in row.last_error


def test_restart_delivers_what_was_queued(smtp_server: Any, closed_port: int,
                                          queue_path: str) -> None:
    first = Relay(make_options(plain_upstream("127.0.0.1", closed_port), queue_path)).start()
    try:
        send(first.port, count=5)
    finally:
        first.stop(timeout=5)
    stopped = Queue(queue_path)
    try:
        assert stopped.counts() == {"queued": 5, "delivered": 0, "dead": 0}
    finally:
        stopped.close()
    upstream = smtp_server()
    second = Relay(make_options(upstream.synapse_email_config() | {"enable_tls": False},
                                queue_path)).start()
    try:
        upstream.wait_for_messages(5, timeout=10)
    finally:
        second.stop(timeout=5)
    assert _ids(upstream) == {f"<m{n}@test>" for n in range(5)}
    reopened = Queue(queue_path)
    try:
        assert reopened.counts() == {"queued": 0, "delivered": 5, "dead": 0}
    finally:
        reopened.close()


def test_cram_md5_trap_falls_back(smtp_server: Any, relay_factory: RelayFactory,
                                  queue: Callable[[], Queue]) -> None:
    # Synapse picks CRAM-MD5 and never falls back (synapse#10280); the relay moves on.
    upstream = smtp_server(mechanisms=("CRAM-MD5-BROKEN", "LOGIN"))
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False})
    send(relay.port)
    upstream.wait_for_messages(1)
    mechanisms = [e.mechanism for e in upstream.events if e.kind == "auth"]
    assert mechanisms[:2] == ["CRAM-MD5", "LOGIN"]


def test_ipv6_listener_and_upstream(smtp_server: Any, relay_factory: RelayFactory,
                                    queue: Callable[[], Queue]) -> None:
    upstream = smtp_server(host="::1")
    relay = relay_factory(plain_upstream("::1", upstream.port), listen_host="::1")
    with smtplib.SMTP("::1", relay.port, timeout=5) as client:
        client.sendmail("a@example.org", ["bob@example.org"], b"Message-ID: <v6@test>\r\n\r\nx\r\n")
    (received,) = upstream.wait_for_messages(1)
    assert received.message["Message-ID"] == "<v6@test>"
    wait_until(lambda: queue().counts()["delivered"] == 1, what="delivered")
    assert queue().list("delivered")[0].client == "::1"
