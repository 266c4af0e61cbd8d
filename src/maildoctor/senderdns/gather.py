"""Ask the DNS what a receiver will ask about the sender's domain (the I/O half).

The questions, in order: MX (does the domain exist, can it take bounces), A/AAAA when there
is no MX, TXT (SPF), SPF evaluated by pyspf for the sending addresses when they are known,
the provider's include, DMARC (``_dmarc.<domain>``, else the organizational domain's), and
the DKIM selectors the provider documents. A question that fails is recorded in words and
the checks that needed it say "could not tell"; a server that does not answer at all stops
the gathering at once, so a dead resolver costs one timeout, not one per question.
"""

from __future__ import annotations

from dataclasses import replace

from maildoctor.providers import Provider
from maildoctor.resolver import DnsFailure, Failure, Resolver, printable, txt_text
from maildoctor.senderdns.facts import DkimKey, SenderFacts
from maildoctor.senderdns.records import is_spf, organizational_domain, parse_dmarc, spf_includes

MAX_INCLUDE_WALK = 10  # the SPF lookup limit also bounds our walk for the provider include


class _Stop(Exception):
    """The resolver did not answer: ask nothing more."""


class _Asker:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.errors: list[str] = []

    def ask(self, name: str, rdtype: str) -> tuple[list[object], bool] | None:
        """(records, nxdomain), or None when the question failed (recorded)."""
        try:
            answer = self.resolver.query(name, rdtype)
        except DnsFailure as exc:
            self.errors.append(printable(str(exc)))
            if exc.kind in (Failure.TIMEOUT, Failure.NO_RESOLVER):
                raise _Stop from exc
            return None
        return list(answer.records), answer.nxdomain

    def txt(self, name: str) -> tuple[list[tuple[str, bool]], bool] | None:
        got = self.ask(name, "TXT")
        if got is None:
            return None
        records, nxdomain = got
        return [txt_text(r.strings) for r in records], nxdomain  # type: ignore[attr-defined]


def gather(address: str, *, resolver: Resolver, provider: Provider | None = None,
           sending_ips: tuple[str, ...] = (), ip_source: str = "",
           helo: str = "localhost") -> SenderFacts:
    domain = address.rpartition("@")[2].rstrip(".").lower()
    dns = provider.sender_dns if provider is not None else None
    facts = SenderFacts(address=address, domain=domain,
                        provider=provider.name if provider else "",
                        provider_title=provider.title if provider else "",
                        provider_include=dns.spf_include if dns else None,
                        envelope_rewritten=dns.envelope_rewritten if dns else False,
                        dkim_note=dns.dkim_note if dns else "",
                        spf_ip_source=ip_source, spf_ips=sending_ips)
    asker = _Asker(resolver)
    try:
        facts = _gather(facts, asker, dns.dkim_selectors if dns else (), sending_ips, helo)
    except _Stop:  # nothing more was asked: what was not answered is not known
        facts = replace(facts, spf_unknown=not facts.spf_records,
                        dmarc_unknown=facts.dmarc is None)
    return replace(facts, dns_errors=tuple(asker.errors), questions=resolver.questions)


def _gather(facts: SenderFacts, asker: _Asker, selectors: tuple[str, ...],
            sending_ips: tuple[str, ...], helo: str) -> SenderFacts:
    domain = facts.domain
    mx = asker.ask(domain, "MX")
    if mx is not None:
        records, nxdomain = mx
        if nxdomain:
            return replace(facts, exists=False)
        hosts = tuple(str(r.exchange).rstrip(".") for r in records)  # type: ignore[attr-defined]
        facts = replace(facts, exists=True, mx=hosts,
                        null_mx=hosts == ("",) or hosts == (".",))
    if not facts.mx:
        for rdtype in ("A", "AAAA"):
            got = asker.ask(domain, rdtype)
            if got is not None and got[1] and facts.exists is None:
                return replace(facts, exists=False)
            if got is not None and got[0]:
                facts = replace(facts, has_address=True, exists=True)
    txt = asker.txt(domain)
    if txt is None:
        facts = replace(facts, spf_unknown=True)
    else:
        values, nxdomain = txt
        if nxdomain:
            return replace(facts, exists=False)
        spf = [(v, ascii_) for v, ascii_ in values if is_spf(v)]
        facts = replace(facts, exists=True if facts.exists is None else facts.exists,
                        spf_records=tuple(v for v, _ in spf),
                        spf_non_ascii=any(not a for _, a in spf),
                        txt_non_spf=len(values) - len(spf))
    if facts.spf_record is not None and not facts.spf_non_ascii and sending_ips:
        from maildoctor.senderdns.spf import evaluate

        results = []
        for ip in sending_ips:
            r = evaluate(ip, facts.address, helo, asker.resolver)
            results.append((r.ip, r.result, r.explanation))
        facts = replace(facts, spf_results=tuple(results))
    if facts.spf_record is not None and facts.provider_include:
        facts = replace(facts, provider_include_found=_has_include(
            facts.spf_record, facts.provider_include, asker))
    facts = _dmarc(facts, asker)
    keys = []
    for selector in selectors:
        keys.append(_dkim_key(selector, domain, asker))
    return replace(facts, dkim=tuple(keys))


def _has_include(record: str, target: str, asker: _Asker) -> bool | None:
    """Whether ``include:target`` is reached from ``record`` (through nested includes)."""
    target = target.rstrip(".").lower()
    queue, seen = list(spf_includes(record)), set[str]()
    unsure = False
    while queue and len(seen) < MAX_INCLUDE_WALK:
        name = queue.pop(0).rstrip(".").lower()
        if name == target:
            return True
        if name in seen or "%" in name:  # macros: only pyspf can expand them
            continue
        seen.add(name)
        got = asker.txt(name)
        if got is None:
            unsure = True
            continue
        for value, _ascii in got[0]:
            if is_spf(value):
                queue.extend(spf_includes(value))
    return None if unsure else False


def _dmarc(facts: SenderFacts, asker: _Asker) -> SenderFacts:
    """``_dmarc.<domain>``, else the organizational domain's (computed only then: loading the
    Public Suffix List costs a few hundred milliseconds)."""
    looked: list[str] = []
    name: str | None = f"_dmarc.{facts.domain}"
    while name is not None:
        looked.append(name)
        got = asker.txt(name)
        if got is None:
            return replace(facts, dmarc_looked_at=tuple(looked), dmarc_unknown=True)
        found = [v for v, _a in got[0] if v.strip().lower().startswith("v=dmarc1")]
        if found:
            return replace(facts, dmarc=parse_dmarc(found[0], name),
                           dmarc_looked_at=tuple(looked),
                           extra={**facts.extra, "dmarc_records": len(found)})
        org = organizational_domain(facts.domain) if len(looked) == 1 else facts.domain
        name = f"_dmarc.{org}" if org != facts.domain else None
    return replace(facts, dmarc_looked_at=tuple(looked))


def _dkim_key(selector: str, domain: str, asker: _Asker) -> DkimKey:
    name = f"{selector}._domainkey.{domain}"
    got = asker.txt(name)
    if got is None:
        return DkimKey(selector, name, "unknown", "the question failed")
    values = [v for v, _a in got[0]]
    if values:
        if any("p=" in v.replace(" ", "") for v in values):
            return DkimKey(selector, name, "published", printable(values[0], 80))
        return DkimKey(selector, name, "invalid", "a TXT record without a p= key")
    cname = asker.ask(name, "CNAME")
    if cname is not None and cname[0]:
        target = str(cname[0][0].target).rstrip(".")  # type: ignore[attr-defined]
        return DkimKey(selector, name, "published", f"CNAME to {printable(target)}")
    return DkimKey(selector, name, "missing")
