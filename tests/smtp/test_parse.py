"""Pure parsers and tables, no sockets."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maildoctor.printable import printable
from maildoctor.secrets import Redactor
from maildoctor.smtp.auth import plain_with_authzid
from maildoctor.smtp.facts import Resolve, Speaks, TlsVerify
from maildoctor.smtp.parse import (
    MalformedLine,
    envelope_address,
    is_fully_qualified,
    offered_mechanisms,
    parse_reply_line,
    synapse_mechanism,
    twisted_auth_mechanisms,
    twisted_capabilities,
    twisted_offers_starttls,
)
from maildoctor.smtp.report import ProbeOptions
from maildoctor.smtp.resolve import check_host
from maildoctor.smtp.sniff import classify_text
from maildoctor.smtp.tls import classify_verify_error, client_hello, looks_like_tls, name_matches
from maildoctor.smtp.transcript import HIDDEN, Direction, Transcript


@pytest.mark.parametrize(("line", "code", "last", "text"), [
    ("220 mail.test ESMTP", 220, True, "mail.test ESMTP"),
    ("250-PIPELINING", 250, False, "PIPELINING"),
    ("250", 250, True, ""),
    ("421 ", 421, True, ""),
    ("535-5.7.8 bad", 535, False, "5.7.8 bad"),
])
def test_reply_line(line: str, code: int, last: bool, text: str) -> None:
    parsed = parse_reply_line(line)
    assert (parsed.code, parsed.last, parsed.text) == (code, last, text)


@pytest.mark.parametrize("line", ["+OK Dovecot ready.", "* OK IMAP", "22", "", "SSH-2.0-x",
                                  "２２０ unicode digits"])
def test_reply_line_malformed(line: str) -> None:
    with pytest.raises(MalformedLine):
        parse_reply_line(line)


@given(st.integers(100, 999), st.sampled_from(["-", " "]), st.text(max_size=50))
def test_reply_line_roundtrip(code: int, sep: str, text: str) -> None:
    parsed = parse_reply_line(f"{code}{sep}{text}")
    assert parsed.code == code
    assert parsed.last == (sep == " ")
    assert parsed.text == printable(text)  # server text enters printable (issue 10 item 10)
    if text.isprintable():
        assert parsed.text == text


EHLO = ("mail.test", "PIPELINING", "starttls", "AUTH=LOGIN PLAIN", "auth login", "SIZE 100")


def test_twisted_view_is_case_sensitive_and_ignores_legacy_auth() -> None:
    assert not twisted_offers_starttls(EHLO)
    assert twisted_auth_mechanisms(EHLO) == ()
    assert offered_mechanisms(EHLO) == ("LOGIN", "PLAIN")
    assert twisted_capabilities(EHLO)["SIZE"] == "100"


def test_twisted_view_last_line_wins_and_upper_cases_mechanisms() -> None:
    lines = ("x", "AUTH PLAIN", "AUTH login cram-md5", "STARTTLS")
    assert twisted_auth_mechanisms(lines) == ("LOGIN", "CRAM-MD5")
    assert twisted_offers_starttls(lines)
    assert twisted_auth_mechanisms(("x", "AUTH")) == ()  # bare AUTH: none


@pytest.mark.parametrize(("offered", "choice"), [
    (("PLAIN", "LOGIN", "CRAM-MD5"), "CRAM-MD5"),
    (("PLAIN", "LOGIN"), "LOGIN"),
    (("PLAIN",), "PLAIN"),
    (("XOAUTH2", "PLAIN"), "PLAIN"),
    (("XOAUTH2", "GSSAPI"), None),
    ((), None),
])
def test_synapse_mechanism(offered: tuple[str, ...], choice: str | None) -> None:
    assert synapse_mechanism(offered) == choice


@pytest.mark.parametrize(("name", "fq"), [
    ("mx.example.org", True), ("a1b2c3d4e5", False), ("localhost", False),
    ("localhost.localdomain", False), ("host.", False), ("", False), ("x.-bad", False),
])
def test_fully_qualified(name: str, fq: bool) -> None:
    assert is_fully_qualified(name) is fq


def test_envelope_address_gets_fqdn_only_without_at() -> None:
    assert envelope_address("noreply", "host.example") == "noreply@host.example"
    assert envelope_address("a@b.c", "host.example") == "a@b.c"


@pytest.mark.parametrize(("host", "kind", "usable"), [
    ("smtp.example.org", "name", True),
    ("127.0.0.1", "ip-literal", True),
    ("::1", "ip-literal", True),
    ("[::1]", "bracketed-ip", False),
    ("user@example.org", "email-address", False),
    ("smtp://mail.example.org", "url", False),
    ("mail.example.org:587", "host-port", False),
    ("", "empty", False),
    (None, "empty", False),
    (" mail.example.org", "whitespace", False),
    (587, "not-a-string", False),
])
def test_check_host(host: object, kind: str, usable: bool) -> None:
    got_kind, problem = check_host(host)
    assert got_kind == kind
    assert (problem == "") is usable


@pytest.mark.parametrize(("code", "verdict", "reason"), [
    (18, TlsVerify.UNTRUSTED, "self-signed"),
    (20, TlsVerify.UNTRUSTED, "unknown-ca"),
    (21, TlsVerify.UNTRUSTED, "incomplete-chain"),
    (10, TlsVerify.EXPIRED, "expired"),
    (9, TlsVerify.EXPIRED, "not-yet-valid"),
    (62, TlsVerify.NAME_MISMATCH, "name-mismatch"),
    (64, TlsVerify.NAME_MISMATCH, "name-mismatch"),
    (999, TlsVerify.UNTRUSTED, "openssl-error-999"),
])
def test_verify_codes(code: int, verdict: TlsVerify, reason: str) -> None:
    assert classify_verify_error(code) == (verdict, reason)


@pytest.mark.parametrize(("name", "names", "match"), [
    ("mail.example.org", ("mail.example.org",), True),
    ("MAIL.example.org", ("mail.example.org",), True),
    ("mail.example.org", ("*.example.org",), True),
    ("a.b.example.org", ("*.example.org",), False),
    ("localhost", ("mail.example.org",), False),
    ("127.0.0.1", ("127.0.0.1",), True),
])
def test_name_matches(name: str, names: tuple[str, ...], match: bool) -> None:
    assert name_matches(name, names) is match


def test_client_hello_is_a_tls_record() -> None:
    hello = client_hello("mail.example.org")
    assert looks_like_tls(hello) and hello[0] == 0x16
    assert b"mail.example.org" in hello  # SNI for a DNS name
    assert b"127.0.0.1" not in client_hello("127.0.0.1")  # never for an IP
    assert not looks_like_tls(b"220 mail ESMTP\r\n")


@pytest.mark.parametrize(("data", "speaks"), [
    (b"220 mail.test ESMTP\r\n", Speaks.SMTP),
    (b"554 go away\r\n", Speaks.SMTP),
    (b"+OK Dovecot ready.\r\n", Speaks.NOT_SMTP),
    (b"* OK [CAPABILITY IMAP4rev1] ready\r\n", Speaks.NOT_SMTP),
    (b"HTTP/1.1 400 Bad Request\r\n", Speaks.NOT_SMTP),
])
def test_classify_banner(data: bytes, speaks: Speaks) -> None:
    assert classify_text(data)[0] is speaks


def test_plain_first_attempt_has_authzid() -> None:
    assert base64.b64decode(plain_with_authzid("u@x", "pw")) == b"u@x\0u@x\0pw"


def test_transcript_hides_auth_payloads_and_redacts() -> None:
    redactor = Redactor()
    redactor.add("s3cret", users=["u@x"])
    transcript = Transcript(redactor)
    transcript.add(Direction.SENT, f"AUTH PLAIN {plain_with_authzid('u@x', 's3cret')}",
                   secret=True)
    transcript.add(Direction.SENT, "czNjcmV0", secret=True)
    transcript.add(Direction.RECEIVED, "535 you said s3cret")
    texts = [line.text for line in transcript.lines]
    assert texts == [f"AUTH PLAIN {HIDDEN}", HIDDEN, "535 you said ********"]


def test_transcript_is_bounded() -> None:
    transcript = Transcript()
    transcript.add(Direction.RECEIVED, "x" * 100_000)
    assert len(transcript.lines[0].text) < 500


def test_options_validate_stop_after() -> None:
    with pytest.raises(ValueError):
        ProbeOptions(stop_after="data")
    assert ProbeOptions(stop_after="tls").stop_after == "tls"
    assert Resolve.OK == "ok"


@pytest.mark.parametrize(("verified", "loopback", "tls", "allowed", "refused"), [
    (True, False, True, False, False),
    (False, True, False, False, False),
    (False, False, False, True, False),
    (False, False, False, False, True),
    (False, False, True, False, True),  # TLS that failed verification is not enough
])
def test_refuse_credentials(verified: bool, loopback: bool, tls: bool, allowed: bool,
                            refused: bool) -> None:
    from maildoctor.smtp.auth_stage import refuse_credentials

    why = refuse_credentials(verified_tls=verified, loopback=loopback, tls=tls, allowed=allowed)
    assert bool(why) is refused
