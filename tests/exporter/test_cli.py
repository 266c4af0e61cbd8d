"""``maildoctor exporter`` as a process: targets from options and a targets file, real HTTP,
refusals on the wire, a graceful SIGTERM, and exit status 2 with a plain message for every
unusable start."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from maildoctor.testing.server import DEFAULT_PASSWORD, TestServer
from tests.exporter.homeservers import write_healthy, write_smpt_pass

START_TIMEOUT = 30.0


class Running:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.port = port

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}",
                                        timeout=30) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8")

    def raw(self, request: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


def _exporter(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "maildoctor", "exporter", *args],
                            cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Running:
        ready = tmp_path / f"ready-{len(started)}"
        proc = _exporter("--listen", "127.0.0.1:0", "--ready-file", str(ready), *args,
                         cwd=tmp_path)
        started.append(proc)
        deadline = time.monotonic() + START_TIMEOUT
        while not (ready.exists() and ready.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate(timeout=10)
                pytest.fail(f"the exporter did not start: {err}")
            time.sleep(0.02)
        return Running(proc, int(ready.read_text()))

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def test_serves_targets_from_options_and_file_and_stops_on_sigterm(
        start_exporter: Callable[..., Running], smtp_server: Callable[..., TestServer],
        tmp_path: Path) -> None:
    server = smtp_server()
    configs = tmp_path / "configs"
    configs.mkdir()
    write_healthy(server, configs / "healthy.yaml")
    broken = write_smpt_pass(server, tmp_path / "broken.yaml")
    targets = tmp_path / "targets.yaml"
    targets.write_text("healthy: configs/healthy.yaml\n", encoding="utf-8")
    running = start_exporter("--targets-file", str(targets), "--target", f"broken={broken}")
    status, body = running.get("/probe?target=healthy")
    assert status == 200 and "maildoctor_probe_success 1.0" in body
    status, body = running.get("/probe?target=broken")
    assert status == 200 and "maildoctor_probe_success 0.0" in body
    assert running.get("/probe?target=/etc/passwd")[0] == 400
    assert running.get("/probe?target=healthy&config=/etc/passwd")[0] == 400
    assert running.get("/probe?target=nope")[0] == 404
    status, body = running.get("/metrics")
    assert status == 200 and "maildoctor_exporter_targets 2.0" in body
    code, err = running.stop()
    assert code == 0, err
    assert "stopped" in err and "Traceback" not in err
    assert "probe broken" in err and "[MD101]" in err
    assert DEFAULT_PASSWORD not in err + body


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"BREW /probe?target=x HTTP/1.1\r\nHost: x\r\n\r\n", b"405"),
    (b"GET /probe?target=../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"GET http://127.0.0.1:25/probe?target=t HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n", b"400"),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"414"),
])
def test_refusals_on_the_wire(start_exporter: Callable[..., Running], tmp_path: Path,
                              request_bytes: bytes, status: bytes) -> None:
    config = tmp_path / "t.yaml"
    config.write_text("email: {}\n", encoding="utf-8")
    running = start_exporter("--target", f"t={config}")
    answer = running.raw(request_bytes)
    assert answer.split(b" ", 2)[1] == status, answer[:200]
    code, err = running.stop()
    assert code == 0 and "Traceback" not in err


@pytest.mark.parametrize(("args", "says"), [
    (["--target", "a/b=x.yaml"], "not a plain name"),
    (["--target", "noequals"], "expected NAME=CONFIG"),
    (["--target", "a=x.yaml", "--target", "b=y.yaml", "--targets-file", "{dir}/dup.yaml"],
     "defined twice"),
    (["--targets-file", "{dir}/missing.yaml"], "cannot read the targets file"),
    (["--targets-file", "{dir}/broken.yaml"], "broken.yaml:3:1: YAML syntax error"),
    (["--targets-file", "{dir}/list.yaml"], "expected a mapping"),
    ([], "at least one --target"),
    (["--target", "a=x.yaml", "--listen", "nonsense"], "HOST:PORT"),
    (["--target", "a=x.yaml", "--listen", "127.0.0.1:99999"], "out of range"),
    (["--target", "a=x.yaml", "--listen", "127.0.0.1:0", "--ready-file", "{dir}/no/such/f"],
     "cannot write --ready-file"),
])
def test_unusable_start_exits_2(tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "dup.yaml").write_text("a: other.yaml\n", encoding="utf-8")
    (tmp_path / "broken.yaml").write_text("a: x.yaml\nb: [oops\n", encoding="utf-8")
    (tmp_path / "list.yaml").write_text("- a\n- b\n", encoding="utf-8")
    argv = [a.replace("{dir}", str(tmp_path)) for a in args]
    proc = _exporter(*argv, cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, (out, err)
    assert says in err and "Traceback" not in err


def test_an_address_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _exporter("--target", "a=x.yaml", "--listen", f"127.0.0.1:{port}", cwd=tmp_path)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "cannot listen" in err and "Traceback" not in err


def test_sigterm_while_a_probe_runs_still_stops(
        start_exporter: Callable[..., Running], smtp_server: Callable[..., TestServer],
        tmp_path: Path) -> None:
    from maildoctor.testing.server import Fault

    silent = smtp_server(faults=(Fault.SILENT,))
    config = write_healthy(silent, tmp_path / "silent.yaml")
    running = start_exporter("--target", f"silent={config}", "--deadline", "1")
    status, body = running.get("/probe?target=silent")
    assert status == 200 and "maildoctor_probe_timed_out 1.0" in body
    code, err = running.stop()  # the probe is still waiting on the silent server
    assert code == 0 and "Traceback" not in err



def test_targets_file_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    from maildoctor.exporter import load_targets_file

    sub = tmp_path / "etc"
    sub.mkdir()
    (sub / "targets.yaml").write_text(
        "alpha: alpha/homeserver.yaml\nbeta: [/srv/beta.yaml, conf.d]\n", encoding="utf-8")
    targets = load_targets_file(str(sub / "targets.yaml"))
    assert targets["alpha"].paths == (str(sub / "alpha" / "homeserver.yaml"),)
    assert targets["beta"].paths == ("/srv/beta.yaml", str(sub / "conf.d"))
