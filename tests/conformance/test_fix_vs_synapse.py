"""Class test for issue 10 item 1, against a real Synapse: no ``fix`` run breaks a start.

Configs with several mistakes at once (``tests/config/fix_configs.py``) go through
``maildoctor fix --unsafe-fixes``; a real Synapse's config loader (``HomeServerConfig``,
every section's startup checks, template compilation) then reads each config before and
after. A config Synapse accepted must still be accepted after the fix, and whatever
``check`` passes without an error Synapse must accept too. Synapse is imported once for all
the configs (``scripts/synapse/config_check.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from maildoctor.cli.main import cli
from maildoctor.config.check import check
from tests.config.fix_configs import broken_configs
from tests.config.test_fix_property import errors
from tests.infra.synapse import ENV_VAR

pytestmark = pytest.mark.synapse

CONFIG_CHECK = Path(__file__).resolve().parents[2] / "scripts" / "synapse" / "config_check.py"


def synapse_reads(paths: list[Path]) -> dict[str, str | None]:
    """Each path -> None when a real Synapse accepts it at startup, else its error."""
    python = os.environ.get(ENV_VAR)
    if not python or not Path(python).exists():
        pytest.fail(f"{ENV_VAR} is not set to Synapse's Python: run `make synapse` and export "
                    "it (or run the tests through `make test`)", pytrace=False)
    proc = subprocess.run([python, str(CONFIG_CHECK), *map(str, paths)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, str | None] = json.loads(proc.stdout)
    return result


def test_config_check_sees_synapse_refuse(tmp_path: Path) -> None:
    """The loader is the real one: it refuses what Synapse refuses."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("server_name: example.org\nemail:\n  smtp_host: x\n  enable_tls: false\n"
                   "  require_transport_security: true\n  notif_from: a <a@example.org>\n")
    good = tmp_path / "good.yaml"
    good.write_text("server_name: example.org\nemail:\n  smtp_host: x\n"
                    "  notif_from: a <a@example.org>\n")
    seen = synapse_reads([bad, good])
    assert "requires email.enable_tls to be true" in (seen[str(bad)] or "")
    assert seen[str(good)] is None


def test_fix_never_breaks_synapse_startup(tmp_path: Path) -> None:
    pairs: list[tuple[Path, Path, bool]] = []

    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(text=broken_configs())
    def fix_one(text: str) -> None:
        n = len(pairs)
        before, after = tmp_path / f"before-{n}.yaml", tmp_path / f"after-{n}.yaml"
        before.write_text(text)
        after.write_text(text)
        result = CliRunner().invoke(cli, ["fix", "--unsafe-fixes", "--no-backup", str(after)])
        assert result.exit_code in (0, 1), result.output
        pairs.append((before, after, not errors(check([str(after)]).diagnostics)))

    fix_one()
    seen = synapse_reads([p for before, after, _ in pairs for p in (before, after)])
    for before, after, clean in pairs:
        if seen[str(before)] is None:
            assert seen[str(after)] is None, (before.read_text(), after.read_text(),
                                              seen[str(after)])
        if clean:
            assert seen[str(after)] is None, (after.read_text(), seen[str(after)])
