"""``maildoctor shell`` driven through stdin (not a tty) against the real test server."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml
from click.testing import CliRunner

from maildoctor.cli.shell import command
from maildoctor.testing.server import EventKind

from .conftest import PASSWORD, USER, Serve


def run_shell(tmp_path: Path, server: object, script: str, **overrides: object) -> tuple[int, str]:
    config = server.synapse_email_config()  # type: ignore[attr-defined]
    config.update(overrides)
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump({"email": config}))
    result = CliRunner().invoke(command, [str(path), "--ca-file",
                                          server.ca_file, "--timeout", "3"],  # type: ignore[attr-defined]
                                input=script)
    return result.exit_code, result.output


def test_starttls_and_auth_with_synapse_mechanism(serve: Serve, tmp_path: Path) -> None:
    server = serve(tls="starttls", mechanisms=("LOGIN", "CRAM-MD5"))
    code, out = run_shell(tmp_path, server,
                          "EHLO me.example\nstarttls\nEHLO me.example\nauth\nquit\n")
    assert code == 0
    lines = out.splitlines()
    boundary = lines.index("=== TLS started (TLSv1.3)")
    assert " -> STARTTLS" in lines[:boundary]
    assert " ~> AUTH CRAM-MD5" in lines[boundary:]
    assert "<~  235 2.7.0 Authentication successful" in lines
    assert [e.mechanism for e in server.events if e.kind is EventKind.AUTH] == ["CRAM-MD5"]
    assert lines[-1].startswith("<~  221")


def test_auth_named_mechanism_never_prints_credentials(serve: Serve, tmp_path: Path) -> None:
    server = serve(mechanisms=("PLAIN", "LOGIN"))
    code, out = run_shell(tmp_path, server, "EHLO me.example\nauth plain\n")
    assert code == 0  # end of input = quit
    assert "<-  235 2.7.0 Authentication successful" in out
    for secret in (PASSWORD, base64.b64encode(PASSWORD.encode()).decode(),
                   base64.b64encode(f"{USER}\0{USER}\0{PASSWORD}".encode()).decode()):
        assert secret not in out
    assert "AUTH PLAIN <credentials hidden>" in out


def test_implicit_tls_before_greeting_and_rejected_certificate(serve: Serve,
                                                               tmp_path: Path) -> None:
    server = serve(tls="implicit", cert="untrusted")
    code, out = run_shell(tmp_path, server, "NOOP\nquit\n")
    assert code == 0
    lines = out.splitlines()
    rejected = next(i for i, line in enumerate(lines) if "certificate not accepted" in line)
    greeting = next(i for i, line in enumerate(lines) if line.startswith("<~  220"))
    assert rejected < greeting
    assert "<~  250 OK" in lines or any(line.startswith("<~  250") for line in lines)


def test_connection_failure_exit_status(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump({"email": {"smtp_host": "me@example.org",
                                              "notif_from": "x@example.org"}}))
    result = CliRunner().invoke(command, [str(path)], input="quit\n")
    assert result.exit_code == 1
    assert "cannot resolve" in result.output
