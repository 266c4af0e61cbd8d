"""Issue 10 item 7: the scenario list, the Synapse model and a real Synapse cannot disagree.

Every ``testserver`` scenario has a row in :data:`maildoctor.testing.observed.SCENARIO_ROWS`
(the client it is about, and what Synapse does), which the conformance tests run against a
real Synapse and the model. This test holds the words of ``--list-scenarios`` to those rows,
so a description cannot claim a hang where Synapse sends, or leave the outcome unsaid.
"""

from __future__ import annotations

import pytest

from maildoctor.testing.observed import SCENARIO_ROWS
from maildoctor.testing.scenarios import DESCRIPTIONS, SCENARIOS

#: How a description says each outcome.
SAYS = {"hang": ("hangs", "waits"), "ok": ("sends", "works"),
        "error": ("Error", "error")}


def test_every_scenario_has_a_conformance_row() -> None:
    assert sorted(SCENARIO_ROWS) == sorted(SCENARIOS)
    assert all(row.server == name for name, row in SCENARIO_ROWS.items())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_description_says_what_synapse_does(name: str) -> None:
    row = SCENARIO_ROWS[name]
    assert any(word in DESCRIPTIONS[name] for word in SAYS[row.kind]), (name, row.kind)
    others = [w for kind, words in SAYS.items() if kind != row.kind for w in words]
    head = DESCRIPTIONS[name].split(":", 1)[-1].split(" (", 1)[0]
    assert not any(f"Synapse {w}" in head for w in others), (name, row.kind, head)
    if row.exception:
        assert row.exception.rsplit(".", 1)[-1] in DESCRIPTIONS[name], name
    assert ("never sends DATA" in DESCRIPTIONS[name]) == row.after_data, name
