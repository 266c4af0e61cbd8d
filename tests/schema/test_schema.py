"""`maildoctor schema`: a draft 2020-12 JSON Schema of email:, usable by yaml-language-server.

Needs the `jsonschema` package (a dev dependency) to validate documents against it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from maildoctor.cli.schema import command
from maildoctor.config.jsonschema import email_schema, whole_file_schema
from maildoctor.config.schema import KNOWN_VERSIONS, email_keys_for, subject_keys_for
from maildoctor.providers import load_providers
from maildoctor.providers.template import PASSWORD_PLACEHOLDER, render_email_block

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency")

ROOT = Path(__file__).resolve().parents[2]
GOOD: dict[str, Any] = {"smtp_host": "smtp.example.net", "smtp_port": 587,
                        "smtp_user": "u@example.org", "smtp_pass": "pw-long-enough",
                        "require_transport_security": True,
                        "notif_from": "M <noreply@example.org>"}


def errors(schema: dict[str, Any], document: object) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [".".join(map(str, e.absolute_path)) or e.validator for e in
            validator.iter_errors(document)]


@pytest.mark.parametrize("version", KNOWN_VERSIONS)
def test_schemas_are_valid_draft_2020_12(version: Any) -> None:
    jsonschema.Draft202012Validator.check_schema(email_schema(version))
    jsonschema.Draft202012Validator.check_schema(whole_file_schema(version))


def test_every_key_the_version_reads_is_described() -> None:
    schema = email_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(email_keys_for())
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name
    subjects = schema["properties"]["subjects"]
    assert subjects["additionalProperties"] is False
    assert set(subjects["properties"]) == set(subject_keys_for())
    assert schema["properties"]["riot_base_url"]["deprecated"] is True
    assert schema["properties"]["smtp_port"]["default"] == 25


def test_example_configs_validate() -> None:
    whole = whole_file_schema()
    clean = yaml.safe_load((ROOT / "examples/clean/homeserver.yaml").read_text())
    assert errors(whole, clean) == []
    broken = yaml.safe_load((ROOT / "examples/broken/homeserver.yaml").read_text())
    assert errors(whole, broken) != []  # the seed's smpt_pass


@pytest.mark.parametrize("name", sorted(load_providers()))
def test_provider_templates_validate(name: str) -> None:
    block = render_email_block(load_providers()[name]).replace(PASSWORD_PLACEHOLDER, "pw-x1")
    assert errors(email_schema(), yaml.safe_load(block)["email"]) == []


@pytest.mark.parametrize(("change", "where"), [
    ({"smpt_pass": "x"}, ""),
    ({"smtp_password": "x"}, ""),
    ({"force_tls": "false"}, "force_tls"),
    ({"smtp_port": "notaport"}, "smtp_port"),
    ({"smtp_port": 70000}, "smtp_port"),
    ({"smtp_port": 465}, "required"),
    ({"force_tls": True, "smtp_port": 465, "enable_tls": False}, "enable_tls"),
    ({"require_transport_security": True, "enable_tls": False}, "enable_tls"),
    ({"notif_delay_before_mail": "10x"}, "notif_delay_before_mail"),
    ({"subjects": {"password_reset": "%(server_name)s %(person)s"}}, "subjects.password_reset"),
    ({"subjects": {"message_from_person": "[%(server_name)s] hi"}},
     "subjects.message_from_person"),
    ({"subjects": {"passwd_reset": "x"}}, "subjects"),
])
def test_rejected(change: dict[str, Any], where: str) -> None:
    found = errors(email_schema(), {**GOOD, **change})
    assert found, change
    assert any(f == where or f.startswith(where) for f in found), found


def test_missing_notif_from_rejected_but_empty_block_allowed() -> None:
    without = {k: v for k, v in GOOD.items() if k != "notif_from"}
    assert errors(email_schema(), without) == ["required"]
    assert errors(email_schema(), {}) == []
    assert errors(whole_file_schema(), {"server_name": "x", "email": None}) == []


def test_accepted_variants() -> None:
    ok = {**GOOD, "smtp_port": 465, "force_tls": True, "notif_delay_before_mail": 600000,
          "validation_token_lifetime": "1h",
          "subjects": {"password_reset": "[%(server_name)s] 100%% reset by %(app)s"}}
    assert errors(email_schema(), ok) == []


def test_version_changes_the_key_set() -> None:
    old = email_schema("1.60")
    assert "force_tls" not in old["properties"]
    assert errors(old, {**GOOD, "force_tls": True}) != []
    assert "tlsname" in email_schema()["properties"]
    assert "1.60.0" in old["title"]


def test_cli_prints_schema_and_whole_file(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(command, [])
    assert result.exit_code == 0 and json.loads(result.output) == email_schema()
    result = runner.invoke(command, ["--whole-file", "--synapse-version", "1.100"])
    assert result.exit_code == 0
    assert json.loads(result.output) == whole_file_schema("1.100")
    assert json.loads(result.output)["additionalProperties"] is True
    out = tmp_path / "email.schema.json"
    assert runner.invoke(command, ["-o", str(out)]).exit_code == 0
    assert json.loads(out.read_text()) == email_schema()
    assert runner.invoke(command, ["--synapse-version", "banana"]).exit_code == 2


def test_pre_commit_hook() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "maildoctor-check"
    assert hook["entry"] == "maildoctor check" and hook["language"] == "python"
    pattern = re.compile(hook["files"])
    for path in ("homeserver.yaml", "etc/homeserver-prod.yaml", "conf.d/10-email.yaml",
                 "synapse/conf.d/20-secret.yaml"):
        assert pattern.search(path), path
    for path in ("other.yaml", "conf.d/sub/x.yaml", "homeserver.yml", "conf.d/x.yml"):
        assert not pattern.search(path), path
