"""Pipelining across the mails of a batch: the end of mail N rides with mail N+1's envelope.

Every test checks both sides: what the batch reports per mail, and what the server received
(each mail that got a 250 exactly once, none that did not).
"""

from __future__ import annotations

from typing import Any

import pytest

from maildoctor import errors
from maildoctor.mailer import Mail, RetryPolicy, SendResult, Timeouts

from .conftest import Options
from .helpers import MESSAGE, mailer, settings

QUICK_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
SENDER = "noreply@example.org"


def body(i: int) -> bytes:
    return MESSAGE.replace(b"body", f"body of mail-{i}".encode())


def batch(n: int) -> list[Mail]:
    return [Mail(SENDER, [f"user{i}@example.org"], body(i)) for i in range(1, n + 1)]


def delivered(server: Any) -> list[str]:
    """The recipient of every mail the server accepted, in order, duplicates kept."""
    return [rcpt for envelope in server.record.mails for rcpt in envelope.rcpt_tos]


def attempts(results: list[Any]) -> list[int]:
    return [r.attempts for r in results]


def ok(result: Any) -> bool:
    return isinstance(result, SendResult) and result.reply.startswith("250 ")


def test_batch_is_chained_across_messages(serve: Any) -> None:
    server = serve(Options(pipelining=True))
    mails = batch(6)
    with mailer(settings(server.port)) as m:
        results = m.send_many(mails)
        (session,) = m.mailer._idle
        writes = session.channel.writes
    assert [r.reply for r in results] == [f"250 2.0.0 Ok: queued as Q{i}" for i in range(1, 7)]
    assert attempts(results) == [1] * 6
    assert delivered(server) == [f"user{i}@example.org" for i in range(1, 7)]
    assert [e.original_content for e in server.record.mails] == [m.data for m in mails]
    # The first mail opens the chain on its own (envelope, body); then one write per mail.
    assert writes == 6 + 2
    # At the server: the next mail's commands were buffered before the final dot was
    # answered, and arrived in the same read as the end of the previous body.
    assert server.record.data_pipelined == [False, True, True, True, True, False]
    joint = [c for c in server.record.chunks if b"\r\n.\r\nMAIL FROM:<" in c]
    assert len(joint) == 4
    assert all(c.endswith(b"DATA\r\n") for c in joint)


def test_batch_without_cross_message_pipelining(serve: Any) -> None:
    server = serve(Options(pipelining=True))
    with mailer(settings(server.port), pipeline_batches=False) as m:
        results = m.send_many(batch(4))
        writes = m.mailer._idle[0].channel.writes
    assert all(ok(r) for r in results)
    assert writes == 2 * 4
    assert not any(server.record.data_pipelined)


def test_no_pipelining_offered_means_lock_step(serve: Any) -> None:
    server = serve(Options(pipelining=False))
    with mailer(settings(server.port)) as m:
        results = m.send_many(batch(4))
    assert all(ok(r) for r in results)
    assert not any(server.record.data_pipelined) and not any(server.record.pipelined)
    assert delivered(server) == [f"user{i}@example.org" for i in range(1, 5)]


@pytest.mark.parametrize(("options", "kind", "reply"), [
    (Options(pipelining=True, refuse_rcpt={"user3@example.org": ["550 5.1.1 no such user"]}),
     errors.RecipientRejected, "550 5.1.1 no such user"),
    (Options(pipelining=True, refuse_body={b"mail-3": ["554 5.7.1 spam"]}),
     errors.DataRejected, "554 5.7.1 spam"),
])
def test_mail_3_of_5_refused_mid_chain(serve: Any, options: Options,
                                       kind: type[errors.SMTPFailure], reply: str) -> None:
    server = serve(options)
    with mailer(settings(server.port), retries=QUICK_RETRY) as m:
        results = m.send_many(batch(5))
    failed = results[2]
    assert isinstance(failed, kind) and reply in str(failed) and failed.code == int(reply[:3])
    assert [ok(r) for r in results] == [True, True, False, True, True]
    assert delivered(server) == [f"user{i}@example.org" for i in (1, 2, 4, 5)]
    assert server.record.connections == 1
    # the chain went on past the refusal: mail 5's envelope rode with mail 4's end
    assert any(b"\r\n.\r\nMAIL FROM:<noreply@example.org>\r\nRCPT TO:<user5@" in c
               for c in server.record.chunks)


@pytest.mark.parametrize("options", [
    Options(pipelining=True, refuse_rcpt={"user3@example.org": ["451 4.3.0 later"]}),
    Options(pipelining=True, refuse_body={b"mail-3": ["451 4.3.0 later"]}),
])
def test_4xx_mid_chain_is_retried_and_delivered_once(serve: Any, options: Options) -> None:
    server = serve(options)
    with mailer(settings(server.port), retries=QUICK_RETRY) as m:
        results = m.send_many(batch(5))
    assert all(ok(r) for r in results)
    assert attempts(results) == [1, 1, 2, 1, 1]
    assert sorted(delivered(server)) == [f"user{i}@example.org" for i in range(1, 6)]
    assert server.record.connections == 1


def test_4xx_mid_chain_without_retries_is_reported(serve: Any) -> None:
    server = serve(Options(pipelining=True, refuse_body={b"mail-3": ["452 4.3.1 full"]}))
    with mailer(settings(server.port)) as m:  # helpers' default: one attempt only
        results = m.send_many(batch(5))
    assert isinstance(results[2], errors.DataRejected) and results[2].code == 452
    assert delivered(server) == [f"user{i}@example.org" for i in (1, 2, 4, 5)]


@pytest.mark.parametrize(("retries", "mail_3"), [(QUICK_RETRY, 2), (None, None)])
def test_connection_lost_at_a_final_dot(serve: Any, retries: RetryPolicy | None,
                                        mail_3: int | None) -> None:
    """Mail 3's body is in flight when the server hangs up: mail 3 is charged (and retried
    if the policy allows); mail 4, whose envelope rode with it, is sent again uncharged."""
    server = serve(Options(pipelining=True, drop_body_once=b"mail-3"))
    options = {"retries": retries} if retries else {}
    with mailer(settings(server.port), **options) as m:
        results = m.send_many(batch(5))
    if mail_3 is None:
        assert isinstance(results[2], errors.ConnectionLost)
        expected = [1, 2, 4, 5]
    else:
        assert ok(results[2]) and attempts(results[2:3]) == [mail_3]
        expected = [1, 2, 4, 5, 3]
    assert attempts(results[:2] + results[3:]) == [1, 1, 1, 1]
    assert sorted(delivered(server)) == sorted(f"user{i}@example.org" for i in expected)
    assert len(delivered(server)) == len(expected)  # nothing twice
    assert server.record.connections == 2


def test_server_hung_at_a_final_dot(serve: Any) -> None:
    server = serve(Options(pipelining=True, stall_body=b"mail-3"))
    quick = Timeouts(connect=2.0, command=2.0, data=0.3)
    with mailer(settings(server.port), timeouts=quick, retries=QUICK_RETRY) as m:
        results = m.send_many(batch(5))
    assert isinstance(results[2], errors.ServerHung)  # maybe accepted: never sent twice
    assert "0.3 s" in str(results[2])
    assert [ok(r) for i, r in enumerate(results) if i != 2] == [True] * 4
    assert sorted(delivered(server)) == [f"user{i}@example.org" for i in (1, 2, 4, 5)]
    assert server.record.connections == 2


def test_injected_address_mid_chain_sends_nothing_for_it(serve: Any) -> None:
    server = serve(Options(pipelining=True))
    mails = batch(5)
    mails[2] = Mail(SENDER, ["x@example.org>\r\nRCPT TO:<evil@example.org"], body(3))
    mails[3] = Mail(SENDER, ["user4@example.org"], b".leading\nbare LF\n")
    with mailer(settings(server.port)) as m:
        results = m.send_many(mails)
    assert isinstance(results[2], errors.RecipientRejected)
    assert "nothing was sent" in str(results[2])
    assert [ok(r) for i, r in enumerate(results) if i != 2] == [True] * 4
    assert delivered(server) == [f"user{i}@example.org" for i in (1, 2, 4, 5)]
    assert server.record.mails[2].original_content == b".leading\r\nbare LF\r\n"
    assert not any(b"evil" in chunk for chunk in server.record.chunks)


def test_pool_of_chains_delivers_each_mail_once(serve: Any) -> None:
    server = serve(Options(pipelining=True, refuse_rcpt={"user7@example.org": ["550 no"]}))
    with mailer(settings(server.port), concurrency=3) as m:
        results = m.send_many(batch(40))
    assert [ok(r) for r in results] == [i != 7 for i in range(1, 41)]
    assert sorted(delivered(server)) == sorted(
        f"user{i}@example.org" for i in range(1, 41) if i != 7)
    assert 1 <= server.record.connections <= 3
    assert any(server.record.data_pipelined)


@pytest.mark.parametrize(("count", "concurrency", "connections"), [
    (20, None, 1),  # a small batch is not worth a second handshake
    (100, 8, 4),  # one connection per 32 mails, up to the pool size
    (100, 2, 2),
])
def test_batch_opens_connections_by_its_size(serve: Any, count: int,
                                              concurrency: int | None,
                                              connections: int) -> None:
    server = serve(Options(pipelining=True))
    options = {"concurrency": concurrency} if concurrency else {}
    with mailer(settings(server.port), **options) as m:
        results = m.send_many(batch(count))
    assert all(ok(r) for r in results)
    assert server.record.connections == connections
    assert sorted(delivered(server)) == sorted(f"user{i}@example.org"
                                               for i in range(1, count + 1))


@pytest.mark.parametrize("retries", [QUICK_RETRY, None])
def test_reply_that_arrived_before_the_hang_up_counts(serve: Any,
                                                      retries: RetryPolicy | None) -> None:
    """Mail 3's final dot is answered 250, then the server hangs up at mail 4's MAIL (the
    4th MAIL command), in the same group: mail 3 is delivered, never sent again."""
    server = serve(Options(pipelining=True, drop_at_mail_number=4))
    options = {"retries": retries} if retries else {}
    with mailer(settings(server.port), **options) as m:
        results = m.send_many(batch(5))
    assert ok(results[2]) and attempts(results[2:3]) == [1]
    assert results[2].reply == "250 2.0.0 Ok: queued as Q3"
    if retries is None:
        assert isinstance(results[3], errors.ConnectionLost)
        expected = [1, 2, 3, 5]
    else:
        assert ok(results[3]) and attempts(results[3:4]) == [2]
        expected = [1, 2, 3, 4, 5]
    assert sorted(delivered(server)) == [f"user{i}@example.org" for i in expected]
    assert server.record.connections == 2


def test_connections_the_server_refuses_shrink_the_pool(serve: Any) -> None:
    """A server that takes 2 connections per client: the other lanes give their mail back
    and leave; nothing fails, nothing is sent twice."""
    server = serve(Options(pipelining=True, max_connections=2))
    with mailer(settings(server.port), concurrency=8) as m:  # no retries at all
        results = m.send_many(batch(200))
    assert all(ok(r) for r in results)
    assert attempts(results) == [1] * 200
    # 200 mails make 7 lanes (one per 32 mails): 2 connect, 5 are refused and leave
    assert server.record.connections == 2 and server.record.refused_connections == 5
    assert sorted(delivered(server)) == sorted(f"user{i}@example.org" for i in range(1, 201))


def test_server_down_fails_each_mail_once(serve: Any, closed_port: int) -> None:
    with mailer(settings(closed_port), concurrency=4) as m:
        results = m.send_many(batch(100))
    assert all(isinstance(r, errors.ConnectFailure) for r in results)
    assert "refused" in str(results[0])


def test_partial_recipient_refusal_mid_chain_is_reported(serve: Any) -> None:
    server = serve(Options(pipelining=True, refuse_rcpt={"bad@example.org": ["550 5.1.1 no"]}))
    mails = batch(5)
    mails[2] = Mail(SENDER, ["bad@example.org", "user3@example.org"], body(3))
    with mailer(settings(server.port)) as m:
        results = m.send_many(mails)
    assert all(ok(r) for r in results)
    assert [r.refused for r in results] == [{}, {}, {"bad@example.org": "550 5.1.1 no"}, {}, {}]
    assert delivered(server) == [f"user{i}@example.org" for i in range(1, 6)]
    assert server.record.data_pipelined[2] is True  # mail 3 was chained
