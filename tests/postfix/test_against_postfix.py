"""probe, the Synapse model, send, and a real Synapse, against a real Postfix + Dovecot SASL.

The second table of spec/synapse-observed.md: submission with STARTTLS (AUTH only after
TLS), an implicit-TLS port, a wrong password, the smpt_pass typo, and the CRAM-MD5 trap.
"""

from __future__ import annotations

import email
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from maildoctor.cli.main import cli
from maildoctor.doctor import ProbeRun, probe_config
from maildoctor.smtp.report import ProbeOptions

pytestmark = pytest.mark.postfix

AUTH_DECLINED = "twisted.mail._except.AUTHDeclinedError"


def block(pf: Any, *, port: str = "submission", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "smtp_host": pf.host,
        "smtp_port": pf.submission_port if port == "submission" else pf.smtps_port,
        "smtp_user": pf.user, "smtp_pass": pf.password, "tlsname": "mail.test",
        "notif_from": "Matrix <noreply@example.org>",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def probe(pf: Any, tmp_path: Path, email_block: dict[str, Any], *, trusted: bool = True,
          **options: Any) -> ProbeRun:
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text(yaml.safe_dump({"server_name": "example.org", "report_stats": False,
                                   "public_baseurl": "https://matrix.example.org/",
                                   "email": email_block}, sort_keys=False))
    return probe_config([str(cfg)], ProbeOptions(timeout=10, ca_file=pf.ca_file if trusted
                                                 else None, **options))


def test_starttls_submission_works(postfix: Any, tmp_path: Path) -> None:
    run = probe(postfix, tmp_path, block(postfix))
    assert run.diagnosis.ok, run.diagnosis
    assert run.report.facts.auth is not None and run.report.facts.auth.mechanism == "LOGIN"


def test_ip_in_certificate_without_tlsname(postfix: Any, tmp_path: Path) -> None:
    run = probe(postfix, tmp_path, block(postfix, tlsname=None))
    assert run.diagnosis.ok, run.diagnosis


def test_untrusted_certificate_hangs(postfix: Any, tmp_path: Path) -> None:
    run = probe(postfix, tmp_path, block(postfix), trusted=False)
    assert run.outcome.kind == "hang"
    assert "certificate" in run.diagnosis.root_cause


def test_wrong_password_is_declined(postfix: Any, tmp_path: Path) -> None:
    run = probe(postfix, tmp_path, block(postfix, smtp_pass="nope"))
    assert run.outcome.kind == "error" and run.outcome.exception == AUTH_DECLINED
    assert run.outcome.message.startswith("535 5.7.8")
    assert run.diagnosis.key == "email.smtp_pass"


def test_seed_typo(postfix: Any, tmp_path: Path) -> None:
    b = block(postfix, smtp_pass=None)
    b["smpt_pass"] = postfix.password
    run = probe(postfix, tmp_path, b)
    assert run.outcome.exception == "twisted.mail._except.AUTHRequiredError"
    assert run.diagnosis.key == "email.smpt_pass"
    assert "PLAIN and LOGIN" in run.diagnosis.root_cause or "LOGIN" in run.diagnosis.root_cause


def test_implicit_tls_works_with_force_tls(postfix: Any, tmp_path: Path) -> None:
    run = probe(postfix, tmp_path, block(postfix, port="smtps", force_tls=True))
    assert run.diagnosis.ok, run.diagnosis


def test_implicit_tls_port_without_force_tls(postfix: Any, tmp_path: Path) -> None:
    run = probe(postfix, tmp_path, block(postfix, port="smtps"))
    assert run.outcome.kind == "hang"
    assert run.diagnosis.key == "email.force_tls" and run.diagnosis.value is True


@pytest.mark.parametrize("to", [None, "alice@example.org"])
def test_sender_not_owned_is_refused_at_rcpt(postfix: Any, tmp_path: Path,
                                             to: str | None) -> None:
    """reject_sender_login_mismatch: Postfix answers RCPT (smtpd_delay_reject = yes), with
    its own words; the key to change is notif_from, with or without --to."""
    run = probe(postfix, tmp_path, block(postfix, smtp_port=postfix.sender_rules_port), to=to)
    facts = run.report.facts
    assert facts.mail is not None and facts.mail.code == 250
    refused = facts.rcpt if to else facts.rcpt_self
    assert refused is not None and refused.code == 553
    assert "Sender address rejected: not owned by user" in refused.text
    assert run.diagnosis.key == "email.notif_from", run.diagnosis
    assert run.diagnosis.cause_id == "postfix-sender-login-mismatch"
    assert run.outcome.kind == "error" and run.outcome.stage == "rcpt"


def test_owned_sender_passes_the_login_rule(postfix: Any, tmp_path: Path) -> None:
    run = probe(postfix, tmp_path, block(postfix, smtp_port=postfix.sender_rules_port,
                                         notif_from="Matrix <synapse@example.org>"))
    assert run.diagnosis.ok, run.diagnosis
    assert run.report.facts.rcpt_self is not None and run.report.facts.rcpt_self.code == 250


def test_unknown_sender_domain_is_refused_at_rcpt(postfix_unknown_domains: Any,
                                                   tmp_path: Path) -> None:
    """reject_unknown_sender_domain: the sender passes the login rule, but its domain has no
    DNS records (the test DNS says NXDOMAIN); Postfix answers RCPT with 450 4.1.8, which a
    retry will not change: the key is notif_from."""
    pf = postfix_unknown_domains
    run = probe(pf, tmp_path, block(pf, smtp_port=pf.sender_rules_port,
                                    notif_from="Matrix <synapse@example.org>"))
    refused = run.report.facts.rcpt_self
    assert refused is not None and refused.code == 450, run.report.facts
    assert "Sender address rejected: Domain not found" in refused.text
    assert run.diagnosis.key == "email.notif_from", run.diagnosis
    assert run.diagnosis.cause_id == "postfix-unknown-sender-domain"
    assert run.outcome.kind == "error" and run.outcome.stage == "rcpt"


def test_send_names_notif_from_for_a_sender_refused_at_rcpt(postfix: Any,
                                                            tmp_path: Path) -> None:
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text(yaml.safe_dump({"server_name": "example.org", "report_stats": False,
                                   "public_baseurl": "https://matrix.example.org/",
                                   "email": block(postfix,
                                                  smtp_port=postfix.sender_rules_port)}))
    result = CliRunner(env={"SSL_CERT_FILE": postfix.ca_file}).invoke(
        cli, ["send", str(cfg), "--to", "alice@example.org", "--ca-file", postfix.ca_file])
    assert result.exit_code == 1, result.output
    assert "what the reply blames: sender" in result.output
    assert "notif_from" in result.output.split("fix:", 1)[1]


def test_cram_md5_trap(postfix_cram_trap: Any, tmp_path: Path) -> None:
    run = probe(postfix_cram_trap, tmp_path, block(postfix_cram_trap))
    assert run.outcome.kind == "error" and run.outcome.exception == AUTH_DECLINED
    assert "CRAM-MD5" in run.diagnosis.root_cause
    assert "never falls back" in run.diagnosis.root_cause


@pytest.mark.parametrize("engine", ["native", "synapse"])
def test_send_delivers_through_postfix(postfix: Any, tmp_path: Path, engine: str) -> None:
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text(yaml.safe_dump({"server_name": "example.org",
                                   "public_baseurl": "https://matrix.example.org/",
                                   "email": block(postfix)}, sort_keys=False))
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org",
                                      "--kind", "password-reset", "--engine", engine,
                                      "--ca-file", postfix.ca_file, "--format", "json",
                                      "--timeout", "20"])
    assert result.exit_code == 0, result.output
    import json

    info = json.loads(result.output)
    got = postfix.wait_for_message(info["message_id"])
    assert got["Subject"] == "[example.org] Password reset"
    msg = email.message_from_bytes(got.as_bytes())
    assert [p.get_content_type() for p in msg.get_payload()] == ["text/plain", "text/html"]
