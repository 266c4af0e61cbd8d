"""What the DNS says about the sender's domain: plain data gathered by
:mod:`maildoctor.senderdns.gather`, judged by :mod:`maildoctor.senderdns.verdict`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from maildoctor.senderdns.records import Dmarc


@dataclass(frozen=True)
class DkimKey:
    selector: str
    name: str  # <selector>._domainkey.<domain>
    status: str  # published | missing | invalid | unknown (the question failed)
    detail: str = ""


@dataclass(frozen=True)
class SenderFacts:
    address: str  # the envelope sender Synapse uses (= the From address)
    domain: str
    provider: str = ""  # provider name, "" when self-hosted / unknown
    provider_title: str = ""
    exists: bool | None = None  # None: could not tell
    mx: tuple[str, ...] = ()
    null_mx: bool = False
    has_address: bool = False  # A/AAAA, the fallback for bounces without MX
    txt_non_spf: int = 0
    spf_records: tuple[str, ...] = ()
    spf_non_ascii: bool = False
    spf_ips: tuple[str, ...] = ()  # the addresses SPF was evaluated for
    spf_ip_source: str = ""  # "--sending-ip" | "smtp_host" | ""
    spf_results: tuple[tuple[str, str, str], ...] = ()  # (ip, result, explanation)
    provider_include: str | None = None  # the include the provider documents
    provider_include_found: bool | None = None
    envelope_rewritten: bool = False
    dkim: tuple[DkimKey, ...] = ()
    dkim_note: str = ""
    dmarc: Dmarc | None = None
    dmarc_looked_at: tuple[str, ...] = ()
    dns_errors: tuple[str, ...] = ()  # questions that got no usable answer, in words
    spf_unknown: bool = False  # the TXT question failed: whether there is SPF is not known
    dmarc_unknown: bool = False  # a DMARC question failed
    questions: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def spf_record(self) -> str | None:
        return self.spf_records[0] if len(self.spf_records) == 1 else None

    @property
    def spf_result(self) -> str:
        """The worst result over the evaluated addresses; "unknown" when none was evaluated."""
        order = ("permerror", "fail", "temperror", "softfail", "neutral", "none", "pass")
        results = [r for _ip, r, _e in self.spf_results]
        for wanted in order:
            if wanted in results:
                return wanted
        return "unknown"
