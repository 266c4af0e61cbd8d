"""Issue 3's acceptance table: every row of spec/synapse-observed.md (aiosmtpd part),
replayed against the built-in test server, gives the right root cause (the key to change)
and the right Synapse prediction. Runs the same pipeline as `maildoctor probe`.

The wall time of each diagnosis is measured by bench/probe_speed.py, not asserted here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maildoctor.doctor import probe_config
from maildoctor.smtp.report import ProbeOptions
from maildoctor.testing.observed import ROWS, homeserver_yaml
from maildoctor.testing.ports import free_port as _free_port


@pytest.mark.parametrize("name", sorted(ROWS))
def test_observed_scenario_is_diagnosed(name: str, tmp_path: Path, smtp_scenario: Any) -> None:
    row = ROWS[name]
    server = smtp_scenario(row.server) if row.server else None
    path = tmp_path / "homeserver.yaml"
    path.write_text(homeserver_yaml(row, server.port if server else _free_port()))
    ca = server.ca_file if server and row.trusted else None
    run = probe_config([str(path)], ProbeOptions(timeout=3.0, ca_file=ca))
    outcome, diagnosis = run.outcome, run.diagnosis
    assert outcome.kind == row.kind, (outcome, diagnosis)
    if row.exception:
        assert outcome.exception == row.exception
    if row.message:
        assert outcome.message == row.message
    assert diagnosis.ok == (row.kind == "ok"), diagnosis
    if row.key is not None:
        assert diagnosis.key == row.key, diagnosis
    if row.value is not None:
        assert diagnosis.value == row.value
    for word in row.cause:
        assert word.lower() in diagnosis.root_cause.lower(), diagnosis.root_cause
    assert "s3cret" not in repr(run.report) and "czNjcmV0" not in repr(run.report)


def test_probe_text_and_json_agree_on_the_warning_the_probe_answered(
        tmp_path: Path, smtp_server: Any) -> None:
    """MD306 (the certificate will be checked against 127.0.0.1) is moot when the server
    offers no STARTTLS: the text does not repeat it, the JSON marks it settled."""
    import json

    from click.testing import CliRunner

    from maildoctor.cli.main import cli

    server = smtp_server()
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text("server_name: example.org\npublic_baseurl: https://m.example.org/\n"
                   f"email:\n  smtp_host: 127.0.0.1\n  smtp_port: {server.port}\n"
                   "  notif_from: 'M <noreply@example.org>'\n")
    assert "MD306" in CliRunner().invoke(cli, ["check", str(cfg)]).output
    out = CliRunner().invoke(cli, ["probe", str(cfg), "--no-color"]).output
    assert "MD306" not in out and "Synapse will send mail" in out
    data = json.loads(CliRunner().invoke(cli, ["probe", str(cfg), "--format", "json"]).output)
    assert data["diagnosis"]["settled_by_probe"] == ["MD306"]
    marked = {f["code"]: f["settled_by_probe"] for f in data["findings"]}
    assert marked["MD306"] is True and not any(v for k, v in marked.items() if k != "MD306")
