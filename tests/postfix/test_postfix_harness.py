"""Proves the throwaway Postfix + Dovecot harness (tests/infra/postfix.py) with real clients:
what the conformance tests rely on must hold before they can mean anything."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import subprocess
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib
import pytest

from tests.infra import postfix as harness
from tests.infra.postfix import PostfixServer, PostfixStartError

pytestmark = pytest.mark.postfix


def _message(tag: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Matrix <noreply@example.org>"
    msg["To"] = "alice@example.org"
    msg["Subject"] = f"harness test {tag}"
    msg["Message-ID"] = make_msgid(idstring=tag, domain="example.org")
    msg.set_content(f"body of {tag}\n")
    return msg


def _context(server: PostfixServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.ca_file)


def _submission(server: PostfixServer) -> smtplib.SMTP:
    """A client on the submission port after STARTTLS (certificate verified against the CA)."""
    client = smtplib.SMTP(server.host, server.submission_port, timeout=10)
    client.starttls(context=_context(server))
    client.ehlo()
    return client


def test_starttls_auth_login_delivers_with_aiosmtplib(postfix: PostfixServer) -> None:
    msg = _message("login")

    async def send() -> None:
        client = aiosmtplib.SMTP(hostname=postfix.host, port=postfix.submission_port,
                                 tls_context=_context(postfix), start_tls=True, timeout=10)
        async with client:
            await client.ehlo()  # the EHLO after STARTTLS
            assert client.supports_extension("auth")
            await client.auth_login(postfix.user, postfix.password)
            await client.send_message(msg)

    asyncio.run(send())
    got = postfix.wait_for_message(msg["Message-ID"])
    assert got["Subject"] == msg["Subject"]
    assert got.get_content() == "body of login\n"
    assert got["Message-ID"] in [m["Message-ID"] for m in postfix.received()]


def test_starttls_auth_plain_delivers_with_smtplib(postfix: PostfixServer) -> None:
    msg = _message("plain")
    with _submission(postfix) as client:
        client.user, client.password = postfix.user, postfix.password
        code, _ = client.auth("PLAIN", client.auth_plain)
        assert code == 235
        assert client.send_message(msg) == {}
    assert postfix.wait_for_message(msg["Message-ID"])["To"] == "alice@example.org"


def test_submission_offers_auth_only_after_starttls(postfix: PostfixServer) -> None:
    with smtplib.SMTP(postfix.host, postfix.submission_port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        code, _ = client.docmd("AUTH", "PLAIN")
        assert 500 <= code < 600
        client.starttls(context=_context(postfix))
        client.ehlo()
        assert set(client.esmtp_features["auth"].upper().split()) == {"PLAIN", "LOGIN"}


def test_submission_refuses_mail_before_starttls(postfix: PostfixServer) -> None:
    with smtplib.SMTP(postfix.host, postfix.submission_port, timeout=10) as client:
        client.ehlo()
        code, _ = client.mail("noreply@example.org")
        assert code == 530


def test_implicit_tls_port_authenticates_and_delivers(postfix: PostfixServer) -> None:
    msg = _message("smtps")
    with smtplib.SMTP_SSL(postfix.host, postfix.smtps_port, context=_context(postfix),
                          timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        client.login(postfix.user, postfix.password)
        client.send_message(msg)
    assert postfix.wait_for_message(msg["Message-ID"])["Subject"] == "harness test smtps"


def test_implicit_tls_with_aiosmtplib(postfix: PostfixServer) -> None:
    msg = _message("smtps-aio")

    async def send() -> None:
        await aiosmtplib.send(msg, hostname=postfix.host, port=postfix.smtps_port,
                              use_tls=True, tls_context=_context(postfix),
                              username=postfix.user, password=postfix.password, timeout=10)

    asyncio.run(send())
    postfix.wait_for_message(msg["Message-ID"])


def _starttls_as(server: PostfixServer, name: str) -> None:
    """STARTTLS by hand, verifying the certificate against ``name`` (Synapse's `tlsname`)."""
    with socket.create_connection((server.host, server.submission_port), timeout=10) as sock:
        replies = sock.makefile("rb")
        assert replies.readline().startswith(b"220 ")
        sock.sendall(b"EHLO client.test\r\n")
        while not replies.readline().startswith(b"250 "):
            pass
        sock.sendall(b"STARTTLS\r\n")
        assert replies.readline().startswith(b"220 ")
        _context(server).wrap_socket(sock, server_hostname=name).close()


@pytest.mark.parametrize("name", ["mail.test", "localhost", "127.0.0.1"])
def test_certificate_verifies_for_its_names(postfix: PostfixServer, name: str) -> None:
    _starttls_as(postfix, name)


def test_certificate_fails_for_another_name(postfix: PostfixServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _starttls_as(postfix, "other.test")


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_wrong_password_gets_535(postfix: PostfixServer, mechanism: str) -> None:
    with _submission(postfix) as client:
        client.user, client.password = postfix.user, "nope"
        auth = client.auth_login if mechanism == "LOGIN" else client.auth_plain
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.auth(mechanism, auth)
        assert info.value.smtp_code == 535
    assert "authentication failed" in postfix.log_text()


def test_cram_trap_advertises_cram_md5_that_fails(postfix_cram_trap: PostfixServer) -> None:
    server = postfix_cram_trap
    with _submission(server) as client:
        assert set(client.esmtp_features["auth"].upper().split()) == {
            "PLAIN", "LOGIN", "CRAM-MD5"}
        client.user, client.password = server.user, server.password
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.auth("CRAM-MD5", client.auth_cram_md5)
        assert info.value.smtp_code == 535
    with _submission(server) as client:
        client.user, client.password = server.user, server.password
        assert client.auth("LOGIN", client.auth_login)[0] == 235
    with _submission(server) as client:
        client.user, client.password = server.user, server.password
        assert client.auth("PLAIN", client.auth_plain)[0] == 235
    assert "CRAM-MD5 authentication failed" in server.log_text()


def test_plain_variant_does_not_advertise_cram_md5(postfix: PostfixServer) -> None:
    with _submission(postfix) as client:
        assert "CRAM-MD5" not in client.esmtp_features["auth"].upper()


def test_instances_are_separate_and_off_the_fixed_ports(
    postfix: PostfixServer, postfix_cram_trap: PostfixServer,
) -> None:
    ports = {postfix.submission_port, postfix.smtps_port,
             postfix_cram_trap.submission_port, postfix_cram_trap.smtps_port}
    assert len(ports) == 4
    assert not ports & {25, 465, 587, 2465, 2587}
    assert postfix.root != postfix_cram_trap.root
    assert postfix.start_seconds < 10, postfix.start_seconds


def test_log_text_masks_the_password(postfix: PostfixServer) -> None:
    text = postfix.log_text()
    assert "starting the Postfix mail system" in text
    assert postfix.password not in text
    assert postfix.password not in repr(postfix)


def _alternates() -> list[str]:
    out = subprocess.run(["postconf", "-h", "alternate_config_directories"],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    return out.replace(",", " ").split()


def _pids(root: Path) -> list[int]:
    return [pid for name in ("queue/pid/master.pid", "dv/run/master.pid")
            if (pid := harness._read_pid(root / name)) is not None]


def test_stop_removes_processes_directory_and_registration() -> None:
    with PostfixServer() as server:
        root = server.root
        pids = _pids(root)
        assert len(pids) == 2 and all(harness._alive(pid) for pid in pids)
        assert str(root / "etc") in _alternates()
    assert not root.exists()
    assert str(root / "etc") not in _alternates()
    assert not any(harness._alive(pid) for pid in pids)
    server.stop()  # idempotent


def test_start_failure_raises_with_postfix_log_and_cleans_up() -> None:
    server = PostfixServer(start_timeout=5)
    server.host = "192.0.2.1"  # TEST-NET: not on this machine, so master cannot bind
    with pytest.raises(PostfixStartError) as info:
        server.start()
    message = str(info.value)
    assert "postfix" in message and "fatal: mail system startup failed" in message
    assert f"cannot bind 192.0.2.1:{server.submission_port}: Cannot assign" in message
    assert not server.root.exists()
    assert str(server.root / "etc") not in _alternates()


class _BrokenDovecot(PostfixServer):
    def _build(self) -> None:
        super()._build()
        with open(self.root / "dv" / "dovecot.conf", "a") as conf:
            conf.write("no_such_dovecot_setting = 1\n")


def test_dovecot_config_error_is_in_the_exception() -> None:
    server = _BrokenDovecot(start_timeout=5)
    with pytest.raises(PostfixStartError, match="no_such_dovecot_setting"):
        server.start()
    assert not server.root.exists()


def test_missing_binaries_name_make_system_deps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "DOVECOT", "/nonexistent/dovecot")
    with pytest.raises(PostfixStartError, match="make system-deps"):
        PostfixServer().start()


def test_session_fixture_fails_not_skips_without_binaries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(harness, "POSTFIX", "/nonexistent/postfix")
    with pytest.raises(pytest.fail.Exception, match="run `make system-deps`"):
        harness._start_for_session(cram_md5_trap=False)


def test_reaps_an_instance_left_by_a_dead_session() -> None:
    stale = PostfixServer().start()
    harness._LIVE.discard(stale)  # as if its session had been killed
    (stale.root / "owner.pid").write_text("999999999\n")  # no such process
    pids = _pids(stale.root)
    with PostfixServer():
        assert not stale.root.exists()
        assert not any(harness._alive(pid) for pid in pids)
        assert str(stale.root / "etc") not in _alternates()
