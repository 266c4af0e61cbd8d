"""``check --format sarif``: every document validates against the official SARIF 2.1.0 schema
(vendored next to this file, see SARIF-SCHEMA-SOURCE.md), findings are located, rules carry
their documentation, safe fixes really fix, and a config that cannot be loaded still gives a
valid document that says where it broke. The password never appears."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
from click.testing import CliRunner, Result

from maildoctor.cli.main import cli
from maildoctor.config.rules import all_rules

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BROKEN = ROOT / "examples" / "broken" / "homeserver.yaml"
CLEAN = ROOT / "examples" / "clean" / "homeserver.yaml"
SCHEMA = json.loads((HERE / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft4Validator(
    SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
PASSWORD = "s3cret-Pw"

NUMERIC_PASSWORD = """\
server_name: example.org
public_baseurl: https://matrix.example.org/
email:
  smtp_host: smtp.example.net
  smtp_port: 587
  smtp_user: synapse@example.org
  smtp_pass: 918273645
  require_transport_security: true
  notif_from: "Example <noreply@example.org>"
"""

SPLIT_EMAIL_FIRST = f"""\
server_name: example.org
email:
  smtp_host: smtp.example.net
  smtp_user: synapse@example.org
  smtp_pass: '{PASSWORD}'
  notif_from: "Example <noreply@example.org>"
"""
SPLIT_EMAIL_LATER = """\
email:
  smtp_port: 587
"""


def check_sarif(*args: str) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["check", "--format", "sarif", *args])
    assert "Traceback" not in result.output
    assert PASSWORD not in result.output and "918273645" not in result.stdout
    doc = json.loads(result.stdout)
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    return result, doc


def results(doc: dict[str, Any]) -> list[dict[str, Any]]:
    runs = doc["runs"]
    assert len(runs) == 1
    out: list[dict[str, Any]] = runs[0]["results"]
    return out


def artifact_path(doc: dict[str, Any], location: dict[str, Any]) -> Path:
    """The file an artifactLocation names, resolved as a SARIF consumer would."""
    uri = location["uri"]
    assert " " not in uri and urlsplit(uri).scheme in ("", "file")
    if "uriBaseId" in location:
        base = doc["runs"][0]["originalUriBaseIds"][location["uriBaseId"]]["uri"]
        assert base.endswith("/")
        return Path(unquote(urlsplit(base).path)) / unquote(uri)
    return Path(unquote(urlsplit(uri).path))


def apply(text: str, replacements: list[dict[str, Any]]) -> str:
    """Apply SARIF replacements (line/column regions, end column exclusive) to ``text``."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    spans = []
    for r in replacements:
        region = r["deletedRegion"]
        spans.append((offset(region["startLine"], region["startColumn"]),
                      offset(region["endLine"], region["endColumn"]),
                      r.get("insertedContent", {}).get("text", "")))
    for start, end, inserted in sorted(spans, reverse=True):
        text = text[:start] + inserted + text[end:]
    return text


def test_broken_example_validates_and_locates_the_typo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result, doc = check_sarif("examples/broken/homeserver.yaml")
    assert result.exit_code == 1
    (md101,) = [r for r in results(doc) if r["ruleId"] == "MD101"]
    assert md101["level"] == "error"
    assert "smpt_pass" in md101["message"]["text"]
    assert "AUTHRequiredError" in md101["message"]["text"]
    (loc,) = md101["locations"]
    assert loc["physicalLocation"]["artifactLocation"] == {
        "uri": "examples/broken/homeserver.yaml", "uriBaseId": "%SRCROOT%"}
    assert loc["physicalLocation"]["region"] == {"startLine": 12, "startColumn": 3}
    assert loc["logicalLocations"] == [{"fullyQualifiedName": "email.smpt_pass",
                                        "kind": "property"}]
    assert artifact_path(doc, loc["physicalLocation"]["artifactLocation"]) == BROKEN
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert rules[md101["ruleIndex"]]["id"] == "MD101"
    assert md101["partialFingerprints"]


def test_tool_version_is_the_installed_distributions() -> None:
    # Read from the metadata directory's name, not through importlib.metadata (15 ms of
    # `check --format sarif`): it must still be what importlib.metadata says.
    from importlib.metadata import version

    _, doc = check_sarif(str(CLEAN))
    assert doc["runs"][0]["tool"]["driver"]["semanticVersion"] == version("maildoctor")


def test_tool_version_of_the_first_metadata_directory_on_the_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A development install's egg-info directory has no version in its name: the version
    # is PKG-INFO's, and the first directory on sys.path wins (as importlib.metadata has it).
    from maildoctor.render.sarif import _tool_version

    egg = tmp_path / "first" / "maildoctor.egg-info"
    egg.mkdir(parents=True)
    (egg / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: maildoctor\n"
                                  "Version: 9.8.7.dev1\n\nVersion: not this\n")
    other = tmp_path / "first" / "maildoctor_extras-1.0.dist-info"
    other.mkdir()
    (other / "METADATA").write_text("Name: maildoctor-extras\nVersion: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "missing"), str(tmp_path / "first"),
                                      *sys.path])
    assert _tool_version() == "9.8.7.dev1"


def test_every_rule_is_described_with_its_documentation() -> None:
    _, doc = check_sarif(str(CLEAN))
    driver = doc["runs"][0]["tool"]["driver"]
    assert driver["name"] == "maildoctor"
    described = {r["id"]: r for r in driver["rules"]}
    for code, rule in all_rules().items():
        d = described[code]
        assert d["name"] == rule.name
        assert d["shortDescription"]["text"] == rule.summary
        assert rule.doc.split("\n\n")[0].split()[0] in d["help"]["text"]
        assert d["defaultConfiguration"]["level"] == {
            "error": "error", "warning": "warning", "info": "note"}[rule.severity.value]
    assert described["MD000"]["name"] == "unusable-config"


def test_a_result_the_check_cannot_place_points_at_the_first_file(tmp_path: Path) -> None:
    """Code scanning shows only located results."""
    from dataclasses import replace

    from maildoctor.config.check import check
    from maildoctor.render.sarif import to_sarif

    config = tmp_path / "homeserver.yaml"
    config.write_text("server_name: example.org\n", encoding="utf-8")
    result = check([str(config)])
    assert result.diagnostics
    unplaced = replace(result, diagnostics=[replace(d, locations=())
                                            for d in result.diagnostics])
    doc = to_sarif(unplaced)
    assert not list(VALIDATOR.iter_errors(doc))
    for r in results(doc):
        (loc,) = r["locations"]
        assert artifact_path(doc, loc["physicalLocation"]["artifactLocation"]) == config
        assert loc["physicalLocation"]["region"] == {"startLine": 1, "startColumn": 1}


def test_clean_config_has_no_error_results() -> None:
    result, doc = check_sarif(str(CLEAN))
    assert result.exit_code == 0
    assert not [r for r in results(doc) if r["level"] == "error"]
    assert doc["runs"][0]["invocations"] == [{"executionSuccessful": True}]


def test_safe_fix_applied_by_a_sarif_consumer_equals_maildoctor_fix(tmp_path: Path) -> None:
    config = tmp_path / "homeserver.yaml"
    shutil.copy(BROKEN, config)
    original = config.read_text(encoding="utf-8")
    _, doc = check_sarif(str(config))
    (md101,) = [r for r in results(doc) if r["ruleId"] == "MD101"]
    (fix,) = md101["fixes"]
    (change,) = fix["artifactChanges"]
    assert artifact_path(doc, change["artifactLocation"]) == config
    patched = apply(original, change["replacements"])
    fixed = CliRunner().invoke(cli, ["fix", str(config)])
    assert fixed.exit_code in (0, 1), fixed.output
    assert patched == config.read_text(encoding="utf-8") != original


def test_a_fix_that_would_show_a_password_is_left_out(tmp_path: Path) -> None:
    config = tmp_path / "homeserver.yaml"
    config.write_text(NUMERIC_PASSWORD, encoding="utf-8")
    _, doc = check_sarif(str(config))
    quoted = [r for r in results(doc) if "smtp_pass" in json.dumps(r.get("locations", []))]
    assert quoted, "the numeric password is a finding"
    assert all("fixes" not in r for r in quoted)


def test_findings_in_several_files_point_at_each(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "10-email.yaml").write_text(SPLIT_EMAIL_FIRST, encoding="utf-8")
    (conf / "20-port.yaml").write_text(SPLIT_EMAIL_LATER, encoding="utf-8")
    result, doc = check_sarif(str(conf))
    assert result.exit_code == 1
    (md002,) = [r for r in results(doc) if r["ruleId"] == "MD002"]
    first = md002["locations"][0]["physicalLocation"]
    assert artifact_path(doc, first["artifactLocation"]) == conf / "20-port.yaml"
    (related,) = md002["relatedLocations"]
    assert related["id"] == 1
    assert artifact_path(doc, related["physicalLocation"]["artifactLocation"]) == \
        conf / "10-email.yaml"


@pytest.mark.parametrize(("name", "text", "line"), [
    ("yaml-syntax-error", "email:\n  smtp_host: [oops\n", 3),
    ("tab-indent", "email:\n\tsmtp_host: x\n", 2),
    ("not-utf8", b"email:\n  smtp_host: \xff\xfe\n", None),
    ("password-line-error", f"email:\n  smtp_pass: {PASSWORD} # x: [\n  smtp_host: [\n", None),
])
def test_unusable_config_is_a_located_result(tmp_path: Path, name: str, text: str | bytes,
                                             line: int | None) -> None:
    config = tmp_path / f"{name}.yaml"
    if isinstance(text, bytes):
        config.write_bytes(text)
    else:
        config.write_text(text, encoding="utf-8")
    result, doc = check_sarif(str(config))
    assert result.exit_code == 2
    assert "maildoctor:" in result.stderr  # the human message too, on stderr
    (only,) = results(doc)
    assert only["ruleId"] == "MD000" and only["level"] == "error"
    (loc,) = only["locations"]
    assert artifact_path(doc, loc["physicalLocation"]["artifactLocation"]) == config
    if line is not None:
        assert loc["physicalLocation"]["region"]["startLine"] == line
    (invocation,) = doc["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False and invocation["exitCode"] == 2
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and str(config) in note["message"]["text"]


def test_missing_file_is_a_result_too(tmp_path: Path) -> None:
    result, doc = check_sarif(str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    (only,) = results(doc)
    assert only["ruleId"] == "MD000"
