"""The relay's pure parts, without sockets: backoff, allow-list, failure explanations, log
lines, the queue's bookkeeping; and the secrets rule on a real failed login."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from maildoctor import errors
from maildoctor.relay import AllowList, Queue
from maildoctor.relay.delivery import backoff
from maildoctor.relay.explain import explain
from maildoctor.relay.logs import KeyValueFormatter, line, quote
from maildoctor.relay.queue import NewMessage
from maildoctor.testing.server import DEFAULT_PASSWORD
from tests.relay.conftest import RelayFactory, send, wait_until


def test_backoff_doubles_with_jitter_and_caps() -> None:
    rng = random.Random(7)
    for attempts, nominal in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0)]:
        delays = [backoff(attempts, 1.0, 100.0, rng) for _ in range(50)]
        assert all(0.8 * nominal <= d <= 1.2 * nominal for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert all(backoff(30, 1.0, 60.0, rng) <= 60.0 for _ in range(50))


@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1", True), ("127.0.0.2", False), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.1.2.3", False), ("", False), (None, False), ("not-an-ip", False), ("fe80::1%eth0", False),
])
def test_allow_list(host: str | None, allowed: bool) -> None:
    assert AllowList(("127.0.0.1/32", "::1/128")).allows(host) is allowed


def test_allow_list_refuses_garbage() -> None:
    with pytest.raises(errors.UsageError, match="not a network"):
        AllowList(("127.0.0.1/33",))


@pytest.mark.parametrize(("failure", "reason", "permanent", "fix_words"), [
    # The fix is chosen from the error's fields (outcome, errno, verify code), never from
    # its message: the messages here say nothing the fields do not.
    (errors.ConnectFailure("x", outcome="refused", errno_name="ECONNREFUSED"),
     "connect", False, "check smtp_host and smtp_port"),
    (errors.ConnectFailure("x", outcome="timeout", errno_name="ETIMEDOUT"), "connect", False,
     "block outbound port 25"),
    (errors.ConnectFailure("x", outcome="unreachable", errno_name="ENETUNREACH"), "connect",
     False, "IPv6 without a route"),
    (errors.ResolveError("x", outcome="nxdomain"), "resolve", False, "spelling"),
    (errors.ResolveError("x", outcome="tempfail"), "resolve", False, "resolv.conf"),
    (errors.CertificateRejected("x", stage="tls", verify_code=62,
                                verify_message="Hostname mismatch"), "tls", False, "tlsname"),
    (errors.CertificateRejected("x", stage="tls", verify_code=18,
                                verify_message="self-signed certificate"), "tls", False,
     "--ca-file"),
    (errors.CertificateRejected("x", stage="tls", verify_code=10,
                                verify_message="certificate has expired"), "tls", False, "renew"),
    (errors.HandshakeFailed("x", stage="tls"), "tls", False, "force_tls"),
    (errors.AuthFailure("x", code=535, reply="5.7.139 Authentication unsuccessful, "
                        "SmtpClientAuthentication is disabled for the Tenant."), "auth", False,
     "XOAUTH2"),
    (errors.RecipientRejected("x", stage="rcpt", code=450, reply="4.2.0 <a@example.org>: "
                              "Recipient address rejected: Greylisted"), "recipient", False,
     "retries"),
    (errors.RecipientRejected("x", stage="rcpt", code=553, reply="5.7.1 <n@example.org>: "
                              "Sender address rejected: not owned by user s@example.org"),
     "recipient", True, "notif_from"),
    (errors.AuthFailure("x", stage="auth", mechanism="XOAUTH2"), "auth", False,
     "--xoauth2-token-file"),
    (errors.AuthFailure("x", stage="auth"), "auth", False, "both sides know"),
    (errors.AuthFailure("refused the credentials", code=535), "auth", False, "app password"),
    (errors.AuthFailure("could not check", code=454), "auth", False, "retry later"),
    (errors.SenderRejected("refused the sender", code=553), "sender", True, "notif_from"),
    (errors.RecipientRejected("refused the recipient", code=550), "recipient", True,
     "recipient address"),
    (errors.RecipientRejected("refused the recipient", code=450), "recipient", False,
     "recipient address"),
    (errors.DataRejected("refused the message", code=554), "data", True, "spam"),
    (errors.ServerHung("no answer"), "timeout", False, "overloaded"),
    (errors.ConnectionLost("closed", code=421), "connection_lost", False, "drops"),
    (errors.GreetingRejected("greeted with 554", code=554), "greeting", False, "allowed"),
])
def test_explain(failure: errors.SMTPFailure, reason: str, permanent: bool,
                 fix_words: str) -> None:
    why = explain(failure)
    assert (why.reason, why.permanent) == (reason, permanent)
    assert why.words == failure.message
    assert fix_words in why.fix


def test_log_lines_are_logfmt() -> None:
    assert quote("smtp.example.org:587") == "smtp.example.org:587"
    assert quote('say "hi"\n') == '"say \\"hi\\"\\n"'
    assert line("deferred", id=3, error="the host name 'x' does not resolve", skip=None) == \
        "event=deferred id=3 error=\"the host name 'x' does not resolve\""
    record = logging.LogRecord("maildoctor.relay", logging.WARNING, __file__, 1,
                               "event=x a=1", None, None)
    assert KeyValueFormatter().format(record).endswith("level=warning event=x a=1")


def test_queue_retry_gives_a_dead_message_a_new_lifetime(tmp_path: Path) -> None:
    q = Queue(str(tmp_path / "q.sqlite3"), max_age=100.0)
    try:
        (mid,) = q.add_many([NewMessage("a@x", ("b@x",), b"Subject: x\r\n\r\nx\r\n")], now=0.0)
        (message,) = q.due(now=0.0)
        q.bury(message, "h:25", "gave up", "connect", "fix", server_failed=True, now=100.0)
        assert q.counts() == {"queued": 0, "delivered": 0, "dead": 1}
        assert q.due(now=1000.0) == []
        assert q.retry(mid, now=1000.0) == 1
        (again,) = q.due(now=1000.0)
        assert again.expires_at == 1100.0 and again.data is not None
        q.delivered(again, "h:25", {}, now=1001.0)
        assert q.retry(mid) == 0  # delivered messages have no body left to send
        assert q.get(mid).state == "delivered"  # type: ignore[union-attr]
    finally:
        q.close()


def test_password_never_reaches_log_or_queue(smtp_server: Any, relay_factory: RelayFactory,
                                             queue: Callable[[], Queue], queue_path: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="maildoctor.relay")
    upstream = smtp_server(credentials={"synapse@example.org": "other"},
                           replies={"auth_failed": f"535 5.7.8 bad password {DEFAULT_PASSWORD}"})
    config = upstream.synapse_email_config() | {"enable_tls": False,
                                                "smtp_user": "synapse@example.org",
                                                "smtp_pass": DEFAULT_PASSWORD}
    relay = relay_factory(config)
    send(relay.port)
    wait_until(lambda: (rows := queue().list("queued")) and rows[0].attempts >= 1,
               what="a refused login")
    row = queue().list("queued")[0]
    assert row.last_reason == "auth" and row.last_error is not None
    assert "refused the credentials for smtp_user 'synapse@example.org'" in row.last_error
    assert "bad password ********" in row.last_error  # the server echoed it; we masked it
    logged = wait_until(lambda: "event=deferred" in (text := "\n".join(
        r.getMessage() for r in caplog.records)) and text, what="the deferred log line")
    assert "reason=auth" in logged
    stored = b"".join(p.read_bytes() for p in Path(queue_path).parent.iterdir())
    for text in (logged, row.last_error, repr(relay), repr(relay.options)):
        assert DEFAULT_PASSWORD not in text
    assert DEFAULT_PASSWORD.encode() not in stored


def test_queue_hurry_makes_waiting_messages_due(tmp_path: Path) -> None:
    q = Queue(str(tmp_path / "q.sqlite3"))
    try:
        q.add_many([NewMessage("a@x", ("b@x",), b"x\r\n"), NewMessage("a@x", ("c@x",), b"y\r\n")],
                   now=0.0)
        first, second = q.due(now=0.0)
        q.postpone(first, "h:25", 500.0, "refused", "connect", "fix", now=1.0)
        q.postpone(second, "h:25", 900.0, "refused", "connect", "fix", now=1.0)
        assert q.due(now=10.0) == []
        assert q.hurry(now=10.0) == 2
        assert [m.id for m in q.due(now=10.0)] == [first.id, second.id]
        (status,) = q.upstreams()
        assert status.failing and status.last_reason == "connect"
    finally:
        q.close()


def test_queue_prune_forgets_only_old_delivered_rows(tmp_path: Path) -> None:
    q = Queue(str(tmp_path / "q.sqlite3"))
    try:
        ids = q.add_many([NewMessage("a@example.org", ("b@example.org",), b"x")] * 3, now=1.0)
        first, second, third = (q.get(i) for i in ids)
        assert first and second and third
        q.delivered(first, "h:25", {}, now=10.0)
        q.delivered(second, "h:25", {}, now=100.0)
        assert q.prune(before=50.0) == 1
        assert [m.id for m in q.list()] == ids[1:]
        assert q.counts() == {"queued": 1, "delivered": 1, "dead": 0}
    finally:
        q.close()


def test_queue_from_before_the_role_column_still_reads(tmp_path: Path) -> None:
    """A queue file an older relay wrote (no `role` column): read-only status reads it, and
    the relay adds the column when it opens it."""
    import sqlite3

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL "
        "DEFAULT 'queued', received_at REAL NOT NULL, expires_at REAL NOT NULL, next_attempt "
        "REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, sender TEXT NOT NULL, recipients "
        "TEXT NOT NULL, message_id TEXT, size INTEGER NOT NULL, client TEXT, data BLOB, "
        "upstream TEXT, last_error TEXT, last_reason TEXT, refused TEXT, parent INTEGER, "
        "finished_at REAL);"
        "CREATE TABLE upstreams (upstream TEXT PRIMARY KEY, last_error TEXT, last_reason TEXT,"
        " last_fix TEXT, error_at REAL, ok_at REAL);"
        "INSERT INTO upstreams VALUES ('h:25', 'down', 'connect', 'fix it', 5.0, NULL);")
    old.close()
    reader = Queue(str(path), readonly=True)
    try:
        (status,) = reader.upstreams()
        assert status.failing and status.role is None
        with pytest.raises(errors.UsageError, match="read-only"):
            reader.drop(1)
    finally:
        reader.close()
    writer = Queue(str(path))
    try:
        writer.register_upstreams({"h:25": "primary"})
        (status,) = writer.upstreams()
        assert status.role == "primary" and status.last_error == "down"
    finally:
        writer.close()


def test_a_refused_write_raises_storage_error_and_leaves_no_transaction(
        tmp_path: Path) -> None:
    """What SQLite does on a full disk (it rolls back by itself) must not turn into "cannot
    rollback - no transaction is active": the real error comes out, as StorageError."""
    q = Queue(str(tmp_path / "q.sqlite3"))
    try:
        with pytest.raises(errors.StorageError, match="no such table"):
            q._write([("INSERT INTO nowhere VALUES (1)", ())])
        assert not q._db.in_transaction
        assert q.add_many([NewMessage("a@example.org", ("b@example.org",), b"x")])
    finally:
        q.close()


def test_throttle_logs_once_per_interval() -> None:
    from maildoctor.relay.logs import Throttle

    now = [0.0]
    throttle = Throttle(30.0, clock=lambda: now[0])
    assert throttle.due("disk") == 0
    assert [throttle.due("disk") for _ in range(5)] == [None] * 5
    assert throttle.due("other") == 0
    now[0] = 31.0
    assert throttle.due("disk") == 5  # the lines left out since the last one
    assert throttle.due("disk") is None
