"""The round trip's reading of a received mail: DKIM verified against the key Knot publishes
(and failing once the published key changes), Authentication-Results parsed, links found.
The mail is signed here with dkimpy; the OpenDKIM + Dovecot path is not wired yet."""

from __future__ import annotations

import base64
import email
import email.policy
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from maildoctor.resolver import Resolver, parse_resolver_address
from maildoctor.roundtrip import auth_results, links_in, verify_dkim
from tests.senderdns.zones import BODY, ORIGIN

DOMAIN = f"good.{ORIGIN}"


def _key() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(public).decode()


def _txt(value: str) -> str:
    return " ".join(f'"{value[i:i + 200]}"' for i in range(0, len(value), 200))


MAIL = (b"From: Matrix <noreply@" + DOMAIN.encode() + b">\r\nTo: alice@example.org\r\n"
        b"Subject: [example.org] Password reset\r\nMessage-ID: <1@host>\r\n"
        b"Authentication-Results: mx.test; spf=pass smtp.mailfrom=noreply@"
        + DOMAIN.encode() + b";\r\n dkim=pass header.d=" + DOMAIN.encode() + b"\r\n"
        b"Content-Type: text/plain\r\n\r\n"
        b"Reset: https://matrix.test/_synapse/client/password_reset/email/submit_token?t=1\r\n")


def test_dkim_verifies_then_fails_when_the_published_key_changes(knot: Any) -> None:
    private, public = _key()
    _other, other_public = _key()
    signed = dkim.sign(MAIL, b"mail", DOMAIN.encode(), private,
                       include_headers=[b"From", b"To", b"Subject"]) + MAIL
    resolver = Resolver(parse_resolver_address(knot.resolver), timeout=3)
    try:
        key_record = _txt("v=DKIM1; k=rsa; p=" + public)
        knot.set_zone(ORIGIN, BODY + f"mail._domainkey.good TXT {key_record}\n")
        [check] = verify_dkim(signed, resolver)
        assert (check.domain, check.selector, check.verified) == (DOMAIN, "mail", True)
        knot.set_zone(ORIGIN, BODY + "mail._domainkey.good TXT "
                      f"{_txt('v=DKIM1; k=rsa; p=' + other_public)}\n")
        [check] = verify_dkim(signed, resolver)
        assert check.verified is False and "does not verify" in check.detail
        knot.set_zone(ORIGIN, BODY)
        [check] = verify_dkim(signed, resolver)
        assert check.verified is False
    finally:
        knot.set_zone(ORIGIN, BODY)


def test_authentication_results_are_parsed_and_links_found() -> None:
    message = email.message_from_bytes(MAIL, policy=email.policy.default)
    results, problems = auth_results(message)
    assert problems == []
    assert [(r.method, r.result) for r in results] == [("spf", "pass"), ("dkim", "pass")]
    assert dict(results[1].properties)["header.d"] == DOMAIN
    assert links_in(message, "https://matrix.test/") == [
        "https://matrix.test/_synapse/client/password_reset/email/submit_token?t=1"]


def test_a_broken_authentication_results_header_is_reported_not_dropped() -> None:
    message = email.message_from_bytes(b"Authentication-Results: ;;;\r\n\r\nx",
                                       policy=email.policy.default)
    results, problems = auth_results(message)
    assert results == [] and problems and "unparsable" in problems[0]
