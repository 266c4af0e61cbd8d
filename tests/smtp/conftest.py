"""Helpers for the probe tests: a real test server per test, and a probe against it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from maildoctor.config.settings import EmailSettings, settings_from_config
from maildoctor.smtp.report import ProbeOptions, ProbeReport
from maildoctor.smtp.stages import run_probe
from maildoctor.testing.server import TestServer

PASSWORD = "s3cret"
USER = "synapse@example.org"

Serve = Callable[..., TestServer]


@pytest.fixture
def serve(smtp_server: Serve) -> Serve:
    """``serve(tls="starttls", ...)``: the shared test-server fixture with field changes."""
    return smtp_server


def settings_for(server: TestServer, **overrides: Any) -> EmailSettings:
    """The email settings that send through ``server``, with keys overridden
    (a value of ``...`` removes the key)."""
    config = server.synapse_email_config()
    for key, value in overrides.items():
        if value is ...:
            config.pop(key, None)
        else:
            config[key] = value
    return settings_from_config({"email": config})


def probe(server: TestServer, config: dict[str, Any] | None = None,
          **options: Any) -> ProbeReport:
    options.setdefault("ca_file", server.ca_file)
    options.setdefault("timeout", 2.0)
    return run_probe(settings_for(server, **(config or {})), ProbeOptions(**options))


def statuses(report: ProbeReport) -> list[tuple[str, str]]:
    return [(s.name, str(s.status)) for s in report.stages]
