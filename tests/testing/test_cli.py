"""``maildoctor testserver``: option mapping in-process, and the real command as a subprocess."""

from __future__ import annotations

import os
import signal
import smtplib
import ssl
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from maildoctor.cli.testserver import build_options, command
from maildoctor.testing.options import DEFAULT_PASSWORD, DEFAULT_USER, Fault
from maildoctor.testing.scenarios import SCENARIOS


def _params(**given):
    defaults = {
        "scenario": None, "host": "127.0.0.1", "port": 2525, "cert_names": (),
        "mechanisms": (), "user": DEFAULT_USER, "password": DEFAULT_PASSWORD, "replies": [],
        "faults": [],
    }
    return {**defaults, **given}, set(given)


def test_scenario_then_explicit_options():
    params, explicit = _params(
        scenario="starttls-454", tls="implicit", faults=[Fault.SLOW_DRIP],
        replies=[("mail", "553 5.7.1 no")], mechanisms=("CRAM-MD5-BROKEN",),
    )
    opts = build_options(params, explicit)
    assert opts.tls == "implicit"
    assert opts.faults == (Fault.SLOW_DRIP,)
    assert opts.replies == {**SCENARIOS["starttls-454"].replies, "mail": "553 5.7.1 no"}
    assert opts.mechanisms == ("CRAM-MD5-BROKEN",)
    assert opts.port == 2525
    assert opts.credentials == {DEFAULT_USER: DEFAULT_PASSWORD}


def test_list_scenarios():
    result = CliRunner().invoke(command, ["--list-scenarios"])
    assert result.exit_code == 0
    assert result.output.splitlines()[0].startswith("works ")
    assert len(result.output.splitlines()) == len(SCENARIOS)


def test_bad_input_is_a_usage_error():
    runner = CliRunner()
    result = runner.invoke(command, ["--reply", "banner=220 hi"])
    assert result.exit_code == 2 and "STAGE=CODE TEXT" in result.output
    result = runner.invoke(command, ["--reply", "mail=nonsense"])
    assert result.exit_code == 2 and "3-digit code" in result.output
    result = runner.invoke(command, ["--fault", "explode"])
    assert result.exit_code == 2 and "unknown fault" in result.output


def test_non_loopback_host_is_refused_without_allow_remote():
    result = CliRunner().invoke(command, ["--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 1
    assert "not a loopback address" in result.output


def _read_until(stream, marker: str) -> list[str]:
    lines = []
    while True:
        line = stream.readline()
        assert line, f"server exited early; output so far: {lines}"
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines


def test_cli_serves_logs_and_stops_cleanly_on_sigint(tmp_path: Path):
    ready = tmp_path / "port"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "maildoctor", "testserver", "--port", "0",
         "--ready-file", str(ready), "--tls", "starttls", "--save-dir", str(tmp_path / "mail")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        banner = _read_until(proc.stdout, "Ctrl-C stops the server")
        port = int(ready.read_text())
        text = "\n".join(banner)
        assert f"listening    127.0.0.1:{port}" in text
        ca_file = text.split("SSL_CERT_FILE=")[1].split()[0]
        block = yaml.safe_load("\n".join(banner[banner.index("homeserver.yaml:") + 1 : -2]))
        assert block["email"] == {
            "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_user": DEFAULT_USER,
            "smtp_pass": DEFAULT_PASSWORD, "require_transport_security": True,
            "notif_from": "Matrix <noreply@example.org>",
        }
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.starttls(context=ssl.create_default_context(cafile=ca_file))
            client.login(DEFAULT_USER, DEFAULT_PASSWORD)
            client.sendmail("noreply@example.org", ["alice@example.org"], b"Subject: x\r\n\r\n")
        log = _read_until(proc.stdout, "disconnect")
        proc.send_signal(signal.SIGINT)
        rest, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    output = "\n".join(log) + rest
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr + output
    assert "STARTTLS handshake done" in output and "AUTH PLAIN ********" in output
    assert "auth       PLAIN as 'synapse@example.org': accepted" in output
    assert DEFAULT_PASSWORD not in output  # the session log (everything after the banner)
    assert rest.strip().endswith("stopped: 1 connections, 1 messages received")
    assert (tmp_path / "mail" / "0001.eml").read_bytes() == b"Subject: x\r\n\r\n"
    assert f"saved message to {tmp_path / 'mail' / '0001.eml'}" in output
