"""The model against a real Synapse, with a real Postfix + Dovecot SASL as the server
(the second table of spec/synapse-observed.md). Certificates are trusted through
SSL_CERT_FILE for Synapse and --ca-file for the probe, as an admin would set them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from maildoctor.doctor import probe_config
from maildoctor.smtp.report import ProbeOptions
from tests.infra.synapse import SynapseHarness

pytestmark = [pytest.mark.synapse, pytest.mark.postfix]

# name -> (fixture, email block changes, expected Synapse outcome)
ROWS: dict[str, tuple[str, dict[str, Any], str]] = {
    "starttls-works": ("postfix", {}, "ok"),
    "ip-in-certificate": ("postfix", {"tlsname": None}, "ok"),
    "wrong-password": ("postfix", {"smtp_pass": "nope"}, "error"),
    "seed-typo": ("postfix", {"smtp_pass": None, "smpt_pass": "s3cret"}, "error"),
    "implicit-tls-works": ("postfix", {"port": "smtps", "force_tls": True}, "ok"),
    "implicit-tls-without-force-tls": ("postfix", {"port": "smtps"}, "hang"),
    "cram-md5-trap": ("postfix_cram_trap", {}, "error"),
    # reject_sender_login_mismatch, answered at RCPT (smtpd_delay_reject = yes)
    "sender-not-owned": ("postfix", {"port": "rules"}, "error"),
    "sender-owned": ("postfix", {"port": "rules", "notif_from": "M <synapse@example.org>"},
                     "ok"),
    # reject_unknown_sender_domain (the test DNS says NXDOMAIN): 450 4.1.8 at RCPT
    "sender-domain-unknown": ("postfix_unknown_domains",
                              {"port": "rules", "notif_from": "M <synapse@example.org>"},
                              "error"),
}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_model_matches_synapse_against_postfix(name: str, tmp_path: Path,
                                               request: pytest.FixtureRequest,
                                               synapse_harness: SynapseHarness) -> None:
    fixture, changes, expected = ROWS[name]
    pf = request.getfixturevalue(fixture)
    changes = dict(changes)
    port = {"smtps": pf.smtps_port, "rules": pf.sender_rules_port}.get(
        changes.pop("port", None), pf.submission_port)
    block: dict[str, Any] = {"smtp_host": pf.host, "smtp_port": port, "smtp_user": pf.user,
                             "smtp_pass": pf.password, "tlsname": "mail.test",
                             "notif_from": "Matrix <noreply@example.org>", **changes}
    block = {k: v for k, v in block.items() if v is not None}
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text(yaml.safe_dump({"server_name": "example.org", "email": block}))
    predicted = probe_config([str(cfg)], ProbeOptions(timeout=10, ca_file=pf.ca_file,
                                                      to="alice@example.org")).outcome
    # Without --to the probe asks RCPT TO for the sender itself: the same prediction.
    alone = probe_config([str(cfg)], ProbeOptions(timeout=10, ca_file=pf.ca_file)).outcome
    assert alone.kind == predicted.kind, (alone, predicted)
    with synapse_harness.run(block, env={"SSL_CERT_FILE": pf.ca_file}) as run:
        actual = run.no_start or run.request_registration_mail("alice@example.org",
                                                               timeout=12.0)
    assert actual.kind == expected, actual
    assert predicted.kind == actual.kind, (predicted, actual)
    if actual.kind == "error":
        assert predicted.exception == actual.exception, (predicted, actual)
        assert predicted.message.splitlines()[0] == actual.message.splitlines()[0]
