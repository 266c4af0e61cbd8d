"""``--synapse-python``: the installation is read from Synapse's own interpreter, in a
subprocess, and the check runs as the Synapse found there."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from click.testing import CliRunner

from maildoctor.cli.main import cli
from maildoctor.host import installation
from maildoctor.host.installation import Place
from maildoctor.host.requirements import unmet_requirements

ROOT = Path(__file__).resolve().parents[2]
CLEAN = str(ROOT / "examples" / "clean" / "homeserver.yaml")


def _dist_version(python: str, name: str) -> str:
    """The version in a dist-info directory name: read from the file system, not asked."""
    root = Path(python).parent.parent
    (found,) = {p.name.removesuffix(".dist-info").split("-")[1]
                for p in root.glob(f"lib/python3*/site-packages/{name}-*.dist-info")}
    return found


def test_the_test_synapse_venv_is_read_without_importing_synapse(synapse_python: str) -> None:
    inst = installation.ask(Place(synapse_python, "test"))
    assert inst.error == ""
    assert inst.synapse == _dist_version(synapse_python, "matrix_synapse")
    assert inst.twisted == _dist_version(synapse_python, "twisted")
    assert inst.pyopenssl == _dist_version(synapse_python, "pyopenssl")
    assert inst.openssl and "OpenSSL" in inst.openssl
    assert inst.trust_cafile or inst.trust_capath
    assert inst.unmet == ()


def test_check_runs_as_the_installed_synapse_and_says_so(synapse_python: str) -> None:
    synapse = _dist_version(synapse_python, "matrix_synapse")
    twisted = _dist_version(synapse_python, "twisted")
    text = CliRunner().invoke(cli, ["check", "--synapse-python", synapse_python, CLEAN])
    assert text.exit_code == 0, text.output
    assert f"Synapse {synapse} (Twisted {twisted}" in text.output
    assert f"checked as Synapse {synapse}" in text.output
    out = CliRunner().invoke(cli, ["check", "--format", "json", "--synapse-python",
                                   synapse_python, CLEAN])
    doc = json.loads(out.output)
    assert doc["synapse_version"] == synapse
    assert doc["environment"]["installation"]["twisted"] == twisted
    assert doc["environment"]["installation"]["found_by"] == installation.GIVEN


def test_an_explicit_synapse_version_wins_over_the_installed_one(synapse_python: str) -> None:
    out = CliRunner().invoke(cli, ["check", "--format", "json", "--synapse-python",
                                   synapse_python, "--synapse-version", "1.121", CLEAN])
    assert json.loads(out.output)["synapse_version"] == "1.121.0"


def test_an_older_twisted_in_front_of_synapse(old_twisted_python: str,
                                             synapse_python: str) -> None:
    """The same Synapse with Twisted 22.4.0 and treq 20.9.0 shadowing its own: the versions
    are the shadowing ones, and MD601 names treq exactly as Synapse's own check does."""
    inst = installation.ask(Place(old_twisted_python, "test"))
    assert inst.twisted == "22.4.0" != _dist_version(synapse_python, "twisted")
    assert [(u.name, u.installed) for u in inst.unmet] == [("treq", "20.9.0")]
    out = CliRunner().invoke(cli, ["check", "--format", "json", "--synapse-python",
                                   old_twisted_python, CLEAN])
    assert out.exit_code == 1
    (md601,) = [d for d in json.loads(out.output)["diagnostics"] if d["code"] == "MD601"]
    # The real Synapse, started under that interpreter, refuses with the same words.
    real = subprocess.run([old_twisted_python, "-m", "synapse.app.homeserver", "--help"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert real.returncode != 0
    said = real.stdout + real.stderr
    assert "needs treq>=21.5.0, but got treq==20.9.0" in said
    assert "needs treq>=21.5.0, but got treq==20.9.0" in md601["consequence"]


def test_usual_places_are_tried_in_order(synapse_python: str, tmp_path: Path) -> None:
    places = [Place(str(tmp_path / "missing" / "bin" / "python"), "nowhere"),
              Place(synapse_python, "the test venv")]
    found, looked = installation.find(None, places)
    assert found == Place(synapse_python, "the test venv")
    assert looked == (places[0].python, synapse_python)
    nothing, looked = installation.find(None, places[:1])
    assert nothing is None and looked == (places[0].python,)


def test_discovery_says_where_it_looked() -> None:
    out = CliRunner().invoke(cli, ["check", CLEAN])
    assert "/opt/venvs/matrix-synapse/bin/python" in out.output or "Synapse " in out.output
    none = CliRunner().invoke(cli, ["check", "--format", "json", "--synapse-python", "none",
                                    CLEAN])
    assert json.loads(none.output)["environment"]["installation"] is None


def _script(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_an_unusable_interpreter_is_a_located_warning(tmp_path: Path) -> None:
    for python, words in ((str(tmp_path / "nope"), "does not exist"),
                          (_script(tmp_path / "fails", "echo '\x1b[31mboom' >&2; exit 3"),
                           "exit 3"),
                          (_script(tmp_path / "junk", "echo not-json"), "unreadable")):
        out = CliRunner().invoke(cli, ["check", "--synapse-python", python, CLEAN])
        assert out.exit_code == 0, out.output
        assert "MD603" in out.output and words in out.output
        assert "\x1b" not in out.output and "Traceback" not in out.output


def test_a_hanging_interpreter_is_bounded(tmp_path: Path) -> None:
    python = _script(tmp_path / "hangs", "exec sleep 30")
    inst = installation.ask(Place(python, "test"), timeout=0.5)
    assert "did not answer within 0.5 s" in inst.error


def test_requirements_follow_markers_and_skip_extras() -> None:
    requires = ["twisted[tls]>=21.2.0", "treq>=21.5.0", "pydantic>=2.8 ; python_version < '3.14'",
                "pydantic>=2.12 ; python_version >= '3.14'", "psycopg2>=2.8 ; extra == 'all'",
                "Not A Requirement !!"]
    installed = {"Twisted": "21.2.0", "treq": None, "pydantic": "2.10.0", "psycopg2": None}
    unmet = unmet_requirements(requires, installed, {"python_version": "3.11"})
    assert [(u.name, u.installed) for u in unmet] == [("treq", None)]
    unmet = unmet_requirements(requires, installed, {"python_version": "3.14"})
    assert [(u.name, u.installed) for u in unmet] == [("treq", None), ("pydantic", "2.10.0")]


def test_the_query_script_runs_on_a_bare_python(tmp_path: Path) -> None:
    """A venv without Synapse: an answer, and the check says matrix-synapse is missing."""
    python = os.path.realpath(os.sys.executable)  # type: ignore[attr-defined]
    inst = installation.ask(Place(python, "test"))
    assert inst.python_version and inst.error.startswith("matrix-synapse is not installed")
