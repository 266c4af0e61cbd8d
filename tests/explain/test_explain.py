"""`maildoctor explain` on hand-written Synapse log excerpts (formats of spec 2.6 and
twisted-smtp 2.7): one file per failure class of spec 2.4, the silent hang, startup errors,
journalctl and docker prefixes. Each row states the kinds found, in order, and the exit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from maildoctor.cli.explain import command

LOGS = Path(__file__).parent / "logs"

CASES: list[tuple[str, list[str]]] = [
    ("auth-required.log", ["auth-required"]),
    ("auth-declined-login.log", ["auth-declined"]),
    ("auth-declined-plain.log", ["auth-declined"]),
    ("gmail-535.log", ["auth-declined"]),
    ("refused.log", ["refused"]),
    ("dns.log", ["dns"]),
    ("tcp-timeout.log", ["tcp-timeout"]),
    ("tls-required.log", ["tls-required"]),
    ("starttls-554.log", ["starttls-refused"]),
    ("sender-rejected.log", ["sender-rejected"]),
    ("ses-not-verified.log", ["sender-rejected"]),
    ("recipient-rejected.log", ["recipient-rejected"]),
    ("ehlo-required.log", ["ehlo-required"]),
    ("not-smtp.log", ["not-smtp"]),
    ("non-ascii.log", ["non-ascii-address"]),
    ("bad-format.log", ["bad-format"]),
    ("hang.log", ["hang"]),
    ("hang-unconfirmed.log", ["hang"]),
    ("pass-without-user.log", ["pass-without-user"]),
    ("notifs-keyerror.log", ["subject-placeholder"]),
    ("legacy-retry.log", ["hang", "legacy-retry"]),
    ("startup-partial.log", ["config-notif-from-missing"]),
    ("startup-force-tls.log", ["config-tls-flags"]),
    ("startup-invalid-from.log", ["config-notif-from-invalid"]),
    ("startup-numeric-pass.log", ["config-numeric-secret"]),
    ("journal.log", ["auth-declined", "hang"]),
    ("docker.log", ["refused", "hang"]),
    ("success.log", []),
    ("notif-success.log", []),  # a pusher logs nothing after a successful send
]

PASSWORD = "s3cret-password"
USER = "synapse@example.org"


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(command, list(args), input=stdin)
    return result.exit_code, result.output


def run_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out = run(*args, "--format", "json")
    return code, json.loads(out)


def write_config(tmp_path: Path, **email: object) -> str:
    import yaml

    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump({"server_name": "example.org", "report_stats": False,
                                    "public_baseurl": "https://matrix.example.org/",
                                    "email": email}), encoding="utf-8")
    return str(path)


def test_every_log_file_has_a_case() -> None:
    assert {name for name, _ in CASES} == {p.name for p in LOGS.glob("*.log")}


@pytest.mark.parametrize(("name", "kinds"), CASES)
def test_kinds_found(name: str, kinds: list[str]) -> None:
    code, data = run_json(str(LOGS / name))
    assert [f["kind"] for f in data["failures"]] == kinds
    assert code == (1 if kinds else 0)
    for failure in data["failures"]:
        assert failure["causes"], failure  # every failure is explained
        assert failure["title"] and failure["effect"]


@pytest.mark.parametrize(("name", "kinds"), CASES)
def test_text_output_names_each_cause(name: str, kinds: list[str]) -> None:
    code, out = run(str(LOGS / name), "--no-color")
    assert code == (1 if kinds else 0)
    if kinds:
        assert "cause" in out
    else:
        assert "no email failures found" in out


def test_identical_failures_are_grouped() -> None:
    _, data = run_json(str(LOGS / "auth-required.log"))
    (group,) = data["failures"]
    assert group["count"] == 2
    assert group["first"]["time"] == "2026-11-27 10:00:01,131"
    assert group["last"]["time"] == "2026-11-27 10:05:12,131"
    assert group["mails"] == ["validation"]
    assert group["recipients"] == ["alice@example.org"]
    assert [c["id"] for c in group["causes"]] == [
        "no-password", "no-auth-offered", "unsupported-mechanisms"]


def test_hang_confirmed_by_client_lost() -> None:
    _, data = run_json(str(LOGS / "hang.log"))
    (hang,) = data["failures"]
    assert hang["confirmed_hangs"] == 1
    assert hang["recipients"] == ["alice@example.org"]
    assert len(hang["causes"]) == 9
    _, data = run_json(str(LOGS / "hang-unconfirmed.log"))
    (hang,) = data["failures"]
    # carol's send got a 200 access line for the same request: only bob's hung.
    assert hang["recipients"] == ["bob@example.org"] and hang["confirmed_hangs"] == 0


def test_federation_dns_error_is_not_an_email_failure() -> None:
    assert run_json(str(LOGS / "success.log")) == (0, {
        "version": 1, "source": str(LOGS / "success.log"), "lines": 7, "failures": []})


def test_stdin_is_read_with_dash_and_without_argument() -> None:
    text = (LOGS / "refused.log").read_text(encoding="utf-8")
    for args in (["-"], []):
        code, out = run(*args, "--format", "json", stdin=text)
        assert code == 1 and json.loads(out)["failures"][0]["kind"] == "refused"


def test_unusable_input_exits_2(tmp_path: Path) -> None:
    assert run(str(LOGS / "not-a-log.txt"))[0] == 2
    assert run(str(tmp_path / "missing.log"))[0] == 2
    assert run("-", stdin="")[0] == 2


# --- redaction ---------------------------------------------------------------------------

def _secret_forms() -> set[str]:
    from maildoctor.secrets import encoded_forms

    return encoded_forms(PASSWORD, [USER])


@pytest.mark.parametrize("name", ["auth-declined-login.log", "auth-declined-plain.log",
                                  "gmail-535.log", "journal.log"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_trailer_credentials_are_masked_without_config(name: str, fmt: str) -> None:
    raw = (LOGS / name).read_text(encoding="utf-8")
    assert any(form in raw for form in _secret_forms())  # the fixture does leak it
    _, out = run(str(LOGS / name), "--format", fmt)
    for form in _secret_forms():
        assert form not in out
    assert "********" in out


def test_configured_password_is_masked_anywhere(tmp_path: Path) -> None:
    log = tmp_path / "odd.log"
    log.write_text(
        "2026-11-27 10:00:00,000 - synapse.handlers.send_email - 193 - INFO - POST-1 - "
        "Sending email to a@example.org\n"
        "2026-11-27 10:00:00,010 - synapse.handlers.identity - 401 - ERROR - POST-1 - "
        "Error sending threepid validation email to a@example.org\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        f"twisted.mail._except.AUTHDeclinedError: 535 bad password {PASSWORD} for {USER}\n",
        encoding="utf-8")
    config = write_config(tmp_path, smtp_host="smtp.example.net", smtp_port=587,
                          smtp_user=USER, smtp_pass=PASSWORD,
                          notif_from="M <noreply@example.org>")
    for fmt in ("text", "json"):
        code, out = run(str(log), "-c", config, "--format", fmt)
        assert code == 1 and PASSWORD not in out and "********" in out


# --- narrowing with --config --------------------------------------------------------------

def _causes(log: str, config: str) -> list[str]:
    _, data = run_json(str(LOGS / log), "-c", config)
    return [c["id"] for c in data["failures"][0]["causes"]]


def test_smpt_pass_typo_narrows_auth_required_to_missing_password(tmp_path: Path) -> None:
    config = write_config(tmp_path, smtp_host="smtp.example.net", smtp_port=587,
                          smtp_user=USER, smpt_pass=PASSWORD,
                          notif_from="M <noreply@example.org>")
    _, data = run_json(str(LOGS / "auth-required.log"), "-c", config)
    (group,) = data["failures"]
    assert [c["id"] for c in group["causes"]] == ["no-password"]
    assert group["narrowed"] and "smpt_pass" in group["narrowed_by"][0]


def test_enable_tls_off_narrows_auth_required_to_no_auth_offered(tmp_path: Path) -> None:
    config = write_config(tmp_path, smtp_host="smtp.example.net", smtp_port=587,
                          smtp_user=USER, smtp_pass=PASSWORD, enable_tls=False,
                          notif_from="M <noreply@example.org>")
    assert _causes("auth-required.log", config) == ["no-auth-offered"]


@pytest.mark.parametrize(("email", "expected"), [
    ({"smtp_port": 465}, ["implicit-tls-port"]),
    ({"smtp_port": 587, "force_tls": True}, ["force-tls-plain-port"]),
    ({"smtp_port": 587, "smtp_user": None, "smtp_pass": PASSWORD}, ["pass-without-user"]),
])
def test_config_narrows_the_hang(tmp_path: Path, email: dict[str, object],
                                 expected: list[str]) -> None:
    base: dict[str, object] = {"smtp_host": "smtp.example.net", "smtp_user": USER,
                               "smtp_pass": PASSWORD, "notif_from": "M <noreply@example.org>"}
    base.update(email)
    config = write_config(tmp_path, **{k: v for k, v in base.items() if v is not None})
    assert _causes("hang.log", config) == expected


def test_consistent_config_drops_the_port_causes_and_suggests_probe(tmp_path: Path) -> None:
    config = write_config(tmp_path, smtp_host="smtp.example.net", smtp_port=587,
                          smtp_user=USER, smtp_pass=PASSWORD,
                          notif_from="M <noreply@example.org>")
    causes = _causes("hang.log", config)
    assert "implicit-tls-port" not in causes and "cert-untrusted" in causes
    _, out = run(str(LOGS / "hang.log"), "-c", config)
    assert "maildoctor probe" in out


def test_provider_hints(tmp_path: Path) -> None:
    gmail = write_config(tmp_path, smtp_host="smtp.gmail.com", smtp_port=587,
                         smtp_user=USER, smtp_pass=PASSWORD, notif_from=f"M <{USER}>")
    _, data = run_json(str(LOGS / "gmail-535.log"), "-c", gmail)
    assert "app password" in data["failures"][0]["provider_hint"]
    ses = write_config(tmp_path, smtp_host="email-smtp.eu-west-1.amazonaws.com",
                       smtp_port=587, smtp_user="AKIAEXAMPLE", smtp_pass=PASSWORD,
                       notif_from="M <noreply@example.org>")
    _, data = run_json(str(LOGS / "ses-not-verified.log"), "-c", ses)
    assert "Verify" in data["failures"][0]["provider_hint"]


def test_unusable_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("email: [unclosed\n", encoding="utf-8")
    assert run(str(LOGS / "hang.log"), "-c", str(bad))[0] == 2


def test_colour_only_when_asked() -> None:
    assert "\x1b[" not in run(str(LOGS / "refused.log"))[1]  # not a terminal
    assert "\x1b[" in run(str(LOGS / "refused.log"), "--color")[1]
    result = CliRunner(env={"NO_COLOR": "1"}).invoke(command, [str(LOGS / "refused.log")],
                                                      color=True)
    assert "\x1b[" not in result.output
