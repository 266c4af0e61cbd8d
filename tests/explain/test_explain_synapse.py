"""`explain` on logs written by a real Synapse (the harness in tests/infra/synapse.py).

The hand-written excerpts in logs/ follow the documented formats; these runs check that the
real thing says what those excerpts say: each failure is found, and named, in Synapse's own
homeserver.log (plus its stderr for startup errors).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from maildoctor.cli.explain import command
from maildoctor.testing.journal import EventKind
from maildoctor.testing.ports import free_port as _free_port
from maildoctor.testing.scenarios import SCENARIOS
from maildoctor.testing.server import TestServer
from tests.infra.synapse import SynapseHarness

pytestmark = pytest.mark.synapse

AUTH = {"smtp_user": "synapse@example.org", "smtp_pass": "s3cret"}
FROM = {"notif_from": "Matrix <noreply@example.org>"}

# name: (test-server scenario or None for a closed port, email changes, kinds, causes with config)
CASES: dict[str, tuple[str | None, dict[str, Any], list[str], list[str] | None]] = {
    "seed-typo": ("works", {"smtp_user": "synapse@example.org", "smpt_pass": "s3cret"},
                  ["auth-required"], ["no-password"]),
    "no-auth-offered": ("no-auth-offered", AUTH, ["auth-required"],
                        ["no-auth-offered", "unsupported-mechanisms"]),
    "refused": (None, AUTH, ["refused"], None),
    "tls-required": ("no-starttls", {**AUTH, "require_transport_security": True},
                     ["tls-required"], None),
    "sender-rejected": ("sender-rejected", AUTH, ["sender-rejected"], None),
    "recipient-rejected": ("recipient-rejected", AUTH, ["recipient-rejected"], None),
    "sender-rejected-at-rcpt": ("sender-rejected-at-rcpt", AUTH, ["sender-rejected"], None),
    "greylisted": ("greylisted", AUTH, ["greylisted"], None),
    "untrusted-starttls": ("untrusted-cert-starttls", AUTH, ["hang"], None),
    "implicit-tls-port": ("implicit-tls", AUTH, ["hang"], None),
    "password-without-user": ("works", {"smtp_pass": "s3cret"}, ["pass-without-user"],
                              ["pass-without-user"]),
    "partial-block": ("works", {"smtp_host": "127.0.0.1", "notif_from": None},
                      ["config-notif-from-missing"], None),
    "numeric-password": ("works", {"smtp_user": "u@example.org", "smtp_pass": 123456},
                         ["config-numeric-secret"], None),
}




@pytest.mark.parametrize("name", sorted(CASES))
def test_explain_names_what_real_synapse_logged(name: str, tmp_path: Path,
                                                synapse_harness: SynapseHarness) -> None:
    scenario, changes, kinds, narrowed = CASES[name]
    server = TestServer(SCENARIOS[scenario].replace(port=0)).start() if scenario else None
    try:
        port = server.port if server else _free_port()
        block: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": port, **FROM, **changes}
        block = {k: v for k, v in block.items() if v is not None}
        with synapse_harness.run(block) as run:
            if run.no_start is None:
                run.request_registration_mail("alice@example.org", timeout=3.0)
        # The harness has stopped Synapse and masked the secrets in these files.
        text = "".join(path.read_text("utf-8", "replace") for path in (run.output, run.log)
                       if path.exists())
    finally:
        if server:
            server.stop()
    log = tmp_path / "homeserver.log"
    log.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(command, [str(log), "--format", "json"])
    assert result.exit_code == 1, text[-3000:]
    failures = json.loads(result.output)["failures"]
    found = [f["kind"] for f in failures]
    assert found == kinds, text[-3000:]
    if kinds == ["pass-without-user"]:
        # Twisted's crash is logged outside the request: it is attached to that request.
        assert failures[0]["request"].startswith("POST-"), text[-3000:]
        assert failures[0]["recipients"] == ["alice@example.org"]
    if narrowed is not None:
        config = tmp_path / "homeserver.yaml"
        config.write_text(yaml.safe_dump({"server_name": "example.org", "report_stats": False,
                                          "email": block}), encoding="utf-8")
        result = CliRunner().invoke(command, [str(log), "-c", str(config), "--format", "json"])
        causes = [c["id"] for c in json.loads(result.output)["failures"][0]["causes"]]
        assert causes == narrowed


@pytest.mark.parametrize("scenario", ["works", "sender-rejected"])
def test_notification_mail(scenario: str, tmp_path: Path,
                           synapse_harness: SynapseHarness) -> None:
    """A notification mail is sent from the email pusher, outside any HTTP request: a
    success must not look like a hang, and a failure is "Exception processing notifs"."""
    server = TestServer(SCENARIOS[scenario].replace(port=0)).start()
    try:
        block = {"smtp_host": "127.0.0.1", "smtp_port": server.port, **FROM, **AUTH,
                 "enable_notifs": True, "notif_delay_before_mail": "1s"}
        with synapse_harness.run(block) as run:
            run.trigger_notification_mail("carol@example.org")
            if scenario == "works":
                server.wait_for_messages(1, timeout=30)
            else:
                # Twisted logs the failure before its socket is closed (same reactor turn).
                server.wait_for(EventKind.DISCONNECT, timeout=30)
        text = run.log.read_text("utf-8", "replace")
    finally:
        server.stop()
    log = tmp_path / "homeserver.log"
    log.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(command, [str(log), "--format", "json"])
    failures = json.loads(result.output)["failures"]
    found = [(f["kind"], f["mails"]) for f in failures]
    if scenario == "works":
        assert (result.exit_code, found) == (0, []), text[-3000:]
    else:
        assert found == [("sender-rejected", ["notification"])], text[-3000:]
        # No client waits for a notification: the effect says so, not "HTTP 500".
        assert "HTTP" not in failures[0]["effect"]
        assert "no notification mail" in failures[0]["effect"]
