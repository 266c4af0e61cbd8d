"""``--synapse-version`` outside what maildoctor knows: a warning on stderr, the nearest
known version's rules, stdout untouched (``schema`` output stays valid JSON)."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from maildoctor.cli.main import cli
from maildoctor.cli.versions import checked_synapse_version, known_range
from maildoctor.config.jsonschema import email_schema
from maildoctor.config.schema import NEWEST

OLDEST, _ = known_range()
NEWEST_TEXT = f"{NEWEST.major}.{NEWEST.minor}.{NEWEST.patch}"
OLDEST_TEXT = f"{OLDEST.major}.{OLDEST.minor}.{OLDEST.patch}"


def test_known_range_matches_the_schema() -> None:
    assert known_range()[1] == NEWEST
    assert OLDEST < NEWEST


@pytest.mark.parametrize(("given", "used", "warning"), [
    ("2.0", NEWEST_TEXT, f"maildoctor knows Synapse up to {NEWEST_TEXT}; checking as "
                         f"{NEWEST_TEXT} rules"),
    (f"{NEWEST.major}.{NEWEST.minor + 1}", NEWEST_TEXT, "up to"),
    ("0.9", OLDEST_TEXT, f"maildoctor knows Synapse from {OLDEST_TEXT} on; checking as "
                         f"{OLDEST_TEXT} rules"),
    ("1.100", "1.100", None),
    (NEWEST_TEXT, NEWEST_TEXT, None),
    (OLDEST_TEXT, OLDEST_TEXT, None),
    (None, None, None),
])
def test_checked_synapse_version(capsys: pytest.CaptureFixture[str], given: str | None,
                                 used: str | None, warning: str | None) -> None:
    assert checked_synapse_version(given) == used
    out, err = capsys.readouterr()
    assert out == ""
    if warning is None:
        assert err == ""
    else:
        assert err.startswith("maildoctor: warning: Synapse ") and warning in err
        assert err.count("\n") == 1


def test_bad_version_is_a_usage_error() -> None:
    with pytest.raises(click.BadParameter):
        checked_synapse_version("banana")


def test_schema_warns_and_uses_the_newest_rules() -> None:
    result = CliRunner().invoke(cli, ["schema", "--synapse-version", "2.0"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == email_schema(NEWEST)
    assert f"knows Synapse up to {NEWEST_TEXT}" in result.stderr
    old = CliRunner().invoke(cli, ["schema", "--synapse-version", "0.9"])
    assert old.exit_code == 0
    assert json.loads(old.stdout) == email_schema(OLDEST)
    assert f"from {OLDEST_TEXT} on" in old.stderr
    known = CliRunner().invoke(cli, ["schema", "--synapse-version", "1.100"])
    assert known.exit_code == 0 and known.stderr == ""
