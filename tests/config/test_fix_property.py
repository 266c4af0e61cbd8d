"""Class test for issue 10 item 1: no ``fix`` run makes a config worse.

Whatever mix of mistakes a config has, ``maildoctor fix --unsafe-fixes`` must leave no more
errors than it found, and no error the input did not have (a fix's result can be another
rule's error: ``require_transport_security: true`` added next to ``enable_tls: false``).
The same configs go through a real Synapse's config loader in
``tests/conformance/test_fix_vs_synapse.py``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from maildoctor.cli.main import cli
from maildoctor.config.check import check
from maildoctor.diagnostics import Diagnostic, Severity
from tests.config.fix_configs import broken_configs


def errors(diagnostics: list[Diagnostic]) -> set[tuple[str, str]]:
    return {(d.code, d.location.path if d.location else d.message)
            for d in diagnostics if d.severity is Severity.ERROR}


def renamed_to(diagnostics: list[Diagnostic]) -> set[str]:
    """Paths a proposed rename or move gives a value the admin wrote under a name Synapse
    ignores (``notif_form`` -> ``email.notif_from``): an error of that value shows there once
    the key is right. It was in the input all along, so it does not count as new."""
    out = set()
    for d in diagnostics:
        for e in d.fix.edits if d.fix else ():
            parts = e.path.split(".")
            if e.action == "rename-key":
                out.add(".".join([*parts[:-1], str(e.value)]))
            elif e.action == "move-key" and e.value:
                out.add(f"{e.value}.{parts[-1]}")
    return out


def assert_fix_adds_no_error(path: Path) -> None:
    """``fix --unsafe-fixes`` on ``path`` leaves no more errors than it found, and none it
    did not have (but for those of a renamed or moved value, see :func:`renamed_to`)."""
    found = check([str(path)]).diagnostics
    before, revealed = errors(found), renamed_to(found)
    text = path.read_text()
    result = CliRunner().invoke(cli, ["fix", "--unsafe-fixes", "--no-backup", str(path)])
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    after = errors(check([str(path)]).diagnostics)
    assert len(after) <= len(before), (text, path.read_text())
    new = {(code, where) for code, where in after - before
           if not any(where == p or where.startswith(p + ".") for p in revealed)}
    assert not new, (text, path.read_text(), new)


def test_fix_rolls_back_a_fix_that_breaks_another_rule(tmp_path: Path) -> None:
    """The admin's case: unquoting enable_tls plus adding require_transport_security gives
    MD302, a config Synapse refuses; the second fix is rolled back and said so."""
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text("server_name: example.org\npublic_baseurl: https://example.org/\nemail:\n"
                   "  smtp_host: smtp.example.net\n  smtp_port: 587\n  smtp_user: alice\n"
                   "  smtp_pass: 'a-long-app-password'\n  enable_tls: \"false\"\n"
                   "  notif_from: \"Matrix <noreply@example.org>\"\n")
    result = CliRunner().invoke(cli, ["fix", "--unsafe-fixes", str(cfg)])
    text = cfg.read_text()
    assert "enable_tls: false\n" in text
    assert "require_transport_security" not in text
    assert "not fixed: MD309" in result.output and "rolled back" in result.output
    assert "MD302" in result.output
    assert result.exit_code == 0, result.output


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=broken_configs())
def test_no_fix_run_adds_an_error(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / f"hs-{next(_COUNTER)}.yaml"
    cfg.write_text(text)
    assert_fix_adds_no_error(cfg)


_COUNTER = itertools.count()
