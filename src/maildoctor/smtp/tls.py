"""TLS as Synapse does it, and a certificate report better than ``openssl s_client``'s.

- :func:`verifying_context`: the system trust store (OpenSSL's default paths, so
  ``SSL_CERT_FILE`` works as it does for Twisted's ``platformTrust()``) plus ``ca_file``.
- :func:`inspecting_context`: no verification, used for a second handshake that reads
  the certificate when the first one was rejected.
- :data:`VERIFY_CODES`: OpenSSL ``X509_V_ERR_*`` code -> (TlsVerify, reason).
- :func:`client_hello`: the first bytes of a TLS handshake, for TLS-mode sniffing.
- :func:`certificate_info`: subject, issuer, SANs, validity, read with ``cryptography``.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from maildoctor.smtp.facts import CertificateInfo, TlsVerify

# X509_V_ERR_* -> what it means for Synapse, and a stable reason word for the report.
VERIFY_CODES: dict[int, tuple[TlsVerify, str]] = {
    2: (TlsVerify.UNTRUSTED, "incomplete-chain"),  # unable to get issuer certificate
    9: (TlsVerify.EXPIRED, "not-yet-valid"),
    10: (TlsVerify.EXPIRED, "expired"),
    18: (TlsVerify.UNTRUSTED, "self-signed"),  # depth zero self-signed
    19: (TlsVerify.UNTRUSTED, "untrusted-root"),  # self-signed certificate in chain
    20: (TlsVerify.UNTRUSTED, "unknown-ca"),  # issuer not found locally (or chain incomplete)
    21: (TlsVerify.UNTRUSTED, "incomplete-chain"),  # unable to verify the first certificate
    23: (TlsVerify.UNTRUSTED, "revoked"),
    24: (TlsVerify.UNTRUSTED, "invalid-ca"),
    26: (TlsVerify.UNTRUSTED, "invalid-purpose"),
    62: (TlsVerify.NAME_MISMATCH, "name-mismatch"),  # hostname mismatch
    64: (TlsVerify.NAME_MISMATCH, "name-mismatch"),  # IP address mismatch
}


def classify_verify_error(code: int) -> tuple[TlsVerify, str]:
    return VERIFY_CODES.get(code, (TlsVerify.UNTRUSTED, f"openssl-error-{code}"))


def verifying_context(ca_file: str | None, *, trust_cafile: str | None = None,
                      trust_capath: str | None = None) -> ssl.SSLContext:
    """Python's default trust store, or Synapse's (``trust_*``: the file and directory its
    OpenSSL loads) when known; plus ``ca_file``. A trust path that does not exist is
    skipped, as OpenSSL skips it: with neither, nothing is trusted, as for Synapse."""
    if trust_cafile or trust_capath:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, checks names; trusts nothing
        if trust_cafile and os.path.isfile(trust_cafile):
            ctx.load_verify_locations(cafile=trust_cafile)
        if trust_capath and os.path.isdir(trust_capath):
            ctx.load_verify_locations(capath=trust_capath)
    else:
        ctx = ssl.create_default_context()
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


def inspecting_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def client_hello(server_name: str | None) -> bytes:
    """A real ClientHello (SNI only for DNS names, like Synapse), made by ``ssl`` itself."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    sni = server_name if server_name and not is_ip(server_name) else None
    obj = inspecting_context().wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def looks_like_tls(data: bytes) -> bool:
    """A TLS record header: handshake (22) or alert (21), major version 3."""
    return len(data) >= 2 and data[0] in (0x15, 0x16) and data[1] == 0x03


def certificate_info(der: bytes, *, tls_version: str = "", verify_error: str = "",
                     ) -> CertificateInfo:
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    if not names:
        names += [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        names=tuple(names),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        self_signed=cert.subject == cert.issuer,
        tls_version=tls_version,
        verify_error=verify_error,
    )


def names_issuer_url(der: bytes) -> bool:
    """Whether the certificate says where its issuer can be downloaded (AIA caIssuers):
    public CAs always do, so "issuer unknown" with only this leaf sent means the server
    left out the intermediate (an incomplete chain), not that the CA is unknown."""
    cert = x509.load_der_x509_certificate(der)
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return False
    return any(d.access_method == AuthorityInformationAccessOID.CA_ISSUERS for d in aia)


def refine_reason(reason: str, der: bytes, info: CertificateInfo, chain_sent: int) -> str:
    if reason == "unknown-ca" and chain_sent == 1 and not info.self_signed \
            and names_issuer_url(der):
        return "incomplete-chain"
    return reason


def peer_certificate(obj: ssl.SSLObject | None) -> bytes | None:
    return obj.getpeercert(binary_form=True) if obj is not None else None


def unverified_chain_length(obj: ssl.SSLObject | None) -> int:
    """How many certificates the server sent (CPython 3.11 has this only privately)."""
    inner = getattr(obj, "_sslobj", None)
    getter = getattr(inner, "get_unverified_chain", None)
    if getter is None:
        return 0
    try:
        chain = getter()
    except (ssl.SSLError, ValueError):
        return 0
    return len(chain or ())


def validity_problem(info: CertificateInfo, now: datetime | None = None) -> str:
    """``expired`` / ``not-yet-valid`` / ``""``, from the dates alone."""
    now = now or datetime.now(UTC)
    if info.not_after and datetime.fromisoformat(info.not_after) < now:
        return "expired"
    if info.not_before and datetime.fromisoformat(info.not_before) > now:
        return "not-yet-valid"
    return ""


def name_matches(name: str, names: tuple[str, ...]) -> bool:
    """RFC 6125-style match of ``name`` against SANs (one left-most ``*`` label)."""
    want = name.lower().rstrip(".")
    for pattern in (n.lower().rstrip(".") for n in names):
        if pattern == want:
            return True
        if pattern.startswith("*.") and "." in want:
            if want.split(".", 1)[1] == pattern[2:] and not is_ip(want):
                return True
    return False
