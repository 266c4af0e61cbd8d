"""MD311 (provider-advice) and MD206 (placeholder-secret) through ``check``: severity, the
exact location each finding points at, and the fix it carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from maildoctor.config.check import check
from maildoctor.diagnostics import Applicability, Diagnostic, Edit, Severity

HEAD = "server_name: example.org\npublic_baseurl: https://matrix.example.org/\n"


def _check(tmp_path: Path, email: str) -> tuple[str, list[Diagnostic]]:
    path = tmp_path / "homeserver.yaml"
    path.write_text(HEAD + "email:\n" + email, encoding="utf-8")
    return str(path), check([str(path)]).diagnostics


def _only(diags: list[Diagnostic], code: str) -> Diagnostic:
    (found,) = [d for d in diags if d.code == code]
    return found


def test_sendgrid_wrong_login_is_an_error_at_the_value_with_a_safe_fix(tmp_path: Path) -> None:
    path, diags = _check(tmp_path, "  smtp_host: smtp.sendgrid.net\n  smtp_port: 587\n"
                         "  smtp_user: admin@example.org\n  smtp_pass: 'SG.x-long-key'\n"
                         "  require_transport_security: true\n"
                         "  notif_from: 'M <noreply@example.org>'\n")
    d = _only(diags, "MD311")
    assert d.severity is Severity.ERROR
    assert d.location is not None
    assert (d.location.line, d.location.column, d.location.path) == (6, 14, "email.smtp_user")
    assert d.fix is not None and d.fix.applicability is Applicability.SAFE
    assert d.fix.message == "Set `smtp_user: apikey`."
    assert d.fix.edits == (Edit("set-value", path, "email.smtp_user", "apikey"),)
    assert "run init" not in d.fix.message and "init" not in d.fix.message


def test_missing_login_is_an_error_at_the_email_key(tmp_path: Path) -> None:
    _, diags = _check(tmp_path, "  smtp_host: smtp.gmail.com\n  smtp_port: 587\n"
                      "  require_transport_security: true\n"
                      "  notif_from: 'M <noreply@example.org>'\n")
    d = _only(diags, "MD311")
    assert d.severity is Severity.ERROR
    assert d.location is not None and (d.location.line, d.location.column) == (3, 1)
    assert d.fix is not None and "smtp_user" in d.fix.message and "app password" in d.fix.message


def test_gmail_sender_not_the_account_is_a_warning_at_notif_from(tmp_path: Path) -> None:
    _, diags = _check(tmp_path, "  smtp_host: smtp.gmail.com\n  smtp_port: 587\n"
                      "  smtp_user: ops.matrix@gmail.com\n  smtp_pass: 'abcd efgh ijkl mnop'\n"
                      "  require_transport_security: true\n"
                      "  notif_from: '%(app)s <noreply@example.org>'\n")
    d = _only(diags, "MD311")
    assert d.severity is Severity.WARNING
    assert d.location is not None and d.location.path == "email.notif_from"
    assert d.location.line == 9
    assert "'noreply@example.org'" in d.message and "ops.matrix@gmail.com" in d.message
    assert "Send mail as" in d.consequence
    assert d.fix is not None and "<ops.matrix@gmail.com>" in d.fix.message


@pytest.mark.parametrize("key", ["smtp_pass", "smtp_user"])
@pytest.mark.parametrize("ref", ["${SMTP_PASS}", "$SMTP_PASS", "${SMTP_PASS:-x}"])
def test_environment_reference_says_synapse_does_not_substitute(
    tmp_path: Path, key: str, ref: str
) -> None:
    other = "smtp_user: synapse@example.org" if key == "smtp_pass" else "smtp_pass: 'q8-Fz3k!vL'"
    _, diags = _check(tmp_path, f"  smtp_host: smtp.example.net\n  smtp_port: 587\n"
                      f"  {other}\n  {key}: '{ref}'\n  require_transport_security: true\n"
                      "  notif_from: 'M <noreply@example.org>'\n")
    d = _only(diags, "MD206")
    assert d.location is not None and d.location.path == f"email.{key}"
    assert ref in d.message and "literal text" in d.message
    assert "Synapse does no environment-variable substitution" in d.message
    assert d.fix is not None
    assert "conf.d" in d.fix.message and "email: block" in d.fix.message


@pytest.mark.parametrize("password", ["$ecretPass99", "pa${X}ss", "${}", "$"])
def test_dollar_in_a_real_password_is_no_reference(tmp_path: Path, password: str) -> None:
    _, diags = _check(tmp_path, "  smtp_host: smtp.example.net\n  smtp_port: 587\n"
                      f"  smtp_user: synapse@example.org\n  smtp_pass: '{password}'\n"
                      "  require_transport_security: true\n"
                      "  notif_from: 'M <noreply@example.org>'\n")
    assert [d for d in diags if d.code == "MD206"] == []
    assert all(password not in d.message for d in diags)


@pytest.mark.parametrize(("host", "login", "flagged"), [
    ("smtp.gmail.com", "you@gmail.com", True),
    ("smtp.example.net", "you@example.net", True),
    ("smtp.example.net", "user@example.com", True),
    ("smtp.example.net", "Your.Name@company.test", True),
    ("smtp.example.net", "username", True),
    ("email-smtp.eu-west-1.amazonaws.com", "AKIAXXXXXXXXXXXXXXXX", True),  # SES's example
    ("smtp.postmarkapp.com", "00000000-0000-0000-0000-000000000000", True),
    ("smtp.example.net", "AKIAXXXXXXXXXXXXXXXX", False),  # only an example for SES
    ("smtp.example.net", "synapse@example.org", False),
    ("smtp.example.net", "user@company.test", False),
    ("smtp.gmail.com", "youth.club@gmail.com", False),
])
def test_example_logins_are_placeholders(
    tmp_path: Path, host: str, login: str, flagged: bool
) -> None:
    _, diags = _check(tmp_path, f"  smtp_host: {host}\n  smtp_port: 587\n"
                      f"  smtp_user: '{login}'\n  smtp_pass: 'q8-Fz3k!vLp2w-Rt'\n"
                      "  require_transport_security: true\n"
                      f"  notif_from: 'M <{login if '@' in login else 'n@example.org'}>'\n")
    found = [d for d in diags if d.code == "MD206"]
    assert bool(found) is flagged, diags
    for d in found:
        assert d.severity is Severity.ERROR
        assert d.location is not None and d.location.path == "email.smtp_user"
        assert "example login" in d.message


def test_fix_sets_the_sendgrid_login(tmp_path: Path) -> None:
    """The safe edit is applied by `maildoctor fix`, leaving the other lines as they were."""
    from click.testing import CliRunner

    from maildoctor.cli.main import cli

    path, _ = _check(tmp_path, "  smtp_host: smtp.sendgrid.net\n  smtp_port: 587\n"
                     "  smtp_user: admin@example.org\n"
                     "  smtp_pass: 'SG.x-long-key'\n  require_transport_security: true\n"
                     "  notif_from: 'M <noreply@example.org>'\n")
    before = Path(path).read_text(encoding="utf-8")
    result = CliRunner().invoke(cli, ["fix", path])
    assert result.exit_code == 0, result.output
    after = Path(path).read_text(encoding="utf-8")
    assert after == before.replace("smtp_user: admin@example.org", "smtp_user: apikey")
    assert [d.code for d in check([path]).diagnostics] == []


def test_a_key_pasted_as_the_login_is_not_repeated(tmp_path: Path) -> None:
    key = "SG.abcdefghijklmnop.qrstuvwxyz0123456789"
    _, diags = _check(tmp_path, "  smtp_host: smtp.sendgrid.net\n  smtp_port: 587\n"
                      f"  smtp_user: '{key}'\n  smtp_pass: '{key}'\n"
                      "  require_transport_security: true\n"
                      "  notif_from: 'M <noreply@example.org>'\n")
    d = _only(diags, "MD311")
    assert "not the value given" in d.message
    assert all(key not in repr(x) for x in diags)
