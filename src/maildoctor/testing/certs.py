"""Certificates for the test server, made with ``trustme`` and ``cryptography``.

Every TLS failure Synapse hangs on (rows B6-B8 of spec/twisted-smtp.md) comes down to which CA
signed the server's certificate and which names it carries, so the server offers one switch:

- ``trusted``: signed by this process's test CA. Clients trust it through the CA file the server
  writes (``SSL_CERT_FILE=<server.ca_file>``, or ``ssl.create_default_context(cafile=...)``).
- ``untrusted``: signed by a second CA that is never written anywhere, so no client can trust it.
- ``self-signed``: a leaf that signed itself (no CA at all), the classic hand-made certificate.
- ``expired``: signed by the trusted CA but no longer valid, to prove the expiry diagnosis.

Key generation is the slow part of a test run, so the two CAs are made once per process and each
leaf once per (kind, names). Private keys live only in memory: they touch the disk for the instant
``SSLContext.load_cert_chain`` needs a file (a 0600 temp file, deleted at once).
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from typing import Literal

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CertKind = Literal["trusted", "untrusted", "self-signed", "expired"]
CERT_KINDS: tuple[CertKind, ...] = ("trusted", "untrusted", "self-signed", "expired")

_ORGANISATION = "maildoctor test server"


@dataclass(frozen=True)
class ServerCertificate:
    """A server certificate with its private key, ready to load into an SSL context."""

    kind: CertKind
    names: tuple[str, ...]
    cert_pem: bytes  # the leaf alone, for pinning or for printing
    chain_pem: bytes  # private key + leaf + intermediates, as load_cert_chain wants them

    def __repr__(self) -> str:  # the key stays out of reprs and logs
        return f"ServerCertificate(kind={self.kind!r}, names={self.names!r})"

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting this certificate (TLS 1.2 or later)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        with tempfile.NamedTemporaryFile(prefix="maildoctor-key-", suffix=".pem") as handle:
            handle.write(self.chain_pem)
            handle.flush()
            context.load_cert_chain(handle.name)
        return context


@functools.cache
def _ca(role: Literal["trusted", "untrusted"]) -> trustme.CA:
    # Named by where it can be trusted from, not "trusted CA": a probe that was not given
    # the CA file quotes this name in an "untrusted certificate" diagnosis.
    where = "the CA in its ca.pem" if role == "trusted" else "a CA no client has"
    return trustme.CA(organization_name=f"{_ORGANISATION} ({where})")


def trusted_ca_pem() -> bytes:
    """PEM of the CA that signs ``trusted`` (and ``expired``) certificates. No private key."""
    return _ca("trusted").cert_pem.bytes()


@functools.cache
def issue(kind: CertKind, names: tuple[str, ...]) -> ServerCertificate:
    """The server certificate of ``kind`` for ``names`` (DNS names or IP literals)."""
    if not names:
        raise ValueError("a server certificate needs at least one name")
    if kind == "self-signed":
        chain, leaf = _self_signed(names)
        return ServerCertificate(kind, names, leaf, chain)
    if kind == "expired":
        now = datetime.datetime.now(datetime.UTC)
        cert = _ca("trusted").issue_cert(
            *names,
            organization_name=_ORGANISATION,
            not_before=now - datetime.timedelta(days=60),
            not_after=now - datetime.timedelta(days=1),
        )
    elif kind in ("trusted", "untrusted"):
        cert = _ca(kind).issue_cert(*names, organization_name=_ORGANISATION)
    else:
        raise ValueError(f"unknown certificate kind {kind!r}; expected one of {CERT_KINDS}")
    chain = cert.private_key_and_cert_chain_pem.bytes()
    return ServerCertificate(kind, names, cert.cert_chain_pems[0].bytes(), chain)


def _self_signed(names: tuple[str, ...]) -> tuple[bytes, bytes]:
    """A leaf certificate whose issuer is itself: what ``openssl req -x509`` produces."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{_ORGANISATION} (self-signed)"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    leaf = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem + leaf, leaf


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
