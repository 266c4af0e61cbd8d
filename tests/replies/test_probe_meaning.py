"""The issue's cases, end to end through `probe` against a real aiosmtpd server: the
diagnosis names the input the server's reply blames, with its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maildoctor.doctor import ProbeRun, probe_config
from maildoctor.smtp.report import ProbeOptions
from maildoctor.testing.server import ServerOptions, TestServer

MISMATCH = ("553 5.7.1 <noreply@example.org>: Sender address rejected: not owned by user "
            "synapse@example.org")


def run(server: TestServer, tmp_path: Path, *, password: str = "s3cret",
        **options: Any) -> ProbeRun:
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text(
        "server_name: example.org\npublic_baseurl: https://m.example.org/\n"
        f"email:\n  smtp_host: 127.0.0.1\n  smtp_port: {server.port}\n"
        f"  smtp_user: synapse@example.org\n  smtp_pass: {password}\n"
        "  notif_from: 'Matrix <noreply@example.org>'\n")
    options.setdefault("timeout", 2.0)
    return probe_config([str(cfg)], ProbeOptions(ca_file=server.ca_file, **options))


@pytest.mark.parametrize("to", [None, "alice@example.org"])
def test_sender_refused_at_rcpt_names_notif_from(to: str | None, tmp_path: Path,
                                                 smtp_server: Any) -> None:
    server = smtp_server(ServerOptions(replies={"rcpt": MISMATCH}))
    found = run(server, tmp_path, to=to)
    d = found.diagnosis
    assert not d.ok and d.key == "email.notif_from", d
    assert "reject_sender_login_mismatch" in d.root_cause
    assert "not owned by user" in d.root_cause
    assert found.outcome.kind == "error" and found.outcome.stage == "rcpt"
    rcpt = [e for e in server.events if "RCPT" in str(e)]
    assert rcpt, "the probe sent RCPT TO"
    assert not any("DATA" in str(e) for e in server.events)


def test_without_to_the_probe_sends_rcpt_for_the_sender_itself(tmp_path: Path,
                                                                smtp_server: Any) -> None:
    server = smtp_server()
    found = run(server, tmp_path)
    assert found.diagnosis.ok
    envelope = found.report.stage("envelope")
    assert envelope is not None and envelope.facts["to"] == "noreply@example.org"
    assert "RCPT TO:<noreply@example.org> 250" in envelope.summary
    sent = [line.text for line in found.report.transcript]
    assert "RCPT TO:<noreply@example.org>" in sent and "RSET" in sent and "QUIT" in sent
    assert "DATA" not in sent


def test_recipient_refusal_of_the_sender_itself_is_not_a_verdict(tmp_path: Path,
                                                                  smtp_server: Any) -> None:
    """Without --to, a server that does not relay to the sender's own domain says nothing
    about Synapse's recipients: a warning, and Synapse is predicted to send."""
    server = smtp_server(ServerOptions(replies={
        "rcpt": "554 5.7.1 <noreply@example.org>: Relay access denied"}))
    found = run(server, tmp_path)
    # Relay access denied blames the login (the catalogue), which holds for every mail.
    assert not found.diagnosis.ok and found.diagnosis.cause_id == "postfix-relay-access-denied"
    server2 = smtp_server(ServerOptions(replies={
        "rcpt": "550 5.1.1 <noreply@example.org>: Recipient address rejected: User unknown"}))
    found2 = run(server2, tmp_path)
    assert found2.diagnosis.ok, found2.diagnosis
    envelope = found2.report.stage("envelope")
    assert envelope is not None and str(envelope.status) == "warn"


def test_m365_smtp_auth_disabled_beats_the_password_heuristic(tmp_path: Path,
                                                              smtp_server: Any) -> None:
    """The server's own words come first; the config finding (a password with '#') after."""
    server = smtp_server(ServerOptions(mechanisms=("LOGIN",), replies={
        "auth_failed": "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
                       "is disabled for the Tenant."}))
    found = run(server, tmp_path, password="changeme")  # MD206: a placeholder password
    d = found.diagnosis
    assert "SMTP AUTH" in d.root_cause and "5.7.139" in d.root_cause
    assert "enable SMTP AUTH for the mailbox" in d.fix and "XOAUTH2" in d.fix
    assert "the password is not what you meant" not in d.root_cause
    assert d.root_cause.index("5.7.139") < d.root_cause.index("also, in the config: ")
    assert d.code == "MD206"


def test_greylisting_is_temporary_and_the_relay_fixes_it(tmp_path: Path,
                                                          smtp_server: Any) -> None:
    server = smtp_server(ServerOptions(replies={
        "rcpt": "450 4.2.0 <alice@example.org>: Recipient address rejected: Greylisted"}))
    d = run(server, tmp_path, to="alice@example.org").diagnosis
    assert not d.ok and "greylist" in d.root_cause
    assert "maildoctor relay" in d.fix
    assert "does not retry" in d.consequence
    assert "check the recipient address" not in d.fix


def test_silence_after_the_password_prompt_is_silence(tmp_path: Path,
                                                      smtp_server: Any) -> None:
    server = smtp_server(ServerOptions(mechanisms=("LOGIN",), auth_failure="silent"))
    d = run(server, tmp_path, password="wrong", timeout=1.0).diagnosis
    assert "no answer to it within 1 s" in d.root_cause, d
    assert "refused" not in d.root_cause and "UGFzc3dvcmQ" not in d.root_cause
    assert "Password:" in d.root_cause
    assert "hangs" in d.consequence
    assert d.fix.startswith("likely causes, in order")
