"""The provider library: data integrity, host recognition, hints, and init's blocks.

The central promise (issue 5): every block `init` prints passes `check` once its password
placeholder is filled in, and `check` flags the unfilled placeholder (MD206).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from maildoctor.cli.init import command as init_command
from maildoctor.cli.providers import command as providers_command
from maildoctor.config.check import check
from maildoctor.config.rules.values import PLACEHOLDER_SECRETS
from maildoctor.providers import Provider, find_provider_for_host, get_provider, load_providers
from maildoctor.providers.template import PASSWORD_PLACEHOLDER, BlockOptions, render_email_block

PROVIDERS = load_providers()
REQUIRED = {
    "gmail", "google-workspace-relay", "microsoft-365", "outlook-com", "fastmail", "icloud",
    "proton-bridge", "zoho", "zoho-eu", "mailgun-us", "mailgun-eu", "sendgrid", "amazon-ses",
    "postmark", "brevo", "mailjet", "local-postfix", "exim-relay",
}
HEADER = ('server_name: "example.org"\npublic_baseurl: "https://matrix.example.org/"\n'
          "report_stats: false\n")
REAL_PASSWORD = "q8-Fz3k!vLp2w-Rt"


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "homeserver.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_library_has_every_required_provider() -> None:
    assert REQUIRED <= set(PROVIDERS)


def test_placeholder_is_one_check_recognises() -> None:
    assert PASSWORD_PLACEHOLDER.lower() in PLACEHOLDER_SECRETS


def _real_login(example: str) -> str:
    """A login that is no placeholder, shaped like the provider's example."""
    if "@" in example:
        return "synapse-mail@" + example.rpartition("@")[2].replace("example", "matrixhost")
    return "q8Fz3kvLp2wRt7Y9"


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_block_passes_check_once_password_and_login_filled(name: str, tmp_path: Path) -> None:
    """Unfilled, the block has exactly its placeholders flagged (MD206 for the password,
    and for the example login unless the provider fixes the login); filled, it is clean:
    no error and no provider warning (MD311), since init's sender follows the login."""
    provider = PROVIDERS[name]
    block = render_email_block(provider)
    unfilled = check([_write(tmp_path, HEADER + block)])
    codes = [d.code for d in unfilled.diagnostics if d.severity.value == "error"]
    if provider.auth:
        placeholders = 1 if provider.fixed_user else 2
        assert codes == ["MD206"] * placeholders, unfilled.diagnostics
        filled = block.replace(f'"{PASSWORD_PLACEHOLDER}"', f'"{REAL_PASSWORD}"')
        if provider.fixed_user is None:
            assert provider.user_example, "init would write CHANGEME as the login"
            filled = filled.replace(provider.user_example, _real_login(provider.user_example))
        assert filled != block
    else:
        assert codes == []
        assert "smtp_pass" not in block
        filled = block
    result = check([_write(tmp_path, HEADER + filled)])
    assert not result.has_errors, result.diagnostics
    assert [d for d in result.diagnostics if d.code == "MD311"] == []
    email = result.config.merged["email"]
    assert email["smtp_host"] == provider.host_for()
    assert email["smtp_port"] == provider.port
    # The TLS mode is explicit, so the block cannot hang on a port/TLS mismatch.
    expected = {"force_tls": ("force_tls", True), "starttls": ("require_transport_security", True),
                "none": ("enable_tls", False)}[provider.tls]
    assert email[expected[0]] is expected[1]


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_block_is_recognised_as_its_provider(name: str) -> None:
    provider = PROVIDERS[name]
    found = find_provider_for_host(provider.host_for(), provider.port)
    assert found is not None and found.name == name


def _concrete_hosts(provider: Provider) -> list[str]:
    return [p for p in provider.host_patterns if not any(c in p for c in "*?[")]


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_every_listed_host_is_recognised(name: str) -> None:
    provider = PROVIDERS[name]
    for host in _concrete_hosts(provider):
        found = find_provider_for_host(host.upper() + ".", provider.match_port or 587)
        assert found is not None and found.name == name, host


def test_host_patterns_do_not_overlap_between_providers() -> None:
    for provider in PROVIDERS.values():
        for host in _concrete_hosts(provider):
            owners = [p.name for p in PROVIDERS.values()
                      if any(fnmatch.fnmatchcase(host, pat) for pat in p.host_patterns)
                      and p.match_port == provider.match_port]
            assert owners == [provider.name], (host, owners)


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("email-smtp.eu-west-1.amazonaws.com", 587, "amazon-ses"),
    ("email-smtp.ap-southeast-2.amazonaws.com", None, "amazon-ses"),
    ("127.0.0.1", 1025, "proton-bridge"),
    ("127.0.0.1", "1025", "proton-bridge"),
    ("127.0.0.1", 25, "local-postfix"),
    ("localhost", None, "local-postfix"),
    ("smtp.eu.mailgun.org", 587, "mailgun-eu"),
    ("smtp.mailgun.org", 587, "mailgun-us"),
    ("SMTP.Gmail.com", 465, "gmail"),
    ("contoso-com.mail.protection.outlook.com", 25, "microsoft-365"),
    ("smtp.example.net", 587, None),
    ("", 587, None),
    (None, 587, None),
])
def test_find_provider_for_host(host: object, port: object, expected: str | None) -> None:
    found = find_provider_for_host(host, port)
    assert (found.name if found else None) == expected


def test_gmail_535_hint_says_app_password() -> None:
    gmail = PROVIDERS["gmail"]
    hint = gmail.hint_for(535, "5.7.8 Username and Password not accepted. For more information")
    assert hint is not None and "app password" in hint
    assert gmail.hint_for(250, "ok") is None


def test_ses_unverified_sender_hint_says_verify() -> None:
    ses = PROVIDERS["amazon-ses"]
    hint = ses.hint_for(554, "Message rejected: Email address is not verified. The following "
                             "identities failed the check in region EU-WEST-1: a@example.org")
    assert hint is not None and "verify the notif_from" in hint
    assert ses.hint_for(554, "Transaction failed") is None


def test_specific_hint_wins_over_generic_for_same_code() -> None:
    m365 = PROVIDERS["microsoft-365"]
    disabled = m365.hint_for(535, "5.7.139 Authentication unsuccessful, basic authentication "
                                  "is disabled")
    wrong = m365.hint_for(535, "5.7.3 Authentication unsuccessful")
    assert disabled and "enable SMTP AUTH for the mailbox" in disabled
    assert "XOAUTH2" in disabled
    assert wrong and wrong != disabled


def test_sendgrid_user_is_always_apikey() -> None:
    block = render_email_block(PROVIDERS["sendgrid"], BlockOptions(user="me@example.org"))
    assert yaml.safe_load(block)["email"]["smtp_user"] == "apikey"


def test_regions() -> None:
    ses = PROVIDERS["amazon-ses"]
    block = render_email_block(ses, BlockOptions(region="eu-central-1"))
    assert yaml.safe_load(block)["email"]["smtp_host"] == "email-smtp.eu-central-1.amazonaws.com"
    with pytest.raises(ValueError):
        ses.host_for("not a region")
    with pytest.raises(ValueError):
        PROVIDERS["gmail"].host_for("eu-west-1")


def test_user_and_sender_options_are_quoted_safely() -> None:
    opts = BlockOptions(user="0777", sender='Ops "Team" <ops@example.org>')
    email = yaml.safe_load(render_email_block(PROVIDERS["fastmail"], opts))["email"]
    assert email["smtp_user"] == "0777"
    assert email["notif_from"] == 'Ops "Team" <ops@example.org>'


def test_providers_command_lists_all() -> None:
    result = CliRunner().invoke(providers_command, [])
    assert result.exit_code == 0
    for name, provider in PROVIDERS.items():
        assert name in result.output and f"{provider.host}:{provider.port}" in result.output
    detail = CliRunner().invoke(providers_command, ["sendgrid"])
    assert detail.exit_code == 0 and "apikey" in detail.output
    assert CliRunner().invoke(providers_command, ["nope"]).exit_code == 2


def test_init_prints_block_and_rejects_unknown() -> None:
    result = CliRunner().invoke(init_command, ["--provider", "amazon-ses", "--region",
                                               "us-west-2", "--from", "M <n@example.org>"])
    assert result.exit_code == 0
    email = yaml.safe_load(result.output)["email"]
    assert email["smtp_host"] == "email-smtp.us-west-2.amazonaws.com"
    assert email["notif_from"] == "M <n@example.org>"
    assert CliRunner().invoke(init_command, ["--provider", "nope"]).exit_code == 2
    assert CliRunner().invoke(init_command, ["--provider", "amazon-ses", "--region",
                                             "Mars"]).exit_code == 2
    assert CliRunner().invoke(init_command, []).exit_code == 2
    assert get_provider("GMAIL") is not None


ORIGINAL = """\
# My homeserver
server_name: "example.org"   # keep this comment
report_stats: false
public_baseurl: "https://matrix.example.org/"

# Listeners follow
listeners:
  - port: 8008
    type: http
"""


def test_init_merge_appends_atomically_with_backup(tmp_path: Path) -> None:
    path = _write(tmp_path, ORIGINAL)
    result = CliRunner().invoke(init_command, ["--provider", "gmail", "--merge", path])
    assert result.exit_code == 0, result.output
    merged = Path(path).read_text(encoding="utf-8")
    assert merged.startswith(ORIGINAL)  # every original byte kept
    assert Path(path + ".bak").read_text(encoding="utf-8") == ORIGINAL
    # The placeholder password and the example login (init ran without --user).
    assert [d.code for d in check([path]).diagnostics if d.severity.value == "error"] == \
        ["MD206", "MD206"]
    assert not list(tmp_path.glob(".maildoctor-*"))


def test_init_merge_refuses_existing_block_unless_forced(tmp_path: Path) -> None:
    text = ORIGINAL.replace("# Listeners follow", "email:\n  smtp_host: old.example.org\n"
                            "  notif_from: x <x@example.org>\n\n# Listeners follow")
    path = _write(tmp_path, text)
    refused = CliRunner().invoke(init_command, ["--provider", "sendgrid", "--merge", path])
    assert refused.exit_code == 2
    assert Path(path).read_text(encoding="utf-8") == text
    assert not Path(path + ".bak").exists()
    forced = CliRunner().invoke(init_command, ["--provider", "sendgrid", "--merge", path,
                                               "--force"])
    assert forced.exit_code == 0, forced.output
    merged = Path(path).read_text(encoding="utf-8")
    assert "old.example.org" not in merged
    assert "# Listeners follow\nlisteners:" in merged  # the next key keeps its comment
    assert merged.startswith(ORIGINAL.split("# Listeners")[0])
    assert yaml.safe_load(merged)["email"]["smtp_host"] == "smtp.sendgrid.net"
    assert Path(path + ".bak").read_text(encoding="utf-8") == text


def test_init_merge_refuses_unparsable_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "server_name: [unclosed\n")
    result = CliRunner().invoke(init_command, ["--provider", "gmail", "--merge", path])
    assert result.exit_code == 2
    assert Path(path).read_text(encoding="utf-8") == "server_name: [unclosed\n"


def test_init_merge_creates_a_private_new_file(tmp_path: Path) -> None:
    path = tmp_path / "conf.d" / "10-email.yaml"
    path.parent.mkdir()
    result = CliRunner().invoke(init_command, ["--provider", "exim-relay", "--merge", str(path)])
    assert result.exit_code == 0, result.output
    assert path.stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load(path.read_text())["email"]["smtp_port"] == 8025
    assert not Path(str(path) + ".bak").exists()


def test_merge_replaces_final_and_flow_blocks_and_refuses_broken_results() -> None:
    from maildoctor.config.merge_block import MergeError, merged_text

    block = render_email_block(PROVIDERS["gmail"])
    text, replaced = merged_text("a: 1\nemail:\n  smtp_host: x\n# trailing\n", block,
                                 force=True)
    assert replaced and text == "a: 1\n" + block + "# trailing\n"
    flow, _ = merged_text("email: {smtp_host: x,\n  smtp_port: 25}\nb: 2\n", block, force=True)
    assert flow == block + "b: 2\n"
    with pytest.raises(MergeError):  # removing the anchor would break the alias
        merged_text("email: &mail\n  smtp_host: x\nother: *mail\n", block, force=True)
    with pytest.raises(MergeError):
        merged_text("- a list\n", block)


def test_advice_for_config() -> None:
    sendgrid = PROVIDERS["sendgrid"]
    assert sendgrid.advice_for_config({"smtp_user": "apikey"}) == []
    (wrong,) = sendgrid.advice_for_config({"smtp_user": "me@example.org"})
    assert (wrong.key, wrong.value, wrong.blocking) == ("smtp_user", "apikey", True)
    assert "`smtp_user: apikey`" in wrong.message and "'me@example.org'" in wrong.message
    (missing,) = PROVIDERS["gmail"].advice_for_config({})
    assert (missing.key, missing.value, missing.blocking) == ("", None, True)
    assert "smtp_user" in missing.fix
    assert PROVIDERS["exim-relay"].advice_for_config({}) == []


@pytest.mark.parametrize(("name", "user", "sender", "flagged"), [
    ("gmail", "ops@gmail.com", "noreply@example.org", True),
    ("gmail", "ops@gmail.com", "OPS@Gmail.com", False),
    ("gmail", "ops@gmail.com", None, False),  # no address: MD401/MD402 say so
    ("zoho", "ops@zohomail.com", "ops+matrix@zohomail.com", True),
    ("outlook-com", "ops@outlook.com", "ops@outlook.com", False),
    ("mailgun-eu", "postmaster@mg.example.org", "noreply@example.org", False),
    ("mailgun-eu", "postmaster@mg.example.org", "noreply@mg.example.org", False),
    ("mailgun-eu", "postmaster@mg.example.org", "noreply@example.net", True),
    ("mailgun-eu", "postmaster@mg.example.org", "noreply@badexample.org", True),
    ("sendgrid", "apikey", "noreply@example.net", False),  # rule not checkable
    ("amazon-ses", "AKIA2REALKEY", "noreply@example.net", False),
])
def test_sender_rule_checks(name: str, user: str, sender: str | None, flagged: bool) -> None:
    advice = PROVIDERS[name].advice_for_config({"smtp_user": user}, sender)
    senders = [a for a in advice if a.key == "notif_from"]
    assert bool(senders) is flagged, advice
    for found in senders:
        assert not found.blocking and found.value is None
        assert user in found.message or user.rpartition("@")[2] in found.message


def test_login_optional_on_connector_hosts() -> None:
    m365 = PROVIDERS["microsoft-365"]
    assert m365.advice_for_config({"smtp_host": "contoso-com.mail.protection.outlook.com"}) == []
    (missing,) = m365.advice_for_config({"smtp_host": "smtp.office365.com"})
    assert missing.blocking
    assert PROVIDERS["google-workspace-relay"].advice_for_config(
        {"smtp_host": "smtp-relay.gmail.com"}) == []


def test_bad_sender_check_in_data_is_refused() -> None:
    from maildoctor.providers import ProviderDataError

    data = {"name": "x", "title": "X", "note": "n", "host": "h", "port": 587,
            "tls": "starttls", "sender_check": "everything"}
    with pytest.raises(ProviderDataError, match="sender_check"):
        Provider.from_mapping(data, "x.yaml")
    assert Provider.from_mapping({**data, "sender_check": "domain"}, "x.yaml").sender_check \
        == "domain"


def test_init_relay_block_passes_check(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from maildoctor.cli.main import cli

    out = CliRunner().invoke(cli, ["init", "--relay", "--relay-port", "2600",
                                   "--from", "Matrix <noreply@example.org>"])
    assert out.exit_code == 0, out.output
    assert "smtp_port: 2600" in out.output and "enable_tls: false" in out.output
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text("server_name: example.org\npublic_baseurl: https://m.example.org/\n"
                   + out.output)
    checked = CliRunner().invoke(cli, ["check", str(cfg)])
    assert checked.exit_code == 0, checked.output
    both = CliRunner().invoke(cli, ["init", "--relay", "--provider", "gmail"])
    assert both.exit_code == 2
