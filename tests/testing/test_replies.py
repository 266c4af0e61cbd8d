"""Reply overrides: each stage answers exactly what it was told to."""

from __future__ import annotations

import smtplib

import pytest

from maildoctor.testing.options import reply_lines
from maildoctor.testing.server import DEFAULT_PASSWORD, DEFAULT_USER
from tests.testing.wire import Wire


def session_up_to(wire: Wire, stage: str) -> list[str]:
    """Drive a session to ``stage`` and return the server's reply to it."""
    steps = [
        ("greeting", None), ("ehlo", "EHLO client.test"), ("starttls", "STARTTLS"),
        ("auth", "AUTH LOGIN"), ("mail", "MAIL FROM:<noreply@example.org>"),
        ("rcpt", "RCPT TO:<alice@example.org>"), ("data", "DATA"),
    ]
    for name, command in steps:
        if name in ("starttls", "auth") and name != stage:
            continue
        reply = wire.reply() if command is None else wire.command(command)
        if name == stage:
            return reply
    wire.send("Subject: x\r\n\r\nhi\r\n.")
    return wire.reply()


@pytest.mark.parametrize(("stage", "reply"), [
    ("ehlo", "250-mail.test\n250-auth login plain\n250 HELP"),
    ("ehlo", "502 5.5.2 Error: command not recognized"),
    ("starttls", "454 4.7.0 TLS not available due to local problem"),
    ("auth", "454 4.7.0 Temporary authentication failure"),
    ("mail", "553 5.7.1 Sender address rejected: not owned by user"),
    ("rcpt", "450 4.2.0 Recipient address rejected: Greylisted"),
    ("data", "554 5.5.1 Error: no valid recipients"),
    ("dot", "552 5.3.4 Message size exceeds fixed limit"),
])
def test_stage_reply_override(smtp_server, stage, reply):
    server = smtp_server(tls="starttls" if stage == "starttls" else "plain",
                         replies={stage: reply})
    with Wire(server.host, server.port) as wire:
        assert session_up_to(wire, stage) == reply_lines(reply)
    if stage == "dot":
        assert server.messages == []


def test_address_placeholder_and_accepting_overrides(smtp_server):
    server = smtp_server(replies={
        "mail": "250 2.1.0 Sender <{address}> ok",
        "rcpt": "250 2.1.5 Recipient <{address}> ok",
        "dot": "250 2.0.0 Ok: queued as ABC123",
    })
    with Wire(server.host, server.port) as wire:
        assert session_up_to(wire, "mail") == ["250 2.1.0 Sender <noreply@example.org> ok"]
        assert wire.command("RCPT TO:<bob@example.org>") == [
            "250 2.1.5 Recipient <bob@example.org> ok"
        ]
        wire.command("DATA")
        wire.send("Subject: x\r\n\r\nhi\r\n.")
        assert wire.reply() == ["250 2.0.0 Ok: queued as ABC123"]
    assert server.messages[0].rcpt_tos == ("bob@example.org",)


def test_greeting_421_closes(smtp_server):
    server = smtp_server(replies={"greeting": "421 4.3.2 Service not available"})
    with pytest.raises(smtplib.SMTPConnectError) as caught:
        smtplib.SMTP(server.host, server.port, timeout=5)
    assert caught.value.smtp_code == 421
    with Wire(server.host, server.port) as wire:
        assert wire.reply() == ["421 4.3.2 Service not available"]
        assert wire.at_eof()


def test_greeting_554_answers_503_until_quit(smtp_server):
    server = smtp_server(replies={"greeting": "554 5.7.1 client host blocked"})
    with Wire(server.host, server.port) as wire:
        assert wire.reply() == ["554 5.7.1 client host blocked"]
        assert wire.code("EHLO client.test") == 503
        assert wire.code("MAIL FROM:<a@example.org>") == 503
        assert wire.code("QUIT") == 221
        assert wire.at_eof()


def test_custom_220_greeting_then_a_normal_session(smtp_server):
    server = smtp_server(replies={"greeting": "220-mail.test first\n220 mail.test ready"})
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.login(DEFAULT_USER, DEFAULT_PASSWORD)
    with Wire(server.host, server.port) as wire:
        assert wire.reply() == ["220-mail.test first", "220 mail.test ready"]


def test_helo_override(smtp_server):
    server = smtp_server(replies={"ehlo": "502 5.5.2 no", "helo": "501 5.5.2 Error: HELO refused"})
    with Wire(server.host, server.port) as wire:
        wire.reply()
        assert wire.code("EHLO client.test") == 502
        assert wire.command("HELO client.test") == ["501 5.5.2 Error: HELO refused"]
        assert wire.code("MAIL FROM:<a@example.org>") == 503  # never greeted successfully


def test_reply_lines_fixes_continuation_markers():
    assert reply_lines("250 a\n250 b\n250 c") == ["250-a", "250-b", "250 c"]
    assert reply_lines("421") == ["421"]
