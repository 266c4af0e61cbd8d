"""The EHLO name: a relay that refuses a bare name is named as the cause, with what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from maildoctor.config.environment import Environment
from maildoctor.doctor import probe_config
from maildoctor.host.ehlo import ehlo_name, is_fully_qualified
from maildoctor.smtp.report import ProbeOptions

REFUSAL = "504 5.5.2 <3f2a9c1b7d4e>: Helo command rejected: need fully-qualified hostname"


def _config(tmp_path: Path, server: Any) -> str:
    path = tmp_path / "homeserver.yaml"
    email = {**server.synapse_email_config(), "notif_from": "Example <noreply@example.org>"}
    path.write_text(yaml.safe_dump({"server_name": "example.org",
                                    "public_baseurl": "https://matrix.example.org/",
                                    "email": email}))
    return str(path)


def test_a_relay_refusing_a_bare_ehlo_name(tmp_path: Path, smtp_server: Any) -> None:
    server = smtp_server(replies={"ehlo": REFUSAL, "helo": REFUSAL})
    run = probe_config([_config(tmp_path, server)],
                       ProbeOptions(timeout=3.0, ehlo_name="3f2a9c1b7d4e"),
                       environment=Environment(in_container_known=True))
    assert not run.diagnosis.ok
    assert run.diagnosis.code == "MD630"
    assert "EHLO 3f2a9c1b7d4e" in run.diagnosis.root_cause
    assert "hostname" in run.diagnosis.fix and "relay" in run.diagnosis.fix
    assert any("need fully-qualified hostname" in e for e in run.diagnosis.evidence)


def test_a_qualified_name_is_not_blamed(tmp_path: Path, smtp_server: Any) -> None:
    server = smtp_server(replies={"ehlo": "554 5.7.1 go away", "helo": "554 5.7.1 go away"})
    run = probe_config([_config(tmp_path, server)],
                       ProbeOptions(timeout=3.0, ehlo_name="matrix.example.org"),
                       environment=Environment(in_container_known=True))
    assert run.diagnosis.code != "MD630"
    assert "MD630" not in {d.code for d in run.check.diagnostics}


def test_the_name_is_this_hosts_fqdn() -> None:
    import socket

    name = ehlo_name()
    assert name == socket.getfqdn()
    assert is_fully_qualified("matrix.example.org") and not is_fully_qualified("localhost")
    assert not is_fully_qualified("3f2a9c1b7d4e")
