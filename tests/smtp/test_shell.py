"""``maildoctor shell`` driven through stdin (not a tty) against the real test server.

The shell opens the session the way Synapse does (STARTTLS after the first EHLO when
Synapse would send it) and applies the probe's credential rule to ``auth``. The test
server listens on 127.0.0.1, which the rule allows; ``loopback_is_remote`` makes the
shell treat it as a remote host so the refusal itself is exercised.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from maildoctor.cli.shell import command
from maildoctor.smtp.auth_stage import refuse_credentials
from maildoctor.smtp.interactive import ShellOptions, run_shell, starttls_decision
from maildoctor.testing.server import EventKind, TestServer

from .conftest import PASSWORD, USER, Serve, settings_for


def run_cli(tmp_path: Path, server: TestServer, script: str, *extra: str,
            **overrides: object) -> tuple[int, str]:
    config = server.synapse_email_config()
    config.update(overrides)
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump({"email": config}))
    result = CliRunner().invoke(command, [str(path), "--ca-file", server.ca_file,
                                          "--timeout", "3", *extra], input=script)
    return result.exit_code, result.output


def run_direct(server: TestServer, script: list[str], options: ShellOptions,
               **overrides: Any) -> tuple[int, list[str]]:
    """The shell loop itself, for options the CLI does not have (``loopback_is_remote``)."""
    lines = iter(script)
    out: list[str] = []

    async def read_line() -> str | None:
        return next(lines, None)

    status = asyncio.run(run_shell(settings_for(server, **overrides), options, read_line,
                                   out.append))
    return status, out


def remote(server: TestServer, **changes: Any) -> ShellOptions:
    return ShellOptions(timeout=3.0, ca_file=server.ca_file, loopback_is_remote=True, **changes)


def auth_events(server: TestServer) -> list[tuple[str | None, bool | None]]:
    return [(e.mechanism, e.success) for e in server.events if e.kind is EventKind.AUTH]


def test_starttls_after_first_ehlo_then_auth_inside_tls(serve: Serve, tmp_path: Path) -> None:
    server = serve(tls="starttls", mechanisms=("LOGIN", "CRAM-MD5"))
    code, out = run_cli(tmp_path, server, "EHLO me.example\nauth\nquit\n")
    assert code == 0
    lines = out.splitlines()
    first_ehlo = lines.index(" -> EHLO me.example")
    decided = lines.index("=== the server offers STARTTLS and enable_tls is on: upgrading, "
                          "as Synapse does")
    starttls = lines.index(" -> STARTTLS")
    verified = lines.index("=== certificate verified for 127.0.0.1")
    second_ehlo = lines.index(" ~> EHLO me.example")
    auth = lines.index(" ~> AUTH CRAM-MD5")
    assert first_ehlo < decided < starttls < verified < second_ehlo < auth
    assert "<~  235 2.7.0 Authentication successful" in lines
    assert not any(line.startswith(" -> AUTH") for line in lines)  # nothing in clear text
    assert auth_events(server) == [("CRAM-MD5", True)]
    assert lines[-1].startswith("<~  221")


def test_explicit_starttls_after_the_automatic_one_is_not_sent(serve: Serve,
                                                                tmp_path: Path) -> None:
    server = serve(tls="starttls")
    code, out = run_cli(tmp_path, server, "EHLO me.example\nstarttls\nquit\n")
    assert code == 0
    assert out.count(" -> STARTTLS") == 1 and " ~> STARTTLS" not in out
    assert "*** already in TLS" in out


def test_untrusted_certificate_is_marked_unverified_and_auth_refused(serve: Serve) -> None:
    server = serve(tls="starttls", cert="untrusted")
    status, out = run_direct(server, ["EHLO me.example", "auth", "quit"], remote(server))
    assert status == 0
    assert any(line.startswith("*** certificate not accepted for '127.0.0.1'") for line in out)
    assert "=== TLS WITHOUT VERIFICATION: the certificate was rejected" in out
    assert any("this connection is UNVERIFIED" in line
               and "`auth` is refused here unless --allow-plaintext-auth" in line
               for line in out)
    assert " !> EHLO me.example" in out and "<!  221 Bye" in out
    assert not any(line.startswith((" ~> ", "<~  ")) for line in out)
    refusal = refuse_credentials(verified_tls=False, loopback=False, tls=True, allowed=False)
    assert f"*** {refusal}" in out
    assert "--allow-plaintext-auth" in refusal and "allow_plaintext_auth" not in refusal
    assert auth_events(server) == []


def test_allow_plaintext_auth_sends_over_unverified_tls(serve: Serve) -> None:
    server = serve(tls="starttls", cert="untrusted")
    status, out = run_direct(server, ["EHLO me.example", "auth", "quit"],
                             remote(server, allow_plaintext_auth=True))
    assert status == 0
    assert "*** --allow-plaintext-auth: sending the credentials over unverified TLS" in out
    assert "<!  235 2.7.0 Authentication successful" in out
    assert auth_events(server) == [("LOGIN", True)]


def test_clear_text_auth_refused_when_require_tls_finds_no_starttls(serve: Serve) -> None:
    server = serve()  # plain: no STARTTLS
    status, out = run_direct(server, ["EHLO me.example", "auth", "quit"], remote(server),
                             require_transport_security=True)
    assert status == 0
    assert ("=== the server does not offer STARTTLS, and require_transport_security is set: "
            "Synapse stops here (TLSRequiredError 502)") in out
    refusal = refuse_credentials(verified_tls=False, loopback=False, tls=False, allowed=False)
    assert f"*** {refusal}" in out and "clear text" in refusal
    assert auth_events(server) == []


def test_loopback_server_may_get_credentials_over_unverified_tls(serve: Serve,
                                                                  tmp_path: Path) -> None:
    server = serve(tls="implicit", cert="untrusted")
    code, out = run_cli(tmp_path, server, "EHLO me.example\nauth\nquit\n")
    assert code == 0
    lines = out.splitlines()
    rejected = next(i for i, line in enumerate(lines) if "certificate not accepted" in line)
    greeting = next(i for i, line in enumerate(lines) if line.startswith("<!  220"))
    assert rejected < greeting
    assert any("UNVERIFIED" in line and "`auth` still works: the server is on a loopback "
               "address" in line for line in lines)
    assert "<!  235 2.7.0 Authentication successful" in lines
    assert " -> STARTTLS" not in lines and " !> STARTTLS" not in lines  # already TLS


def test_enable_tls_false_stays_in_clear_text(serve: Serve, tmp_path: Path) -> None:
    server = serve(tls="starttls")
    code, out = run_cli(tmp_path, server, "EHLO me.example\nauth\nquit\n",
                        enable_tls=False, require_transport_security=False)
    assert code == 0
    assert ("=== enable_tls is false: Synapse stays in clear text although the server offers "
            "STARTTLS") in out
    assert " -> STARTTLS" not in out.splitlines()
    assert " -> AUTH LOGIN" in out  # loopback: allowed
    assert not [e for e in server.events if e.kind is EventKind.TLS]


def test_starttls_refused_is_said(serve: Serve, tmp_path: Path) -> None:
    server = serve(tls="starttls", replies={"starttls": "454 4.7.0 TLS not available"})
    code, out = run_cli(tmp_path, server, "EHLO me.example\nquit\n")
    assert code == 0
    assert "*** STARTTLS refused (454): Synapse stops here (SMTPTLSError, no fallback to " \
           "clear text)" in out


def test_auth_named_mechanism_never_prints_credentials(serve: Serve, tmp_path: Path) -> None:
    server = serve(mechanisms=("PLAIN", "LOGIN"))
    code, out = run_cli(tmp_path, server, "EHLO me.example\nauth plain\n")
    assert code == 0  # end of input = quit
    assert "<-  235 2.7.0 Authentication successful" in out
    for secret in (PASSWORD, base64.b64encode(PASSWORD.encode()).decode(),
                   base64.b64encode(f"{USER}\0{USER}\0{PASSWORD}".encode()).decode()):
        assert secret not in out
    assert "AUTH PLAIN <credentials hidden>" in out


def test_help_names_the_flag() -> None:
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    assert "--allow-plaintext-auth" in result.output


def test_connection_failure_exit_status(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump({"email": {"smtp_host": "me@example.org",
                                              "notif_from": "x@example.org"}}))
    result = CliRunner().invoke(command, [str(path)], input="quit\n")
    assert result.exit_code == 1
    assert "cannot resolve" in result.output


CAPS_STARTTLS = ("mail.test", "STARTTLS", "AUTH LOGIN")
CAPS_LOWER = ("mail.test", "starttls")
CAPS_NONE = ("mail.test", "AUTH LOGIN")


@pytest.mark.parametrize(("config", "caps", "upgrade", "words"), [
    ({}, CAPS_STARTTLS, True, "as Synapse does"),
    ({"require_transport_security": True}, CAPS_STARTTLS, True, "as Synapse does"),
    ({"enable_tls": False}, CAPS_STARTTLS, False, "stays in clear text"),
    ({"enable_tls": False, "require_transport_security": True}, CAPS_STARTTLS, True,
     "refuses to start"),
    ({}, CAPS_NONE, False, "goes on in clear text"),
    ({"require_transport_security": True}, CAPS_NONE, False, "TLSRequiredError"),
    ({}, CAPS_LOWER, False, "another case, which Twisted ignores"),
])
def test_starttls_decision(config: dict[str, Any], caps: tuple[str, ...], upgrade: bool,
                           words: str) -> None:
    from maildoctor.config.settings import settings_from_config

    settings = settings_from_config({"email": {"smtp_host": "mail.invalid", **config}})
    decided, why = starttls_decision(settings, caps)
    assert decided is upgrade
    assert words in why
