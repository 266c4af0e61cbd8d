"""Certificate report helpers on certificates made here (no sockets)."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from maildoctor.smtp.tls import certificate_info, refine_reason, validity_problem

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def make_cert(*, cn: str = "mail.example.org", sans: list[x509.GeneralName] | None = None,
              aia: bool = False, self_signed: bool = False,
              not_after: datetime.datetime | None = None) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer = subject if self_signed else x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Some Intermediate CA")])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=1))
               .not_valid_after(not_after or NOW + datetime.timedelta(days=90)))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if aia:
        builder = builder.add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                   x509.UniformResourceIdentifier("http://ca.invalid/i.der"))]),
            critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


def test_names_from_sans_dns_and_ip() -> None:
    der = make_cert(sans=[x509.DNSName("mail.example.org"),
                          x509.IPAddress(ipaddress.ip_address("192.0.2.1"))])
    info = certificate_info(der, tls_version="TLSv1.3")
    assert info.names == ("mail.example.org", "192.0.2.1")
    assert info.subject == "CN=mail.example.org" and info.issuer == "CN=Some Intermediate CA"
    assert not info.self_signed and info.tls_version == "TLSv1.3"


def test_common_name_when_no_sans() -> None:
    info = certificate_info(make_cert(cn="legacy.example.org", self_signed=True))
    assert info.names == ("legacy.example.org",) and info.self_signed


def test_validity() -> None:
    info = certificate_info(make_cert(not_after=NOW + datetime.timedelta(days=1)))
    assert validity_problem(info, NOW) == ""
    assert validity_problem(info, NOW + datetime.timedelta(days=2)) == "expired"
    assert validity_problem(info, NOW - datetime.timedelta(days=3)) == "not-yet-valid"


@pytest.mark.parametrize(("aia", "chain_sent", "reason"), [
    (True, 1, "incomplete-chain"),  # public-CA leaf sent alone: the intermediate is missing
    (True, 2, "unknown-ca"),
    (False, 1, "unknown-ca"),
])
def test_unknown_issuer_vs_incomplete_chain(aia: bool, chain_sent: int, reason: str) -> None:
    der = make_cert(aia=aia)
    assert refine_reason("unknown-ca", der, certificate_info(der), chain_sent) == reason
    assert refine_reason("name-mismatch", der, certificate_info(der), chain_sent) \
        == "name-mismatch"
