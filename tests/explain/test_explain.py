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
    # Postfix's sender rule at RCPT and greylisting: read by the reply's words, not the stage
    ("sender-rejected-at-rcpt.log", ["sender-rejected"]),
    ("greylisted.log", ["greylisted"]),
    ("ehlo-required.log", ["ehlo-required"]),
    ("not-smtp.log", ["not-smtp"]),
    ("non-ascii.log", ["non-ascii-address"]),
    ("bad-format.log", ["bad-format"]),
    ("hang.log", ["hang"]),
    ("hang-unconfirmed.log", ["hang"]),
    ("hang-plain-server.log", ["hang"]),
    ("pass-without-user.log", ["pass-without-user"]),
    ("pass-without-user-plain.log", ["pass-without-user"]),
    ("notifs-keyerror.log", ["subject-placeholder"]),
    ("notifs-sender-rejected.log", ["sender-rejected"]),
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


def test_enable_tls_off_ranks_no_auth_offered_first(tmp_path: Path) -> None:
    """enable_tls off makes "AUTH only after STARTTLS" likely, not certain: a server may
    offer AUTH in plain text with mechanisms Twisted cannot use."""
    config = write_config(tmp_path, smtp_host="smtp.example.net", smtp_port=587,
                          smtp_user=USER, smtp_pass=PASSWORD, enable_tls=False,
                          notif_from="M <noreply@example.org>")
    _, data = run_json(str(LOGS / "auth-required.log"), "-c", config)
    (group,) = data["failures"]
    assert [c["id"] for c in group["causes"]] == ["no-auth-offered", "unsupported-mechanisms"]
    assert "enable_tls is off" in group["ranked_by"][0] and group["next"] == "maildoctor probe"


@pytest.mark.parametrize(("email", "expected"), [
    ({"smtp_port": 465}, ["implicit-tls-port"]),
    ({"smtp_port": 587, "force_tls": True}, ["force-tls-plain-port"]),
])
def test_config_narrows_the_hang(tmp_path: Path, email: dict[str, object],
                                 expected: list[str]) -> None:
    base: dict[str, object] = {"smtp_host": "smtp.example.net", "smtp_user": USER,
                               "smtp_pass": PASSWORD, "notif_from": "M <noreply@example.org>"}
    base.update(email)
    config = write_config(tmp_path, **{k: v for k, v in base.items() if v is not None})
    _, data = run_json(str(LOGS / "hang.log"), "-c", config)
    (hang,) = data["failures"]
    assert [c["id"] for c in hang["causes"]] == expected
    assert hang["certain"] and hang["next"] is None


def test_password_without_user_ranks_first_for_a_hang_without_the_crash(
        tmp_path: Path) -> None:
    """MD308 makes the crash likely, but hang.log has no 'Unhandled Error' from Twisted,
    which the crash always logs: the other causes stay, and so does the probe hint."""
    config = write_config(tmp_path, smtp_host="smtp.example.net", smtp_port=587,
                          smtp_pass=PASSWORD, notif_from="M <noreply@example.org>")
    _, data = run_json(str(LOGS / "hang.log"), "-c", config)
    (hang,) = data["failures"]
    causes = [c["id"] for c in hang["causes"]]
    assert causes[0] == "pass-without-user" and "silent-server" in causes
    assert "auth-4xx-or-drop" in causes and not hang["certain"]
    assert hang["next"] == "maildoctor probe" and "MD308" in hang["ranked_by"][0]


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
    assert "verify the notif_from" in data["failures"][0]["provider_hint"]


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


# --- reviewer findings ----------------------------------------------------------------------

def _line_of(path: str, needle: str) -> int:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if needle in line)


def test_speculative_warning_ranks_but_does_not_eliminate(tmp_path: Path) -> None:
    """Finding 13: a plain server on an IP (MD306: the name check would fail *if* the
    server offered STARTTLS) puts cert-name first; the other hang causes stay."""
    config = write_config(tmp_path, smtp_host="127.0.0.1", smtp_port=46469,
                          smtp_user=USER, smtp_pass=PASSWORD,
                          notif_from="Matrix <noreply@example.org>", enable_notifs=True)
    _, data = run_json(str(LOGS / "hang-plain-server.log"), "-c", config)
    (hang,) = data["failures"]
    causes = [c["id"] for c in hang["causes"]]
    assert causes == ["cert-name", "cert-untrusted", "greeting-4xx", "tls-4xx",
                      "auth-4xx-or-drop", "silent-server"]
    assert not hang["certain"] and hang["next"] == "maildoctor probe"
    assert "MD306" in hang["ranked_by"][0]
    assert not any("MD306" in why for why in hang["narrowed_by"])
    code, out = run(str(LOGS / "hang-plain-server.log"), "-c", config, "--no-color")
    assert code == 1
    assert "candidate causes (narrowed by the config), most likely first:" in out
    assert "next: run `maildoctor probe`" in out
    assert "settled by the config" not in out


def test_certain_finding_narrows_the_hang_to_one_cause_with_its_location(
        tmp_path: Path) -> None:
    """Finding 13, the other side: MD303 (port 465 without force_tls) is certain."""
    config = write_config(tmp_path, smtp_host="127.0.0.1", smtp_port=465, smtp_user=USER,
                          smtp_pass=PASSWORD, notif_from="Matrix <noreply@example.org>")
    _, data = run_json(str(LOGS / "hang-plain-server.log"), "-c", config)
    (hang,) = data["failures"]
    assert [c["id"] for c in hang["causes"]] == ["implicit-tls-port"]
    assert hang["certain"] and hang["next"] is None
    assert hang["narrowed_by"][0].startswith("MD303")
    assert f"line {_line_of(config, 'smtp_port')} of {config}" in hang["causes"][0]["fix"]
    _, out = run(str(LOGS / "hang-plain-server.log"), "-c", config, "--no-color")
    assert "cause (settled by the config):" in out and "next: run" not in out


def test_notification_failure_has_no_client(tmp_path: Path) -> None:
    """Finding 14: the email pusher's failure: no HTTP 500, no client, retried later."""
    _, data = run_json(str(LOGS / "notifs-sender-rejected.log"))
    (failure,) = data["failures"]
    assert failure["mails"] == ["notification"] and failure["count"] == 2
    effect = failure["effect"]
    assert "HTTP" not in effect and "client" in effect
    assert "no notification mail" in effect and "new events arrive" in effect
    _, out = run(str(LOGS / "notifs-sender-rejected.log"), "--no-color")
    assert "effect: No client is involved" in out and "HTTP 500" not in out
    # A validation mail refused the same way still reports the client's 500.
    _, data = run_json(str(LOGS / "sender-rejected.log"))
    assert data["failures"][0]["effect"].startswith("The client got HTTP 500")


@pytest.mark.parametrize("name", ["pass-without-user.log", "pass-without-user-plain.log"])
def test_twisted_crash_is_the_hang_of_its_request(name: str) -> None:
    """Finding 15: both TypeError texts (LOGIN; PLAIN and CRAM-MD5), logged by `twisted`
    as 'Unhandled Error' outside any request, are that request's hang, with one cause."""
    _, data = run_json(str(LOGS / name))
    (failure,) = data["failures"]
    assert failure["kind"] == "pass-without-user"
    assert [c["id"] for c in failure["causes"]] == ["pass-without-user"]
    assert failure["request"].startswith("POST-") and failure["recipients"]
    assert "never completes" in failure["effect"] and failure["next"] is None
    assert "Sending email to" in failure["excerpt"][0]
    assert "Unhandled Error" in failure["excerpt"][1]


def test_twisted_crash_confirmed_when_the_client_gives_up() -> None:
    _, data = run_json(str(LOGS / "pass-without-user-plain.log"))
    assert data["failures"][0]["confirmed_hangs"] == 1


def test_narrowed_cause_takes_the_check_fix_and_location(tmp_path: Path) -> None:
    """Finding 31: the smpt_pass typo's fix is check's rename, at file:line."""
    config = write_config(tmp_path, smtp_host="smtp.example.net", smtp_port=587,
                          smtp_user=USER, smpt_pass=PASSWORD,
                          notif_from="M <noreply@example.org>")
    _, data = run_json(str(LOGS / "auth-required.log"), "-c", config)
    (cause,) = data["failures"][0]["causes"]
    line = _line_of(config, "smpt_pass")
    assert cause["fix"] == f"Rename `smpt_pass` to `smtp_pass` (line {line} of {config})."
    assert f"line {line} of {config}" in data["failures"][0]["narrowed_by"][0]
    _, out = run(str(LOGS / "auth-required.log"), "-c", config, "--no-color")
    assert f"fix: Rename `smpt_pass` to `smtp_pass` (line {line} of {config})." in out
    assert "Write the password as" not in out
    _, data = run_json(str(LOGS / "auth-required.log"))  # without --config: the table's fix
    assert data["failures"][0]["causes"][0]["fix"].startswith("Write the password as")


def test_one_group_with_validation_and_notification_mails_names_both_effects(
        tmp_path: Path) -> None:
    text = (LOGS / "sender-rejected.log").read_text(encoding="utf-8")
    text += (LOGS / "notifs-sender-rejected.log").read_text(encoding="utf-8")
    log = tmp_path / "mixed.log"
    log.write_text(text, encoding="utf-8")
    _, data = run_json(str(log))
    (group,) = data["failures"]
    assert group["mails"] == ["validation", "notification"]
    assert "Validation mails: The client got HTTP 500" in group["effect"]
    assert "Notification mails: No client is involved" in group["effect"]
