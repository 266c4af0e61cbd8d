"""Engine vs model against the project's fault-injecting test server (maildoctor.testing).

Each row starts one named scenario of ``maildoctor.testing.scenarios``, builds the
ServerFacts a probe would report (observed with stdlib clients where the scenario
lets us, otherwise stated from the scenario's definition), runs a real Synapse-style
Twisted send, and checks it agrees with ``predict``. ``kind`` pins the expected result
so that a model and an engine that both drift cannot agree by accident.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from maildoctor.smtp.facts import AuthAttempt, Connect, Reply, ServerFacts, Speaks, TlsVerify
from maildoctor.synapse.model.predict import predict
from maildoctor.testing.server import TestServer
from tests.synapse.support import (
    FROM,
    PASSWORD,
    TO,
    USER,
    assert_agrees,
    assert_no_secret,
    observe,
    observe_login,
    run,
    settings,
)

Facts = Callable[[TestServer], ServerFacts]
CREDS = {"smtp_user": USER, "smtp_pass": PASSWORD}
TLSNAME = {"tlsname": "mail.test"}


def plain(server: TestServer) -> ServerFacts:
    return observe(server.port)


def stated(**changes: Any) -> Facts:
    """Facts the stdlib client cannot observe, taken from the scenario's definition."""
    def build(server: TestServer) -> ServerFacts:
        base = ServerFacts(host="127.0.0.1", port=server.port, connect=Connect.OK)
        return replace(base, **changes)
    return build


def observed(**changes: Any) -> Facts:
    def build(server: TestServer) -> ServerFacts:
        return replace(observe(server.port), **changes)
    return build


def with_starttls(**changes: Any) -> Facts:
    def build(server: TestServer) -> ServerFacts:
        return replace(observe(server.port, starttls_ca=server.ca_file), **changes)
    return build


def before_starttls(**changes: Any) -> Facts:
    """EHLO lines before TLS; STARTTLS and the handshake as the scenario defines them."""
    def build(server: TestServer) -> ServerFacts:
        return replace(observe(server.port), **changes)
    return build


def transaction(server: TestServer) -> ServerFacts:
    return observe(server.port, mail_from=FROM, rcpt_to=TO)


def cram(server: TestServer) -> ServerFacts:
    """AUTH CRAM-MD5 with the right password, through smtplib (challenge, then verdict)."""
    facts = observe(server.port)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
        client.ehlo()
        client.user, client.password = USER, PASSWORD
        text: bytes | str
        try:
            code, text = client.auth("CRAM-MD5", client.auth_cram_md5, initial_response_ok=False)
        except smtplib.SMTPResponseException as exc:
            code, text = exc.smtp_code, exc.smtp_error
    words = text.decode() if isinstance(text, bytes) else text
    replies = (Reply(334, "PDE+"),) if code != 504 else ()
    attempt = AuthAttempt("CRAM-MD5", (*replies, Reply(code, words)))
    return replace(facts, auth=attempt)


def login_with(password: str, silence: float = 10.0, **changes: Any) -> Facts:
    def build(server: TestServer) -> ServerFacts:
        attempt = observe_login(server.port, password, silence)
        return replace(observe(server.port), auth=attempt, **changes)
    return build


@dataclass(frozen=True)
class Case:
    id: str
    scenario: str
    facts: Facts
    kind: str
    email: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("works", "works", login_with(PASSWORD), "ok", CREDS),
    Case("A2-no-auth-offered", "no-auth-offered", plain, "error", CREDS),
    Case("A3-xoauth2-only", "xoauth2-only", plain, "error", CREDS),
    Case("A4-lowercase-auth", "lowercase-auth", plain, "error", CREDS),
    Case("A4-auth-equals-only", "auth-equals-only", plain, "error", CREDS),
    Case("A2-auth-after-starttls-enable-tls-off", "auth-after-starttls-only",
         with_starttls(), "error", {**CREDS, "enable_tls": False}),
    Case("T-auth-decided-after-starttls", "auth-after-starttls-only", with_starttls(), "ok",
         {**CREDS, **TLSNAME}),
    Case("A15-auth-required-no-user", "auth-required", observed(mail=Reply(
        530, "5.7.0 Authentication required")), "error"),
    Case("A16-starttls-required-enable-tls-off", "starttls-required", observed(
        mail=Reply(530, "Must issue a STARTTLS command first")), "error", {"enable_tls": False}),
    Case("A11-no-starttls-required", "no-starttls", plain, "error",
         {"require_transport_security": True}),
    Case("B6-untrusted-starttls", "untrusted-cert-starttls",
         before_starttls(starttls=Reply(220, "Ready"), tls=TlsVerify.UNTRUSTED), "hang", TLSNAME),
    Case("B6-self-signed-starttls", "self-signed-starttls",
         before_starttls(starttls=Reply(220, "Ready"), tls=TlsVerify.UNTRUSTED), "hang", TLSNAME),
    Case("B6-expired-starttls", "expired-cert-starttls",
         before_starttls(starttls=Reply(220, "Ready"), tls=TlsVerify.EXPIRED), "hang", TLSNAME),
    Case("B7-name-mismatch-starttls", "name-mismatch-starttls",
         before_starttls(starttls=Reply(220, "Ready"), tls=TlsVerify.NAME_MISMATCH), "hang",
         TLSNAME),
    Case("B8-untrusted-implicit", "untrusted-cert-implicit",
         stated(speaks=Speaks.TLS, tls=TlsVerify.UNTRUSTED), "hang",
         {"force_tls": True, **TLSNAME}),
    Case("B9-starttls-454", "starttls-454", before_starttls(starttls=Reply(
        454, "4.7.0 TLS not available due to local problem")), "hang", TLSNAME),
    Case("A12-starttls-502", "starttls-502", before_starttls(starttls=Reply(
        502, "5.5.1 Error: command not implemented")), "error", TLSNAME),
    Case("B10-greeting-421", "greeting-421", stated(speaks=Speaks.SMTP, greeting=Reply(
        421, "4.3.2 Service not available, closing channel")), "hang"),
    Case("B10-greeting-554", "greeting-554", stated(speaks=Speaks.SMTP, greeting=Reply(
        554, "5.7.1 Service unavailable; client host blocked")), "hang"),
    Case("A13-ehlo-rejected-with-user", "ehlo-rejected", stated(
        speaks=Speaks.SMTP, ehlo=Reply(502, "5.5.2 Error: command not recognized")), "error",
        CREDS),
    Case("A14-ehlo-rejected-helo-fallback", "ehlo-rejected", stated(
        speaks=Speaks.SMTP, ehlo=Reply(502, "5.5.2 Error: command not recognized"),
        helo=Reply(250, "mail.test")), "ok"),
    Case("A14-helo-loop", "ehlo-helo-rejected", stated(
        speaks=Speaks.SMTP, ehlo=Reply(502, "5.5.2 Error: command not recognized"),
        helo=Reply(501, "5.5.2 Error: HELO refused")), "hang"),
    Case("B11-auth-454", "auth-454", observed(auth=AuthAttempt(
        "LOGIN", (Reply(454, "4.7.0 Temporary authentication failure"),))), "hang", CREDS),
    Case("T-cram-md5-works", "cram-md5", cram, "ok", CREDS),
    Case("A9-cram-md5-broken", "cram-md5-broken", cram, "error", CREDS),
    Case("A8-cram-md5-refused", "cram-md5-refused", cram, "error", CREDS),
    Case("A5-wrong-password-reply", "works", login_with("nope"), "error",
         {"smtp_user": USER, "smtp_pass": "nope"}),
    Case("O1-wrong-password-drop", "auth-failure-drop", login_with("nope"), "hang",
         {"smtp_user": USER, "smtp_pass": "nope"}),
    Case("O1-wrong-password-silent", "auth-failure-silent",
         login_with("nope", silence=1.0, stalled_at="auth"), "hang",
         {"smtp_user": USER, "smtp_pass": "nope"}),
    Case("A17-sender-rejected", "sender-rejected", transaction, "error"),
    Case("A18-recipient-rejected", "recipient-rejected", transaction, "error"),
    Case("A18-greylisted-450-never-hangs", "greylisted", transaction, "error"),
    Case("A21-not-smtp", "not-smtp", stated(speaks=Speaks.NOT_SMTP,
                                            greeting=Reply(0, "+OK Dovecot ready.")), "error"),
    Case("B13-silent", "silent", stated(speaks=Speaks.SILENT), "hang"),
    Case("B13-stall-after-ehlo", "stall-after-ehlo", observed(stalled_at="mail"), "hang"),
    Case("B12-drop-after-ehlo", "drop-after-ehlo", observed(closed_at="mail"), "hang"),
    Case("B12-drop-after-mail", "drop-after-mail", observed(closed_at="rcpt"), "hang"),
    Case("B12-drop-after-data", "drop-after-data", observed(closed_at="data"), "hang"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_engine_agrees_with_model(smtp_scenario: Callable[..., TestServer], case: Case) -> None:
    server = smtp_scenario(case.scenario)
    facts = case.facts(server)
    s = settings(server.port, **case.email)
    ca_file = server.ca_file if "tlsname" in case.email else None
    result = run(s, ca_file=ca_file)
    outcome = predict(s, facts)
    assert_agrees(result, outcome)
    assert result.kind == case.kind
    assert_no_secret(result)


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
