"""Issue 10 item 10 for the relay: a hostile upstream reply is shown inert by ``relay
status``, ``relay list`` and the relay's log (see tests/test_hostile_bytes.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from maildoctor.cli.relay import command as relay_cli
from maildoctor.relay import Queue
from tests.relay.conftest import RelayFactory, send, wait_until
from tests.test_hostile_bytes import HOSTILE, assert_inert


def test_relay_status_list_and_log_show_a_hostile_reply_inert(
        smtp_server: Any, relay_factory: RelayFactory, queue_path: str,
        queue: Callable[[], Queue], caplog: pytest.LogCaptureFixture) -> None:
    upstream = smtp_server(replies={"rcpt": f"550 5.1.1 <{{address}}>: {HOSTILE}"})
    caplog.set_level(logging.INFO, logger="maildoctor.relay")
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False})
    send(relay.port)
    wait_until(lambda: queue().counts()["dead"] == 1, what="a dead letter")
    for args in (["status"], ["list"]):
        result = CliRunner().invoke(relay_cli, [*args, "--queue", queue_path])
        assert_inert(result.output)
    from maildoctor.relay.logs import KeyValueFormatter

    lines = [KeyValueFormatter().format(r) for r in caplog.records]
    hostile = [line for line in lines if "2J" in line]
    assert hostile, lines
    for line in hostile:
        assert_inert(line)
