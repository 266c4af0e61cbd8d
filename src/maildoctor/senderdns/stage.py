"""The probe's ``sender-dns`` stage: gather the sender domain's DNS, judge it, and report
it as a :class:`~maildoctor.smtp.report.StageResult` like the SMTP stages."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Sequence
from typing import Any

from maildoctor.config.settings import EmailSettings
from maildoctor.providers import find_provider_for_host
from maildoctor.resolver import Resolver, printable
from maildoctor.resolver.names import is_documentation_name
from maildoctor.senderdns.gather import gather
from maildoctor.senderdns.verdict import Verdict, judge
from maildoctor.smtp.report import StageResult, StageStatus

STATUS = {"ok": StageStatus.OK, "at-risk": StageStatus.WARN, "will-fail": StageStatus.FAIL}
QUESTION_TIMEOUT = 2.5  # one DNS question; a stage asks about ten
STAGE_BUDGET = 8.0


def public_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """The addresses a receiver could see the mail come from (not loopback or private)."""
    out = []
    for a in addresses:
        try:
            if ipaddress.ip_address(a).is_global:
                out.append(a)
        except ValueError:
            continue
    return tuple(out)


def run_sender_dns_stage(settings: EmailSettings, *, resolver: Resolver,
                         smtp_addresses: Sequence[str] = (),
                         sending_ips: Sequence[str] = ()) -> StageResult:
    started = time.monotonic()
    address = settings.envelope_from or ""
    if "@" not in address or not address.rpartition("@")[2]:
        return StageResult("sender-dns", StageStatus.SKIPPED, 0.0, {},
                           "not run: notif_from has no address with a domain (check "
                           "reports it)")
    domain = address.rpartition("@")[2]
    if is_documentation_name(domain):
        return StageResult("sender-dns", StageStatus.SKIPPED, 0.0, {"domain": printable(domain)},
                           f"not run: {printable(domain)} is a documentation domain (RFC "
                           "2606), not one mail can be sent from")
    provider = find_provider_for_host(settings.smtp_host, settings.smtp_port)
    if sending_ips:
        ips, source = tuple(sending_ips), "--sending-ip"
    else:
        ips = public_addresses(smtp_addresses) if provider is None else ()
        source = "smtp_host" if ips else ""
    bounded = resolver.with_deadline(started + STAGE_BUDGET)
    facts = gather(address, resolver=bounded, provider=provider, sending_ips=ips,
                   ip_source=source, helo=_helo())
    verdict = judge(facts)
    seconds = time.monotonic() - started
    return StageResult("sender-dns", STATUS[verdict.level], seconds,
                       stage_facts(facts, verdict), _summary(facts.domain, verdict))


def _helo() -> str:
    try:
        return socket.gethostname() or "localhost"
    except OSError:
        return "localhost"


def _summary(domain: str, verdict: Verdict) -> str:
    worst = verdict.worst
    if worst is None:
        return f"{domain}: SPF, DKIM and DMARC as receivers want them"
    others = sum(1 for f in verdict.findings if f.level != "info") - 1
    more = f" (+{others} more)" if others > 0 else ""
    return f"{domain}: {verdict.level}: {worst.code}{more}"


def stage_facts(facts: Any, verdict: Verdict) -> dict[str, Any]:
    """JSON-able, printable facts for the stage (``stages[].facts`` in --format json)."""
    dmarc = facts.dmarc
    return {
        **verdict.as_dict(),
        "address": printable(facts.address),
        "domain": printable(facts.domain),
        "provider": facts.provider or None,
        "exists": facts.exists,
        "mx": [printable(m) for m in facts.mx],
        "spf_records": [printable(r) for r in facts.spf_records],
        "spf": {"result": facts.spf_result, "evaluated_for": list(facts.spf_ips),
                "addresses_from": facts.spf_ip_source or None,
                "provider_include": facts.provider_include,
                "provider_include_found": facts.provider_include_found},
        "dkim": [{"selector": k.selector, "name": k.name, "status": k.status,
                  "detail": k.detail or None} for k in facts.dkim],
        "dmarc": None if dmarc is None else {
            "at": dmarc.at, "record": printable(dmarc.record), "policy": dmarc.policy or None,
            "adkim": dmarc.adkim, "aspf": dmarc.aspf, "problem": dmarc.problem or None},
        "dns_errors": list(facts.dns_errors),
        "questions": facts.questions,
    }
