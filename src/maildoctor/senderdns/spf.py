"""SPF evaluation by pyspf, with every DNS question going through our resolver.

pyspf asks DNS through one module-level function (``spf.DNSLookup``). This module installs,
once, a dispatcher in its place that hands the question to the resolver of the evaluation
running in this context (a :class:`contextvars.ContextVar`), and to pyspf's own function
otherwise, so other users of pyspf in the same process see no change. That keeps pyspf's
evaluation (include, redirect, macros, the 10-lookup and 2-void-lookup limits) whole while
``--resolver`` decides where the questions go and the stage's deadline bounds them.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

import spf as pyspf

from maildoctor.resolver import DnsFailure, Resolver, printable

_CURRENT: contextvars.ContextVar[Resolver | None] = contextvars.ContextVar(
    "maildoctor_spf_resolver", default=None)
_ORIGINAL = pyspf.DNSLookup


def _lookup(name: str, qtype: str, strict: Any = True, timeout: Any = 30) -> list[Any]:
    resolver = _CURRENT.get()
    if resolver is None:
        return list(_ORIGINAL(name, qtype, strict, timeout))
    try:
        answer = resolver.query(name, qtype)
    except DnsFailure as exc:
        raise pyspf.TempError(f"DNS {exc}") from exc
    out: list[Any] = []
    for rdata in answer.records:
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            out.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            out.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), list(rdata.strings)))
    return out


if getattr(pyspf.DNSLookup, "__module__", "") != __name__:
    pyspf.DNSLookup = _lookup


@dataclass(frozen=True)
class SpfResult:
    ip: str
    result: str  # pass fail softfail neutral none permerror temperror
    explanation: str


def evaluate(ip: str, sender: str, helo: str, resolver: Resolver) -> SpfResult:
    """check_host(ip, sender's domain, sender) as a receiver would run it."""
    token = _CURRENT.set(resolver)
    try:
        # querytime 0: no total of pyspf's own; the resolver's deadline bounds the whole.
        query = pyspf.query(i=ip, s=sender, h=helo, timeout=resolver.timeout, querytime=0)
        result, _code, explanation = query.check()
    except (pyspf.TempError, OSError) as exc:
        result, explanation = "temperror", str(exc)
    except pyspf.PermError as exc:
        result, explanation = "permerror", str(exc)
    except (ValueError, UnicodeError) as exc:  # pyspf on records it cannot even parse
        result, explanation = "permerror", f"{type(exc).__name__}: {exc}"
    finally:
        _CURRENT.reset(token)
    return SpfResult(ip, str(result), printable(str(explanation)))
