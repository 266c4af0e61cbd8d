"""Every fault does what it says, and none of them can hold up shutdown."""

from __future__ import annotations

import smtplib
import ssl
import threading
import time

import pytest

from maildoctor.testing.server import EventKind, Fault, ServerOptions, TestServer
from tests.testing.wire import Wire


def fault_events(server: TestServer) -> list[str]:
    return [e.detail for e in server.events if e.kind is EventKind.FAULT]


def test_silent_accepts_and_never_speaks(smtp_server):
    server = smtp_server(faults=(Fault.SILENT,))
    with Wire(server.host, server.port) as wire:
        server.wait_for(EventKind.FAULT)
        assert wire.sends_nothing()
        wire.send("EHLO client.test")
        assert wire.sends_nothing()


def test_silent_in_implicit_tls_completes_the_handshake_then_says_nothing(smtp_server):
    server = smtp_server(faults=(Fault.SILENT,), tls="implicit")
    context = ssl.create_default_context(cafile=server.ca_file)
    with Wire(server.host, server.port) as wire:
        wire.starttls(context, "localhost")
        assert wire.sends_nothing()
    assert server.wait_for(EventKind.TLS).detail.startswith("implicit TLS handshake done")


def test_drop_after_greeting(smtp_server):
    server = smtp_server(faults=(Fault.DROP_AFTER_GREETING,))
    with Wire(server.host, server.port) as wire:
        assert wire.reply()[0].startswith("220 mail.test")
        wire.send("EHLO client.test")
        assert wire.at_eof()
    assert server.wait_for(EventKind.FAULT).detail.endswith("after the greeting (at EHLO)")


def test_drop_after_ehlo(smtp_server):
    server = smtp_server(faults=(Fault.DROP_AFTER_EHLO,))
    with Wire(server.host, server.port) as wire:
        wire.reply()
        assert wire.command("EHLO client.test")[-1] == "250 HELP"
        wire.send("MAIL FROM:<a@example.org>")
        assert wire.at_eof()


def test_drop_after_mail(smtp_server):
    server = smtp_server(faults=(Fault.DROP_AFTER_MAIL,))
    with Wire(server.host, server.port) as wire:
        wire.reply()
        wire.command("EHLO client.test")
        assert wire.code("MAIL FROM:<a@example.org>") == 250
        wire.send("RCPT TO:<b@example.org>")
        assert wire.at_eof()


def test_drop_after_data_reads_the_message_and_never_answers_the_dot(smtp_server):
    server = smtp_server(faults=(Fault.DROP_AFTER_DATA,))
    with Wire(server.host, server.port) as wire:
        wire.reply()
        wire.command("EHLO client.test")
        wire.command("MAIL FROM:<a@example.org>")
        wire.command("RCPT TO:<b@example.org>")
        assert wire.code("DATA") == 354
        wire.send("Subject: x\r\n\r\nhello\r\n.")
        assert wire.at_eof()
    assert "after the final dot (21 bytes received)" in server.wait_for(EventKind.FAULT).detail
    assert server.messages == []


def test_stall_after_ehlo(smtp_server):
    server = smtp_server(faults=(Fault.STALL_AFTER_EHLO,))
    with Wire(server.host, server.port) as wire:
        wire.reply()
        assert wire.code("EHLO client.test") == 250
        wire.send("AUTH LOGIN")
        server.wait_for(EventKind.FAULT)
        assert wire.sends_nothing()
        wire.send("NOOP")
        assert wire.sends_nothing()


def test_endless_reply_keeps_sending_until_the_client_closes(smtp_server):
    server = smtp_server(faults=(Fault.ENDLESS_REPLY,))
    with Wire(server.host, server.port) as wire:
        received = 0
        while received < 1_000_000:
            chunk = wire.sock.recv(65536)
            assert chunk and b"\r\n" not in chunk
            received += len(chunk)
    stopped = server.wait_for(
        EventKind.FAULT, lambda e: e.detail.startswith("endless reply stopped"), timeout=10
    )
    assert int(stopped.detail.split()[-2]) >= received - 5000


def test_endless_reply_trips_a_client_line_limit(smtp_server):
    server = smtp_server(faults=(Fault.ENDLESS_REPLY,))
    with pytest.raises(smtplib.SMTPResponseException) as caught:
        smtplib.SMTP(server.host, server.port, timeout=5)
    assert caught.value.smtp_error == "Line too long."  # smtplib's own limit, 8 KiB


def test_huge_reply_sends_thousands_of_ehlo_lines(smtp_server):
    server = smtp_server(faults=(Fault.HUGE_REPLY,))
    with Wire(server.host, server.port) as wire:
        wire.reply()
        lines = wire.command("EHLO client.test")
        assert len(lines) > 5000
        assert lines[-1] == "250 HELP" and "250-AUTH LOGIN PLAIN" in lines
        assert wire.code("NOOP") == 250  # the session goes on


def test_slow_drip_sends_one_byte_at_a_time(smtp_server):
    server = smtp_server(faults=(Fault.SLOW_DRIP,), drip_interval=0.01)
    started = time.monotonic()  # before the server can send anything
    with Wire(server.host, server.port) as wire:
        greeting = wire.reply()[0]
        elapsed = time.monotonic() - started
    assert greeting == "220 mail.test ESMTP maildoctor test server"
    assert elapsed >= (len(greeting) + 1) * 0.01


def test_greeting_delay(smtp_server):
    server = smtp_server(greeting_delay=0.3)
    before_connect = time.monotonic()  # the server's delay starts later, at accept
    with Wire(server.host, server.port) as wire:
        assert wire.reply()[0].startswith("220 ")
    assert time.monotonic() - before_connect >= 0.3


def test_invalid_utf8_greeting_then_a_normal_session(smtp_server):
    server = smtp_server(faults=(Fault.INVALID_UTF8,))
    with Wire(server.host, server.port) as wire:
        greeting = wire.line()
        assert greeting.startswith(b"220 mail.test ")
        with pytest.raises(UnicodeDecodeError):
            greeting.decode("utf-8")
        assert wire.code("EHLO client.test") == 250


def test_not_smtp_speaks_pop3(smtp_server):
    server = smtp_server(faults=(Fault.NOT_SMTP,))
    with Wire(server.host, server.port) as wire:
        assert wire.line() == b"+OK Dovecot ready."
        wire.send("EHLO client.test")
        assert wire.line() == b"-ERR Unknown command."
        wire.send("QUIT")
        assert wire.line() == b"+OK Logging out."
        assert wire.at_eof()


def test_faults_combine(smtp_server):
    server = smtp_server(faults=(Fault.SLOW_DRIP, Fault.DROP_AFTER_EHLO), drip_interval=0.001)
    with Wire(server.host, server.port) as wire:
        wire.reply()
        assert wire.code("EHLO client.test") == 250
        wire.send("NOOP")
        assert wire.at_eof()


@pytest.mark.parametrize("options", [
    ServerOptions(faults=(Fault.ENDLESS_REPLY,)),
    ServerOptions(faults=(Fault.SILENT,)),
    ServerOptions(faults=(Fault.STALL_AFTER_EHLO,)),
    ServerOptions(faults=(Fault.SLOW_DRIP,), drip_interval=5.0),
    ServerOptions(tls="implicit"),  # a client that never sends a ClientHello
    ServerOptions(greeting_delay=60.0),
], ids=["endless", "silent", "stall", "slow-drip", "implicit-no-hello", "greeting-delay"])
def test_stop_is_prompt_with_faults_active(options):
    server = TestServer(options).start()
    wire = Wire(server.host, server.port)
    try:
        if options.has(Fault.STALL_AFTER_EHLO):
            wire.reply()
            wire.command("EHLO client.test")
            wire.send("NOOP")
        server.wait_for(EventKind.CONNECT)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2.0
        # The client is not left hanging either: its connection is closed.
        wire.sock.settimeout(5)
        while True:
            try:
                if not wire.sock.recv(1 << 20):
                    break
            except ConnectionResetError:
                break
    finally:
        wire.close()
    assert not any(t.name.startswith("maildoctor-testserver") and t.is_alive()
                   for t in threading.enumerate() if t.name.endswith(f"{id(server):x}"))
