"""The probe verifies the server's certificate against the store Synapse's TLS will load
(read from Synapse's interpreter), not against maildoctor's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from maildoctor.config.environment import Environment, Installation
from maildoctor.doctor import probe_config
from maildoctor.smtp.facts import TlsVerify
from maildoctor.smtp.report import ProbeOptions


def _config(tmp_path: Path, server: Any) -> str:
    path = tmp_path / "homeserver.yaml"
    email = {**server.synapse_email_config(), "notif_from": "Example <noreply@example.org>"}
    path.write_text(yaml.safe_dump({"server_name": "example.org",
                                    "public_baseurl": "https://matrix.example.org/",
                                    "email": email}))
    return str(path)


def _installation(cafile: str | None) -> Environment:
    return Environment(installation=Installation(
        python="/opt/venvs/matrix-synapse/bin/python", found_by="test", synapse="1.163.2",
        twisted="26.10.0", trust_cafile=cafile, trust_source="test"))


def test_synapse_trusting_the_ca_means_the_probe_does(tmp_path: Path, smtp_server: Any) -> None:
    server = smtp_server(tls="starttls")
    config = _config(tmp_path, server)
    options = ProbeOptions(timeout=3.0)
    mine = probe_config([config], options)  # maildoctor's own store: the test CA is unknown
    assert mine.report.facts.tls is TlsVerify.UNTRUSTED
    theirs = probe_config([config], options, environment=_installation(server.ca_file))
    assert theirs.report.facts.tls is TlsVerify.OK


def test_a_store_synapse_cannot_read_trusts_nothing(tmp_path: Path, smtp_server: Any) -> None:
    server = smtp_server(tls="starttls")
    config = _config(tmp_path, server)
    run = probe_config([config], ProbeOptions(timeout=3.0, ca_file=None),
                       environment=_installation(str(tmp_path / "no-such-bundle.pem")))
    assert run.report.facts.tls is TlsVerify.UNTRUSTED
