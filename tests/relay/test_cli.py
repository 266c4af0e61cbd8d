"""``maildoctor relay status|list|retry|drop|run`` through click's CliRunner, on queue files a
real relay filled."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from maildoctor.cli.relay import command as relay_cli
from maildoctor.cli.relay import parse_hostport
from maildoctor.config.settings import settings_from_config
from maildoctor.relay import Queue, relay_email_block
from tests.relay.conftest import RelayFactory, plain_upstream, send, wait_until


def _run(*args: str) -> Any:
    return CliRunner().invoke(relay_cli, list(args), catch_exceptions=False)


def test_status_names_the_upstream_failure_in_plain_words(
        relay_factory: RelayFactory, closed_port: int, queue_path: str,
        queue: Callable[[], Queue]) -> None:
    relay = relay_factory(plain_upstream("127.0.0.1", closed_port))
    send(relay.port, count=2)
    wait_until(lambda: any(u.failing for u in queue().upstreams()),
               what="a recorded upstream error")
    result = _run("status", "--queue", queue_path)
    assert result.exit_code == 1, result.output
    assert "queued 2 (oldest accepted" in result.output
    assert f"upstream 127.0.0.1:{closed_port}: FAILING" in result.output
    assert (f"cause: the connection to 127.0.0.1:{closed_port} was refused: nothing listens "
            "on that port") in result.output
    assert "fix:   check smtp_host and smtp_port against your provider" in result.output

    data = json.loads(_run("status", "--queue", queue_path, "--format", "json").output)
    assert data["version"] == 1 and data["counts"]["queued"] == 2 and not data["healthy"]
    assert data["oldest_queued_age_seconds"] >= 0
    (up,) = data["upstreams"]
    assert up["failing"] and up["reason"] == "connect"


def test_status_healthy_after_delivery(smtp_server: Any, relay_factory: RelayFactory,
                                       queue_path: str, queue: Callable[[], Queue]) -> None:
    upstream = smtp_server()
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False})
    send(relay.port)
    wait_until(lambda: queue().counts()["delivered"] == 1, what="delivered")
    result = _run("status", "--queue", queue_path)
    assert result.exit_code == 0, result.output
    assert "queued 0, delivered 1, dead 0" in result.output
    assert f"upstream 127.0.0.1:{upstream.port}: ok" in result.output


def test_retry_and_drop_dead_letters(smtp_server: Any, relay_factory: RelayFactory,
                                     queue_path: str, queue: Callable[[], Queue]) -> None:
    upstream = smtp_server(replies={"rcpt": "550 5.1.1 <{address}>: User unknown"})
    relay = relay_factory(upstream.synapse_email_config() | {"enable_tls": False})
    send(relay.port, count=2)
    wait_until(lambda: queue().counts()["dead"] == 2, what="two dead letters")
    first, second = (m.id for m in queue().list("dead"))

    status = _run("status", "--queue", queue_path)
    assert status.exit_code == 1
    assert f"#{first} <m0@test> to bob@example.org: the server refused the recipient" \
        in status.output
    listed = _run("list", "--queue", queue_path, "--state", "dead")
    assert f"#{second} dead" in listed.output

    dropped = _run("drop", "--queue", queue_path, str(second))
    assert dropped.exit_code == 0 and queue().get(second) is None
    assert _run("drop", "--queue", queue_path, str(second)).exit_code == 1

    attempts_before = queue().get(first).attempts  # type: ignore[union-attr]
    retried = _run("retry", "--queue", queue_path, str(first))
    assert retried.exit_code == 0 and "1 message(s)" in retried.output
    # The relay notices (poll_interval) and tries again; the upstream still refuses.
    wait_until(lambda: (m := queue().get(first)) is not None and m.state == "dead"
               and m.attempts > attempts_before, what="the retried message tried again")
    assert _run("retry", "--queue", queue_path, "--all").output.startswith("1 message(s)")
    assert _run("retry", "--queue", queue_path).exit_code == 2  # neither ID nor --all


def test_commands_refuse_a_missing_queue(tmp_path: Path) -> None:
    result = _run("status", "--queue", str(tmp_path / "nope.sqlite3"))
    assert result.exit_code == 2
    assert not (tmp_path / "nope.sqlite3").exists()


def test_run_refuses_an_unusable_config(tmp_path: Path) -> None:
    config = tmp_path / "upstream.yaml"
    config.write_text("email:\n  smtp_host: mail.invalid\n  smtp_user: me\n")
    result = CliRunner().invoke(relay_cli, ["run", str(config), "--queue",
                                            str(tmp_path / "q.sqlite3"), "--listen",
                                            "127.0.0.1:0"])
    assert result.exit_code == 2
    assert "smtp_user is 'me' but no password configured" in result.output


def test_parse_hostport() -> None:
    assert parse_hostport("127.0.0.1:2600", 2525) == ("127.0.0.1", 2600)
    assert parse_hostport("[::1]:2600", 2525) == ("::1", 2600)
    assert parse_hostport("::1", 2525) == ("::1", 2525)
    assert parse_hostport(":9125", 1) == ("127.0.0.1", 9125)


def test_relay_email_block_points_synapse_at_the_relay() -> None:
    text = relay_email_block(2600)
    settings = settings_from_config(yaml.safe_load(text))
    assert (settings.smtp_host, settings.smtp_port) == ("127.0.0.1", 2600)
    assert not settings.starttls_enabled and not settings.require_auth
    assert settings.from_string == "Matrix <noreply@example.org>"
    assert "loopback" in text


def test_run_in_foreground_stops_on_sigterm(smtp_server: Any, tmp_path: Path) -> None:
    import signal
    import socket
    import subprocess
    import sys

    upstream = smtp_server()
    config = tmp_path / "upstream.yaml"
    config.write_text(yaml.safe_dump({"email": upstream.synapse_email_config()
                                      | {"enable_tls": False}}))
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    queue_file = tmp_path / "q.sqlite3"
    argv = [sys.executable, "-c", "from maildoctor.cli.relay import command; command()",
            "run", str(config), "--listen", f"127.0.0.1:{port}", "--queue", str(queue_file),
            "--retry-base", "0.05"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        def greets() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                return False

        wait_until(greets, what="the relay listening")
        send(port, count=3)
        upstream.wait_for_messages(3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    log = err.decode()
    assert "level=info event=started" in log and "event=stopped" in log
    assert log.count("event=delivered") == 3
    assert "mail.log" not in log  # aiosmtpd's chatter stays out of the relay's log
    q = Queue(str(queue_file))
    try:
        assert q.counts() == {"queued": 0, "delivered": 3, "dead": 0}
    finally:
        q.close()


def test_status_lists_refused_recipients(sink: Any, relay_factory: RelayFactory,
                                         queue_path: str, queue: Callable[[], Queue]) -> None:
    upstream = sink({"gone@example.org": "550 5.1.1 <gone@example.org>: User unknown"})
    relay = relay_factory(plain_upstream("127.0.0.1", upstream.port))
    send(relay.port, recipients=("ann@example.org", "gone@example.org"))
    wait_until(lambda: queue().counts()["delivered"] == 1, what="delivered")
    result = _run("status", "--queue", queue_path)
    assert "refused recipients (the others got the mail):" in result.output
    assert "<m0@test> <gone@example.org>: 550 5.1.1 <gone@example.org>: User unknown" \
        in result.output
    data = json.loads(_run("status", "--queue", queue_path, "--format", "json").output)
    assert data["bounces"][0]["refused"] == {
        "gone@example.org": "550 5.1.1 <gone@example.org>: User unknown"}


UNUSABLE_UPSTREAMS = {
    "email-list": ("email:\n  - smtp_host: mail.example.org\n", "email: is a list"),
    "email-string": ("email: smtp.example.org\n", "email: is a string"),
    "email-null": ("email:\nserver_name: example.org\n", "email: is null"),
    "email-empty-mapping": ("email: {}\n", "email: is empty"),
    "empty-file": ("", "is empty"),
    "no-email-block": ("server_name: example.org\n", "has no email: block"),
    "port-too-big": ("email:\n  smtp_host: 127.0.0.1\n  smtp_port: 70000\n",
                     "email.smtp_port 70000 is out of range"),
    "port-zero": ("email:\n  smtp_host: 127.0.0.1\n  smtp_port: 0\n",
                  "email.smtp_port 0 is out of range"),
    "port-quoted": ("email:\n  smtp_host: 127.0.0.1\n  smtp_port: '587'\n",
                    "email.smtp_port is a string"),
    "port-list": ("email:\n  smtp_host: 127.0.0.1\n  smtp_port: [587]\n",
                  "email.smtp_port is a list"),
    "host-empty": ("email:\n  smtp_host: ''\n", "email.smtp_host is a string (empty)"),
    "host-list": ("email:\n  smtp_host: [a, b]\n", "email.smtp_host is a list"),
}


@pytest.mark.parametrize("name", sorted(UNUSABLE_UPSTREAMS))
def test_run_refuses_an_upstream_it_cannot_deliver_with(name: str, tmp_path: Path) -> None:
    """Exit 2 with the place to fix, before listening: never a relay that answers 250 and then
    fails (or crashes on) every delivery."""
    text, expected = UNUSABLE_UPSTREAMS[name]
    config = tmp_path / "upstream.yaml"
    config.write_text(text)
    queue_file = tmp_path / "q.sqlite3"
    result = CliRunner().invoke(relay_cli, ["run", str(config), "--queue", str(queue_file),
                                            "--listen", "127.0.0.1:0"])
    assert result.exit_code == 2, result.output
    assert expected in result.output, result.output
    assert str(config) in result.output  # located
    assert "Traceback" not in result.output
    assert not queue_file.exists()  # refused before anything was created
