"""Template search order, legacy file-name keys, Synapse's environment and filters."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from maildoctor.config.templates import (
    BUILTIN_DIR,
    EXPIRY,
    NOTIF,
    ROLES,
    VERIFICATION,
    TemplateSet,
    format_ts,
    groups_loaded,
    make_mxc_to_http,
)


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _config(tmp_path: Path, **email: object) -> dict[str, object]:
    return {"server_name": "example.org",
            "templates": {"custom_template_directory": str(tmp_path / "custom")},
            "email": {"notif_from": "n@example.org", "template_dir": "legacy", **email}}


def test_search_order_custom_then_template_dir_then_ours(tmp_path: Path) -> None:
    _write(tmp_path / "custom", "registration.txt", "custom {{ link }}")
    _write(tmp_path / "legacy", "registration.txt", "legacy {{ link }}")
    _write(tmp_path / "legacy", "password_reset.txt", "legacy reset {{ link }}")
    templates = TemplateSet.from_config(_config(tmp_path), cwd=tmp_path)
    assert templates.search_path == (tmp_path / "custom", tmp_path / "legacy", BUILTIN_DIR)
    assert templates.render("registration_text", {"link": "L"}) == "custom L"
    assert templates.render("password_reset_text", {"link": "L"}) == "legacy reset L"
    assert "L" in templates.render("add_threepid_text", {"link": "L"})  # our default
    assert templates.locate("add_threepid.txt") == (BUILTIN_DIR / "add_threepid.txt", "built-in")
    assert any("template_dir is deprecated" in w for w in templates.warnings)


def test_template_dir_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    _write(tmp_path / "legacy", "registration.txt", "x")
    templates = TemplateSet.from_config(_config(tmp_path), cwd=tmp_path)
    assert (tmp_path / "legacy", "email.template_dir") in templates.directories
    elsewhere = TemplateSet.from_config(_config(tmp_path), cwd=tmp_path / "custom")
    assert any("does not exist" in p for p in elsewhere.problems)


def test_missing_or_mistyped_directories_are_problems(tmp_path: Path) -> None:
    config = {"server_name": "x", "templates": {"custom_template_directory": 5},
              "email": {"notif_from": "n@x", "template_dir": "nope"}}
    templates = TemplateSet.from_config(config, cwd=tmp_path)
    assert templates.directories == ()
    assert len(templates.problems) == 2
    assert "must be a string" in templates.problems[0]


def test_legacy_keys_choose_file_names(tmp_path: Path) -> None:
    _write(tmp_path / "custom", "my_reset.html", "<p>{{ link }}</p>")
    templates = TemplateSet.from_config(
        _config(tmp_path, password_reset_template_html="my_reset.html"), cwd=tmp_path)
    assert templates.file_name("password_reset_html") == "my_reset.html"
    assert templates.render("password_reset_html", {"link": "a&b"}) == "<p>a&amp;b</p>"


def test_already_in_use_text_reads_the_html_key(tmp_path: Path) -> None:
    _write(tmp_path / "custom", "aiu.html", "<b>{{ server_name }} {{ v }}</b>")
    _write(tmp_path / "custom", "aiu.txt", "text version")
    config = _config(tmp_path, already_in_use_template_html="aiu.html",
                     already_in_use_template_text="aiu.txt")
    templates = TemplateSet.from_config(config, cwd=tmp_path)
    assert templates.file_name("already_in_use_text") == "aiu.html"
    # The "text" part is the HTML file, escaped as HTML.
    assert templates.render("already_in_use_text", {"v": "&"}) == "<b>example.org &amp;</b>"
    assert any("Synapse bug" in w for w in templates.warnings)
    assert any("already_in_use_template_text is ignored" in w for w in templates.warnings)
    plain = TemplateSet.from_config(_config(tmp_path), cwd=tmp_path)
    assert plain.file_name("already_in_use_text") == "already_in_use.txt"
    assert not any("Synapse bug" in w for w in plain.warnings)


def test_autoescape_html_only_and_server_name_global(tmp_path: Path) -> None:
    _write(tmp_path / "custom", "t.html", "{{ v }} {{ server_name }}")
    _write(tmp_path / "custom", "t.txt", "{{ v }} {{ server_name }}")
    env = TemplateSet.from_config(_config(tmp_path), cwd=tmp_path).environment()
    assert env.get_template("t.html").render(v="<x>") == "&lt;x&gt; example.org"
    assert env.get_template("t.txt").render(v="<x>") == "<x> example.org"
    assert env.get_template("t.txt").render() == " example.org"  # lenient, like Synapse


def test_every_role_has_our_default() -> None:
    for role in ROLES:
        assert (BUILTIN_DIR / role.default).is_file(), role.default
    assert len([r for r in ROLES if r.group == VERIFICATION]) == 15


def test_groups_loaded() -> None:
    assert groups_loaded({}) == ()
    assert groups_loaded({"email": None}) == ()
    assert groups_loaded({"email": {"smtp_host": "x"}}) == (VERIFICATION,)
    assert groups_loaded({"email": {"enable_notifs": "false"}}) == (VERIFICATION, NOTIF)
    assert groups_loaded({"account_validity": {"renew_at": "1w"}}) == (EXPIRY,)


def test_format_ts_uses_local_time() -> None:
    ms = 1_700_000_000_123
    assert format_ts(ms, "%Y-%m-%d %H:%M") == time.strftime(
        "%Y-%m-%d %H:%M", time.localtime(ms / 1000))


@pytest.mark.parametrize(("value", "args", "expected"), [
    ("mxc://hs/media", (10, 20), "https://b/_matrix/media/v1/thumbnail/hs/media?"
     "width=10&height=20&method=crop"),
    ("mxc://hs/media#f", (1, 2, "scale"), "https://b/_matrix/media/v1/thumbnail/hs/media?"
     "width=1&height=2&method=scale#f"),
    ("https://not/mxc", (1, 2), ""),
])
def test_mxc_to_http(value: str, args: tuple[object, ...], expected: str) -> None:
    assert make_mxc_to_http("https://b/")(value, *args) == expected


def test_mxc_to_http_needs_public_baseurl() -> None:
    with pytest.raises(RuntimeError):
        make_mxc_to_http(None)("mxc://a/b", 1, 1)
