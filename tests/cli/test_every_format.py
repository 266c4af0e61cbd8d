"""Class test for issue 10 item 9: every output format carries every outcome.

A CI job that asks for ``--format json`` (or github, sarif) must get that format whatever
happens: a clean config, findings, and a config that cannot be used at all (YAML syntax
error, missing, binary, too big). The formats come from the one map in
:mod:`maildoctor.render`, so a format added there is tested here without a word more.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from maildoctor.cli.main import cli
from maildoctor.config.load import MAX_FILE_BYTES
from maildoctor.render import FORMATS

CLEAN = ("server_name: example.org\npublic_baseurl: https://matrix.example.org/\nemail:\n"
         "  smtp_host: smtp.example.net\n  smtp_port: 587\n  smtp_user: synapse@example.org\n"
         "  smtp_pass: 'a-long-app-password'\n  require_transport_security: true\n"
         "  notif_from: \"Example %(app)s <noreply@example.org>\"\n")


def _write(text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "homeserver.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path
    return make


OUTCOMES: dict[str, tuple[Callable[[Path], Path], int]] = {
    "clean": (_write(CLEAN), 0),
    "findings": (_write(CLEAN.replace("smtp_pass", "smpt_pass")), 1),
    "yaml-syntax-error": (_write("email: [a\n"), 2),
    "missing-file": (lambda tmp: tmp / "nowhere.yaml", 2),
    "binary-file": (_write(b"\x00\x01\x02email"), 2),
    "too-big": (_write("a: b\n" * (MAX_FILE_BYTES // 5 + 10)), 2),
    "not-utf8": (_write(b"email:\n  smtp_host: caf\xe9\n"), 2),
}


def assert_is_format(fmt: str, out: str) -> None:
    """``out`` is a whole document (or stream) of ``fmt``, not plain text."""
    if fmt in ("json", "sarif"):
        doc = json.loads(out)
        assert "version" in doc
        if fmt == "sarif":
            assert doc["runs"][0]["results"] is not None
    elif fmt == "github":
        lines = out.splitlines()
        assert all(line.startswith("::") for line in lines), out
    else:
        assert out.strip()


def test_check_offers_every_format() -> None:
    import click

    command = cli.get_command(click.Context(cli), "check")
    assert command is not None
    option = next(p for p in command.params if p.name == "fmt")
    assert sorted(option.type.choices) == sorted(FORMATS)  # type: ignore[attr-defined]


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_check_renders_every_outcome(fmt: str, outcome: str, tmp_path: Path) -> None:
    make, status = OUTCOMES[outcome]
    path = make(tmp_path)
    result = CliRunner().invoke(cli, ["check", str(path), "--format", fmt])
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    if fmt == "text" and status == 2:
        assert "maildoctor: " in result.stderr
        return
    if fmt == "github" and status == 0:
        assert result.stdout == ""  # nothing to annotate
        return
    assert_is_format(fmt, result.stdout)
    if status == 2 and fmt != "text":
        assert "maildoctor: " in result.stderr  # the human message too, in the CI log


@pytest.mark.parametrize("command", [["probe"], ["send", "--to", "a@example.org"],
                                     ["fix"]])
@pytest.mark.parametrize("outcome", ["yaml-syntax-error", "binary-file", "missing-file"])
def test_json_of_other_commands_on_unusable_input(command: list[str], outcome: str,
                                                  tmp_path: Path) -> None:
    make, status = OUTCOMES[outcome]
    path = make(tmp_path)
    result = CliRunner().invoke(cli, [command[0], str(path), *command[1:], "--format", "json"])
    assert result.exit_code == status, result.output
    doc = json.loads(result.stdout)
    assert doc["version"] == 1 and doc["load_error"]["message"]
