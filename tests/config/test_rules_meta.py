"""The rule registry: every rule is well named, documented, explained by the CLI, and
exercised by the corpus both ways (it fires on a positive case, stays silent on a near miss)."""

from __future__ import annotations

import io
import os
import re
import tempfile
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maildoctor.cli.main import cli
from maildoctor.config.check import check
from maildoctor.config.rules import RULES, Rule, all_rules, find_rule
from maildoctor.config.schema import EMAIL_KEYS
from maildoctor.diagnostics import Severity
from maildoctor.render import github, json, text
from tests.config.test_corpus import CASES

RULE_LIST = list(all_rules().values())
CODE = re.compile(r"^MD\d{3}$")
KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def test_codes_and_names_are_unique_and_well_formed() -> None:
    codes = [r.code for r in RULE_LIST]
    names = [r.name for r in RULE_LIST]
    assert len(codes) == len(set(codes))
    assert len(names) == len(set(names))
    for r in RULE_LIST:
        assert CODE.match(r.code), r.code
        assert KEBAB.match(r.name), r.name
        assert isinstance(r.severity, Severity)


def test_registry_is_complete() -> None:
    """``all_rules`` returns every registered rule, sorted by code."""
    assert [r.code for r in RULE_LIST] == sorted(RULES)
    assert len(RULE_LIST) >= 40


@pytest.mark.parametrize("r", RULE_LIST, ids=[r.code for r in RULE_LIST])
def test_rule_is_documented(r: Rule) -> None:
    assert r.summary and not r.summary.endswith("."), r.code
    assert len(r.summary) <= 100, r.code
    assert len(r.doc) >= 40, f"{r.code} needs a docstring that explains why"
    assert r.func.__doc__, r.code


@pytest.mark.parametrize("r", RULE_LIST, ids=[r.code for r in RULE_LIST])
def test_rule_is_found_by_code_and_name(r: Rule) -> None:
    assert find_rule(r.code) is r
    assert find_rule(r.code.lower()) is r
    assert find_rule(r.name) is r


def _exercised() -> tuple[set[str], set[str]]:
    positive = {code for c in CASES if c.covers for code in c.covers
                if code in {e[0] for e in c.expected}}
    negative = {code for c in CASES for code in c.negative
                if code not in {e[0] for e in c.expected}}
    return positive, negative


@pytest.mark.parametrize("r", RULE_LIST, ids=[r.code for r in RULE_LIST])
def test_rule_has_positive_and_negative_corpus_cases(r: Rule) -> None:
    positive, negative = _exercised()
    assert r.code in positive, f"no corpus case where {r.code} fires ('# covers: {r.code}')"
    assert r.code in negative, f"no near-miss corpus case for {r.code} ('# negative: {r.code}')"


@pytest.mark.parametrize("r", RULE_LIST, ids=[r.code for r in RULE_LIST])
def test_rules_command_explains_each_rule(r: Rule) -> None:
    result = CliRunner().invoke(cli, ["rules", r.code])
    assert result.exit_code == 0, result.output
    assert r.code in result.output and r.name in result.output
    assert r.summary in result.output
    # The documentation itself, not just the header (first and last line of the docstring).
    doc_lines = [line for line in r.doc.splitlines() if line.strip()]
    assert doc_lines[0] in result.output and doc_lines[-1] in result.output


def test_rules_command_by_name_and_unknown_code() -> None:
    runner = CliRunner()
    by_name = runner.invoke(cli, ["rules", "unknown-email-key"])
    assert by_name.exit_code == 0 and "MD101" in by_name.output
    missing = runner.invoke(cli, ["rules", "MD999"])
    assert missing.exit_code == 2
    assert "Traceback" not in missing.output


def test_rules_command_lists_every_rule() -> None:
    result = CliRunner().invoke(cli, ["rules"])
    assert result.exit_code == 0
    listed = re.findall(r"^(MD\d{3})\s", result.output, re.MULTILINE)
    assert listed == [r.code for r in RULE_LIST]


# --- no rule ever crashes, whatever the types ---------------------------------------------

_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-70_000, 70_000),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=15),
    st.sampled_from(["%(app)s", "%", "%(x)s", "a@b", "<>", "localhost", "127.0.0.1", "http://x",
                     "1h", "x:25", "Mätrix <a@b.c>", "a; b <c@d.e>", "changeme", ""]))
_value = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["password_reset", "messages_in_room", "x", "enabled"]),
                    inner, max_size=3)), max_leaves=6)
_email_keys = st.sampled_from([*sorted(EMAIL_KEYS), "subjects", "smpt_pass", "password"])
_config = st.fixed_dictionaries({}, optional={
    "email": st.one_of(_value, st.dictionaries(_email_keys, _value, max_size=8)),
    **{key: _value for key in (
        "public_baseurl", "registrations_require_3pid", "password_config", "templates",
        "account_threepid_delegates", "matrix_authentication_service", "smtp_host",
        "experimental_features", "account_validity", "enable_3pid_changes",
        "trust_identity_server_for_password_resets")},
})


@settings(max_examples=200, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(_config)
def test_rules_and_renderers_never_raise(data: dict[str, Any]) -> None:
    """Synapse does no type checking, so any YAML type can reach any rule: each must cope."""
    fd, path = tempfile.mkstemp(suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(data, fh)
        for version in (None, "1.121", "1.0"):
            result = check([path], synapse_version=version)
            for renderer in (text, json, github):
                renderer.render(result, io.StringIO())
    finally:
        os.unlink(path)
