"""Issue 10 item 8: what a real terminal shows, read from a tmux pane.

While a slow stage runs, the spinner names the stage being *waited on*, with its elapsed
time against the timeout; at the end the live lines are gone and the stage table is on the
screen once. ``maildoctor explain`` with no argument on a terminal does not wait silently.
The pane is polled for each expected text with a deadline (no fixed sleeps).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TMUX = shutil.which("tmux")


@pytest.fixture
def pane() -> Iterator[Callable[[str], Callable[[], str]]]:
    if TMUX is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is missing: scripts/install-system-deps.sh installs it")
        pytest.skip("tmux is not installed (scripts/install-system-deps.sh)")
    sessions: list[str] = []

    def start(command: str) -> Callable[[], str]:
        name = f"md-{uuid.uuid4().hex[:8]}"
        sessions.append(name)
        subprocess.run([TMUX, "new-session", "-d", "-s", name, "-x", "120", "-y", "50",
                        f"{command}; echo '[exited]'; sleep 60"], check=True, timeout=10)

        def screen() -> str:
            return subprocess.run([TMUX, "capture-pane", "-p", "-t", name], check=True,
                                  capture_output=True, text=True, timeout=10).stdout
        return screen

    yield start
    for name in sessions:
        subprocess.run([TMUX, "kill-session", "-t", name], check=False, timeout=10)


def wait_for(screen: Callable[[], str], text: str, deadline: float = 30.0) -> str:
    end = time.monotonic() + deadline
    while True:
        shown = screen()
        if text in shown:
            return shown
        if time.monotonic() > end:
            raise AssertionError(f"{text!r} never appeared; the screen:\n{shown}")
        time.sleep(0.05)


def _maildoctor(*args: str) -> str:
    return shlex.join([sys.executable, "-m", "maildoctor", *args])


def test_probe_spinner_names_the_awaited_stage_and_the_table_is_shown_once(
        pane: Callable[[str], Callable[[], str]], smtp_scenario: Any, tmp_path: Path) -> None:
    server = smtp_scenario("silent")  # accepts the connection, then says nothing
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text("server_name: example.org\nemail:\n  smtp_host: 127.0.0.1\n"
                   f"  smtp_port: {server.port}\n  notif_from: a <a@example.org>\n")
    screen = pane(_maildoctor("probe", str(cfg), "--timeout", "3"))
    live = wait_for(screen, "waiting on sniff")
    assert "of 3s)" in live
    assert "(connect done)" not in live and "tls done" not in live
    final = wait_for(screen, "[exited]")
    assert "waiting on" not in final and "probing" not in final
    table = [line for line in final.splitlines() if line.startswith(("resolve ", "connect "))]
    assert len(table) == 2, final  # one table: each stage once
    assert final.count("connected to 127.0.0.1") == 1, final


def test_explain_without_a_log_on_a_terminal_prints_usage(
        pane: Callable[[str], Callable[[], str]]) -> None:
    screen = pane(_maildoctor("explain"))
    final = wait_for(screen, "[exited]", deadline=20)
    assert "give Synapse's log" in final and "Usage:" in final


def test_explain_dash_on_a_terminal_says_it_reads_stdin(
        pane: Callable[[str], Callable[[], str]]) -> None:
    screen = pane(_maildoctor("explain", "-"))
    wait_for(screen, "reading Synapse's log from standard input", deadline=20)
