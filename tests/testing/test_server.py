"""The test server's options, proven with real clients (smtplib, aiosmtplib, ssl, raw sockets)."""

from __future__ import annotations

import asyncio
import base64
import smtplib

import aiosmtplib
import pytest

from maildoctor.testing.server import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    EventKind,
    ServerOptions,
    TestServer,
)
from tests.testing.wire import Wire

MAIL = b"From: Matrix <noreply@example.org>\r\nTo: alice@example.org\r\nSubject: Hi\r\n\r\nbody\r\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ehlo_lines(server: TestServer) -> list[str]:
    with Wire(server.host, server.port) as wire:
        wire.reply()
        return wire.command("EHLO client.test")


# -- a working session and what it leaves behind -----------------------------------------------


def test_mail_is_received_parsed_and_logged_without_secrets(smtp_server):
    server = smtp_server()
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.login(DEFAULT_USER, DEFAULT_PASSWORD)
        client.sendmail("noreply@example.org", ["alice@example.org"], MAIL)
    (received,) = server.messages
    assert received.mail_from == "noreply@example.org"
    assert received.rcpt_tos == ("alice@example.org",)
    assert received.data == MAIL
    assert received.message["Subject"] == "Hi"
    assert received.authenticated_as == DEFAULT_USER
    assert received.tls is False
    auth = server.wait_for(EventKind.AUTH)
    assert (auth.mechanism, auth.username, auth.success) == ("PLAIN", DEFAULT_USER, True)
    server.wait_for(EventKind.DISCONNECT)
    log = "\n".join(map(str, server.events))
    plain_blob = b64(f"\0{DEFAULT_USER}\0{DEFAULT_PASSWORD}".encode())
    for secret in (DEFAULT_PASSWORD, b64(DEFAULT_PASSWORD.encode()), plain_blob):
        assert secret not in log
    assert "AUTH PLAIN ********" in log


def test_a_wrong_password_never_reaches_the_log(smtp_server):
    server = smtp_server()
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(DEFAULT_USER, "hunter2-wrong")
    log = "\n".join(map(str, server.events))
    assert "hunter2-wrong" not in log and b64(b"hunter2-wrong") not in log
    assert any(e.kind is EventKind.AUTH and e.success is False for e in server.events)


def test_async_context_manager_and_aiosmtplib():
    async def scenario() -> list[str]:
        async with TestServer(ServerOptions()) as server:
            await aiosmtplib.send(
                MAIL, sender="noreply@example.org", recipients=["alice@example.org"],
                hostname=server.host, port=server.port, username=DEFAULT_USER,
                password=DEFAULT_PASSWORD, start_tls=False,
            )
            return [m.mail_from for m in server.messages]

    assert asyncio.run(scenario()) == ["noreply@example.org"]


def test_refuses_a_non_loopback_address():
    with pytest.raises(ValueError, match="not a loopback"):
        TestServer(ServerOptions(host="0.0.0.0")).start()


# -- authentication --------------------------------------------------------------------------------


@pytest.mark.parametrize("authzid", [DEFAULT_USER, ""], ids=["twisted-first-form", "empty-authzid"])
def test_plain_accepts_both_authzid_forms(smtp_server, authzid):
    server = smtp_server()
    with Wire(server.host, server.port) as wire:
        wire.reply()
        wire.command("EHLO client.test")
        blob = f"{authzid}\0{DEFAULT_USER}\0{DEFAULT_PASSWORD}".encode()
        assert wire.code(f"AUTH PLAIN {b64(blob)}") == 235


async def _aiosmtplib_login(server: TestServer, method: str, password: str) -> int:
    client = aiosmtplib.SMTP(hostname=server.host, port=server.port, start_tls=False)
    async with client:
        await client.ehlo()
        try:
            response = await getattr(client, method)(DEFAULT_USER, password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            return exc.code
        return response.code


@pytest.mark.parametrize(("mechanism", "method"), [
    ("LOGIN", "auth_login"), ("PLAIN", "auth_plain"), ("CRAM-MD5", "auth_crammd5"),
])
@pytest.mark.parametrize(("password", "code"), [(DEFAULT_PASSWORD, 235), ("nope", 535)])
def test_each_mechanism_checks_the_password(smtp_server, mechanism, method, password, code):
    server = smtp_server(mechanisms=(mechanism,))
    assert f"250-AUTH {mechanism}" in ehlo_lines(server)
    assert asyncio.run(_aiosmtplib_login(server, method, password)) == code
    event = server.wait_for(EventKind.AUTH)
    assert (event.mechanism, event.success) == (mechanism, code == 235)


def test_cram_md5_broken_is_advertised_as_cram_md5_and_always_fails(smtp_server):
    server = smtp_server(mechanisms=("CRAM-MD5-BROKEN", "LOGIN", "PLAIN"))
    assert "250-AUTH CRAM-MD5 LOGIN PLAIN" in ehlo_lines(server)
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo()
        client.user, client.password = DEFAULT_USER, DEFAULT_PASSWORD  # the right password
        with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
            client.auth("CRAM-MD5", client.auth_cram_md5)
    assert caught.value.smtp_code == 535
    assert b"reason unavailable" in caught.value.smtp_error
    # The other mechanisms still work: the trap is CRAM-MD5 alone.
    assert asyncio.run(_aiosmtplib_login(server, "auth_login", DEFAULT_PASSWORD)) == 235


def _xoauth2(user: str, token: str) -> str:
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def test_xoauth2_accepts_the_password_as_token_and_fails_like_gmail(smtp_server):
    server = smtp_server(mechanisms=("XOAUTH2",))
    with Wire(server.host, server.port) as wire:
        wire.reply()
        assert "250-AUTH XOAUTH2" in wire.command("EHLO client.test")
        good = b64(_xoauth2(DEFAULT_USER, DEFAULT_PASSWORD).encode())
        assert wire.code(f"AUTH XOAUTH2 {good}") == 235
    with Wire(server.host, server.port) as wire:
        wire.reply()
        wire.command("EHLO client.test")
        bad = b64(_xoauth2(DEFAULT_USER, "expired-token").encode())
        (challenge,) = wire.command(f"AUTH XOAUTH2 {bad}")
        assert challenge.startswith("334 ")
        assert b'"status": "401"' in base64.b64decode(challenge[4:])
        assert wire.code("") == 535


@pytest.mark.parametrize(("mechanism", "method"), [
    ("LOGIN", "auth_login"), ("PLAIN", "auth_plain"), ("CRAM-MD5", "auth_crammd5"),
])
def test_accept_any_login(smtp_server, mechanism, method):
    server = smtp_server(mechanisms=(mechanism,), accept_any_login=True)
    assert asyncio.run(_aiosmtplib_login(server, method, "anything at all")) == 235


def test_mechanisms_are_advertised_in_the_given_order(smtp_server):
    server = smtp_server(mechanisms=("PLAIN", "XOAUTH2", "LOGIN"))
    assert "250-AUTH PLAIN XOAUTH2 LOGIN" in ehlo_lines(server)


def test_auth_required_answers_530_at_mail_until_authenticated(smtp_server):
    server = smtp_server(auth_required=True)
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo()
        assert client.mail("noreply@example.org")[0] == 530
        client.rset()
        client.login(DEFAULT_USER, DEFAULT_PASSWORD)
        assert client.mail("noreply@example.org")[0] == 250


def test_advertise_auth_false_hides_auth_and_refuses_it(smtp_server):
    server = smtp_server(advertise_auth=False)
    lines = ehlo_lines(server)
    assert not any("AUTH" in line for line in lines)
    with Wire(server.host, server.port) as wire:
        wire.reply()
        wire.command("EHLO client.test")
        assert wire.code("AUTH LOGIN") == 503


@pytest.mark.parametrize(
    ("mode", "after"),
    [("reply", "open"), ("reply-close", "eof"), ("drop", "eof"), ("silent", "open")],
)
def test_auth_failure_modes(smtp_server, mode, after):
    server = smtp_server(auth_failure=mode, mechanisms=("LOGIN",))
    with Wire(server.host, server.port) as wire:
        wire.reply()
        wire.command("EHLO client.test")
        assert wire.command("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]  # "Username:", as Postfix
        assert wire.command(b64(DEFAULT_USER.encode())) == ["334 UGFzc3dvcmQ6"]
        wire.send(b64(b"wrong"))
        if mode.startswith("reply"):
            assert wire.reply() == ["535 5.7.8 Authentication credentials invalid"]
        else:
            assert wire.at_eof() if mode == "drop" else wire.sends_nothing()
        if after == "eof":
            assert wire.at_eof()
        else:
            assert wire.code("NOOP") == 250


def test_auth_failed_reply_can_be_overridden(smtp_server):
    server = smtp_server(replies={"auth_failed": "535 5.7.8 Error: authentication failed: x"})
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
            client.login(DEFAULT_USER, "nope")
    assert caught.value.smtp_error == b"5.7.8 Error: authentication failed: x"


# -- message size --------------------------------------------------------------------------------


def test_max_message_size_is_advertised_and_enforced(smtp_server):
    server = smtp_server(max_message_size=100)
    assert "250-SIZE 100" in ehlo_lines(server)
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo()
        client.esmtp_features.pop("size")  # make smtplib send it anyway
        with pytest.raises(smtplib.SMTPDataError) as caught:
            client.sendmail("a@example.org", ["b@example.org"], MAIL + b"x" * 200 + b"\r\n")
    assert caught.value.smtp_code == 552
    assert server.messages == []


# -- who closed the connection -------------------------------------------------------------------


def _disconnect(server: TestServer) -> str:
    return server.wait_for(EventKind.DISCONNECT).detail


def test_disconnect_after_quit(smtp_server):
    server = smtp_server()
    with smtplib.SMTP(server.host, server.port, timeout=5):
        pass
    assert _disconnect(server) == "closed after QUIT"


def test_disconnect_by_the_client_without_quit(smtp_server):
    server = smtp_server()
    with Wire(server.host, server.port) as wire:
        wire.reply()
    assert _disconnect(server) == "closed by the client without QUIT"


def test_disconnect_by_the_server_on_idle_timeout(smtp_server):
    server = smtp_server(idle_timeout=0.2)
    with Wire(server.host, server.port) as wire:
        wire.reply()
        assert wire.at_eof()
    assert _disconnect(server) == "closed by the server (idle for 0.2 s)"
