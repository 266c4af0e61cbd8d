"""Issue 10 item 11: an unusable config gives every command a located message and exit 2.

``check`` guarded its input; ``send --dry-run``, ``shell`` and ``init --merge`` crashed with
tracebacks (AttributeError, OverflowError, OSError, RecursionError), hung on ``/dev/zero``,
or read a 6.6 MB file the others refuse. They now share one loader and its limits. Each
command runs as a process (``python -m maildoctor``), bounded, so a hang fails the test.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from maildoctor.config.load import MAX_FILE_BYTES


def _text(text: str) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        (tmp / "hs.yaml").write_text(text)
        return str(tmp / "hs.yaml")
    return make


def _loop(tmp: Path) -> str:
    (tmp / "a.yaml").symlink_to(tmp / "b.yaml")
    (tmp / "b.yaml").symlink_to(tmp / "a.yaml")
    return str(tmp / "a.yaml")


CONFIGS: dict[str, Callable[[Path], str]] = {
    "email-is-a-list": _text("server_name: x\nemail: [1, 2]\n"),
    "email-is-a-string": _text("server_name: x\nemail: hello\n"),
    "port-too-big": _text("server_name: x\nemail:\n  smtp_host: 127.0.0.1\n"
                          "  smtp_port: 99999999999999999999\n  notif_from: a <a@example.org>\n"),
    "symlink-loop": _loop,
    "deep-nesting": _text("a: " + "[" * 5000 + "]" * 5000 + "\n"),
    "dev-zero": lambda tmp: "/dev/zero",
    "too-big": _text("a: b\n" * (MAX_FILE_BYTES // 5 + 100_000)),
}
#: Which configs each command cannot use (check reads on where it can: email as a list is a
#: finding for it, not unusable input).
COMMANDS: dict[str, tuple[list[str], set[str]]] = {
    "send": (["send", "{path}", "--to", "a@example.org", "--dry-run"], set(CONFIGS)),
    "shell": (["shell", "{path}"], set(CONFIGS)),
    "init": (["init", "--provider", "gmail", "--merge", "{path}", "--force"],
             set(CONFIGS) - {"email-is-a-list", "email-is-a-string", "port-too-big"}),
    "check": (["check", "{path}"],
              set(CONFIGS) - {"email-is-a-list", "email-is-a-string", "port-too-big"}),
}
CASES = [(cmd, cfg) for cmd, (_args, bad) in COMMANDS.items() for cfg in sorted(bad)]


@pytest.mark.parametrize(("command", "config"), CASES)
def test_unusable_config_is_a_located_message(command: str, config: str,
                                              tmp_path: Path) -> None:
    path = CONFIGS[config](tmp_path)
    args = [a.replace("{path}", path) for a in COMMANDS[command][0]]
    proc = subprocess.run([sys.executable, "-m", "maildoctor", *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("maildoctor: "), proc.stderr
    if config != "dev-zero":
        assert path in proc.stderr or Path(path).name in proc.stderr
