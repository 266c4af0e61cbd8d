"""Issue 10 item 12: the README's ``maildoctor init`` examples give blocks that pass ``check``
once the password placeholder is filled in (the README promised it; with ``--user
you@gmail.com``, the provider's own example login, it did not)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from maildoctor.cli.main import cli
from maildoctor.config.check import check
from maildoctor.diagnostics import Severity

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLES = sorted({m.group(1).split("#")[0].split(" > ")[0].strip() for m in re.finditer(
    r"^(maildoctor init --provider [^\n]+)$", README.read_text(), re.MULTILINE)})


def test_the_readme_has_init_examples() -> None:
    assert any("--user" in e for e in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_init_example_passes_check_once_the_password_is_in(example: str,
                                                                    tmp_path: Path) -> None:
    args = shlex.split(example)[1:]
    if "--merge" in args:  # print the block instead of merging it into a file
        i = args.index("--merge")
        del args[i:i + 2]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    block = re.sub(r'smtp_pass: "[^"]*"', 'smtp_pass: "kq3v-9x2m-zt7p-w4hd"', result.output)
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text("server_name: example.org\npublic_baseurl: https://matrix.example.org/\n"
                   + block)
    errors = [d for d in check([str(cfg)]).diagnostics if d.severity is Severity.ERROR]
    if "--user" not in args:  # without --user the example login is still there (MD206)
        errors = [d for d in errors if d.code != "MD206"]
    assert not errors, [f"{d.code} {d.message}" for d in errors]
