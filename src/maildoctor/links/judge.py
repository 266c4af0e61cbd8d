"""Who answered a link: Synapse, or something in front of it. Pure.

Synapse's answers are recognised by what it sends (observed with Synapse 1.163.2 on
loopback, spec/after-the-250.md): its ``Server: Synapse/...`` header (which nginx hides by
default), a JSON error with ``errcode``, or its HTML error page naming the missing query
parameter. A link requested without its token is *expected* to get Synapse's 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from maildoctor.links.fetch import Fetched
from maildoctor.links.paths import Link
from maildoctor.resolver import printable

NGINX_EXAMPLE = "location {prefix} {{ proxy_pass http://127.0.0.1:8008; }}"


@dataclass(frozen=True)
class LinkVerdict:
    link: Link
    works: bool
    seen: str  # what came back, in words
    problem: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.link.kind, "url": printable(self.link.url), "key": self.link.key,
                "works": self.works, "seen": self.seen, "problem": self.problem or None,
                "fix": self.fix or None}


def answered_by_synapse(got: Fetched) -> bool:
    if got.server.lower().startswith("synapse"):
        return True
    if "json" in got.content_type and '"errcode"' in got.body:
        return True
    return "query parameter" in got.body and got.status == 400


def _seen(got: Fetched) -> str:
    if got.error:
        return got.error
    who = f" from {got.server}" if got.server else ""
    where = f" to {got.location}" if got.location else ""
    return f"HTTP {got.status}{who}{where}"


def judge_link(link: Link, got: Fetched) -> LinkVerdict:
    seen = _seen(got)
    if got.error:
        return LinkVerdict(link, False, seen,
                           f"the {link.kind} link {printable(link.url)} cannot be opened: "
                           f"{got.error}",
                           f"make {link.key} reachable from the Internet at this address")
    if not link.synapse:
        if got.status < 400:
            return LinkVerdict(link, True, seen)
        return LinkVerdict(link, False, seen,
                           f"{link.key} ({printable(link.url)}) answers {got.status}",
                           f"point {link.key} at your web client's address")
    if answered_by_synapse(got):
        return LinkVerdict(link, True, seen)
    prefix = link.prefix
    if 300 <= got.status < 400 and got.location:
        here, there = urlsplit(link.url).hostname, urlsplit(got.location).hostname
        if there and there != here:
            return LinkVerdict(link, False, seen,
                               f"the {link.kind} link is redirected to {printable(there)}: "
                               f"the proxy at {printable(here or '')} does not pass {prefix} "
                               "to Synapse",
                               f"forward {prefix} to Synapse in the proxy for "
                               f"{printable(here or '')} (nginx: "
                               f"{NGINX_EXAMPLE.format(prefix=prefix)})")
    answered = f"HTTP {got.status}" + (f" from {got.server}" if got.server else "")
    return LinkVerdict(link, False, seen,
                       f"the {link.kind} link answers {answered}, not Synapse: the reverse "
                       f"proxy does not forward {prefix} to Synapse",
                       f"add a location for {prefix} to the reverse proxy (nginx: "
                       f"{NGINX_EXAMPLE.format(prefix=prefix)}); Synapse's reverse-proxy "
                       "documentation asks for both /_matrix and /_synapse/client")
