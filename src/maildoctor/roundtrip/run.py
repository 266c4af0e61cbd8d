"""The round trip after ``send``: wait for the mail in the mailbox, then judge what arrived.

Pure data in and out (:class:`RoundTripOptions` -> :class:`RoundTripReport`); the I/O is
imap.py (the mailbox), the resolver (DKIM keys) and links.fetch (the links, requested
without their token, so a password-reset link is not used up by checking it)."""

from __future__ import annotations

import email
import email.policy
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from maildoctor.links.fetch import fetch
from maildoctor.links.judge import judge_link
from maildoctor.links.paths import Link
from maildoctor.resolver import Resolver, printable
from maildoctor.roundtrip.imap import ImapFailure, connect, wait_for
from maildoctor.roundtrip.verdicts import auth_results, links_in, verify_dkim
from maildoctor.secrets import Secret


@dataclass(frozen=True)
class RoundTripOptions:
    host: str
    port: int
    user: str
    password: Secret
    tls: bool = True
    ca_file: str | None = None
    wait: float = 60.0
    keep: bool = False
    resolver: tuple[str, int] | None = None
    links: bool = True
    timeout: float = 10.0


@dataclass
class RoundTripReport:
    found: bool = False
    folder: str = ""
    junk: bool = False
    seconds: float = 0.0
    deleted: bool = False
    auth_results: list[dict[str, Any]] = field(default_factory=list)
    auth_problems: list[str] = field(default_factory=list)
    dkim: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return (self.found and not self.junk and not self.error
                and all(d["verified"] for d in self.dkim)
                and all(link["works"] for link in self.links))

    def problems(self) -> list[str]:
        out = []
        if self.error:
            out.append(self.error)
        if self.found and self.junk:
            out.append(f"the mail landed in {self.folder}, not the Inbox")
        for d in self.dkim:
            if not d["verified"]:
                out.append(f"DKIM d={d['d']} s={d['s']}: {d['detail']}")
        for link in self.links:
            if not link["works"]:
                out.append(f"dead link: {link['problem']}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"found": self.found, "folder": self.folder or None, "junk": self.junk,
                "seconds": round(self.seconds, 3), "deleted": self.deleted,
                "authentication_results": self.auth_results,
                "authentication_results_unparsable": self.auth_problems,
                "dkim": self.dkim, "links": self.links, "ok": self.ok,
                "problems": self.problems()}


def round_trip(message_id: str, options: RoundTripOptions, *,
               public_baseurl: str | None, sent_at: float | None = None) -> RoundTripReport:
    report = RoundTripReport()
    started = sent_at if sent_at is not None else time.monotonic()
    try:
        conn = connect(options.host, options.port, user=options.user,
                       password=options.password, tls=options.tls, ca_file=options.ca_file,
                       timeout=options.timeout)
        try:
            found = wait_for(conn, message_id, timeout=options.wait, delete=not options.keep)
        finally:
            try:
                conn.logout()
            except Exception:
                pass
    except ImapFailure as exc:
        report.error = str(exc)
        return report
    if found is None:
        report.error = (f"the mail did not arrive in the Inbox or Junk of {printable(options.user)}"
                        f" within {options.wait:g} s")
        return report
    report.found, report.folder, report.junk = True, found.folder, found.junk
    report.seconds = time.monotonic() - started
    report.deleted = not options.keep
    message = email.message_from_bytes(found.raw, policy=email.policy.default)
    results, problems = auth_results(message)
    report.auth_results = [r.as_dict() for r in results]
    report.auth_problems = problems
    resolver = Resolver(options.resolver, timeout=min(options.timeout, 3.0))
    report.dkim = [c.as_dict() for c in verify_dkim(found.raw, resolver)]
    if options.links and public_baseurl:
        report.links = _links(message, public_baseurl, options)
    return report


def _links(message: Any, base: str, options: RoundTripOptions) -> list[dict[str, Any]]:
    resolver = Resolver(options.resolver, timeout=2.5) if options.resolver else None
    seen, out = set(), []
    for url in links_in(message, base):
        parts = urlsplit(url)
        bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        if bare in seen:
            continue
        seen.add(bare)
        synapse = parts.path.startswith(("/_matrix", "/_synapse")) or \
            "/_matrix/" in parts.path or "/_synapse/" in parts.path
        link = Link("received", bare, "public_baseurl", synapse)
        got = fetch(bare, timeout=min(options.timeout, 3.0), resolver=resolver,
                    ca_file=options.ca_file)
        out.append(judge_link(link, got).as_dict())
    return out
