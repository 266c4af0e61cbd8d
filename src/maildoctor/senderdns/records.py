"""Sender-domain records as text: pure functions, no DNS.

SPF (RFC 7208) and DMARC (RFC 7489) records are parsed here only as far as the verdict
needs (which record is SPF, its terms, a DMARC policy); evaluating SPF is pyspf's job
(:mod:`maildoctor.senderdns.spf`). Also here: the organizational domain (the Public Suffix
List, via publicsuffixlist) and the zone-file line an admin pastes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

SPF_PREFIX = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)
DMARC_PREFIX = re.compile(r"^v\s*=\s*DMARC1\s*(;|$)", re.IGNORECASE)
ALL_TERM = re.compile(r"^([+\-~?]?)all$", re.IGNORECASE)
DEFAULT_TTL = 3600


def is_spf(text: str) -> bool:
    return bool(SPF_PREFIX.match(text.strip()))


def spf_terms(record: str) -> list[str]:
    return record.split()[1:]


def spf_includes(record: str) -> list[str]:
    """The domains of ``include:`` terms and of ``redirect=``, in order."""
    out = []
    for term in spf_terms(record):
        low = term.lower().lstrip("+-~?")
        if low.startswith("include:"):
            out.append(term.split(":", 1)[1])
        elif low.startswith("redirect="):
            out.append(term.split("=", 1)[1])
    return out


def spf_all_qualifier(record: str) -> str | None:
    """``-``, ``~``, ``?`` or ``+`` of the record's ``all`` term, None without one."""
    for term in spf_terms(record):
        m = ALL_TERM.match(term)
        if m:
            return m.group(1) or "+"
    return None


def spf_with_term(record: str, term: str) -> str:
    """``record`` with ``term`` added before its ``all`` (or ``redirect=``), else at the end."""
    terms = spf_terms(record)
    for i, existing in enumerate(terms):
        if ALL_TERM.match(existing) or existing.lower().startswith("redirect="):
            return " ".join(["v=spf1", *terms[:i], term, *terms[i:]])
    return " ".join(["v=spf1", *terms, term])


def merged_spf(records: list[str]) -> str:
    """One record holding the terms of several (duplicates and extra ``all`` dropped)."""
    terms: list[str] = []
    final = "~all"
    for record in records:
        for term in spf_terms(record):
            if ALL_TERM.match(term):
                final = term if final == "~all" else final
            elif term not in terms:
                terms.append(term)
    return " ".join(["v=spf1", *terms, final])


@dataclass(frozen=True)
class Dmarc:
    record: str
    at: str  # the name it was found at (_dmarc.<domain> or the organizational domain's)
    policy: str  # none | quarantine | reject | "" when missing or invalid
    subdomain_policy: str
    adkim: str  # r | s
    aspf: str
    problem: str = ""  # why the record is unusable, when it is


def parse_dmarc(record: str, at: str) -> Dmarc:
    tags: dict[str, str] = {}
    for part in record.split(";"):
        if "=" in part:
            key, _, value = part.partition("=")
            tags[key.strip().lower()] = value.strip()
    policy = tags.get("p", "").lower()
    problem = ""
    if not DMARC_PREFIX.match(record.strip()):
        problem = "it does not start with v=DMARC1"
    elif policy not in ("none", "quarantine", "reject"):
        problem = "its p= tag is missing or not none, quarantine or reject"
    sp = tags.get("sp", "").lower()
    return Dmarc(record=record, at=at, policy=policy if not problem else "",
                 subdomain_policy=sp if sp in ("none", "quarantine", "reject") else policy,
                 adkim=tags.get("adkim", "r").lower()[:1] or "r",
                 aspf=tags.get("aspf", "r").lower()[:1] or "r", problem=problem)


@cache
def _psl() -> object:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """The registered domain (``mail.example.co.uk`` -> ``example.co.uk``); a name under an
    unknown top-level domain counts its last label as the suffix."""
    name = domain.rstrip(".").lower()
    if name.count(".") < 2:  # one or two labels: the name itself (or a bare suffix)
        return name
    found = _psl().privatesuffix(name)  # type: ignore[attr-defined]
    return str(found) if found else name


def aligned(domain_a: str, domain_b: str, mode: str) -> bool:
    """DMARC identifier alignment: strict is equality, relaxed shares the org domain."""
    a, b = domain_a.rstrip(".").lower(), domain_b.rstrip(".").lower()
    if mode == "s":
        return a == b
    return organizational_domain(a) == organizational_domain(b)


def zone_line(name: str, value: str, rtype: str = "TXT") -> str:
    """A zone-file line to paste: TXT values quoted, split into 255-byte strings."""
    owner = name.rstrip(".") + "."
    if rtype != "TXT":
        return f"{owner} {DEFAULT_TTL} IN {rtype} {value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    chunks = [escaped[i:i + 255] for i in range(0, len(escaped), 255)] or [""]
    return f"{owner} {DEFAULT_TTL} IN TXT " + " ".join(f'"{c}"' for c in chunks)
