"""``maildoctor templates check|preview`` through click's CliRunner, on real files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from maildoctor.cli.main import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _setup(tmp_path: Path, files: dict[str, str], **email: object) -> Path:
    custom = tmp_path / "custom"
    custom.mkdir()
    for name, text in files.items():
        (custom / name).write_text(text, encoding="utf-8")
    config = {"server_name": "example.org",
              "templates": {"custom_template_directory": str(custom)},
              "email": {"notif_from": "Ex <n@example.org>", **email}}
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_check_clean_config(runner: CliRunner, tmp_path: Path) -> None:
    config = _setup(tmp_path, {"registration.txt": "Go: {{ link }} ({{ app_name }})"},
                    enable_notifs=True)
    result = runner.invoke(cli, ["templates", "check", str(config)])
    assert result.exit_code == 0, result.output
    assert f"registration.txt: {tmp_path / 'custom' / 'registration.txt'}" in result.output
    assert "17 templates checked: 0 error(s)" in result.output


def test_check_reports_syntax_error_with_line(runner: CliRunner, tmp_path: Path) -> None:
    config = _setup(tmp_path, {"password_reset.html": "<p>\n{{ link }\n</p>"})
    result = runner.invoke(cli, ["templates", "check", str(config)])
    assert result.exit_code == 1
    assert f"error: {tmp_path / 'custom' / 'password_reset.html'}:2: syntax error" in \
        result.output
    assert "Traceback" not in result.output


def test_check_reports_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    config = _setup(tmp_path, {}, registration_template_text="nowhere.txt")
    result = runner.invoke(cli, ["templates", "check", str(config)])
    assert result.exit_code == 1
    assert "error: nowhere.txt: file not found (set by email.registration_template_text" in \
        result.output
    assert "TemplateNotFound" in result.output


def test_check_reports_undefined_variables(runner: CliRunner, tmp_path: Path) -> None:
    config = _setup(tmp_path, {"registration.txt": "one\n{{ linkk }}\n{{ link.nope }}"})
    result = runner.invoke(cli, ["templates", "check", str(config)])
    assert result.exit_code == 1
    path = tmp_path / "custom" / "registration.txt"
    assert f"error: {path}:2: uses 'linkk', which Synapse never passes" in result.output
    assert "renders it as empty text" in result.output
    assert f"warning: {path}:3:" in result.output


def test_check_missing_include_fails_like_synapse(runner: CliRunner, tmp_path: Path) -> None:
    config = _setup(tmp_path, {"registration.html": '{% include "gone.html" %}'})
    result = runner.invoke(cli, ["templates", "check", str(config)])
    assert result.exit_code == 1
    assert "includes or extends gone.html" in result.output


def test_check_legacy_bug_and_subject(runner: CliRunner, tmp_path: Path) -> None:
    config = _setup(tmp_path, {"aiu.html": "<p>{{ server_name }}</p>"},
                    already_in_use_template_html="aiu.html",
                    subjects={"email_validation": "%(room)s"})
    result = runner.invoke(cli, ["templates", "check", str(config)])
    assert result.exit_code == 1
    assert "warning: email.already_in_use_template_html is also used" in result.output
    assert "error: email.subjects.email_validation uses the placeholder %(room)s" in \
        result.output


def test_check_nothing_loaded(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "hs.yaml"
    path.write_text("server_name: example.org\n", encoding="utf-8")
    result = runner.invoke(cli, ["templates", "check", str(path)])
    assert result.exit_code == 0
    assert "loads no email templates" in result.output


@pytest.mark.parametrize("content", ["a: [1,\n", "a:\n\tb: 1\n", "\xff\xfe\x00bin"])
def test_unusable_config_exits_2(runner: CliRunner, tmp_path: Path, content: str) -> None:
    path = tmp_path / "hs.yaml"
    path.write_bytes(content.encode("latin-1"))
    result = runner.invoke(cli, ["templates", "check", str(path)])
    assert result.exit_code == 2
    assert result.output.startswith(f"maildoctor: {path}")
    assert "Traceback" not in result.output
    missing = runner.invoke(cli, ["templates", "preview", str(tmp_path / "no.yaml"),
                                  "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2
    assert "no such file" in missing.output


def test_list_file_is_ignored_as_synapse_does(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "hs.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    result = runner.invoke(cli, ["templates", "check", str(path)])
    assert result.exit_code == 0
    assert "loads no email templates" in result.output


def test_later_files_override(runner: CliRunner, tmp_path: Path) -> None:
    config = _setup(tmp_path, {"password_reset.html": "{{ link }"})
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("templates: {}\n", encoding="utf-8")
    result = runner.invoke(cli, ["templates", "check", str(config), str(overlay)])
    assert result.exit_code == 0, result.output


def test_preview_writes_each_kind(runner: CliRunner, tmp_path: Path) -> None:
    config = _setup(tmp_path, {"registration.txt": "custom {{ link }}"}, enable_notifs=True)
    out = tmp_path / "out"
    result = runner.invoke(cli, ["templates", "preview", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    kinds = ["add-threepid", "already-in-use", "notification", "password-reset", "registration"]
    assert names == sorted(f"{k}.{s}" for k in kinds for s in ("html", "txt"))
    for name in names:
        assert str(out / name) in result.output
    assert (out / "registration.txt").read_text().startswith(
        "custom https://example.org/_matrix/client/unstable/registration/email/submit_token?")
    assert "subject: [example.org] Validate your email" in result.output


def test_preview_reports_broken_template(runner: CliRunner, tmp_path: Path) -> None:
    config = _setup(tmp_path, {"registration.txt": "{% for %}"})
    out = tmp_path / "out"
    result = runner.invoke(cli, ["templates", "preview", str(config), "--out", str(out)])
    assert result.exit_code == 1
    assert "registration.txt:1: syntax error" in result.output
    assert (out / "password-reset.html").is_file()
    assert not (out / "registration.txt").exists()


def test_check_and_preview_expiry(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "hs.yaml"
    path.write_text("server_name: example.org\naccount_validity: {renew_at: 1w}\n",
                    encoding="utf-8")
    result = runner.invoke(cli, ["templates", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 templates checked: 0 error(s)" in result.output
    out = tmp_path / "out"
    result = runner.invoke(cli, ["templates", "preview", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "subject: Renew your %(app)s account" in result.output
    assert "_matrix/client/unstable/account_validity/renew?token=" in (
        out / "expiry.txt").read_text()


def test_synapse_helpers_are_stubbed_and_the_rest_checked(
        runner: CliRunner, tmp_path: Path) -> None:
    config = _setup(tmp_path, {"registration.txt": '{% include "mail.css" %}{{ lnk }}'})
    result = runner.invoke(cli, ["templates", "check", str(config)])
    assert result.exit_code == 1
    assert "info: " in result.output and "uses mail.css from Synapse's built-in" in result.output
    assert "uses 'lnk', which Synapse never passes" in result.output


def test_undefined_variable_in_an_unrendered_block_is_an_error(
        runner: CliRunner, tmp_path: Path) -> None:
    """A template extending Synapse's _base.html (an empty stand-in here) renders none of its
    blocks, and a branch the sample data does not take is never rendered: both are still
    read, and a name Synapse does not pass is an error at its line."""
    config = _setup(tmp_path, {
        "password_reset.html": '{% extends "_base.html" %}\n{% block body %}\n'
                               "Hello {{ usr_name }}, {{ link }}\n{% endblock %}\n",
        "registration.txt": "{% if link %}{{ link }}{% else %}\n{{ lnik }}{% endif %}\n",
        "add_threepid.txt": "{% for x in [link] %}{{ x }} {{ loop.index }}{% endfor %}\n"})
    result = runner.invoke(cli, ["templates", "check", str(config)])
    assert result.exit_code == 1, result.output
    custom = tmp_path / "custom"
    assert f"error: {custom / 'password_reset.html'}:3: uses 'usr_name', which Synapse " \
        "never passes" in result.output
    assert f"error: {custom / 'registration.txt'}:2: uses 'lnik'" in result.output
    assert "add_threepid.txt:" not in result.output.replace(
        f"add_threepid.txt: {custom / 'add_threepid.txt'}", "")
    assert "2 error(s)" in result.output


def test_each_undefined_name_is_reported_once(runner: CliRunner, tmp_path: Path) -> None:
    config = _setup(tmp_path, {"registration.txt": "{{ usr_name }}\n{{ usr_name }}\n"})
    result = runner.invoke(cli, ["templates", "check", str(config)])
    assert result.exit_code == 1
    assert result.output.count("usr_name") == 1
    assert "1 error(s)" in result.output


def test_search_order_without_custom_directory_is_a_sentence(
        runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "hs.yaml"
    path.write_text("server_name: example.org\nemail: {notif_from: 'Ex <n@example.org>'}\n",
                    encoding="utf-8")
    result = runner.invoke(cli, ["templates", "check", str(path)])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first == ("Template search order: Synapse's built-in templates only (no custom "
                     "template directory is configured)")
    assert "other template(s)" not in result.output


def test_config_paths_as_check_takes_them(runner: CliRunner, tmp_path: Path) -> None:
    """-c PATH, repeatable and interleaved with PATHS, merged in command-line order."""
    config = _setup(tmp_path, {"password_reset.html": "{{ link }"})
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("templates: {}\n", encoding="utf-8")
    broken = runner.invoke(cli, ["templates", "check", "-c", str(config)])
    assert broken.exit_code == 1, broken.output
    fixed = runner.invoke(cli, ["templates", "check", "-c", str(config), "-c", str(overlay)])
    assert fixed.exit_code == 0, fixed.output
    reversed_order = runner.invoke(cli, ["templates", "check", "-c", str(overlay), str(config)])
    assert reversed_order.exit_code == 1, reversed_order.output
    none = runner.invoke(cli, ["templates", "check"])
    assert none.exit_code == 2 and "give the config file(s)" in none.output


def test_preview_has_a_default_directory(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _setup(tmp_path, {})
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = runner.invoke(cli, ["templates", "preview", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert (work / "maildoctor-preview" / "password-reset.html").is_file()
    assert "maildoctor-preview/password-reset.html" in result.output
    helped = runner.invoke(cli, ["templates", "preview", "--help"])
    assert "maildoctor-preview" in helped.output
