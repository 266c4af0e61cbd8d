"""Option validation, the pure SASL helpers, and the scenario table."""

from __future__ import annotations

import base64
import smtplib

import pytest

from maildoctor.testing.auth import cram_response, parse_xoauth2
from maildoctor.testing.options import Fault, ServerOptions
from maildoctor.testing.scenarios import DESCRIPTIONS, SCENARIOS
from tests.testing.wire import Wire


@pytest.mark.parametrize(("changes", "message"), [
    ({"tls": "ssl"}, "tls='ssl'"),
    ({"cert": "bogus"}, "cert='bogus'"),
    ({"mechanisms": ("GSSAPI",)}, "unknown mechanism 'GSSAPI'"),
    ({"mechanisms": ("CRAM-MD5", "CRAM-MD5-BROKEN")}, "listed twice"),
    ({"replies": {"banner": "220 hi"}}, "unknown reply stage 'banner'"),
    ({"replies": {"mail": "ok then"}}, "must start with a 3-digit code"),
    ({"faults": (Fault.SILENT, Fault.NOT_SMTP)}, "pick one"),
    ({"auth_failure": "explode"}, "auth_failure='explode'"),
    ({"port": 70000}, "out of range"),
    ({"greeting_delay": -1}, "must not be negative"),
    ({"tls": "starttls", "cert_names": ()}, "at least one certificate name"),
])
def test_invalid_options_are_refused_at_construction(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ServerOptions(**changes)


def test_options_normalise_and_hide_credentials():
    opts = ServerOptions(faults=("drop_after_ehlo", "SLOW-DRIP"), mechanisms=("login",),
                         credentials={"u@example.org": "do-not-print"})
    assert opts.faults == (Fault.DROP_AFTER_EHLO, Fault.SLOW_DRIP)
    assert opts.mechanisms == ("LOGIN",)
    assert "do-not-print" not in repr(opts)
    assert opts.replace(port=25).port == 25


def test_fault_parse_names_the_choices():
    assert Fault.parse("NOT_SMTP") is Fault.NOT_SMTP
    with pytest.raises(ValueError, match="silent, drop-after-greeting"):
        Fault.parse("explode")


def test_cram_response_matches_rfc_2195_example():
    # RFC 2195 section 2: tim / tanstaaftanstaaf.
    challenge = b"<1896.697170952@postoffice.reston.mci.net>"
    assert cram_response("tim", "tanstaaftanstaaf", challenge) == (
        b"tim b913a602c7eda7a495b4e6e7334d3890"
    )
    # ... and smtplib computes the same thing the server checks.
    encoded = base64.b64encode(challenge).decode()
    client = smtplib.SMTP()
    client.user, client.password = "tim", "tanstaaftanstaaf"
    assert client.auth_cram_md5(base64.b64decode(encoded)) == cram_response(
        "tim", "tanstaaftanstaaf", challenge).decode()


@pytest.mark.parametrize(("blob", "expected"), [
    (b"user=a@b.org\x01auth=Bearer tok\x01\x01", ("a@b.org", "tok")),
    (b"user=a@b.org\x01\x01", ("a@b.org", None)),
    (b"auth=bearer tok\x01\x01", (None, "tok")),
    (b"", (None, None)),
])
def test_parse_xoauth2(blob, expected):
    assert parse_xoauth2(blob) == expected


def test_every_scenario_is_described():
    assert set(SCENARIOS) == set(DESCRIPTIONS)
    for name in ("works", "no-auth-offered", "xoauth2-only", "implicit-tls",
                 "untrusted-cert-starttls", "untrusted-cert-implicit", "sender-rejected",
                 "greeting-421", "starttls-454", "auth-454", "cram-md5-broken"):
        assert name in SCENARIOS


def _first_bytes(server) -> bytes:
    with Wire(server.host, server.port) as wire:
        if wire.sends_nothing(0.1):
            return b""
        return wire.buffer + wire.sock.recv(4)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_starts_and_opens_as_promised(smtp_scenario, name):
    server = smtp_scenario(name)
    opts = SCENARIOS[name]
    if opts.tls == "implicit":
        with Wire(server.host, server.port) as wire:
            assert wire.sends_nothing(0.1)  # waits for our ClientHello
        return
    first = _first_bytes(server) if not opts.has(Fault.SLOW_DRIP) else b""
    if opts.has(Fault.SILENT):
        assert first == b""
    elif opts.has(Fault.NOT_SMTP):
        assert first.startswith(b"+OK")
    elif opts.has(Fault.SLOW_DRIP):
        pass  # covered by test_faults; a full greeting takes seconds here
    else:
        expected = opts.replies.get("greeting", "220")[:3].encode()
        assert first.startswith(expected)
