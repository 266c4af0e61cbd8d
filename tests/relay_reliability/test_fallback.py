"""``--fallback``: a second upstream for the mail the first cannot take right now.

Postfix's ``smtp_fallback_relay`` is the model: a connection error or any non-permanent
failure at the primary sends the mail to the fallback at once; a permanent refusal (5xx to
the mail itself) does not (the fallback would be asked to send what the primary judged
undeliverable). Each upstream has its own line in ``relay status`` and its own metrics.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from maildoctor.cli.relay import command as relay_cli
from maildoctor.config.settings import settings_from_config
from maildoctor.testing.server import ServerOptions, TestServer
from tests.relay_reliability.conftest import RelayFactory
from tests.relay_reliability.harness import HOST, make_mail, message_ids, send, wait_until


def plain(server_port: int) -> dict[str, object]:
    return {"smtp_host": HOST, "smtp_port": server_port, "enable_tls": False,
            "notif_from": "Matrix <noreply@example.org>"}


@pytest.fixture
def fallback_server() -> Iterator[TestServer]:
    server = TestServer().start()
    yield server
    server.stop()


def status_json(queue: Path) -> dict[str, object]:
    result = CliRunner().invoke(relay_cli, ["status", "--queue", str(queue), "--format",
                                            "json"])
    data: dict[str, object] = json.loads(result.output)
    return data


def test_primary_down_mail_goes_through_the_fallback(
        relay_factory: RelayFactory, closed_port: int, fallback_server: TestServer) -> None:
    running = relay_factory(plain(closed_port),
                            fallback=settings_from_config({"email": plain(fallback_server.port)}),
                            metrics_port=0)
    mails = [make_mail("fallback", n) for n in range(5)]
    send(running.port, mails, ["alice@example.org"])
    wait_until(lambda: running.counts()["delivered"] == 5, timeout=15,
               what="every mail delivered through the fallback",
               describe=lambda: repr(running.counts()))
    assert message_ids(m.data for m in fallback_server.messages) == {
        mid: 1 for mid, _ in mails}
    assert {m.upstream for m in running.records("delivered")} == {
        f"{HOST}:{fallback_server.port}"}

    status = status_json(running.queue_path)
    primary, fallback = status["upstreams"]  # type: ignore[misc]
    assert (primary["role"], primary["failing"], primary["reason"]) == (
        "primary", True, "connect")
    assert (fallback["role"], fallback["failing"], fallback["delivered"]) == (
        "fallback", False, 5)
    text = CliRunner().invoke(relay_cli, ["status", "--queue", str(running.queue_path)]).output
    assert f"upstream {HOST}:{closed_port} (primary): FAILING" in text
    assert f"upstream {HOST}:{fallback_server.port} (fallback): ok" in text

    port = running.relay.metrics_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        metrics = answer.read().decode()
    assert (f'maildoctor_relay_upstream_up{{upstream="{HOST}:{closed_port}",role="primary"}} 0'
            in metrics), metrics
    assert (f'maildoctor_relay_upstream_delivered_total{{upstream="{HOST}:'
            f'{fallback_server.port}",role="fallback"}} 5') in metrics
    assert (f'maildoctor_relay_upstream_deliveries_failed_total{{upstream="{HOST}:'
            f'{closed_port}",reason="connect"}}') in metrics


def test_primary_answering_4xx_hands_over_to_the_fallback(
        relay_factory: RelayFactory, fallback_server: TestServer) -> None:
    with TestServer(ServerOptions(replies={"mail": "451 4.3.0 Local problem, try later"})
                    ) as primary:
        running = relay_factory(plain(primary.port), fallback=settings_from_config(
            {"email": plain(fallback_server.port)}))
        mails = [make_mail("busy", n) for n in range(3)]
        send(running.port, mails, ["alice@example.org"])
        wait_until(lambda: running.counts()["delivered"] == 3, timeout=15,
                   what="delivered through the fallback", describe=lambda: repr(running.counts()))
        assert not primary.messages
    assert set(message_ids(m.data for m in fallback_server.messages)) == {m for m, _ in mails}


def test_permanent_refusal_is_not_handed_to_the_fallback(
        relay_factory: RelayFactory, fallback_server: TestServer) -> None:
    with TestServer(ServerOptions(replies={"rcpt": "550 5.1.1 <{address}>: User unknown"})
                    ) as primary:
        running = relay_factory(plain(primary.port), fallback=settings_from_config(
            {"email": plain(fallback_server.port)}))
        send(running.port, [make_mail("gone", 0)], ["gone@example.org"])
        wait_until(lambda: running.counts()["dead"] == 1, timeout=15, what="dead letter")
    assert not fallback_server.messages
    (dead,) = running.records("dead")
    assert "User unknown" in (dead.last_error or "")


def test_primary_back_takes_the_mail_again(relay_factory: RelayFactory,
                                           fallback_server: TestServer) -> None:
    """The fallback is for the bad moments: a working primary gets the mail."""
    with TestServer() as primary:
        running = relay_factory(plain(primary.port), fallback=settings_from_config(
            {"email": plain(fallback_server.port)}))
        send(running.port, [make_mail("normal", n) for n in range(3)], ["alice@example.org"])
        wait_until(lambda: len(primary.messages) == 3, timeout=15, what="primary delivery")
    assert not fallback_server.messages


@pytest.mark.parametrize(("text", "expected"), [
    ("email: [a]\n", "email: is a list"),
    ("email:\n  smtp_host: 127.0.0.1\n  smtp_port: 99999\n", "out of range"),
])
def test_run_refuses_an_unusable_fallback(tmp_path: Path, fallback_server: TestServer,
                                          text: str, expected: str) -> None:
    config = tmp_path / "upstream.yaml"
    config.write_text(yaml.safe_dump({"email": plain(fallback_server.port)}))
    bad = tmp_path / "fallback.yaml"
    bad.write_text(text)
    result = CliRunner().invoke(relay_cli, [
        "run", str(config), "--fallback", str(bad), "--queue", str(tmp_path / "q.sqlite3"),
        "--listen", "127.0.0.1:0"])
    assert result.exit_code == 2, result.output
    assert expected in result.output and str(bad) in result.output


def test_fallback_cannot_be_the_primary(tmp_path: Path, fallback_server: TestServer) -> None:
    config = tmp_path / "upstream.yaml"
    config.write_text(yaml.safe_dump({"email": plain(fallback_server.port)}))
    result = CliRunner().invoke(relay_cli, [
        "run", str(config), "--fallback", str(config), "--queue", str(tmp_path / "q.sqlite3"),
        "--listen", "127.0.0.1:0"])
    assert result.exit_code == 2
    assert "the fallback is the same server as the primary" in result.output
