"""What the received mail says about itself: the receiving server's Authentication-Results
(parsed with authres, never grepped), every DKIM signature verified here against the key the
DNS publishes now (dkimpy, its key lookups sent to our resolver), and the links in it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from typing import Any

import authres
import dkim

from maildoctor.resolver import DnsFailure, Resolver, printable

URL = re.compile(r"https?://[^\s\"'<>]+")


@dataclass(frozen=True)
class AuthResult:
    authserv_id: str
    method: str  # spf, dkim, dmarc, ...
    result: str  # pass, fail, ...
    properties: tuple[tuple[str, str], ...] = ()  # (ptype.name, value)

    def as_dict(self) -> dict[str, Any]:
        return {"server": self.authserv_id, "method": self.method, "result": self.result,
                "properties": dict(self.properties)}


def auth_results(message: Message) -> tuple[list[AuthResult], list[str]]:
    """Every Authentication-Results header, parsed; unparsable ones reported, not dropped."""
    found, problems = [], []
    for raw in message.get_all("Authentication-Results") or []:
        text = " ".join(str(raw).split())
        try:
            header = authres.AuthenticationResultsHeader.parse(
                f"Authentication-Results: {text}")
        except Exception as exc:  # authres raises its own tree and plain errors
            problems.append(printable(f"unparsable Authentication-Results ({exc}): {text}"))
            continue
        for r in header.results:
            props = tuple((f"{p.type}.{p.name}", printable(str(p.value)))
                          for p in r.properties)
            found.append(AuthResult(printable(str(header.authserv_id)), str(r.method),
                                    str(r.result), props))
    return found, problems


@dataclass(frozen=True)
class DkimCheck:
    domain: str  # d=
    selector: str  # s=
    verified: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"d": self.domain, "s": self.selector, "verified": self.verified,
                "detail": self.detail}


def _tag(signature: bytes, name: bytes) -> str:
    m = re.search(rb"(?:^|;)\s*" + name + rb"\s*=\s*([^;]+)", signature)
    return printable(b"".join(m.group(1).split()).decode("ascii", "replace")) if m else ""


def verify_dkim(raw: bytes, resolver: Resolver) -> list[DkimCheck]:
    """Each DKIM-Signature of ``raw`` verified against the key published now."""
    errors: list[str] = []

    def get_txt(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer = resolver.query(name.decode("ascii", "replace").rstrip("."), "TXT")
        except DnsFailure as exc:
            errors.append(exc.detail)
            return None
        for record in answer.records:
            return b"".join(record.strings)
        return None

    checker = dkim.DKIM(raw)
    signatures = [v for k, v in checker.headers if k.lower() == b"dkim-signature"]
    out = []
    for index, signature in enumerate(signatures):
        errors.clear()
        try:
            ok = bool(checker.verify(idx=index, dnsfunc=get_txt))
            detail = "the signature verifies with the published key" if ok else \
                "the signature does not verify with the key published now (the key changed, " \
                "or the mail was altered)"
        except dkim.DKIMException as exc:
            ok, detail = False, printable(str(exc))
        if errors:
            detail = f"{detail}; DNS: {errors[0]}"
        out.append(DkimCheck(_tag(signature, b"d"), _tag(signature, b"s"), ok, detail))
    return out


def links_in(message: Message, base: str) -> list[str]:
    """The distinct links starting with ``base`` in the text parts of the mail."""
    found: list[str] = []
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
        for url in URL.findall(text.replace("&amp;", "&")):
            if url.startswith(base) and url not in found:
                found.append(url)
    return found



