"""Findings carry what other commands need as data, not only as words."""

from __future__ import annotations

from pathlib import Path

from maildoctor.config.check import check


def _md101(tmp_path: Path, key: str) -> tuple[str, ...]:
    cfg = tmp_path / "hs.yaml"
    cfg.write_text("server_name: example.org\nemail:\n  smtp_host: mail.example.net\n"
                   "  smtp_user: alice\n  notif_from: \"M <m@example.org>\"\n"
                   f"  {key}: s3cret-pass\n")
    result = check([str(cfg)])
    return next(d.suggests for d in result.diagnostics if d.code == "MD101")


def test_md101_says_which_keys_it_suggests(tmp_path: Path) -> None:
    assert _md101(tmp_path, "smpt_pass") == ("smtp_pass",)
    assert _md101(tmp_path, "xyzzy_nothing_like_it") == ()
