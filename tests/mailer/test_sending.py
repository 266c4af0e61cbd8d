"""Delivery paths: TLS modes, AUTH order and fallback, retries, reuse, pipelining, pooling."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from maildoctor import errors
from maildoctor.mailer import Mail, Mailer, RetryPolicy

from .conftest import Options
from .helpers import FAST, MESSAGE, authed, mailer, send_one, settings

QUICK_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


def test_plain_send_delivers_the_exact_bytes(serve: Any) -> None:
    server = serve()
    result = send_one(settings(server.port))
    assert result.reply == "250 2.0.0 Ok: queued as Q1"
    assert result.message_id == "<m1@example.org>"
    assert result.attempts == 1 and result.seconds > 0
    (mail,) = server.record.mails
    assert mail.mail_from == "noreply@example.org"
    assert mail.rcpt_tos == ["alice@example.org"]
    assert mail.original_content == MESSAGE  # dot-stuffing undone by the server


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_tls_with_private_ca(serve: Any, certs: Any, tls: str) -> None:
    server = serve(Options(tls=tls))
    config = authed(server.port, force_tls=tls == "implicit")
    with mailer(config, ca_file=certs.ca_file) as m:
        result = m.send("noreply@example.org", "alice@example.org", MESSAGE)
        (session,) = m.mailer._idle
        assert session.encrypted
    assert result.reply.startswith("250 ")
    assert len(server.record.mails) == 1


def test_enable_tls_false_stays_in_clear(serve: Any) -> None:
    server = serve(Options(tls="starttls"))
    with mailer(settings(server.port, enable_tls=False)) as m:
        m.send("noreply@example.org", "alice@example.org", MESSAGE)
        assert not m.mailer._idle[0].encrypted


@pytest.mark.parametrize(("order", "expected"), [
    ("synapse", ["CRAM-MD5"]),
    ("secure", ["CRAM-MD5"]),  # in clear, only CRAM-MD5 keeps the password off the wire
    (["plain", "login"], ["PLAIN"]),
    (["login"], ["LOGIN"]),
])
def test_mechanism_order(serve: Any, order: Any, expected: list[str]) -> None:
    server = serve(Options(mechanisms=("PLAIN", "LOGIN", "CRAM-MD5")))
    send_one(authed(server.port), mechanism_order=order)
    assert server.record.auth_mechanisms == expected


def test_secure_order_under_tls_prefers_plain(serve: Any, certs: Any) -> None:
    server = serve(Options(tls="starttls", mechanisms=("PLAIN", "LOGIN", "CRAM-MD5")))
    send_one(authed(server.port), mechanism_order="secure", ca_file=certs.ca_file)
    assert server.record.auth_mechanisms == ["PLAIN"]


def test_broken_cram_md5_without_fallback_fails(serve: Any) -> None:
    server = serve(Options(mechanisms=("LOGIN", "CRAM-MD5"), cram_always_fails=True))
    with pytest.raises(errors.AuthFailure, match=r"CRAM-MD5.*535"):
        send_one(authed(server.port))
    assert server.record.auth_mechanisms == ["CRAM-MD5"]


def test_broken_cram_md5_with_fallback_uses_login(serve: Any) -> None:
    server = serve(Options(mechanisms=("LOGIN", "CRAM-MD5"), cram_always_fails=True))
    result = send_one(authed(server.port), fallback=True)
    assert result.reply.startswith("250 ")
    assert server.record.auth_mechanisms == ["CRAM-MD5", "LOGIN"]


def test_fallback_does_not_hide_a_wrong_password(serve: Any) -> None:
    server = serve(Options(mechanisms=("LOGIN", "PLAIN")))
    with pytest.raises(errors.AuthFailure, match=r"PLAIN.*535"):
        send_one(authed(server.port, smtp_pass="wrong"), fallback=True)
    assert server.record.auth_mechanisms == ["LOGIN", "PLAIN"]


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
def test_4xx_is_retried_then_succeeds(serve: Any, stage: str) -> None:
    server = serve(Options(replies={stage: ["451 4.3.0 try again later"]}))
    result = send_one(settings(server.port), retries=QUICK_RETRY)
    assert result.attempts == 2
    assert len(server.record.mails) == 1
    assert server.record.connections == 1  # retried on the same connection, after RSET


def test_5xx_is_never_retried(serve: Any) -> None:
    server = serve(Options(replies={"mail": ["550 5.7.1 go away"]}))
    with pytest.raises(errors.SenderRejected):
        send_one(settings(server.port), retries=QUICK_RETRY)
    assert len(server.record.pipelined) == 1  # one MAIL only


def test_retries_are_bounded(serve: Any) -> None:
    server = serve(Options(replies={"mail": ["451 4.3.0 later"] * 5}))
    with pytest.raises(errors.SenderRejected, match=r"451"):
        send_one(settings(server.port), retries=QUICK_RETRY)
    assert len(server.record.pipelined) == 3


def test_lost_connection_is_retried_on_a_new_one(serve: Any) -> None:
    server = serve(Options(drop_on_mail=True))

    async def scenario() -> Any:
        async with Mailer.from_settings(settings(server.port), timeouts=FAST,
                                        retries=QUICK_RETRY, local_hostname="c.test") as m:
            with pytest.raises(errors.ConnectionLost):
                await m.send("noreply@example.org", "alice@example.org", MESSAGE)
            return m.connections_opened

    assert asyncio.run(scenario()) == 3
    assert server.record.connections == 3


@pytest.mark.parametrize("pipelining", [True, False])
def test_batch_reuses_one_connection(serve: Any, pipelining: bool) -> None:
    server = serve(Options(pipelining=pipelining))
    mails = [Mail("noreply@example.org", [f"user{i}@example.org"], MESSAGE) for i in range(20)]
    with mailer(settings(server.port)) as m:
        results = m.send_many(mails)
        assert m.mailer.connections_opened == 1
    assert [r.reply for r in results] == [f"250 2.0.0 Ok: queued as Q{i}" for i in range(1, 21)]
    assert server.record.connections == 1
    assert [e.rcpt_tos for e in server.record.mails] == [[f"user{i}@example.org"]
                                                         for i in range(20)]


def test_pipelining_used_only_when_offered(serve: Any) -> None:
    on, off = serve(Options(pipelining=True)), serve(Options(pipelining=False))
    rcpts = ["a@example.org", "b@example.org"]
    for server in (on, off):
        with mailer(settings(server.port)) as m:
            m.send("noreply@example.org", rcpts, MESSAGE)
            m.send("noreply@example.org", rcpts, MESSAGE)
    assert on.record.pipelined == [True, True]  # RCPT and DATA were already buffered
    assert off.record.pipelined == [False, False]
    assert on.record.mails[1].rcpt_tos == rcpts


def test_pipelined_refusal_leaves_connection_usable(serve: Any) -> None:
    server = serve(Options(pipelining=True, replies={"rcpt": ["550 5.1.1 unknown"]}))
    mails = [Mail("noreply@example.org", ["x@example.org"], MESSAGE),
             Mail("noreply@example.org", ["y@example.org"], MESSAGE)]
    with mailer(settings(server.port)) as m:
        first, second = m.send_many(mails)
    assert isinstance(first, errors.RecipientRejected)
    assert not isinstance(second, errors.SMTPFailure) and second.reply.startswith("250")
    assert server.record.connections == 1
    assert [e.rcpt_tos for e in server.record.mails] == [["y@example.org"]]


def test_partial_recipient_refusal_is_reported(serve: Any) -> None:
    server = serve(Options(pipelining=True, replies={"rcpt": ["550 5.1.1 unknown"]}))
    with mailer(settings(server.port)) as m:
        result = m.send("noreply@example.org", ["bad@example.org", "ok@example.org"], MESSAGE)
    assert result.refused == {"bad@example.org": "550 5.1.1 unknown"}
    assert server.record.mails[0].rcpt_tos == ["ok@example.org"]


def test_reconnects_when_server_closed_idle_connection(serve: Any) -> None:
    server = serve()
    with mailer(settings(server.port)) as m:  # no retries: reconnecting is not a retry
        m.send("noreply@example.org", "alice@example.org", MESSAGE)
        server.drop_connections()
        result = m.send("noreply@example.org", "alice@example.org", MESSAGE)
    assert result.attempts == 1
    assert server.record.connections == 2 and len(server.record.mails) == 2


def test_concurrency_bounds_the_pool(serve: Any) -> None:
    server = serve(Options(pipelining=True))
    mails = [("noreply@example.org", "alice@example.org", MESSAGE)] * 30
    with mailer(settings(server.port), concurrency=3) as m:
        results = m.send_many(mails)
    assert all(not isinstance(r, errors.SMTPFailure) for r in results)
    assert 1 <= server.record.connections <= 3
    assert len(server.record.mails) == 30


def test_closed_mailer_refuses_to_send(serve: Any) -> None:
    server = serve()
    m = mailer(settings(server.port))
    m.close()
    with pytest.raises(errors.UsageError):
        asyncio.run(m.mailer.send("a@example.org", "b@example.org", MESSAGE))


def test_async_api_and_misuse_in_a_batch(serve: Any) -> None:
    server = serve(Options(pipelining=True))

    async def scenario() -> None:
        async with Mailer.from_settings(settings(server.port), timeouts=FAST,
                                        local_hostname="c.test", concurrency=2) as m:
            result = await m.send("noreply@example.org", ["alice@example.org"], MESSAGE)
            assert result.reply.startswith("250 ")
            with pytest.raises(errors.UsageError, match=r"at least one recipient"):
                await m.send_many([("noreply@example.org", [], MESSAGE)])
        assert m._idle == []

    asyncio.run(scenario())
    assert len(server.record.mails) == 1
