"""The scenarios reproduce Synapse's rows: Twisted, driven as Synapse drives it, against each.

Expected outcomes come from spec/twisted-smtp.md section 3 and spec/synapse-observed.md. A
"hang" is a case with no result after the deadline: Synapse would wait forever.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maildoctor.testing.options import DEFAULT_PASSWORD, DEFAULT_USER
from maildoctor.testing.scenarios import SCENARIOS
from maildoctor.testing.server import EventKind

pytest.importorskip("twisted.mail.smtp")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 1.5
A1_TEXT = "Server does not support Client Authentication schemes [CRAM-MD5, LOGIN, PLAIN]"

# scenario, client changes, expected (outcome, exception class, start of str(e))
CASES = [
    ("works", {}, ("sent", None, None)),
    ("works", {"password": "nope"}, ("error", "AUTHDeclinedError", "535 5.7.8")),
    ("works", {"password": None}, ("error", "AUTHRequiredError", "502 " + A1_TEXT)),
    ("works", {"user": None, "password": None}, ("sent", None, None)),
    ("works", {"require_transport_security": True},
     ("error", "TLSRequiredError", "502 Server does not support secure communication")),
    ("starttls", {}, ("sent", None, None)),
    ("implicit-tls", {"force_tls": True}, ("sent", None, None)),
    ("implicit-tls", {}, ("hang", None, None)),
    ("untrusted-cert-starttls", {}, ("hang", None, None)),
    ("untrusted-cert-implicit", {"force_tls": True}, ("hang", None, None)),
    ("no-auth-offered", {}, ("error", "AUTHRequiredError", "502 " + A1_TEXT)),
    ("xoauth2-only", {}, ("error", "AUTHRequiredError", "502 " + A1_TEXT)),
    ("lowercase-auth", {}, ("error", "AUTHRequiredError", "502 " + A1_TEXT)),
    ("auth-equals-only", {}, ("error", "AUTHRequiredError", "502 " + A1_TEXT)),
    ("auth-required", {"user": None, "password": None},
     ("error", "SMTPDeliveryError", "530 5.7.0 Authentication required")),
    ("cram-md5", {}, ("sent", None, None)),
    ("cram-md5-broken", {}, ("error", "AUTHDeclinedError", "535 5.7.8 Error: authentication")),
    ("cram-md5-refused", {}, ("error", "AuthenticationError", "504 5.5.4")),
    ("auth-failure-drop", {"password": "nope"}, ("hang", None, None)),
    ("auth-failure-silent", {"password": "nope"}, ("hang", None, None)),
    ("auth-454", {}, ("hang", None, None)),
    ("starttls-454", {}, ("hang", None, None)),
    ("starttls-502", {}, ("error", "SMTPTLSError", "502 Could not complete the SSL/TLS")),
    ("greeting-421", {}, ("hang", None, None)),
    ("ehlo-rejected", {}, ("error", "EHLORequiredError", "502 Server does not support ESMTP")),
    ("sender-rejected", {},
     ("error", "SMTPDeliveryError", "553 5.7.1 <noreply@example.org>: Sender address rejected")),
    ("recipient-rejected", {}, ("error", "SMTPDeliveryError", "550 No recipients accepted")),
    ("data-refused", {}, ("error", "SMTPDeliveryError", "554 5.5.1 Error: no valid recipients")),
    ("message-too-large", {}, ("error", "SMTPDeliveryError", "552 5.3.4")),
    ("not-smtp", {}, ("error", "SMTPProtocolError", "Invalid response from SMTP server")),
    ("silent", {}, ("hang", None, None)),
    ("stall-after-ehlo", {}, ("hang", None, None)),
    ("drop-after-ehlo", {}, ("hang", None, None)),
    ("drop-after-mail", {}, ("hang", None, None)),
    ("drop-after-data", {}, ("hang", None, None)),
]


def test_scenarios_give_twisted_the_outcomes_synapse_gets(smtp_scenario):
    cases, servers, ca_file = [], [], None
    for name, client, _ in CASES:
        server = smtp_scenario(name)
        servers.append(server)
        ca_file = server.ca_file  # one CA per process: every server's file is the same CA
        cases.append({"host": "127.0.0.1", "port": server.port, "user": DEFAULT_USER,
                      "password": DEFAULT_PASSWORD, **client})
    env = {**os.environ, "SSL_CERT_FILE": ca_file}
    run = subprocess.run(
        [sys.executable, "-m", "tests.testing.twisted_client", json.dumps(cases), str(DEADLINE)],
        capture_output=True, text=True, env=env, timeout=60, check=False, cwd=REPO_ROOT,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout.strip().splitlines()[-1])
    mismatches = []
    for (name, client, (outcome, kind, text)), got in zip(CASES, results, strict=True):
        ok = got["outcome"] == outcome and (
            kind is None or (got["type"] == kind and got["text"].startswith(text))
        )
        if not ok:
            mismatches.append(f"{name} {client}: expected {outcome} {kind} {text!r}, got {got}")
    assert not mismatches, "\n".join(mismatches)
    # After a 535 Twisted errbacks *and* says QUIT. So a Synapse that hangs on a wrong
    # password and later drops the connection without QUIT (synapse-observed.md, against
    # aiosmtpd) never got a 535: that is the "silent" server, not the "reply" one.
    assert servers[1].wait_for(EventKind.DISCONNECT).detail == "closed after QUIT"
    silent = servers[[name for name, _, _ in CASES].index("auth-failure-silent")]
    assert silent.wait_for(EventKind.DISCONNECT).detail == "closed by the client without QUIT"
    assert not any(e.kind is EventKind.REPLY and e.detail.startswith("535")
                   for e in silent.events)
    assert all(name in SCENARIOS for name, _, _ in CASES)
