"""Probe stages up to TLS against the real test server: resolve, connect, mode sniffing,
certificates."""

from __future__ import annotations

import socket

from maildoctor.config.settings import settings_from_config
from maildoctor.smtp.facts import Connect, Resolve, Speaks, TlsVerify
from maildoctor.smtp.report import ProbeOptions, StageResult
from maildoctor.smtp.stages import SNIFF_BUDGET, run_probe

from .conftest import Serve, probe, settings_for, statuses


def test_starttls_trusted_with_ca_file(serve: Serve) -> None:
    server = serve(tls="starttls")
    seen: list[StageResult] = []
    report = run_probe(settings_for(server), ProbeOptions(ca_file=server.ca_file, timeout=2),
                       on_stage=seen.append)
    assert seen == report.stages
    assert [s.name for s in report.stages] == [
        "resolve", "connect", "sniff", "greeting", "ehlo", "tls", "ehlo", "auth", "envelope"]
    facts = report.facts
    assert facts.speaks is Speaks.SMTP
    assert facts.tls is TlsVerify.OK
    assert facts.starttls is not None and facts.starttls.code == 220
    assert "STARTTLS" in facts.ehlo_lines and "STARTTLS" not in facts.ehlo_tls_lines
    assert facts.certificate is not None and "127.0.0.1" in facts.certificate.names
    tls = report.stage("tls")
    assert tls is not None and tls.facts["verified"] is True
    assert tls.facts["tls_version"].startswith("TLSv1")
    assert any(line.tls for line in report.transcript)


def test_without_ca_file_the_test_ca_is_unknown(serve: Serve) -> None:
    server = serve(tls="starttls")
    report = probe(server, ca_file=None)
    assert report.facts.tls is TlsVerify.UNTRUSTED
    tls = report.stage("tls")
    assert tls is not None and tls.facts["reason"] == "unknown-ca"


def test_untrusted_certificate_is_read_by_a_second_handshake(serve: Serve) -> None:
    server = serve(tls="starttls", cert="untrusted")
    report = probe(server)
    assert report.facts.tls is TlsVerify.UNTRUSTED
    cert = report.facts.certificate
    assert cert is not None and cert.verify_error and cert.issuer
    tls = report.stage("tls")
    assert tls is not None and tls.facts["chain_sent"] >= 1
    # The dialogue went on over the unverified connection, so later stages are observed.
    assert report.facts.ehlo_tls_lines and report.facts.auth is not None


def test_self_signed(serve: Serve) -> None:
    report = probe(serve(tls="starttls", cert="self-signed"))
    assert report.facts.tls is TlsVerify.UNTRUSTED
    assert report.facts.certificate is not None and report.facts.certificate.self_signed
    tls = report.stage("tls")
    assert tls is not None and tls.facts["reason"] == "self-signed"


def test_expired(serve: Serve) -> None:
    report = probe(serve(tls="starttls", cert="expired"))
    assert report.facts.tls is TlsVerify.EXPIRED
    tls = report.stage("tls")
    assert tls is not None and tls.facts["validity"] == "expired"


def test_name_mismatch_shows_names_and_name_checked(serve: Serve) -> None:
    server = serve(tls="starttls", cert_names=("mail.test",))
    report = probe(server, {"tlsname": "smtp.other.example"})
    assert report.facts.tls is TlsVerify.NAME_MISMATCH
    tls = report.stage("tls")
    assert tls is not None
    assert tls.facts["name_checked"] == "smtp.other.example"
    assert tls.facts["names"] == ["mail.test"]
    assert tls.facts["name_in_certificate"] is False


def test_ip_literal_tls_name_checks_ip_san(serve: Serve) -> None:
    ok = probe(serve(tls="starttls", cert_names=("127.0.0.1",)), {"tlsname": ...})
    assert ok.facts.tls is TlsVerify.OK
    tls = ok.stage("tls")
    assert tls is not None and tls.facts["sni"] is None
    bad = probe(serve(tls="starttls", cert_names=("mail.test",)), {"tlsname": ...})
    assert bad.facts.tls is TlsVerify.NAME_MISMATCH


def test_implicit_tls(serve: Serve) -> None:
    report = probe(serve(tls="implicit"))
    assert report.facts.speaks is Speaks.TLS
    assert report.facts.tls is TlsVerify.OK
    assert report.facts.greeting is not None and report.facts.greeting.code == 220
    assert [s.name for s in report.stages][:5] == ["resolve", "connect", "sniff", "tls",
                                                    "greeting"]


def test_implicit_tls_port_without_force_tls_is_detected_quickly(serve: Serve) -> None:
    server = serve(tls="implicit")
    report = probe(server, {"force_tls": ..., "require_transport_security": ...})
    assert report.facts.speaks is Speaks.TLS
    sniff = report.stage("sniff")
    assert sniff is not None and sniff.facts["sent_client_hello"] is True
    assert sniff.seconds < SNIFF_BUDGET  # answered the ClientHello, did not wait it out
    assert report.facts.stalled_at == "greeting"
    assert ("greeting", "fail") in statuses(report)


def test_force_tls_against_plaintext_port(serve: Serve) -> None:
    report = probe(serve(tls="plain"), {"force_tls": True})
    assert report.facts.speaks is Speaks.SMTP
    assert report.facts.tls is TlsVerify.HANDSHAKE_FAILED
    assert ("greeting", "skipped") in statuses(report)


def test_slow_greeter_is_smtp_not_silent(serve: Serve) -> None:
    report = probe(serve(greeting_delay=1.5), timeout=3)
    assert report.facts.speaks is Speaks.SMTP
    assert report.facts.greeting is not None and report.facts.greeting.code == 220


def test_silent_port(serve: Serve) -> None:
    from maildoctor.testing.server import Fault

    report = probe(serve(faults=(Fault.SILENT,)), timeout=1)
    assert report.facts.speaks is Speaks.SILENT
    assert report.facts.stalled_at == "greeting"


def test_invalid_host_and_nxdomain() -> None:
    base = {"smtp_port": 25, "notif_from": "x@example.org"}
    bad = run_probe(settings_from_config({"email": {**base, "smtp_host": "me@example.org"}}),
                    ProbeOptions(timeout=2))
    assert bad.facts.resolve is Resolve.INVALID
    assert statuses(bad)[0] == ("resolve", "fail")
    assert all(status == "skipped" for _, status in statuses(bad)[1:])
    missing = run_probe(settings_from_config({"email": {**base, "smtp_host": "smtp.invalid"}}),
                        ProbeOptions(timeout=2))
    assert missing.facts.resolve in (Resolve.NXDOMAIN, Resolve.TEMPFAIL)


def test_connection_refused_and_null_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = {"smtp_host": "127.0.0.1", "smtp_port": port, "notif_from": "x@example.org"}
    report = run_probe(settings_from_config({"email": config}), ProbeOptions(timeout=2))
    assert report.facts.connect is Connect.REFUSED
    connect = report.stage("connect")
    assert connect is not None and connect.facts["attempts"][0]["errno"] == "ECONNREFUSED"
    null = run_probe(settings_from_config({"email": {**config, "smtp_port": None}}),
                     ProbeOptions(timeout=2))
    assert null.facts.connect is Connect.REFUSED


def test_stop_after_connect_still_sniffs(serve: Serve) -> None:
    report = probe(serve(), stop_after="connect")
    assert statuses(report)[:3] == [("resolve", "ok"), ("connect", "ok"), ("sniff", "ok")]
    assert all(status == "skipped" for _, status in statuses(report)[3:])
    assert report.facts.greeting is None


def test_stop_after_ehlo_means_the_ehlo_after_starttls(serve: Serve) -> None:
    report = probe(serve(tls="starttls"), stop_after="ehlo")
    assert report.facts.ehlo_tls_lines
    assert report.facts.auth is None
    assert report.stage("auth") is not None and str(report.stage("auth").status) == "skipped"


def test_localhost_tries_every_address(serve: Serve) -> None:
    server = serve(tls="starttls", cert_names=("localhost",))
    report = probe(server, {"smtp_host": "localhost", "tlsname": ...})
    assert report.facts.resolve is Resolve.OK and "127.0.0.1" in report.facts.addresses
    connect = report.stage("connect")
    assert connect is not None and connect.facts["address"] == "127.0.0.1"
    assert report.facts.tls is TlsVerify.OK  # checked against "localhost"
