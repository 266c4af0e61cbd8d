"""From the sender domain's DNS facts to a verdict: ``ok``, ``at-risk`` (the spam folder is
likely) or ``will-fail`` (receivers such as Gmail will reject), with the findings behind it
and the one change that fixes the worst, as a record to paste. Pure: no DNS here.

The rules, worst first (facts in spec/after-the-250.md):

- the domain does not exist: every receiver that checks the sender refuses (will-fail);
- DMARC ``p=reject`` and neither SPF nor DKIM can align with the From domain (will-fail);
- SPF ``-all`` that excludes the sending server and no DKIM to rescue it (will-fail);
- neither SPF nor DKIM at a provider whose DKIM records are known missing: unauthenticated
  mail, Gmail's ``550-5.7.26`` (will-fail);
- anything that weakens authentication (no SPF, two SPF records, the lookup limit, a
  ``~all``/``?all`` that does not cover the server, no DMARC, DMARC quarantine unaligned,
  DNS failures) is at-risk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maildoctor.senderdns.facts import SenderFacts
from maildoctor.senderdns.records import (
    merged_spf,
    spf_all_qualifier,
    spf_with_term,
    zone_line,
)

LEVELS = ("ok", "info", "at-risk", "will-fail")


@dataclass(frozen=True)
class Finding:
    level: str  # info | at-risk | will-fail
    code: str  # kebab-case, stable
    message: str
    fix: str = ""
    record: str = ""  # a zone-file line to paste, when the fix is a DNS record

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "code": self.code, "message": self.message,
                "fix": self.fix or None, "record": self.record or None}


@dataclass(frozen=True)
class Verdict:
    level: str  # ok | at-risk | will-fail
    findings: tuple[Finding, ...]

    @property
    def worst(self) -> Finding | None:
        ranked = sorted(self.findings, key=lambda f: -LEVELS.index(f.level))
        return ranked[0] if ranked and ranked[0].level != "info" else None

    @property
    def summary(self) -> str:
        worst = self.worst
        return worst.message if worst else "SPF, DKIM and DMARC as receivers want them"

    def as_dict(self) -> dict[str, Any]:
        worst = self.worst
        return {"verdict": self.level, "findings": [f.as_dict() for f in self.findings],
                "fix": worst.fix if worst else None,
                "record": worst.record if worst else None}


def _authorizing_term(facts: SenderFacts) -> str:
    if facts.provider_include:
        return f"include:{facts.provider_include}"
    terms = [("ip6:" if ":" in ip else "ip4:") + ip for ip in facts.spf_ips]
    return " ".join(terms) if terms else "mx"


def judge(facts: SenderFacts) -> Verdict:
    out: list[Finding] = []
    d = facts.domain
    if facts.exists is False:
        out.append(Finding("will-fail", "sender-domain-missing",
                           f"the sender domain {d} does not exist: receivers refuse mail "
                           f"from {facts.address}",
                           "set notif_from to an address at a domain you own and publish"))
        return Verdict("will-fail", tuple(out))
    if facts.dns_errors:
        more = len(facts.dns_errors) - 1
        also = f" (and {more} more question{'s' if more > 1 else ''})" if more else ""
        out.append(Finding("at-risk", "dns-failure",
                           f"{facts.dns_errors[0]}{also}; receivers asking the same get no "
                           "answer and defer or refuse the mail; what those answers would "
                           "have said is not judged", "fix the domain's DNS servers (or "
                           "--resolver)"))
    if facts.exists and not facts.mx and not facts.has_address and not facts.dns_errors:
        out.append(Finding("at-risk", "no-bounce-route",
                           f"{d} has no MX and no address: bounces cannot come back, and "
                           "receivers that check the sender domain refuse it",
                           f"publish an MX record for {d} naming a host that accepts its "
                           "mail (bounces come back there)"))
    elif facts.null_mx:
        out.append(Finding("at-risk", "null-mx",
                           f"{d} publishes a null MX (it receives no mail): some receivers "
                           "refuse senders from such a domain"))
    spf_ok = _spf(facts, out)
    dkim_present = any(k.status == "published" for k in facts.dkim)
    dkim_known_absent = bool(facts.dkim) and not dkim_present
    if dkim_known_absent:
        names = ", ".join(k.name for k in facts.dkim)
        out.append(Finding("at-risk", "dkim-missing",
                           f"{facts.provider_title} documents DKIM records at {names}; none "
                           "is published, so the mail is not signed for your domain",
                           f"publish the DKIM records {facts.provider_title} shows you "
                           f"({facts.dkim_note or 'in its console'})"))
    elif not facts.dkim:
        note = facts.dkim_note or ("which DKIM selector the server signs with cannot be known "
                                   "from DNS; `maildoctor send --to ADDR --imap HOST` (the "
                                   "round trip) shows the signature a receiver gets")
        out.append(Finding("info", "dkim-unknown", note))
    spf_aligned = spf_ok and not facts.envelope_rewritten
    if facts.envelope_rewritten and spf_ok:
        out.append(Finding("info", "spf-not-aligned",
                           f"{facts.provider_title} puts its own bounce domain in MAIL FROM, "
                           f"so SPF passes for it, not for {d}; DMARC alignment needs DKIM "
                           "(or a custom MAIL FROM / return-path domain)"))
    _dmarc(facts, out, spf_aligned, dkim_present)
    no_spf = not facts.spf_records or len(facts.spf_records) > 1
    if no_spf and dkim_known_absent and not _has(out, "will-fail"):
        out.append(Finding("will-fail", "unauthenticated",
                           "neither SPF nor DKIM will pass: Gmail and Yahoo refuse "
                           "unauthenticated mail (550-5.7.26)",
                           "publish the SPF record", zone_line(d, f"v=spf1 "
                                                             f"{_authorizing_term(facts)} ~all")))
    if _hard_fail(facts) and not dkim_present and not _has(out, "will-fail"):
        out.append(Finding("will-fail", "spf-fail",
                           f"SPF for {d} ends in -all and does not list the sending server: "
                           "receivers that honour -all refuse the mail",
                           "add the server to the SPF record",
                           zone_line(d, spf_with_term(facts.spf_records[0],
                                                      _authorizing_term(facts)))))
    level = max((f.level for f in out), key=LEVELS.index, default="ok")
    return Verdict("ok" if level == "info" else level, tuple(out))


def _hard_fail(facts: SenderFacts) -> bool:
    """SPF will fail (not softfail) for the sending server: pyspf said so, or the provider's
    include is missing from a record ending in -all (and the provider keeps the envelope)."""
    if facts.spf_result == "fail":
        return True
    record = facts.spf_record
    return (record is not None and facts.provider_include_found is False
            and not facts.envelope_rewritten and spf_all_qualifier(record) == "-")


def _has(out: list[Finding], level: str) -> bool:
    return any(f.level == level for f in out)


def _spf(facts: SenderFacts, out: list[Finding]) -> bool:
    """Adds the SPF findings; True when SPF will pass for the sending server."""
    d = facts.domain
    term = _authorizing_term(facts)
    if not facts.spf_records:
        if facts.spf_unknown:
            return False
        out.append(Finding("at-risk", "spf-missing",
                           f"{d} publishes no SPF record: receivers cannot tell the server "
                           "may send for it", "publish an SPF record",
                           zone_line(d, f"v=spf1 {term} ~all")))
        return False
    if len(facts.spf_records) > 1:
        out.append(Finding("at-risk", "spf-multiple",
                           f"{d} publishes {len(facts.spf_records)} SPF records: that is a "
                           "permanent error, receivers treat it as no SPF",
                           "replace them with this one record",
                           zone_line(d, merged_spf(list(facts.spf_records)))))
        return False
    record = facts.spf_records[0]
    if facts.spf_non_ascii:
        out.append(Finding("at-risk", "spf-invalid",
                           f"the SPF record of {d} contains non-ASCII bytes: a permanent "
                           "error", "rewrite it in plain ASCII"))
        return False
    if spf_all_qualifier(record) == "+":
        out.append(Finding("at-risk", "spf-pass-all",
                           f"the SPF record of {d} ends in +all: anyone may send as {d}, "
                           "and receivers distrust it", "end it with ~all or -all",
                           zone_line(d, record.replace("+all", "~all").replace(" all", " ~all"))))
    if facts.provider_include is not None:
        if facts.provider_include_found is False:
            out.append(Finding(
                "at-risk", "spf-provider-missing",
                f"the SPF record of {d} does not include {facts.provider_title}'s "
                f"include:{facts.provider_include}",
                f"add include:{facts.provider_include}", zone_line(d, spf_with_term(
                    record, f"include:{facts.provider_include}"))))
            return False
        return facts.provider_include_found is True
    result = facts.spf_result
    shown = ", ".join(facts.spf_ips)
    why = next((e for _ip, r, e in facts.spf_results if r == result), "")
    if result == "unknown":
        out.append(Finding("info", "spf-unverifiable",
                           "the address the server's mail leaves from is not known here "
                           "(smtp_host is local or private), so SPF was not evaluated; give "
                           "it with --sending-ip to check"))
        return False
    if result == "pass":
        return True
    if result == "permerror":
        out.append(Finding("at-risk", "spf-permerror",
                           f"SPF for {d} is a permanent error: {why}",
                           "flatten the record (fewer include:, a:, mx: terms; at most 10 "
                           "lookups and 2 that find nothing)"))
    elif result == "temperror":
        out.append(Finding("at-risk", "spf-temperror", f"SPF for {d} could not be evaluated: "
                           f"{why}", "fix the DNS of the included domains"))
    elif result in ("softfail", "neutral", "none"):
        out.append(Finding("at-risk", "spf-not-authorized",
                           f"SPF for {d} does not list the sending server ({shown}: "
                           f"{result}): the spam folder is likely",
                           "add the server to the SPF record",
                           zone_line(d, spf_with_term(record, term))))
    # "fail" is judged with DKIM and DMARC in judge()
    return False


def _dmarc(facts: SenderFacts, out: list[Finding], spf_aligned: bool,
           dkim_present: bool) -> None:
    d = facts.domain
    dmarc = facts.dmarc
    if dmarc is None:
        if facts.dmarc_unknown:
            return
        out.append(Finding("at-risk", "dmarc-missing",
                           f"{d} publishes no DMARC record: Gmail and Yahoo require one from "
                           "bulk senders and score mail without it lower",
                           "publish a DMARC record", zone_line(f"_dmarc.{d}", "v=DMARC1; p=none")))
        return
    if dmarc.problem:
        out.append(Finding("at-risk", "dmarc-invalid",
                           f"the DMARC record at {dmarc.at} is unusable: {dmarc.problem}",
                           "replace it", zone_line(dmarc.at, "v=DMARC1; p=none")))
        return
    policy = dmarc.policy if dmarc.at == f"_dmarc.{d}" else dmarc.subdomain_policy
    if spf_aligned or dkim_present or policy == "none":
        return
    unknown_dkim = not facts.dkim
    rescue = (" unless the server signs with DKIM for d=" + d + " (`send --imap` shows it)"
              if unknown_dkim else "")
    fix, record = _alignment_fix(facts)
    spf_unknown = (facts.spf_result == "unknown" and facts.provider_include is None
                   and facts.spf_record is not None and not facts.spf_non_ascii)
    if spf_unknown:
        out.append(Finding("at-risk", "dmarc-unverified",
                           f"{d} has DMARC p={policy}; whether SPF passes for the server's "
                           "public address could not be checked here (give it with "
                           "--sending-ip): if it does not, and the server does not sign "
                           f"with DKIM for {d}, receivers {_verb(policy)} the mail",
                           "run the probe with --sending-ip ADDRESS"))
        return
    if policy == "reject":
        out.append(Finding("will-fail", "dmarc-reject-unaligned",
                           f"{d} has DMARC p=reject, and neither SPF nor DKIM will pass "
                           f"aligned with it: receivers reject the mail{rescue}", fix, record))
    else:
        out.append(Finding("at-risk", "dmarc-quarantine-unaligned",
                           f"{d} has DMARC p=quarantine, and neither SPF nor DKIM will pass "
                           f"aligned with it: the mail goes to spam{rescue}", fix, record))


def _alignment_fix(facts: SenderFacts) -> tuple[str, str]:
    d = facts.domain
    if facts.envelope_rewritten or (facts.dkim and facts.provider_title):
        return (f"publish the DKIM records {facts.provider_title} shows you "
                f"({facts.dkim_note or 'in its console'})", "")
    if facts.spf_record is not None:
        return ("add the sending server to the SPF record",
                zone_line(d, spf_with_term(facts.spf_record, _authorizing_term(facts))))
    return "publish an SPF record", zone_line(d, f"v=spf1 {_authorizing_term(facts)} ~all")


def _verb(policy: str) -> str:
    return "reject" if policy == "reject" else "spam-folder"
