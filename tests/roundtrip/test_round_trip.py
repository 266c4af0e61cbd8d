"""`maildoctor send --imap`: the round trip through real Postfix signing with OpenDKIM, a
second OpenDKIM verifying as the receiving server (writing Authentication-Results), and
Dovecot filing into Inbox or Junk (Sieve) and serving IMAPS; DKIM keys from the test Knot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from maildoctor.cli.main import cli
from tests.infra.mailbox import DKIM_DOMAIN, JUNK_DOMAIN, dkim_zone, publish_dkim_key
from tests.postfix.files import MAILBOX_PASSWORD, MAILBOX_USER, PASSWORD, USER
from tests.roundtrip.test_verdicts import _key
from tests.senderdns.zones import ORIGIN

pytestmark = pytest.mark.postfix


def _config(tmp_path: Path, pf: Any, domain: str, base: str = "") -> Path:
    path = tmp_path / "homeserver.yaml"
    path.write_text("\n".join([
        "server_name: example.org",
        *([f"public_baseurl: {base}"] if base else []),
        "email:", "  smtp_host: 127.0.0.1", f"  smtp_port: {pf.smtps_port}",
        "  force_tls: true", f"  smtp_user: {USER}", f"  smtp_pass: '{PASSWORD}'",
        f"  notif_from: 'Matrix <noreply@{domain}>'", ""]))
    return path


def _send(tmp_path: Path, pf: Any, knot: Any, domain: str, *extra: str,
          base: str = "") -> Any:
    secret = tmp_path / "imap-password"
    secret.write_text(MAILBOX_PASSWORD + "\n")
    cfg = _config(tmp_path, pf, domain, base)
    assert pf.mailbox is not None
    return CliRunner().invoke(cli, [
        "send", str(cfg), "--to", MAILBOX_USER, "--ca-file", pf.ca_file,
        "--imap", f"127.0.0.1:{pf.mailbox.imaps_port}", "--imap-password-file", str(secret),
        "--resolver", knot.resolver, "--wait", "20", "--timeout", "10", *extra])


def test_the_mail_arrives_signed_in_the_inbox_and_is_deleted(
        tmp_path: Path, postfix_mailbox: Any, knot: Any) -> None:
    result = _send(tmp_path, postfix_mailbox, knot, DKIM_DOMAIN, "--format", "json")
    assert result.exit_code == 0, result.output
    trip = json.loads(result.output)["round_trip"]
    assert (trip["found"], trip["folder"], trip["junk"], trip["deleted"]) == \
        (True, "INBOX", False, True)
    dkim_ar = [r for r in trip["authentication_results"] if r["method"] == "dkim"]
    assert dkim_ar and dkim_ar[0]["result"] == "pass"
    assert dkim_ar[0]["server"] == "mail.test"
    assert dkim_ar[0]["properties"]["header.d"] == DKIM_DOMAIN
    assert trip["dkim"] == [{"d": DKIM_DOMAIN, "s": "mail", "verified": True,
                             "detail": "the signature verifies with the published key"}]
    assert MAILBOX_PASSWORD not in result.output and PASSWORD not in result.output
    again = _send(tmp_path, postfix_mailbox, knot, DKIM_DOMAIN, "--format", "json",
                  "--wait", "1", "--kind", "registration")
    assert json.loads(again.output)["round_trip"]["found"] is True  # the first was deleted,
    # so only the new one was there to find: found means found by its own Message-ID


def test_text_report_names_folder_auth_results_and_dkim(tmp_path: Path, postfix_mailbox: Any,
                                                         knot: Any) -> None:
    result = _send(tmp_path, postfix_mailbox, knot, DKIM_DOMAIN)
    assert result.exit_code == 0, result.output
    assert "round trip: ✓ arrived in INBOX after" in result.output
    assert "Authentication-Results (mail.test): dkim=pass" in result.output
    assert f"DKIM here: ✓ d={DKIM_DOMAIN} s=mail" in result.output
    assert "deleted from the mailbox" in result.output


def test_mail_filed_as_junk_is_a_problem(tmp_path: Path, postfix_mailbox: Any,
                                         knot: Any) -> None:
    result = _send(tmp_path, postfix_mailbox, knot, JUNK_DOMAIN)
    assert result.exit_code == 1, result.output
    assert "arrived in Junk" in result.output
    assert "problem: the mail landed in Junk, not the Inbox" in result.output


def test_a_changed_published_key_fails_dkim_here_and_at_the_receiver(
        tmp_path: Path, postfix_mailbox: Any, knot: Any) -> None:
    _private, other = _key()
    knot.set_zone(ORIGIN, dkim_zone(other))
    try:
        result = _send(tmp_path, postfix_mailbox, knot, DKIM_DOMAIN, "--format", "json")
    finally:
        publish_dkim_key(knot, postfix_mailbox)
    assert result.exit_code == 1, result.output
    trip = json.loads(result.output)["round_trip"]
    assert trip["dkim"][0]["verified"] is False
    assert "does not verify" in trip["dkim"][0]["detail"]
    receiver = [r for r in trip["authentication_results"] if r["method"] == "dkim"]
    assert receiver and receiver[0]["result"] == "fail"


def test_keep_leaves_the_mail(tmp_path: Path, postfix_mailbox: Any, knot: Any) -> None:
    result = _send(tmp_path, postfix_mailbox, knot, DKIM_DOMAIN, "--keep", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["round_trip"]["deleted"] is False


def test_a_wrong_mailbox_password_is_a_clear_failure(tmp_path: Path, postfix_mailbox: Any,
                                                     knot: Any) -> None:
    secret = tmp_path / "wrong"
    secret.write_text("not-the-password\n")
    cfg = _config(tmp_path, postfix_mailbox, DKIM_DOMAIN)
    result = CliRunner().invoke(cli, [
        "send", str(cfg), "--to", MAILBOX_USER, "--ca-file", postfix_mailbox.ca_file,
        "--imap", f"127.0.0.1:{postfix_mailbox.mailbox.imaps_port}",
        "--imap-password-file", str(secret), "--wait", "2"])
    assert result.exit_code == 1, result.output
    assert "IMAP login as alice@example.org refused" in result.output
    assert "not-the-password" not in result.output and "Traceback" not in result.output


def test_no_password_without_a_terminal_is_a_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text("email:\n  smtp_host: 127.0.0.1\n  notif_from: a <a@b.test>\n")
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "a@b.test",
                                      "--imap", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "--imap-password-file" in result.output


def test_plain_imap_to_a_remote_host_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("x\n")
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text("email:\n  smtp_host: 127.0.0.1\n  notif_from: a <a@b.test>\n")
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "a@b.test", "--imap",
                                      "imap.example.org", "--imap-plain",
                                      "--imap-password-file", str(secret)])
    assert result.exit_code == 2 and "clear" in result.output


@pytest.mark.synapse
def test_the_links_in_the_received_mail_are_checked(tmp_path: Path, postfix_mailbox: Any,
                                                     knot: Any,
                                                     synapse_behind_nginx: Any) -> None:
    good = _send(tmp_path, postfix_mailbox, knot, DKIM_DOMAIN, "--kind", "password-reset",
                 "--format", "json", base=synapse_behind_nginx.url("both"))
    assert good.exit_code == 0, good.output
    links = json.loads(good.output)["round_trip"]["links"]
    assert links and all(link["works"] for link in links)
    bad = _send(tmp_path, postfix_mailbox, knot, DKIM_DOMAIN, "--kind", "password-reset",
                base=synapse_behind_nginx.url("matrix-only"))
    assert bad.exit_code == 1, bad.output
    assert "link: ✗" in bad.output and "/_synapse/client" in bad.output
