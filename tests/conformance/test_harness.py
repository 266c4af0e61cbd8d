"""The Synapse harness against the scenarios of spec/synapse-observed.md.

These prove that the harness reports what a real Synapse 1.163.2 does: a delivered mail, the
AUTHRequiredError of the ``smpt_pass`` typo, a refused connection, a hang on an implicit-TLS
port, and a Synapse that does not start at all; then that the other mails can be produced,
that ``env`` reaches Synapse, that forked and plain starts agree and that no process is left.
Each Synapse test starts its own Synapse (about 0.5 s with the fork server).
"""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maildoctor.testing.server import EventKind, ServerOptions, TestServer
from tests.infra.synapse import SynapseHarness, SynapseResult, config_error, last_exception

pytestmark = pytest.mark.synapse

USER, PASSWORD = "synapse@example.org", "s3cret"
SEND_FAILED = {"errcode": "M_UNKNOWN", "error": "An error was encountered when sending the email"}


def block(port: int, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": port,
                            "notif_from": "Matrix <noreply@example.org>"}
    return {**base, **changes}


@pytest.fixture
def sink() -> Iterator[TestServer]:
    """A well-behaved server offering AUTH LOGIN PLAIN for USER / PASSWORD."""
    with TestServer(ServerOptions(credentials={USER: PASSWORD})) as server:
        yield server


def assert_no_secret(result: SynapseResult, run_dir: Path, secret: str) -> None:
    assert secret not in repr(result)
    for path in run_dir.iterdir():
        if path.is_file():
            assert secret not in path.read_text("utf-8", "replace"), path.name


def test_works_delivers_the_validation_mail(synapse_harness: SynapseHarness,
                                            sink: TestServer) -> None:
    with synapse_harness.run(block(sink.port, smtp_user=USER, smtp_pass=PASSWORD)) as syn:
        result = syn.request_registration_mail("alice@example.org")
    assert (result.kind, result.http_status, result.exception) == ("ok", 200, None)
    assert "sid" in result.json()
    [mail] = sink.wait_for_messages(1, timeout=5)
    auth = sink.wait_for(EventKind.AUTH)
    assert (auth.mechanism, auth.success) == ("LOGIN", True)  # Twisted: CRAM-MD5, LOGIN, PLAIN
    assert (mail.mail_from, mail.rcpt_tos) == ("noreply@example.org", ("alice@example.org",))
    message = email.message_from_bytes(mail.data, policy=email.policy.compat32)
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "[example.org] Validate your email"
    assert message["From"] == "Matrix <noreply@example.org>"
    parts = [part.get_content_type() for part in message.walk()][1:]
    assert parts == ["text/plain", "text/html"]
    assert_no_secret(result, syn.dir, PASSWORD)


def test_seed_typo_gives_auth_required(synapse_harness: SynapseHarness,
                                       sink: TestServer) -> None:
    with synapse_harness.run(block(sink.port, smtp_user=USER, smpt_pass=PASSWORD)) as syn:
        result = syn.request_registration_mail("alice@example.org")
    assert (result.kind, result.http_status, result.json()) == ("error", 500, SEND_FAILED)
    assert result.exception == "twisted.mail._except.AUTHRequiredError"
    assert result.message == ("502 Server does not support Client Authentication schemes "
                              "[CRAM-MD5, LOGIN, PLAIN]")
    assert sink.messages == []
    assert_no_secret(result, syn.dir, PASSWORD)


def test_nothing_listening_is_refused(synapse_harness: SynapseHarness) -> None:
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        with synapse_harness.run(block(port)) as syn:
            result = syn.request_registration_mail("alice@example.org")
    assert (result.kind, result.http_status) == ("error", 500)
    assert result.exception == "twisted.internet.error.ConnectionRefusedError"
    assert result.message == "Connection was refused by other side: 111: Connection refused."


def test_implicit_tls_port_without_force_tls_hangs(synapse_harness: SynapseHarness) -> None:
    with TestServer(ServerOptions(tls="implicit", credentials={USER: PASSWORD})) as tls_sink:
        with synapse_harness.run(block(tls_sink.port, smtp_user=USER,
                                       smtp_pass=PASSWORD)) as syn:
            result = syn.request_registration_mail("alice@example.org", timeout=3)
        assert tls_sink.messages == []
    assert (result.kind, result.http_status, result.exception) == ("hang", None, None)
    assert 3 <= result.seconds < 6
    assert "Sending email to alice@example.org" in result.log_tail


def test_numeric_password_stops_synapse_starting(synapse_harness: SynapseHarness,
                                                 sink: TestServer) -> None:
    raw = f"smtp_host: 127.0.0.1\nsmtp_port: {sink.port}\nsmtp_user: {USER}\n" \
          "smtp_pass: 123456\nnotif_from: Matrix <noreply@example.org>\n"
    with synapse_harness.run(raw) as syn:
        result = syn.request_registration_mail("alice@example.org")
    assert result.kind == "no-start"
    assert (result.exception, result.message) == ("AttributeError",
                                                  "'int' object has no attribute 'encode'")
    assert_no_secret(result, syn.dir, "123456")


def test_config_error_stops_synapse_starting(synapse_harness: SynapseHarness) -> None:
    with synapse_harness.run({"smtp_host": "127.0.0.1", "force_tls": True,
                              "enable_tls": False, "notif_from": "a <a@example.org>"}) as syn:
        process = syn.proc
        result = syn.request_password_reset_mail("bob@example.org")
    assert process is None  # it exited by itself, and was never counted as running
    assert result.kind == "no-start"
    assert (result.exception, result.message) == (
        "synapse.config._base.ConfigError",
        "Error in configuration: email.force_tls requires email.enable_tls to be true")


def test_runs_leave_no_process(synapse_harness: SynapseHarness, sink: TestServer) -> None:
    with synapse_harness.run(block(sink.port)) as syn:
        process = syn.proc
        assert process is not None and process.poll() is None
    assert process.poll() is not None
    assert syn.proc is None and not synapse_harness._live


def test_password_reset_mail_for_a_bound_address(synapse_harness: SynapseHarness,
                                                 sink: TestServer) -> None:
    with synapse_harness.run(block(sink.port)) as syn:
        result = syn.request_password_reset_mail("bob@example.org")
    assert (result.kind, result.http_status) == ("ok", 200)
    message = email.message_from_bytes(sink.wait_for_messages(1, timeout=5)[0].data)
    assert message["Subject"] == "[example.org] Password reset"
    assert message["To"] == "bob@example.org"


@pytest.mark.parametrize(("log", "expected"), [
    ("x\nTraceback (most recent call last):\n  File \"a\", line 1\n    f()\n    ^^^\n"
     "pkg.mod.Boom: 502 text\n<<< 220 hi\n>>> EHLO\n2026 - INFO - next line",
     ("pkg.mod.Boom", "502 text")),
    ("Traceback (most recent call last):\n  File \"a\"\nValueError: first\n\n"
     "During handling of the above exception, another exception occurred:\n\n"
     "Traceback (most recent call last):\n  File \"b\"\nKeyError\n", ("KeyError", None)),
    ("no traceback here", (None, None)),
    ("Traceback (most recent call last):\n  File \"a\"\n2026-11-27 21:56:16,321 - x - INFO - y",
     (None, None)),
])
def test_last_exception_parsing(log: str, expected: tuple[str | None, str | None]) -> None:
    assert last_exception(log) == expected


def test_config_error_parsing() -> None:
    text = "\nError in configuration at 'email':\n  first line\n'email' more\n\nlater\n"
    assert config_error(text) == ("synapse.config._base.ConfigError",
                                  "Error in configuration at 'email': first line 'email' more")
    assert config_error("Traceback ...") == (None, None)


def test_other_mail_kinds(synapse_harness: SynapseHarness, sink: TestServer) -> None:
    """Add-3PID, "already in use" and a notification, each from the same Synapse."""
    email_block = block(sink.port, enable_notifs=True, notif_delay_before_mail="1s")
    with synapse_harness.run(email_block, {"request_token_inhibit_3pid_errors": True}) as syn:
        kinds = {
            "[example.org] Validate your email": syn.request_add_threepid_mail,
            "[example.org] Email already in use": syn.request_already_in_use_mail,
            "[Matrix] admin has invited you to chat on Matrix...":
                syn.trigger_notification_mail,
        }
        for number, (subject, request) in enumerate(kinds.items()):
            address = f"user{number}@example.org"
            assert request(address).kind == "ok"
            mail = sink.wait_for_messages(number + 1, timeout=10)[number]
            message = email.message_from_bytes(mail.data)
            assert (message["Subject"], message["To"]) == (subject, address)
        assert "List-Unsubscribe" in message


def test_already_in_use_needs_the_inhibit_setting(synapse_harness: SynapseHarness) -> None:
    with synapse_harness.run(block(1)) as syn, pytest.raises(ValueError, match="inhibit"):
        syn.request_already_in_use_mail("x@example.org")


def test_env_reaches_synapse_tls_trust(synapse_harness: SynapseHarness) -> None:
    """``env`` is Synapse's environment: SSL_CERT_FILE makes a private CA trusted for STARTTLS
    (200), and without it the same server's certificate is untrusted, which hangs."""
    with TestServer(ServerOptions(tls="starttls")) as tls_sink:
        with synapse_harness.run(block(tls_sink.port),
                                 env={"SSL_CERT_FILE": tls_sink.ca_file}) as syn:
            trusted = syn.request_registration_mail("alice@example.org")
        with synapse_harness.run(block(tls_sink.port)) as syn:
            untrusted = syn.request_registration_mail("alice@example.org", timeout=2)
        [mail] = tls_sink.wait_for_messages(1, timeout=5)
        assert (mail.rcpt_tos, mail.tls) == (("alice@example.org",), True)
        assert len(tls_sink.messages) == 1
    assert (trusted.kind, trusted.http_status) == ("ok", 200)
    assert (untrusted.kind, untrusted.http_status) == ("hang", None)


def test_forked_synapse_matches_a_plain_start(synapse_harness: SynapseHarness,
                                              sink: TestServer) -> None:
    """The fork server's children must behave like ``python -m synapse.app.homeserver``."""
    plain = SynapseHarness(synapse_harness.python, synapse_harness.root, fork=False)
    config = block(sink.port, smtp_user=USER, smpt_pass=PASSWORD)
    results = []
    for harness in (plain, synapse_harness):
        with harness.run(config) as syn:
            results.append(syn.request_registration_mail("alice@example.org"))
    plain.close()
    forked_fields, plain_fields = ((r.kind, r.http_status, r.body, r.exception, r.message)
                                   for r in reversed(results))
    assert forked_fields == plain_fields
    assert plain_fields[3] == "twisted.mail._except.AUTHRequiredError"
