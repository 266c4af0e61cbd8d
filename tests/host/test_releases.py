"""Old releases: the check runs as the Synapse installed (or given), with that release's
startup checks, and every version fact in the schema names its source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from maildoctor.cli.main import cli
from maildoctor.config.schema.releases import KEY_SOURCES, RELEASE_FACTS
from maildoctor.config.schema.runtime import TWISTED_FACTS

NOTIFS_WITHOUT_TEMPLATES = """\
server_name: example.org
public_baseurl: https://matrix.example.org/
email:
  smtp_host: smtp.example.net
  smtp_port: 587
  require_transport_security: true
  notif_from: "Example %(app)s <noreply@example.org>"
  enable_notifs: true
"""


@pytest.mark.parametrize("fact", [*RELEASE_FACTS, *TWISTED_FACTS], ids=lambda f: f.key)
def test_every_version_fact_names_its_source(fact: object) -> None:
    source = getattr(fact, "source", "")
    assert "https://" in source or "spec/" in source, fact


@pytest.mark.parametrize("key", sorted(KEY_SOURCES))
def test_every_key_source_is_a_reference(key: str) -> None:
    assert "https://" in KEY_SOURCES[key] or "spec/" in KEY_SOURCES[key] or "CHANGES" in \
        KEY_SOURCES[key]


def _old_synapse_venv(tmp_path: Path, version: str) -> str:
    """A real venv holding the metadata of an old matrix-synapse (as pip leaves it), with a
    requirement on a Twisted that is not installed: what an interrupted upgrade leaves."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"], check=True,
                             capture_output=True, text=True, timeout=60).stdout.strip()
    dist = Path(purelib) / f"matrix_synapse-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: matrix-synapse\nVersion: {version}\n"
        "Requires-Dist: Twisted>=18.9.0\n")
    (dist / "RECORD").write_text("")
    return str(python)


def test_check_runs_as_the_installed_old_release(tmp_path: Path) -> None:
    python = _old_synapse_venv(tmp_path, "1.11.1")
    config = tmp_path / "homeserver.yaml"
    config.write_text(NOTIFS_WITHOUT_TEMPLATES)
    out = CliRunner().invoke(cli, ["check", "--format", "json", "--synapse-python", python,
                                   str(config)])
    assert out.exit_code == 1, out.output
    doc = json.loads(out.output)
    assert doc["synapse_version"] == "1.11.1"
    codes = {d["code"]: d for d in doc["diagnostics"]}
    assert "email.notif_template_html, email.notif_template_text" in codes["MD110"]["message"]
    assert "RuntimeError: email.enable_notifs is True" in codes["MD110"]["consequence"]
    assert "pull/6962" in codes["MD110"]["consequence"]
    assert "Twisted>=18.9.0" in codes["MD601"]["message"]
    # The same config, checked as today's Synapse: nothing to say about the templates.
    new = CliRunner().invoke(cli, ["check", "--format", "json", "--synapse-python", "none",
                                   str(config)])
    assert "MD110" not in {d["code"] for d in json.loads(new.output)["diagnostics"]}
