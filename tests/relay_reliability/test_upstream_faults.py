"""The upstream misbehaves: down for a while (no listener, 421, 451), refusing one recipient
of several, refusing a message for good, or going silent on the relay's open connection.

A relay earns its place when the upstream is not perfect: Synapse gets its 250 at once, the
mail waits on disk, and it leaves when the upstream can take it; a recipient the upstream
refuses for good is recorded with the upstream's own words and does not hold back the others;
a message refused for good becomes a dead letter at once, not a retry loop.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from click.testing import CliRunner

from maildoctor.cli.relay import command as relay_cli
from maildoctor.testing.server import ServerOptions, TestServer
from tests.relay_reliability.conftest import RelayFactory
from tests.relay_reliability.harness import HOST, make_mail, message_ids, send, wait_until
from tests.relay_reliability.sink import PickySink

FROM = {"notif_from": "Matrix <noreply@example.org>", "enable_tls": False}


# How the upstream is unavailable at first -> (its options, or None for nothing listening;
# a word the plain-words cause in `relay status` must contain).
UNAVAILABLE: dict[str, tuple[ServerOptions | None, str]] = {
    "not-listening": (None, "refused"),
    "busy-421-greeting": (ServerOptions(replies={"greeting": "421 4.3.2 Too busy, later"}),
                          "421"),
    "deferring-451-data": (ServerOptions(replies={"dot": "451 4.3.0 Try again later"}), "451"),
}


@pytest.mark.parametrize("how", sorted(UNAVAILABLE))
def test_upstream_down_for_a_while(how: str, relay_factory: RelayFactory) -> None:
    options, word = UNAVAILABLE[how]
    first = TestServer(options).start()
    port = first.port
    if options is None:
        first.stop()  # the upstream is down before the first mail arrives
    running = relay_factory({"smtp_host": HOST, "smtp_port": port, **FROM})
    mails = [make_mail("down", n) for n in range(20)]
    send(running.port, mails, ["alice@example.org"])
    assert running.counts()["delivered"] == 0  # accepted, on disk, nothing delivered
    # Let it fail (retry_base 0.1 s) before the upstream returns.
    wait_until(lambda: _attempted(running.records()), timeout=10,
               what="a failed delivery attempt recorded while the upstream is down",
               describe=lambda: repr(running.records()[:2]))
    status = CliRunner().invoke(relay_cli, ["status", "--queue", str(running.queue_path)])
    assert status.exit_code == 1, status.output  # an upstream is failing
    assert f"upstream {HOST}:{port}: FAILING" in status.output, status.output
    cause = status.output.split("cause:", 1)[1].splitlines()[0]
    assert word in cause, status.output
    if options is not None:
        first.stop()
        assert not first.messages  # a 421 or 451 upstream took nothing
    back = TestServer(ServerOptions(port=port)).start()
    try:
        wanted = {mid for mid, _ in mails}
        wait_until(lambda: set(message_ids(m.data for m in back.messages)) >= wanted
                   and running.counts()["queued"] == 0,
                   timeout=15, what="all 20 mails delivered after the upstream came back",
                   describe=lambda: f"{running.counts()} {len(back.messages)} received")
        assert running.counts() == {"queued": 0, "delivered": 20, "dead": 0}
        assert all(m.rcpt_tos == ("alice@example.org",) for m in back.messages)
    finally:
        back.stop()


def _attempted(records: list[Any]) -> bool:
    """True once some record shows a failed attempt (an attempts count and a last error)."""
    return any(r.attempts > 0 and r.last_error for r in records)


def test_one_recipient_rejected(relay_factory: RelayFactory) -> None:
    refusal = "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown"
    with PickySink({"bob@example.org": refusal}) as sink:
        running = relay_factory({"smtp_host": HOST, "smtp_port": sink.port, **FROM})
        message_id, data = make_mail("picky", 1, ["alice@example.org", "bob@example.org",
                                                  "carol@example.org"])
        send(running.port, [(message_id, data)],
             ["alice@example.org", "bob@example.org", "carol@example.org"])
        wait_until(lambda: bool(sink.delivered) and running.counts()["queued"] == 0,
                   timeout=10, what="the mail delivered to the accepted recipients",
                   describe=lambda: f"{running.counts()} {running.records()}")
        [delivered] = sink.delivered
        assert delivered.rcpt_tos == ("alice@example.org", "carol@example.org")
        assert message_ids([delivered.data]) == {message_id: 1}
        refusals = _refusals(running.records(), message_id)
        assert set(refusals) == {"bob@example.org"}, running.records()
        assert "550" in refusals["bob@example.org"], refusals
        assert "User unknown" in refusals["bob@example.org"], refusals
        assert running.counts()["queued"] == 0


def _refusals(records: list[Any], message_id: str) -> dict[str, str]:
    """Recipient -> the upstream's words, for every permanent refusal of ``message_id``: kept
    on the delivered record (``refused``) or as a dead-letter record of its own."""
    found: dict[str, str] = {}
    for record in records:
        if record.message_id != message_id:
            continue
        found.update(record.refused or {})
        if record.state == "dead":
            found.update({r: f"{record.last_error} {record.last_reason}"
                          for r in record.recipients})
    return found


def test_stop_is_bounded_when_the_upstream_stops_answering(
        relay_factory: RelayFactory) -> None:
    """``Relay.stop(timeout=2)`` returns in about 2 s even when the upstream, after taking a
    mail, answers nothing more on the connection the relay keeps open (it never answers
    QUIT): a stuck upstream must not hold up a restart of the relay."""
    with PickySink({}, answer_quit=False) as sink:
        running = relay_factory({"smtp_host": HOST, "smtp_port": sink.port, **FROM})
        send(running.port, [make_mail("stuck", 1)], ["alice@example.org"])
        wait_until(lambda: bool(sink.delivered) and running.counts()["queued"] == 0,
                   timeout=10, what="the mail delivered before the upstream went quiet")
        started = time.monotonic()
        try:
            running.relay.stop(timeout=2)
        finally:
            elapsed = time.monotonic() - started
    assert elapsed < 4.0, f"Relay.stop(timeout=2) took {elapsed:.1f} s"


# A permanent refusal of the whole message -> (upstream options, words the dead letter keeps).
PERMANENT: dict[str, tuple[ServerOptions, tuple[str, ...]]] = {
    "sender-rejected": (ServerOptions(replies={
        "mail": "550 5.7.1 <{address}>: Sender address rejected: not owned by user"}),
        ("550", "Sender address rejected")),
    "too-big-for-upstream": (ServerOptions(max_message_size=4096), ("552",)),
}


@pytest.mark.parametrize("how", sorted(PERMANENT))
def test_permanent_refusal_is_dead_lettered(how: str, relay_factory: RelayFactory) -> None:
    """A 5xx for the message is final: no retry loop, and a dead letter with the upstream's
    words that `relay status` shows."""
    options, words = PERMANENT[how]
    with TestServer(options) as upstream:
        running = relay_factory({"smtp_host": HOST, "smtp_port": upstream.port, **FROM})
        doomed = make_mail("doomed", 1, body_lines=200)  # ~12 KB
        send(running.port, [doomed], ["alice@example.org"])
        wait_until(lambda: running.counts()["dead"] == 1, timeout=10,
                   what="the refused mail dead-lettered",
                   describe=lambda: repr(running.records()))
        [dead] = running.records("dead")
        assert dead.message_id == doomed[0] and dead.attempts == 1, dead
        assert all(word in (dead.last_error or "") for word in words), dead
        status = CliRunner().invoke(relay_cli, ["status", "--queue", str(running.queue_path)])
        assert status.exit_code == 1 and doomed[0] in status.output, status.output
        assert not upstream.messages
