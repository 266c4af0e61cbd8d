"""``maildoctor.synapse_module.MailDoctor`` inside a real Synapse: its findings at start-up and
its probe's diagnosis land in Synapse's own log, and Synapse starts whatever they say.

The Synapse is the test harness's (tests/infra/synapse.py), run from a venv where maildoctor
is installed in front of it (``make synapse-with-maildoctor``), as an admin would install it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maildoctor.host import installation
from tests.infra.synapse import SynapseHarness, SynapseRun

PASSWORD = "pw-Sx9!unique"
USER = "synapse@example.org"
MODULE = {"module": "maildoctor.synapse_module.MailDoctor", "config": {"delay": 0, "timeout": 5}}
WAIT = 60.0  # bound on the background probe's line; two shared cores


@pytest.fixture(scope="module")
def module_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseHarness]:
    python = os.environ.get("MAILDOCTOR_SYNAPSE_MODULE_PYTHON")
    if not python or not Path(python).exists():
        pytest.fail("MAILDOCTOR_SYNAPSE_MODULE_PYTHON is not set to an existing python: run "
                    "the tests through `make test`, or `make synapse-with-maildoctor`",
                    pytrace=False)
    harness = SynapseHarness(python, tmp_path_factory.mktemp("synapse-module"))
    try:
        yield harness
    finally:
        harness.close()


def _raw_log(run: SynapseRun) -> str:
    """The log as Synapse wrote it (the harness masks it only once Synapse stops)."""
    return run.log.read_text("utf-8", "replace") if run.log.exists() else ""


def _wait_for(run: SynapseRun, marker: str) -> str:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        text = _raw_log(run)
        if marker in text:
            return text
        assert run.proc is not None and run.proc.poll() is None, "Synapse exited"
        try:
            run.proc.wait(timeout=0.2)  # returns at once if Synapse exits
        except subprocess.TimeoutExpired:  # still running: look again
            continue
    raise AssertionError(f"{marker!r} not in Synapse's log within {WAIT:.0f} s:\n"
                         f"{run.redact(_raw_log(run))[-3000:]}")


def _lines(text: str, level: str) -> list[str]:
    return [line for line in text.splitlines() if " - maildoctor - " in line
            and f" - {level} - " in line]


def _email(server: Any, **keys: Any) -> dict[str, Any]:
    return {"smtp_host": server.host, "smtp_port": server.port, "smtp_user": USER,
            "notif_from": "Matrix <noreply@example.org>", **keys}


def test_smpt_pass_is_named_in_synapses_log(module_harness: SynapseHarness,
                                            smtp_server: Any) -> None:
    server = smtp_server(credentials={USER: PASSWORD})
    with module_harness.run(_email(server, smpt_pass=PASSWORD),
                            {"modules": [MODULE]}) as run:
        assert run.no_start is None, run.no_start
        text = _wait_for(run, "maildoctor probe:")
    findings = _lines(text, "ERROR") + _lines(text, "WARNING")
    (typo,) = [line for line in findings if "maildoctor: MD101" in line]
    assert "smpt_pass" in typo and "smtp_pass" in typo
    (probe,) = [line for line in _lines(text, "ERROR") if "maildoctor probe:" in line]
    assert "smpt_pass" in probe and "rename" in probe
    for form in (PASSWORD, base64.b64encode(PASSWORD.encode()).decode().rstrip("=")):
        assert form not in text
    assert "Traceback" not in text


def test_a_good_config_logs_that_the_probe_passed(module_harness: SynapseHarness,
                                                  smtp_server: Any) -> None:
    server = smtp_server(credentials={USER: PASSWORD})
    with module_harness.run(_email(server, smtp_pass=PASSWORD), {"modules": [MODULE]}) as run:
        assert run.no_start is None, run.no_start
        text = _wait_for(run, "maildoctor probe:")
        sent = run.request_registration_mail("alice@example.org")  # and Synapse still mails
    assert sent.kind == "ok", sent
    passed = [line for line in _lines(text, "INFO") if "maildoctor probe: passed" in line]
    assert len(passed) == 1, text
    assert not [line for line in _lines(text, "ERROR")], text
    assert PASSWORD not in text


def test_a_bad_module_config_is_a_located_config_error(module_harness: SynapseHarness) -> None:
    bad = {"module": MODULE["module"], "config": {"probe_interval": "often"}}
    with module_harness.run(None, {"modules": [bad]}) as run:
        assert run.no_start is not None
        assert "probe_interval" in (run.no_start.message or "") + run.no_start.log_tail


@pytest.fixture(scope="module")
def bare_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseHarness]:
    """The plain test Synapse (no maildoctor dependencies installed), started without the
    fork server so that each run's PYTHONPATH can put maildoctor's source alone in front."""
    python = os.environ.get("MAILDOCTOR_SYNAPSE_PYTHON")
    if not python or not Path(python).exists():
        pytest.fail("MAILDOCTOR_SYNAPSE_PYTHON is not set: run the tests through `make test`",
                    pytrace=False)
    harness = SynapseHarness(python, tmp_path_factory.mktemp("synapse-bare"), fork=False)
    try:
        yield harness
    finally:
        harness.close()


def test_missing_dependencies_never_stop_synapse(bare_harness: SynapseHarness,
                                                 smtp_server: Any) -> None:
    """maildoctor on the path but its own dependencies (aiosmtplib...) absent: the start-up
    check still runs (it needs only what Synapse has), the probe says it could not run, and
    Synapse serves."""
    import maildoctor

    source = str(Path(maildoctor.__file__).resolve().parents[1])
    server = smtp_server(credentials={USER: PASSWORD})
    with bare_harness.run(_email(server, smpt_pass=PASSWORD), {"modules": [MODULE]},
                          env={"PYTHONPATH": source}) as run:
        assert run.no_start is None, run.no_start
        text = _wait_for(run, "maildoctor probe:")
        # A plain `python -m synapse.app.homeserver` runs: the search finds its interpreter.
        running = installation.running_synapses()
        assert any(p.python == bare_harness.python for p in running), running
        asked = installation.ask(next(p for p in running if p.python == bare_harness.python))
        assert asked.synapse is not None and asked.error == ""
    assert [line for line in _lines(text, "ERROR") if "maildoctor: MD101" in line]
    (probe,) = [line for line in _lines(text, "ERROR") if "maildoctor probe:" in line]
    assert "could not run" in probe and "aiosmtplib" in probe
    assert PASSWORD not in text
