"""The rows of spec/synapse-observed.md (aiosmtpd part) as data: which test-server scenario,
what the email: block changes, and what Synapse does (the outcome observed with a real
Synapse 1.163.2), plus the key a correct diagnosis must point at.

Used by the acceptance test (tests/test_scenarios.py), the probe benchmark
(bench/probe_speed.py) and the conformance tests against a real Synapse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from maildoctor.testing.scenarios import SCENARIOS

AUTH_REQUIRED = "twisted.mail._except.AUTHRequiredError"
AUTH_REQUIRED_TEXT = ("502 Server does not support Client Authentication schemes "
                      "[CRAM-MD5, LOGIN, PLAIN]")


@dataclass(frozen=True)
class Row:
    """One observed scenario: the server, what the config changes, what must come out."""

    server: str | None  # a SCENARIOS name; None = nothing listening
    email: dict[str, Any]  # changes to the base email block ({"smtp_port": None} deletes)
    kind: str  # the Synapse outcome: ok | error | hang | no-start
    exception: str = ""
    message: str = ""
    key: str | None = None  # the key the diagnosis points at (None: no key, or ok)
    cause: tuple[str, ...] = ()  # words the root cause must contain
    value: Any = field(default=None)
    trusted: bool = True  # give the probe the test server's CA (as SSL_CERT_FILE would)
    after_data: bool = False  # the server fails only after DATA, which the probe never sends


BASE_AUTH = {"smtp_user": "synapse@example.org", "smtp_pass": "s3cret"}

ROWS: dict[str, Row] = {
    "works": Row("works", BASE_AUTH, "ok"),
    "seed-typo": Row("works", {"smtp_user": "synapse@example.org", "smpt_pass": "s3cret"},
                     "error", AUTH_REQUIRED, AUTH_REQUIRED_TEXT, key="email.smpt_pass",
                     cause=("smpt_pass", "PLAIN", "LOGIN")),
    "no-auth-offered": Row("no-auth-offered", BASE_AUTH, "error", AUTH_REQUIRED,
                           AUTH_REQUIRED_TEXT, key="email.smtp_user",
                           cause=("advertise AUTH",)),
    "xoauth2-only": Row("xoauth2-only", BASE_AUTH, "error", AUTH_REQUIRED, AUTH_REQUIRED_TEXT,
                        cause=("XOAUTH2",)),
    "implicit-tls-without-force-tls": Row("implicit-tls", BASE_AUTH, "hang",
                                          key="email.force_tls", value=True,
                                          cause=("TLS from the first byte",)),
    "force-tls-on-plaintext": Row("works", {**BASE_AUTH, "force_tls": True}, "hang",
                                  key="email.force_tls", value=False,
                                  cause=("plain SMTP",)),
    "force-tls-untrusted": Row("untrusted-cert-implicit", {**BASE_AUTH, "force_tls": True},
                               "hang", cause=("certificate",),
                               trusted=False),
    "starttls-untrusted": Row("untrusted-cert-starttls", BASE_AUTH, "hang",
                              cause=("certificate",), trusted=False),
    "require-tls-no-starttls": Row("works", {**BASE_AUTH, "require_transport_security": True},
                                   "error", "twisted.mail._except.TLSRequiredError",
                                   "502 Server does not support secure communication via "
                                   "TLS / SSL", key="email.require_transport_security",
                                   cause=("STARTTLS",)),
    "sender-rejected": Row("sender-rejected", BASE_AUTH, "error",
                           "twisted.mail._except.SMTPDeliveryError", key="email.notif_from",
                           cause=("sender",)),
    "nothing-listening": Row(None, BASE_AUTH, "error",
                             "twisted.internet.error.ConnectionRefusedError",
                             key="email.smtp_port", cause=("refused",)),
    "host-does-not-resolve": Row("works", {**BASE_AUTH, "smtp_host": "smtp.invalid"}, "error",
                                 "twisted.internet.error.DNSLookupError",
                                 key="email.smtp_host", cause=("does not exist",)),
    "port-as-string": Row("works", {**BASE_AUTH, "smtp_port": "PORT-AS-STRING"}, "ok"),
    "numeric-password": Row("works", {"smtp_user": "synapse@example.org", "smtp_pass": 123456},
                            "no-start", key="email.smtp_pass", cause=("int",)),
    "no-user-no-auth": Row("works", {}, "ok"),
    # The wrong-password outcome depends on what the server does after the failure.
    "wrong-password-535": Row("works", {**BASE_AUTH, "smtp_pass": "nope"}, "error",
                              "twisted.mail._except.AUTHDeclinedError", key="email.smtp_pass",
                              cause=("refused the login",)),
    "wrong-password-drop": Row("auth-failure-drop", {**BASE_AUTH, "smtp_pass": "nope"}, "hang",
                               key="email.smtp_pass", cause=("closed the connection",)),
    "cram-md5-trap": Row("cram-md5-broken", BASE_AUTH, "error", key=None,
                         cause=("CRAM-MD5", "never falls back")),
}



def email_block(row: Row, port: int) -> dict[str, Any]:
    """The email: block for ``row`` against a server on 127.0.0.1:``port``."""
    email: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": port,
                             "notif_from": "Matrix <noreply@example.org>"}
    for key, value in row.email.items():
        if value == "PORT-AS-STRING":
            value = str(port)
        email[key] = value
    if (row.server and SCENARIOS[row.server].tls != "plain") or row.email.get("force_tls"):
        email["tlsname"] = "localhost"  # a name in the test certificate
    return email


def homeserver_yaml(row: Row, port: int) -> str:
    return yaml.safe_dump({"server_name": "example.org", "report_stats": False,
                           "public_baseurl": "https://matrix.example.org/",
                           "email": email_block(row, port)}, sort_keys=False)


WRONG_PASS = {**BASE_AUTH, "smtp_pass": "nope"}

#: Every test-server scenario with the client its description is about, and what a real
#: Synapse does then. ``maildoctor testserver --list-scenarios`` words, the Synapse model and
#: a real Synapse are held to these by tests/conformance/test_model_vs_synapse.py, and a test
#: makes sure no scenario is left out.
SCENARIO_ROWS: dict[str, Row] = {
    "works": Row("works", BASE_AUTH, "ok"),
    "starttls": Row("starttls", BASE_AUTH, "ok"),
    "implicit-tls": Row("implicit-tls", BASE_AUTH, "hang"),
    "no-auth-offered": Row("no-auth-offered", BASE_AUTH, "error", AUTH_REQUIRED),
    "xoauth2-only": Row("xoauth2-only", BASE_AUTH, "error", AUTH_REQUIRED),
    "lowercase-auth": Row("lowercase-auth", BASE_AUTH, "error", AUTH_REQUIRED),
    "auth-equals-only": Row("auth-equals-only", BASE_AUTH, "error", AUTH_REQUIRED),
    "auth-after-starttls-only": Row("auth-after-starttls-only",
                                    {**BASE_AUTH, "enable_tls": False}, "error", AUTH_REQUIRED),
    "auth-required": Row("auth-required", {}, "error",
                         "twisted.mail._except.SMTPDeliveryError"),
    "starttls-required": Row("starttls-required", {**BASE_AUTH, "enable_tls": False}, "error",
                             "twisted.mail._except.SMTPDeliveryError"),
    "no-starttls": Row("no-starttls", {**BASE_AUTH, "require_transport_security": True},
                       "error", "twisted.mail._except.TLSRequiredError"),
    "untrusted-cert-starttls": Row("untrusted-cert-starttls", BASE_AUTH, "hang", trusted=False),
    "untrusted-cert-implicit": Row("untrusted-cert-implicit", {**BASE_AUTH, "force_tls": True},
                                   "hang", trusted=False),
    "self-signed-starttls": Row("self-signed-starttls", BASE_AUTH, "hang", trusted=False),
    "expired-cert-starttls": Row("expired-cert-starttls", BASE_AUTH, "hang"),
    "name-mismatch-starttls": Row("name-mismatch-starttls", BASE_AUTH, "hang"),
    "starttls-454": Row("starttls-454", BASE_AUTH, "hang"),
    "starttls-502": Row("starttls-502", BASE_AUTH, "error", "twisted.mail._except.SMTPTLSError"),
    "greeting-421": Row("greeting-421", BASE_AUTH, "hang"),
    "greeting-554": Row("greeting-554", BASE_AUTH, "hang"),
    "ehlo-rejected": Row("ehlo-rejected", BASE_AUTH, "error",
                         "twisted.mail._except.EHLORequiredError"),
    "ehlo-helo-rejected": Row("ehlo-helo-rejected", BASE_AUTH, "error",
                              "twisted.mail._except.EHLORequiredError"),
    "auth-454": Row("auth-454", BASE_AUTH, "hang"),
    "cram-md5": Row("cram-md5", BASE_AUTH, "ok"),
    "cram-md5-broken": Row("cram-md5-broken", BASE_AUTH, "error",
                           "twisted.mail._except.AUTHDeclinedError"),
    "cram-md5-refused": Row("cram-md5-refused", BASE_AUTH, "error"),
    "auth-failure-drop": Row("auth-failure-drop", WRONG_PASS, "hang"),
    "auth-failure-silent": Row("auth-failure-silent", WRONG_PASS, "hang"),
    "sender-rejected": Row("sender-rejected", BASE_AUTH, "error",
                           "twisted.mail._except.SMTPDeliveryError"),
    "recipient-rejected": Row("recipient-rejected", BASE_AUTH, "error",
                              "twisted.mail._except.SMTPDeliveryError"),
    "greylisted": Row("greylisted", BASE_AUTH, "error", "twisted.mail._except.SMTPDeliveryError"),
    "sender-rejected-at-rcpt": Row("sender-rejected-at-rcpt", BASE_AUTH, "error",
                                   "twisted.mail._except.SMTPDeliveryError"),
    "smtp-auth-disabled": Row("smtp-auth-disabled", WRONG_PASS, "error",
                              "twisted.mail._except.AUTHDeclinedError"),
    "data-refused": Row("data-refused", BASE_AUTH, "error",
                        "twisted.mail._except.SMTPDeliveryError", after_data=True),
    "message-too-large": Row("message-too-large", BASE_AUTH, "error",
                             "twisted.mail._except.SMTPDeliveryError", after_data=True),
    "not-smtp": Row("not-smtp", BASE_AUTH, "error"),
    "silent": Row("silent", BASE_AUTH, "hang"),
    "stall-after-ehlo": Row("stall-after-ehlo", BASE_AUTH, "hang"),
    "drop-after-greeting": Row("drop-after-greeting", BASE_AUTH, "hang"),
    "drop-after-ehlo": Row("drop-after-ehlo", BASE_AUTH, "hang"),
    "drop-after-mail": Row("drop-after-mail", BASE_AUTH, "hang"),
    "drop-after-data": Row("drop-after-data", BASE_AUTH, "hang", after_data=True),
    "slow": Row("slow", BASE_AUTH, "hang"),
    "endless-reply": Row("endless-reply", BASE_AUTH, "hang"),
    "huge-reply": Row("huge-reply", BASE_AUTH, "ok"),
    "invalid-utf8": Row("invalid-utf8", BASE_AUTH, "ok"),
}
