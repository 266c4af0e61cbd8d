"""Issue 3 item 4: the Synapse model's prediction equals what a real Synapse 1.163.2 does.

For every row of spec/synapse-observed.md (aiosmtpd part, in maildoctor.testing.observed)
and every test-server scenario of spec 2.4 / twisted-smtp 3A-3B the server can produce:
probe the server with the config, predict with the model, then start a real Synapse with the
same email: block, trigger a registration mail, and compare the outcome (ok / error / hang /
no-start) and, for errors, the exception class and its message.

Where the spec's observations disagree (wrong password), these tests decide per server
behaviour: the test server can answer 535 and stay (Postfix-like) or go silent / drop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from maildoctor.doctor import probe_config
from maildoctor.smtp.report import ProbeOptions
from maildoctor.testing.observed import ROWS, SCENARIO_ROWS, Row, email_block
from maildoctor.testing.ports import free_port as _free_port
from maildoctor.testing.scenarios import SCENARIOS
from maildoctor.testing.server import TestServer
from tests.infra.synapse import SynapseHarness

pytestmark = pytest.mark.synapse

HANG_BOUND = 4.0  # seconds without an HTTP answer that count as a hang

AUTH = {"smtp_user": "synapse@example.org", "smtp_pass": "s3cret"}

# More server behaviours (spec 2.4, twisted-smtp 3A/3B) as rows: scenario + config changes.
EXTRA: dict[str, Row] = {
    "greeting-421": Row("greeting-421", AUTH, ""),
    "greeting-554": Row("greeting-554", AUTH, ""),
    "starttls-454": Row("starttls-454", AUTH, ""),
    "starttls-502": Row("starttls-502", AUTH, ""),
    "auth-454": Row("auth-454", AUTH, ""),
    "ehlo-rejected-no-auth": Row("ehlo-rejected", {}, ""),
    "ehlo-rejected-with-auth": Row("ehlo-rejected", AUTH, ""),
    "recipient-rejected": Row("recipient-rejected", AUTH, ""),
    "greylisted": Row("greylisted", AUTH, ""),
    "not-smtp": Row("not-smtp", AUTH, ""),
    "silent": Row("silent", AUTH, ""),
    "drop-after-ehlo": Row("drop-after-ehlo", AUTH, ""),
    "stall-after-ehlo": Row("stall-after-ehlo", AUTH, ""),
    "cram-md5-works": Row("cram-md5", AUTH, ""),
    "cram-md5-broken": Row("cram-md5-broken", AUTH, ""),
    "auth-failure-silent": Row("auth-failure-silent", {**AUTH, "smtp_pass": "nope"}, ""),
    "auth-failure-drop": Row("auth-failure-drop", {**AUTH, "smtp_pass": "nope"}, ""),
    "auth-required-no-user": Row("auth-required", {}, ""),
    "enable-tls-off-starttls-required": Row("starttls-required", {**AUTH, "enable_tls": False},
                                            ""),
    "password-without-user": Row("works", {"smtp_pass": "s3cret"}, ""),
    "starttls-trusted": Row("starttls", AUTH, ""),
    "implicit-tls-trusted": Row("implicit-tls", {**AUTH, "force_tls": True}, ""),
    "name-mismatch": Row("name-mismatch-starttls", AUTH, "", trusted=True),
}

# Scenarios whose refusal holds for every recipient: probed without --to too.
WITHOUT_TO = ("sender-rejected-at-rcpt", "greylisted", "smtp-auth-disabled", "sender-rejected")

CASES = {**{f"observed:{k}": v for k, v in ROWS.items()}, **EXTRA,
         **{f"scenario:{k}": v for k, v in SCENARIO_ROWS.items()}}




@pytest.mark.parametrize("name", sorted(CASES))
def test_model_predicts_what_synapse_does(name: str, tmp_path: Path,
                                          synapse_harness: SynapseHarness) -> None:
    row = CASES[name]
    opts = SCENARIOS[row.server].replace(port=0) if row.server else None
    server = TestServer(opts).start() if opts else None
    try:
        port = server.port if server else _free_port()
        block: dict[str, Any] = email_block(row, port)
        ca = server.ca_file if server and row.trusted else None
        cfg = tmp_path / "homeserver.yaml"
        cfg.write_text(yaml.safe_dump({"server_name": "example.org", "report_stats": False,
                                       "email": block}, sort_keys=False))
        # The registration mail goes to alice@: probe RCPT for her too. (The probe never
        # sends DATA, so a server that refuses only the message body is out of its sight.)
        predicted = probe_config([str(cfg)], ProbeOptions(timeout=3.0, ca_file=ca,
                                                          to="alice@example.org")).outcome
        # Without --to (RCPT TO the sender itself) the prediction must hold as well when the
        # refusal is about something every mail shares (the sender, greylisting, the login).
        alone = probe_config([str(cfg)], ProbeOptions(timeout=3.0, ca_file=ca)).outcome \
            if row.server in WITHOUT_TO else None
        env = {"SSL_CERT_FILE": ca} if ca else {}
        with synapse_harness.run(block, env=env) as run:
            if run.no_start is not None:
                actual = run.no_start
            else:
                actual = run.request_registration_mail("alice@example.org",
                                                       timeout=HANG_BOUND)
    finally:
        if server:
            server.stop()
    if row.after_data:
        # The probe never sends DATA: it sees a server that works, and must say so; the
        # scenario list and Synapse still agree on what happens after DATA.
        assert (predicted.kind, predicted.stage) == ("ok", "data"), predicted
        assert row.kind == actual.kind, (row, actual)
        return
    if row.kind:  # what the scenario list says Synapse does
        assert (row.kind, predicted.kind) == (actual.kind, actual.kind), (predicted, actual)
    assert predicted.kind == actual.kind, (predicted, actual)
    if alone is not None:
        assert (alone.kind, alone.exception) == (actual.kind, actual.exception), (alone, actual)
    if actual.kind == "error":
        assert predicted.exception == actual.exception, (predicted, actual)
        assert predicted.message.splitlines()[0] == actual.message.splitlines()[0], \
            (predicted, actual)
    if row.kind:  # the observed table's own expectation agrees too
        assert actual.kind == row.kind
