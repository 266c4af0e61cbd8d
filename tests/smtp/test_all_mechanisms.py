"""``--all-mechanisms``: each offered mechanism once, the main attempt reused, and the
number of failed logins said in the stage summary (each one counts at the server)."""

from __future__ import annotations

from maildoctor.smtp.auth_stage import LOCKOUT_WARNING, failed_logins
from maildoctor.smtp.facts import AuthAttempt, Reply
from maildoctor.testing.server import EventKind

from .conftest import Serve, probe


def auth_events(server: object) -> list[tuple[str | None, bool | None]]:
    return [(e.mechanism, e.success) for e in server.events  # type: ignore[attr-defined]
            if e.kind is EventKind.AUTH]


def test_wrong_password_is_not_tried_twice_with_the_same_mechanism(serve: Serve) -> None:
    server = serve(mechanisms=("LOGIN", "PLAIN"))
    report = probe(server, {"smtp_pass": "wrong-Pa55"}, all_mechanisms=True)
    # LOGIN is Synapse's pick: tried once by the main stage, reused; PLAIN makes
    # Twisted's two tries (with, then without authzid) on its own connection.
    assert auth_events(server) == [("LOGIN", False), ("PLAIN", False), ("PLAIN", False)]
    assert report.facts.auth is not None
    reused = [a for a in report.facts.auth_all if a.mechanism == "LOGIN"]
    assert reused == [report.facts.auth]
    stage = report.stage("auth")
    assert stage is not None
    assert stage.facts["all"] == {"PLAIN": False, "LOGIN": False}
    assert stage.facts["failed_logins"] == 3
    assert "working mechanisms: none; 3 failed logins in all: " + LOCKOUT_WARNING \
        in stage.summary
    assert "fail2ban, provider lockouts" in stage.summary


def test_right_password_reports_no_failed_logins(serve: Serve) -> None:
    server = serve(mechanisms=("CRAM-MD5", "LOGIN", "PLAIN"))
    report = probe(server, all_mechanisms=True)
    assert auth_events(server) == [("CRAM-MD5", True), ("PLAIN", True), ("LOGIN", True)]
    stage = report.stage("auth")
    assert stage is not None and stage.facts["failed_logins"] == 0
    assert "failed login" not in stage.summary
    assert "working mechanisms: PLAIN, LOGIN, CRAM-MD5" in stage.summary


def test_broken_cram_md5_is_tried_once(serve: Serve) -> None:
    server = serve(mechanisms=("CRAM-MD5-BROKEN", "LOGIN"))
    report = probe(server, all_mechanisms=True)
    assert auth_events(server) == [("CRAM-MD5", False), ("LOGIN", True)]
    assert {a.mechanism: a.succeeded for a in report.facts.auth_all} == {
        "LOGIN": True, "CRAM-MD5": False}
    stage = report.stage("auth")
    assert stage is not None and "1 failed login in all" in stage.summary


def test_failed_logins_counts_each_refused_plain_try() -> None:
    assert failed_logins(AuthAttempt("PLAIN", (Reply(535, "a"), Reply(535, "b")))) == 2
    assert failed_logins(AuthAttempt("PLAIN", (Reply(535, "a"), Reply(235, "ok")))) == 0
    assert failed_logins(AuthAttempt("LOGIN", (Reply(334, "x"), Reply(334, "y"),
                                               Reply(535, "no")))) == 1
    assert failed_logins(AuthAttempt("CRAM-MD5", (), dropped=True)) == 1
