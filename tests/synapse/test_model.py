"""The Synapse model, row by row against the spec tables.

Row ids cite the spec: ``E2.4-...`` spec/synapse-email.md 2.4, ``A1``..``A22`` and
``B1``..``B15`` spec/twisted-smtp.md 3A/3B (endpoint column), ``O1-...`` the aiosmtpd
table and ``O2-...`` the Postfix table of spec/synapse-observed.md, ``T-...`` other
Twisted facts (spec/twisted-smtp.md 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

import maildoctor.synapse.model.predict as model
from maildoctor.config.settings import settings_from_config
from maildoctor.secrets import Secret
from maildoctor.smtp.facts import (
    AuthAttempt,
    Connect,
    Reply,
    Resolve,
    ServerFacts,
    Speaks,
    TlsVerify,
)
from maildoctor.synapse.model.outcome import AUTH_REQUIRED_TEXT, HTTP_500, NO_RESPONSE
from maildoctor.synapse.model.predict import predict

TW = "twisted.mail._except."
NET = "twisted.internet.error."
R = Reply

LINES = ("mx.test", "8BITMIME", "AUTH LOGIN PLAIN", "HELP")
BASE = ServerFacts(
    host="127.0.0.1", port=2525, resolve=Resolve.OK, connect=Connect.OK, speaks=Speaks.SMTP,
    greeting=R(220, "mx.test ESMTP"), ehlo=R(250, "mx.test"), ehlo_lines=LINES,
)
STARTTLS_LINES = ("mx.test", "STARTTLS", "8BITMIME")
AFTER_TLS = ("mx.test", "AUTH PLAIN LOGIN", "8BITMIME")
WITH_STARTTLS = replace(BASE, ehlo_lines=STARTTLS_LINES, starttls=R(220, "2.0.0 Ready"),
                        tls=TlsVerify.OK, ehlo_tls_lines=AFTER_TLS)
LOGIN_OK = AuthAttempt("LOGIN", (R(334, "VXNlcm5hbWU6"), R(334, "UGFzc3dvcmQ6"),
                                 R(235, "2.7.0 Authentication successful")))
USER = {"smtp_user": "synapse@example.org", "smtp_pass": "s3cret"}

OK = ("ok", "", "")
HANG = ("hang", "", "")
AUTH_REQUIRED = ("error", TW + "AUTHRequiredError", AUTH_REQUIRED_TEXT)
REFUSED = ("error", NET + "ConnectionRefusedError",
           "Connection was refused by other side: 111: Connection refused.")


def login(*replies: Reply, dropped: bool = False) -> AuthAttempt:
    return AuthAttempt("LOGIN", (R(334, "VXNlcm5hbWU6"), R(334, "UGFzc3dvcmQ6"), *replies),
                       dropped=dropped)


def declined(text: str) -> tuple[str, str, str]:
    return ("error", TW + "AUTHDeclinedError", text)


def delivery(text: str) -> tuple[str, str, str]:
    return ("error", TW + "SMTPDeliveryError", text)


@dataclass(frozen=True)
class Row:
    id: str
    expect: tuple[str, str, str]  # kind, exception, message
    email: dict[str, Any] = field(default_factory=dict)
    facts: ServerFacts = BASE
    recipient: str = "alice@example.org"


def row(id: str, expect: tuple[str, str, str], facts: ServerFacts = BASE,
        recipient: str = "alice@example.org", **email: Any) -> Row:
    return Row(id, expect, email, facts, recipient)


ROWS = [
    # --- spec/synapse-email.md 2.4 ----------------------------------------------------
    row("E2.4-success", OK, replace(BASE, auth=LOGIN_OK), **USER),
    row("E2.4-refused", REFUSED, replace(BASE, connect=Connect.REFUSED)),
    row("E2.4-port-null", REFUSED, smtp_port=None),
    row("E2.4-no-resolve", ("error", NET + "DNSLookupError",
                            "DNS lookup failed: no results for hostname lookup: smtp.invalid."),
        replace(BASE, resolve=Resolve.NXDOMAIN), smtp_host="smtp.invalid"),
    row("E2.4-no-greeting-465", HANG, replace(BASE, speaks=Speaks.TLS), smtp_port=465),
    row("E2.4-force-tls-plaintext", HANG, force_tls=True),
    row("E2.4-starttls-untrusted", HANG, replace(WITH_STARTTLS, tls=TlsVerify.UNTRUSTED)),
    row("E2.4-starttls-name-mismatch", HANG,
        replace(WITH_STARTTLS, tls=TlsVerify.NAME_MISMATCH)),
    row("E2.4-implicit-untrusted", HANG,
        replace(BASE, speaks=Speaks.TLS, tls=TlsVerify.UNTRUSTED), force_tls=True),
    row("E2.4-greeting-421", HANG, replace(BASE, greeting=R(421, "4.3.2 busy"))),
    row("E2.4-greeting-554", HANG, replace(BASE, greeting=R(554, "no SMTP service"))),
    row("E2.4-starttls-454", HANG, replace(WITH_STARTTLS, starttls=R(454, "4.7.0 TLS n/a"))),
    row("E2.4-starttls-554", ("error", TW + "SMTPTLSError",
                              "554 Could not complete the SSL/TLS handshake"),
        replace(WITH_STARTTLS, starttls=R(554, "5.5.1 no"))),
    row("E2.4-auth-454", HANG, replace(BASE, auth=login(R(454, "4.7.0 Temporary failure"))),
        **USER),
    row("E2.4-auth-535", declined("535 5.7.8 Authentication credentials invalid"),
        replace(BASE, auth=login(R(535, "5.7.8 Authentication credentials invalid"))), **USER),
    row("E2.4-user-no-pass", AUTH_REQUIRED, smtp_user="synapse@example.org"),
    row("E2.4-auth-only-after-starttls-enable-tls-off", AUTH_REQUIRED,
        replace(WITH_STARTTLS), enable_tls=False, **USER),
    row("E2.4-pass-no-user", ("hang", "TypeError",
                              "a bytes-like object is required, not 'NoneType'"),
        smtp_pass="s3cret"),
    row("E2.4-require-tls-no-starttls", ("error", TW + "TLSRequiredError",
                                         "502 Server does not support secure communication "
                                         "via TLS / SSL"), require_transport_security=True),
    row("E2.4-enable-tls-off-starttls-offered", OK, WITH_STARTTLS, enable_tls=False),
    row("E2.4-ehlo-rejected-helo", OK, replace(BASE, ehlo=R(502, "no"), helo=R(250, "ok"))),
    row("E2.4-rcpt-550", delivery("550 No recipients accepted"),
        replace(BASE, rcpt=R(550, "5.1.1 User unknown"))),
    row("E2.4-rcpt-450", delivery("450 No recipients accepted"),
        replace(BASE, rcpt=R(450, "4.7.1 greylisted"))),
    row("E2.4-mail-553", delivery("553 5.7.1 not owned"),
        replace(BASE, mail=R(553, "5.7.1 not owned"))),
    row("E2.4-mail-451", delivery("451 4.3.0 try later"),
        replace(BASE, mail=R(451, "4.3.0 try later"))),
    row("E2.4-notif-from-bad-percent",
        ("error", "ValueError", "unsupported format character '<' (0x3c) at index 7"),
        notif_from="%(app) <noreply@example.org>"),
    row("E2.2-notif-from-typeerror-falls-back", OK, notif_from="%(app)s %<noreply@example.org>"),
    row("E2.4-non-ascii-to", ("error", "UnicodeEncodeError",
                              "'ascii' codec can't encode character '\\xf6' in position 2: "
                              "ordinal not in range(128)"), recipient="al\u00f6ce@example.org"),
    # --- spec/twisted-smtp.md 3A -------------------------------------------------------
    row("A1-empty-pass", AUTH_REQUIRED, smtp_user="u", smtp_pass=""),
    row("A2-no-auth", AUTH_REQUIRED, replace(BASE, ehlo_lines=("mx.test", "8BITMIME")), **USER),
    row("A3-xoauth2-only", AUTH_REQUIRED,
        replace(BASE, ehlo_lines=("mx.test", "AUTH XOAUTH2 OAUTHBEARER")), **USER),
    row("A4-lowercase-auth", AUTH_REQUIRED,
        replace(BASE, ehlo_lines=("mx.test", "auth LOGIN PLAIN")), **USER),
    row("A4-auth-equals-only", AUTH_REQUIRED,
        replace(BASE, ehlo_lines=("mx.test", "AUTH=LOGIN PLAIN")), **USER),
    row("A5-login-535", declined("535 5.7.8 Authentication credentials invalid"),
        replace(BASE, auth=login(R(535, "5.7.8 Authentication credentials invalid"))), **USER),
    row("A6-plain-only-535", declined("535 5.7.8 second"),
        replace(BASE, ehlo_lines=("mx.test", "AUTH PLAIN"),
                auth=AuthAttempt("PLAIN", (R(535, "5.7.8 first"), R(535, "5.7.8 second")))),
        **USER),
    row("A7-cram-535", declined("535 5.7.8 bad"),
        replace(BASE, ehlo_lines=("mx.test", "AUTH PLAIN LOGIN CRAM-MD5"),
                auth=AuthAttempt("CRAM-MD5", (R(334, "PDEyMzQ1QG14LnRlc3Q+"),
                                              R(535, "5.7.8 bad")))), **USER),
    row("A8-cram-refused-504", ("error", TW + "AuthenticationError",
                                "504 5.5.4 Unrecognized authentication type"),
        replace(BASE, ehlo_lines=("mx.test", "AUTH CRAM-MD5 LOGIN"),
                auth=AuthAttempt("CRAM-MD5", (R(504, "5.5.4 Unrecognized authentication type"),
                                              ))), **USER),
    row("A9-cram-unverifiable", declined("535 5.7.8 Error: authentication failed"),
        replace(BASE, ehlo_lines=("mx.test", "AUTH CRAM-MD5 LOGIN PLAIN"),
                auth=AuthAttempt("CRAM-MD5", (R(334, "PDEyMzQ1QG14LnRlc3Q+"),
                                              R(535, "5.7.8 Error: authentication failed")))),
        **USER),
    row("A10-malformed-challenge", ("error", TW + "AuthenticationError",
                                    "501 Login failed because the SMTP Server returned a "
                                    "malformed Authentication Challenge"),
        replace(BASE, auth=AuthAttempt("LOGIN", (R(334, "abc"), R(501, "5.7.0 Auth aborted")))),
        **USER),
    row("A11-require-tls-lowercase-starttls",
        ("error", TW + "TLSRequiredError",
         "502 Server does not support secure communication via TLS / SSL"),
        replace(BASE, ehlo_lines=("mx.test", "starttls")), require_transport_security=True),
    row("A12-starttls-502", ("error", TW + "SMTPTLSError",
                             "502 Could not complete the SSL/TLS handshake"),
        replace(WITH_STARTTLS, starttls=R(502, "5.5.1 no"))),
    row("A13-ehlo-rejected-user", ("error", TW + "EHLORequiredError",
                                   "502 Server does not support ESMTP Authentication"),
        replace(BASE, ehlo=R(502, "5.5.1 no")), **USER),
    row("A13-ehlo-rejected-require-tls", ("error", TW + "EHLORequiredError",
                                          "502 Server does not support ESMTP Authentication"),
        replace(BASE, ehlo=R(502, "5.5.1 no")), require_transport_security=True),
    row("A14-helo-fallback", OK, replace(BASE, ehlo=R(500, "no"), helo=R(250, "ok"))),
    row("A14-helo-loop", HANG, replace(BASE, ehlo=R(500, "no"), helo=R(501, "no"))),
    row("A15-530-at-mail", delivery("530 5.7.0 Authentication required"),
        replace(BASE, mail=R(530, "5.7.0 Authentication required"))),
    row("A16-no-user", delivery("530 Must issue a STARTTLS command first"),
        replace(WITH_STARTTLS, mail=R(530, "Must issue a STARTTLS command first")),
        enable_tls=False),
    row("A16-user", AUTH_REQUIRED, WITH_STARTTLS, enable_tls=False, **USER),
    row("A17-sender-550", delivery("550 5.7.1 Sender address rejected: not owned by user u"),
        replace(BASE, mail=R(550, "5.7.1 Sender address rejected: not owned by user u"))),
    row("A18-rcpt-504", delivery("504 No recipients accepted"),
        replace(BASE, rcpt=R(504, "5.5.2 <x>: Helo command rejected"))),
    row("A21-pop3-banner", ("error", TW + "SMTPProtocolError",
                            "Invalid response from SMTP server: b'+OK Dovecot ready.'"),
        replace(BASE, speaks=Speaks.NOT_SMTP, greeting=R(0, "+OK Dovecot ready."))),
    row("A22-non-ascii-from", ("error", "UnicodeEncodeError",
                               "'ascii' codec can't encode character '\\xf6' in position 1: "
                               "ordinal not in range(128)"),
        notif_from="Matrix <n\u00f6reply@example.org>"),
    # --- spec/twisted-smtp.md 3B, endpoint column (Synapse >= 1.92) -----------------------
    row("B1-refused", REFUSED, replace(BASE, connect=Connect.REFUSED)),
    row("B2-dns", ("error", NET + "DNSLookupError",
                   "DNS lookup failed: no results for hostname lookup: mail.example."),
        replace(BASE, resolve=Resolve.NXDOMAIN), smtp_host="mail.example"),
    row("B3-blackholed", ("error", NET + "TimeoutError", "User timeout caused connection failure."),
        replace(BASE, connect=Connect.TIMEOUT)),
    row("B4-465-plaintext", HANG, replace(BASE, speaks=Speaks.TLS)),
    row("B5-force-tls-on-587", HANG, replace(BASE, speaks=Speaks.SMTP), force_tls=True),
    row("B6-starttls-untrusted", HANG, replace(WITH_STARTTLS, tls=TlsVerify.UNTRUSTED)),
    row("B6-starttls-expired", HANG, replace(WITH_STARTTLS, tls=TlsVerify.EXPIRED)),
    row("B7-starttls-name-mismatch", HANG, replace(WITH_STARTTLS, tls=TlsVerify.NAME_MISMATCH)),
    row("B8-implicit-untrusted", HANG,
        replace(BASE, speaks=Speaks.TLS, tls=TlsVerify.UNTRUSTED), force_tls=True),
    row("B9-starttls-454", HANG, replace(WITH_STARTTLS, starttls=R(454, "4.7.0 TLS n/a"))),
    row("B10-greeting-421", HANG, replace(BASE, greeting=R(421, "4.3.2 Service not available"))),
    row("B11-auth-454", HANG, replace(BASE, auth=login(R(454, "4.7.0 Temporary failure"))),
        **USER),
    row("B11-plain-second-454", HANG,
        replace(BASE, ehlo_lines=("mx.test", "AUTH PLAIN"),
                auth=AuthAttempt("PLAIN", (R(535, "no"), R(454, "4.7.0 later")))), **USER),
    row("B12-closed-after-ehlo", HANG, replace(BASE, closed_at="ehlo")),
    row("B12-closed-after-mail", HANG, replace(BASE, closed_at="mail")),
    row("B12-closed-after-data", HANG, replace(BASE, closed_at="data")),
    row("B13-silent", HANG, replace(BASE, speaks=Speaks.SILENT, greeting=None)),
    row("B13-stall-mid-dialogue", HANG, replace(BASE, stalled_at="rcpt")),
    row("B14-pass-no-user-plain", ("hang", "TypeError",
                                   "unsupported operand type(s) for +: 'NoneType' and 'bytes'"),
        replace(BASE, ehlo_lines=("mx.test", "AUTH PLAIN")), smtp_pass="s3cret"),
    # --- spec/synapse-observed.md, aiosmtpd table --------------------------------------
    row("O1-works", OK, replace(BASE, auth=LOGIN_OK), **USER),
    row("O1-seed-typo", AUTH_REQUIRED, smtp_user="synapse@example.org", smpt_pass="s3cret"),
    row("O1-port-typo", REFUSED, replace(BASE, port=25, connect=Connect.REFUSED), **USER),
    row("O1-wrong-password-silent-server", HANG,
        replace(BASE, auth=login(), stalled_at="auth"), smtp_user="synapse@example.org",
        smtp_pass="nope"),
    row("O1-wrong-password-dropped", HANG, replace(BASE, auth=login(dropped=True)),
        smtp_user="synapse@example.org", smtp_pass="nope"),
    row("O1-no-auth-offered", AUTH_REQUIRED, replace(BASE, ehlo_lines=("mx.test", "HELP")),
        **USER),
    row("O1-xoauth2-only", AUTH_REQUIRED, replace(BASE, ehlo_lines=("mx.test", "AUTH XOAUTH2")),
        **USER),
    row("O1-465-no-force-tls", HANG, replace(BASE, speaks=Speaks.TLS)),
    row("O1-force-tls-plaintext", HANG, force_tls=True),
    row("O1-force-tls-untrusted", HANG, replace(BASE, speaks=Speaks.TLS,
                                                tls=TlsVerify.UNTRUSTED), force_tls=True),
    row("O1-starttls-untrusted", HANG, replace(WITH_STARTTLS, tls=TlsVerify.UNTRUSTED)),
    row("O1-require-tls-no-starttls", ("error", TW + "TLSRequiredError",
                                       "502 Server does not support secure communication via "
                                       "TLS / SSL"), require_transport_security=True),
    row("O1-sender-553", delivery("553 5.7.1 <noreply@example.org>: Sender address rejected: "
                                  "not owned by user"),
        replace(BASE, mail=R(553, "5.7.1 <noreply@example.org>: Sender address rejected: not "
                                  "owned by user"))),
    row("O1-nothing-listening", REFUSED, replace(BASE, connect=Connect.REFUSED)),
    row("O1-smtp-invalid", ("error", NET + "DNSLookupError",
                            "DNS lookup failed: no results for hostname lookup: smtp.invalid."),
        replace(BASE, resolve=Resolve.NXDOMAIN), smtp_host="smtp.invalid"),
    row("O1-port-as-string", OK, smtp_port="2600"),
    row("O1-port-not-a-number", ("error", NET + "DNSLookupError",
                                 "DNS lookup failed: no results for hostname lookup: 127.0.0.1."),
        smtp_port="notaport"),
    row("O1-numeric-password", ("no-start", "AttributeError",
                                "'int' object has no attribute 'encode'"),
        smtp_user="u", smtp_pass=123456),
    row("O1-no-user-no-auth", OK),
    # --- spec/synapse-observed.md, Postfix table ---------------------------------------
    row("O2-starttls-works", OK, replace(WITH_STARTTLS, auth=LOGIN_OK), tlsname="mail.test",
        **USER),
    row("O2-wrong-password", declined("535 5.7.8 Error: authentication failed: (reason "
                                      "unavailable)"),
        replace(WITH_STARTTLS, auth=login(R(535, "5.7.8 Error: authentication failed: "
                                                 "(reason unavailable)"))), **USER),
    row("O2-seed-typo", AUTH_REQUIRED, WITH_STARTTLS, smtp_user="u", smpt_pass="x"),
    row("O2-implicit-works", OK, replace(BASE, speaks=Speaks.TLS, tls=TlsVerify.OK,
                                         auth=LOGIN_OK), force_tls=True, smtp_port=2465, **USER),
    row("O2-465-no-force-tls", HANG, replace(BASE, speaks=Speaks.TLS), smtp_port=2465),
    row("O2-cram-unusable", declined("535 5.7.8 Error: authentication failed: (reason "
                                     "unavailable)"),
        replace(WITH_STARTTLS, ehlo_tls_lines=("mx.test", "AUTH PLAIN LOGIN CRAM-MD5"),
                auth=AuthAttempt("CRAM-MD5", (R(334, "PDEyMzQ1QG14LnRlc3Q+"),
                                              R(535, "5.7.8 Error: authentication failed: "
                                                     "(reason unavailable)")))), **USER),
    # --- other Twisted / Synapse facts ----------------------------------------------
    row("T-quoted-false-enable-tls-still-upgrades", HANG,
        replace(WITH_STARTTLS, tls=TlsVerify.UNTRUSTED), enable_tls="false"),
    row("T-quoted-no-force-tls-is-implicit", HANG, force_tls="no"),
    row("T-auth-equals-plus-auth-works", OK,
        replace(BASE, ehlo_lines=("mx.test", "AUTH=LOGIN", "AUTH LOGIN"), auth=LOGIN_OK), **USER),
    row("T-last-auth-line-wins", AUTH_REQUIRED,
        replace(BASE, ehlo_lines=("mx.test", "AUTH LOGIN", "AUTH XOAUTH2")), **USER),
    row("T-bare-auth", AUTH_REQUIRED, replace(BASE, ehlo_lines=("mx.test", "AUTH")), **USER),
    row("T-lowercase-mechs-cram-picked", declined("535 bad"),
        replace(BASE, ehlo_lines=("mx.test", "AUTH login cram-md5"),
                auth=AuthAttempt("CRAM-MD5", (R(334, "PDE+"), R(535, "bad")))), **USER),
    row("T-plain-second-try-works", OK,
        replace(BASE, ehlo_lines=("mx.test", "AUTH PLAIN"),
                auth=AuthAttempt("PLAIN", (R(535, "authzid"), R(235, "ok")))), **USER),
    row("T-auth-on-post-tls-caps", AUTH_REQUIRED,
        replace(WITH_STARTTLS, ehlo_lines=("mx.test", "STARTTLS", "AUTH LOGIN"),
                ehlo_tls_lines=("mx.test", "8BITMIME")), **USER),
    row("T-no-starttls-when-enable-tls-off", OK,
        replace(WITH_STARTTLS, tls=TlsVerify.UNTRUSTED), enable_tls=False),
    row("T-helo-path-skips-auth-require-tls-implicit", OK,
        replace(BASE, speaks=Speaks.TLS, tls=TlsVerify.OK, ehlo=R(500, "no"), helo=R(250, "ok")),
        force_tls=True, require_transport_security=True),
    row("T-mail-4xx-never-hangs", delivery("421 4.3.2 closing"),
        replace(BASE, mail=R(421, "4.3.2 closing"))),
    row("T-host-null", ("error", "TypeError", "normalize() argument 2 must be str, not None"),
        smtp_host=None),
    row("T-port-float-hangs", HANG, smtp_port=25.0),
    row("T-unreachable", ("error", NET + "NoRouteError",
                          "No route to host: 101: Network is unreachable."),
        replace(BASE, connect=Connect.UNREACHABLE)),
    row("T-invalid-to", ("error", "RuntimeError", "Invalid 'to' address"), recipient="<>"),
    row("T-multiline-reply-first-line", delivery("550 5.7.1 first"),
        replace(BASE, mail=R(550, "5.7.1 first\n5.7.1 second"))),
    # --- startup failures ------------------------------------------------------------
    row("S-force-tls-without-enable-tls", ("no-start", "synapse.config._base.ConfigError",
                                           "email.force_tls requires email.enable_tls to be "
                                           "true"), force_tls=True, enable_tls=False),
    row("S-require-tls-without-enable-tls",
        ("no-start", "synapse.config._base.ConfigError",
         "email.require_transport_security requires email.enable_tls to be true"),
        require_transport_security=True, enable_tls=False),
    row("S-notif-from-no-address", ("no-start", "RuntimeError", "Invalid notif_from address"),
        notif_from=""),
    row("S-notif-from-missing", ("no-start", "synapse.config._base.ConfigError",
                                 "Password reset emails are enabled on this homeserver due to "
                                 "a partial\n'email' block. However, the following required "
                                 "keys are missing:\n    email.notif_from"), notif_from=None),
    row("S-numeric-user", ("no-start", "AttributeError",
                           "'int' object has no attribute 'encode'"), smtp_user=42),
]


def _settings(email: dict[str, Any]) -> Any:
    block: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": 2525,
                             "notif_from": "Matrix <noreply@example.org>"}
    block.update(email)
    block = {k: v for k, v in block.items() if not (k == "notif_from" and v is None)}
    return settings_from_config({"email": block})


@pytest.mark.parametrize("case", ROWS, ids=[r.id for r in ROWS])
def test_row(case: Row) -> None:
    outcome = predict(_settings(case.email), case.facts, recipient=case.recipient)
    assert (outcome.kind, outcome.exception, outcome.message) == case.expect, outcome.why
    assert outcome.why
    expected_http = {"ok": "200", "error": HTTP_500}.get(outcome.kind, NO_RESPONSE)
    assert outcome.http == expected_http


def test_row_ids_are_unique() -> None:
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids))


def test_every_spec_row_is_covered() -> None:
    ids = " ".join(r.id for r in ROWS)
    # A19/A20 (DATA refused) need a DATA reply, which ServerFacts does not record.
    for n in [*range(1, 19), 21, 22]:
        assert f"A{n}-" in ids
    for n in range(1, 15):  # B15 needs an explicit protocol timeout, which Synapse never sets
        assert f"B{n}-" in ids


def test_wrong_password_why_names_the_server_dependence() -> None:
    outcome = predict(_settings(USER), replace(BASE, auth=login(R(535, "5.7.8 no"))))
    assert "depends on the server" in outcome.why
    hang = predict(_settings(USER), replace(BASE, auth=login(dropped=True)))
    assert hang.kind == "hang" and "depends on the server" in hang.why


def test_typo_why_names_the_missing_password_not_the_server() -> None:
    outcome = predict(_settings({"smtp_user": "u", "smpt_pass": "x"}), BASE)
    assert "smtp_pass is not set" in outcome.why
    xoauth = predict(_settings(USER), replace(BASE, ehlo_lines=("mx", "AUTH XOAUTH2")))
    assert "XOAUTH2" in xoauth.why and "smtp_pass" not in xoauth.why


def test_logged_and_json() -> None:
    outcome = predict(_settings({"smtp_user": "u"}), BASE)
    assert outcome.logged.endswith(f"{TW}AUTHRequiredError: {AUTH_REQUIRED_TEXT}")
    assert json.loads(json.dumps(outcome.to_json()))["stage"] == "auth"
    hang = predict(_settings({}), replace(BASE, speaks=Speaks.TLS))
    assert hang.logged == "nothing after `Sending email to alice@example.org`"


def test_password_never_in_outcome() -> None:
    settings = replace(_settings(USER), smtp_pass=Secret("s3cret"))
    for facts in (BASE, replace(BASE, auth=login(R(535, "no"))), replace(BASE, ehlo_lines=())):
        assert "s3cret" not in json.dumps(predict(settings, facts).to_json())


def test_steps_are_independent_functions() -> None:
    """Each step can be run on its own: the envelope step alone catches non-ASCII."""
    send = model._Send(_settings({}), BASE, "\u00e9@x.org", "host.test")
    outcome = model._envelope(send)
    assert outcome is not None and outcome.exception == "UnicodeEncodeError"
    assert model._auth(send) is None  # no user: no AUTH needed
