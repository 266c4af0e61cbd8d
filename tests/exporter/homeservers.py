"""Synapse configs pointing at a test SMTP server, for the exporter's tests: one that works,
one with the ``smpt_pass`` typo, one YAML cannot read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from maildoctor.testing.server import TestServer


def homeserver(server: TestServer, **email_changes: Any) -> dict[str, Any]:
    email = server.synapse_email_config()
    email.update(email_changes)
    return {"server_name": "example.org", "public_baseurl": "https://matrix.example.org/",
            "email": email}


def write_healthy(server: TestServer, path: Path) -> str:
    path.write_text(yaml.safe_dump(homeserver(server), sort_keys=False), encoding="utf-8")
    return str(path)


def write_smpt_pass(server: TestServer, path: Path) -> str:
    """The seed case: ``smpt_pass`` instead of ``smtp_pass``, so Synapse sends no password."""
    config = homeserver(server)
    config["email"]["smpt_pass"] = config["email"].pop("smtp_pass")
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return str(path)


def write_unreadable(path: Path) -> str:
    path.write_text("email:\n  smtp_host: [oops\n", encoding="utf-8")
    return str(path)
