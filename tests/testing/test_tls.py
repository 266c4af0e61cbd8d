"""TLS modes and certificates of the test server, checked with Python's own ssl verification."""

from __future__ import annotations

import smtplib
import socket
import ssl

import pytest

from maildoctor.testing.server import DEFAULT_PASSWORD, DEFAULT_USER, EventKind
from tests.testing.wire import Wire


def verifying(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.ca_file)


def test_starttls_with_a_trusted_cert_verifies_against_ca_file(smtp_server):
    server = smtp_server(tls="starttls")
    with smtplib.SMTP("localhost", server.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=verifying(server))
        client.login(DEFAULT_USER, DEFAULT_PASSWORD)
        client.sendmail("noreply@example.org", ["alice@example.org"], b"Subject: x\r\n\r\nhi\r\n")
    assert server.messages[0].tls is True
    assert "STARTTLS handshake done (TLSv1.3)" in server.wait_for(EventKind.TLS).detail


def test_implicit_tls_speaks_tls_from_the_first_byte(smtp_server):
    server = smtp_server(tls="implicit", cert_names=("mail.test", "127.0.0.1"))
    with smtplib.SMTP_SSL("127.0.0.1", server.port, timeout=5, context=verifying(server)) as c:
        assert c.ehlo()[0] == 250
        assert not c.has_extn("starttls")
    assert server.wait_for(EventKind.TLS).detail.startswith("implicit TLS handshake done")


def test_a_plaintext_client_on_the_implicit_port_gets_nothing_and_is_recorded(smtp_server):
    # Row B4: Synapse without force_tls waits for a 220 that never comes.
    server = smtp_server(tls="implicit", tls_handshake_timeout=0.5)
    with Wire(server.host, server.port) as wire:
        failed = server.wait_for(EventKind.TLS_FAILED)
        assert "no ClientHello in time" in failed.detail
        assert wire.at_eof()  # and not one byte before the close


@pytest.mark.parametrize(("cert", "names", "verify_message"), [
    ("untrusted", None, "unable to get local issuer certificate"),
    ("self-signed", None, "self-signed certificate"),
    ("expired", None, "certificate has expired"),
    ("trusted", ("smtp.other.example",), "Hostname mismatch"),
])
@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_bad_certificates_fail_verification(smtp_server, tls, cert, names, verify_message):
    changes = {"cert_names": names} if names else {}
    server = smtp_server(tls=tls, cert=cert, **changes)
    context = verifying(server)
    with pytest.raises(ssl.SSLCertVerificationError, match=verify_message):
        if tls == "implicit":
            smtplib.SMTP_SSL("localhost", server.port, timeout=5, context=context)
        else:
            with smtplib.SMTP("localhost", server.port, timeout=5) as client:
                client.starttls(context=context)
    failed = server.wait_for(EventKind.TLS_FAILED)
    assert "handshake failed" in failed.detail


@pytest.mark.parametrize("cert", ["untrusted", "self-signed", "expired"])
def test_bad_certificates_still_work_without_verification(smtp_server, cert):
    # The handshake itself is fine: only trust fails. That is what maildoctor must report.
    server = smtp_server(tls="implicit", cert=cert)
    context = ssl._create_unverified_context()
    with smtplib.SMTP_SSL("localhost", server.port, timeout=5, context=context) as client:
        assert client.ehlo()[0] == 250


def test_certificate_names_are_the_sans(smtp_server):
    server = smtp_server(tls="implicit", cert_names=("mail.test", "127.0.0.1"))
    context = verifying(server)
    with socket.create_connection(server.address, timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="mail.test") as tls:
            sans = tls.getpeercert()["subjectAltName"]
    assert sans == (("DNS", "mail.test"), ("IP Address", "127.0.0.1"))
    assert server.certificate_pem is not None and b"BEGIN CERTIFICATE" in server.certificate_pem


def test_auth_after_starttls_only(smtp_server):
    server = smtp_server(tls="starttls", auth_after_starttls_only=True)
    with smtplib.SMTP("localhost", server.port, timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "LOGIN")[0] == 503
        client.starttls(context=verifying(server))
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        client.login(DEFAULT_USER, DEFAULT_PASSWORD)


def test_hidden_starttls_still_works(smtp_server):
    server = smtp_server(tls="starttls", advertise_starttls=False)
    with smtplib.SMTP("localhost", server.port, timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        code, _ = client.docmd("STARTTLS")
        assert code == 220


def test_starttls_required_refuses_mail_in_plaintext(smtp_server):
    server = smtp_server(tls="starttls", starttls_required=True)
    with smtplib.SMTP("localhost", server.port, timeout=5) as client:
        client.ehlo()
        assert client.mail("noreply@example.org") == (
            530, b"Must issue a STARTTLS command first"
        )


def test_ca_file_is_removed_on_stop(smtp_server):
    server = smtp_server(tls="starttls")
    path = server.ca_file
    with open(path, "rb") as handle:
        assert handle.read().startswith(b"-----BEGIN CERTIFICATE-----")
    server.stop()
    with pytest.raises(FileNotFoundError):
        open(path, "rb")
