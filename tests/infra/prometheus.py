"""A throwaway real Prometheus (Debian's package) on 127.0.0.1, and promtool, for tests
(pytest plugin).

Each server gets a fresh directory for its config and its TSDB, listens on a free loopback
port, and is stopped (SIGTERM, then SIGKILL) at teardown; every wait is bounded. A missing
``prometheus`` or ``promtool`` fails the tests that need them (never a skip):
``scripts/install-system-deps.sh`` installs the package.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from maildoctor.testing.ports import free_port

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0
_RUNNING: list[subprocess.Popen[bytes]] = []


def debian_binary(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``, or a test failure saying how to get it."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}")
                                   else None)
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/install-system-deps.sh (Debian "
                    "package prometheus)", pytrace=False)
    return found


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)


@atexit.register
def _stop_all() -> None:
    for proc in _RUNNING:
        _kill(proc)


class PrometheusServer:
    def __init__(self, root: Path, config: dict[str, Any],
                 files: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        for name, text in (files or {}).items():
            (root / name).write_text(text, encoding="utf-8")
        self.config_file = root / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.log_file = root / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrometheusServer:
        argv = [debian_binary("prometheus"),
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.root / 'data'}",
                "--storage.tsdb.retention.time=1h",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn"]
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=self.root, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        _RUNNING.append(self.proc)
        self.wait_until(self._ready, START_TIMEOUT, "Prometheus to be ready")
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=HTTP_TIMEOUT) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}",
                                    timeout=HTTP_TIMEOUT) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> dict[str, float]:
        """An instant query's result, as instance label -> value."""
        data = self.api("query", query=expr)
        return {item["metric"].get("instance", ""): float(item["value"][1])
                for item in data["result"]}

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"Prometheus exited ({self.proc.returncode}): {self.log()}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; Prometheus said: {self.log()}",
                            pytrace=False)
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is not None:
            _kill(self.proc)


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """A factory: ``prometheus_server(config_dict, files={"alerts.yml": text})`` starts a
    Prometheus with that config (and those files beside it) and returns it once ready."""
    started: list[PrometheusServer] = []

    def start(config: dict[str, Any], files: dict[str, str] | None = None) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus-{len(started)}", config, files)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def promtool() -> Callable[..., subprocess.CompletedProcess[str]]:
    binary = debian_binary("promtool")

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL, check=False)

    return run
