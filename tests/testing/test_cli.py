"""``maildoctor testserver``: option mapping in-process, and the real command as a subprocess."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from maildoctor.cli.testserver import _banner, build_options, command
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


def test_non_loopback_host_is_a_usage_error_naming_the_flag():
    result = CliRunner().invoke(command, ["--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2
    assert "--host 0.0.0.0: not a loopback address. Add --allow-remote" in result.output
    assert "allow_remote" not in result.output


def _banner_of(server, scenario=None):
    return _banner(server, scenario).splitlines()


def _field(lines, name):
    return next(line for line in lines if line.startswith(f"  {name:<12} "))[15:]


def _verify_message(server):
    """What a verifying client trusting the server's CA file really gets."""
    context = ssl.create_default_context(cafile=server.ca_file)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                return None
        except ssl.SSLCertVerificationError as exc:
            return exc.verify_message


def test_banner_trusted_certificate_names_the_ca_file_that_works(smtp_server):
    server = smtp_server(tls="implicit")
    lines = _banner_of(server)
    assert _field(lines, "trust") == f"SSL_CERT_FILE={server.ca_file}   (in Synapse's environment)"
    assert not any(line.startswith("  clients see") for line in lines)
    assert _verify_message(server) is None


@pytest.mark.parametrize("kind", ["untrusted", "self-signed", "expired"])
def test_banner_says_the_certificate_is_deliberately_untrusted(smtp_server, kind):
    server = smtp_server(tls="implicit", cert=kind)
    lines = _banner_of(server)
    trust = _field(lines, "trust")
    assert "deliberately" in trust
    if kind != "expired":  # the CA file cannot help, so it is not offered
        assert "SSL_CERT_FILE" not in trust and trust.startswith("none works")
    seen = _field(lines, "clients see")
    assert seen == (f"certificate verify failed: {_verify_message(server)}   "
                    "(Synapse: hangs, logs nothing)")


@pytest.mark.parametrize("scenario", ["untrusted-cert-starttls", "untrusted-cert-implicit"])
def test_untrusted_scenarios_do_not_offer_the_ca_file(smtp_scenario, scenario):
    lines = _banner_of(smtp_scenario(scenario), scenario)
    assert "SSL_CERT_FILE" not in "\n".join(lines[:6])
    assert "unable to get local issuer certificate" in _field(lines, "clients see")


def test_banner_no_auth_offered(smtp_scenario):
    server = smtp_scenario("no-auth-offered")
    login = _field(_banner_of(server, "no-auth-offered"), "login")
    assert login.endswith("(AUTH not advertised)") and "mechanisms" not in login
    with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
        client.ehlo("me.example")
        assert not client.has_extn("auth")  # the banner tells the truth


def test_banner_auth_variants(smtp_server, smtp_scenario):
    login = _field(_banner_of(smtp_server(tls="starttls", auth_after_starttls_only=True)),
                   "login")
    assert login.endswith("(mechanisms: LOGIN PLAIN, offered after STARTTLS only)")
    lines = _banner_of(smtp_scenario("lowercase-auth"), "lowercase-auth")
    assert _field(lines, "login").endswith("(AUTH as in the EHLO reply below)")
    assert _field(lines, "reply") == "ehlo: 250-mail.test | 250-auth login plain | 250 HELP"
    assert _field(_banner_of(smtp_server()), "trust") == "nothing to trust (no TLS)"


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
