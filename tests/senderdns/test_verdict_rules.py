"""The verdict rules row by row, on facts built by hand (no DNS): what each combination of
SPF, DKIM, DMARC and provider behaviour means for a receiver."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maildoctor.resolver import printable, txt_text
from maildoctor.senderdns import DkimKey, SenderFacts, judge
from maildoctor.senderdns.records import parse_dmarc

D = "example.net"
BASE = SenderFacts(address=f"noreply@{D}", domain=D, exists=True, mx=(f"mx.{D}",),
                   spf_records=("v=spf1 ip4:192.0.2.0/24 -all",), spf_ips=("192.0.2.25",),
                   spf_ip_source="--sending-ip",
                   spf_results=(("192.0.2.25", "pass", ""),),
                   dmarc=parse_dmarc("v=DMARC1; p=reject", f"_dmarc.{D}"),
                   dmarc_looked_at=(f"_dmarc.{D}",))
SES = dict(provider="amazon-ses", provider_title="Amazon SES", provider_include="amazonses.com",
           envelope_rewritten=True, spf_ips=(), spf_results=(),
           spf_records=("v=spf1 include:amazonses.com ~all",), provider_include_found=True)


def _codes(facts: SenderFacts) -> tuple[str, list[str]]:
    verdict = judge(facts)
    return verdict.level, [f.code for f in verdict.findings if f.level != "info"]


ROWS = [
    ("all aligned", BASE, "ok", []),
    ("spf softfail, dmarc none", replace(
        BASE, spf_results=(("192.0.2.25", "softfail", ""),),
        dmarc=parse_dmarc("v=DMARC1; p=none", f"_dmarc.{D}")), "at-risk",
     ["spf-not-authorized"]),
    ("spf softfail, dmarc quarantine", replace(
        BASE, spf_results=(("192.0.2.25", "softfail", ""),),
        dmarc=parse_dmarc("v=DMARC1; p=quarantine", f"_dmarc.{D}")), "at-risk",
     ["spf-not-authorized", "dmarc-quarantine-unaligned"]),
    ("spf hard fail, no dmarc", replace(
        BASE, spf_results=(("192.0.2.25", "fail", ""),), dmarc=None), "will-fail",
     ["dmarc-missing", "spf-fail"]),
    ("ses rewrites the envelope, dkim published", replace(
        BASE, **SES, dkim=(DkimKey("tok", f"tok._domainkey.{D}", "published"),)), "ok", []),
    ("ses rewrites the envelope, dkim missing, dmarc reject", replace(
        BASE, **SES, dkim=(DkimKey("tok", f"tok._domainkey.{D}", "missing"),)), "will-fail",
     ["dkim-missing", "dmarc-reject-unaligned"]),
    ("+all", replace(BASE, spf_records=("v=spf1 +all",)), "at-risk", ["spf-pass-all"]),
    ("null mx", replace(BASE, mx=("",), null_mx=True), "at-risk", ["null-mx"]),
    ("unknown sending address under reject", replace(
        BASE, spf_ips=(), spf_results=(), spf_ip_source=""), "at-risk", ["dmarc-unverified"]),
    ("organizational dmarc with sp=none", replace(
        BASE, spf_results=(("192.0.2.25", "softfail", ""),),
        dmarc=parse_dmarc("v=DMARC1; p=reject; sp=none", "_dmarc.parent.test")), "at-risk",
     ["spf-not-authorized"]),
]


@pytest.mark.parametrize(("facts", "level", "codes"), [r[1:] for r in ROWS],
                         ids=[r[0] for r in ROWS])
def test_verdict_rows(facts: SenderFacts, level: str, codes: list[str]) -> None:
    assert _codes(facts) == (level, codes)


def test_the_fix_of_a_will_fail_is_the_worst_finding() -> None:
    verdict = judge(replace(BASE, exists=False))
    assert verdict.level == "will-fail" and verdict.worst is not None
    assert verdict.worst.code == "sender-domain-missing"


@given(st.text())
def test_printable_is_always_printable(text: str) -> None:
    assert all(ch.isprintable() for ch in printable(text, 10_000))


@given(st.lists(st.binary(max_size=300), max_size=5))
def test_txt_text_never_raises_and_is_ascii(strings: list[bytes]) -> None:
    value, is_ascii = txt_text(strings)
    assert value.isascii()
    assert is_ascii == all(s.isascii() for s in strings)


@given(st.text())
def test_parse_dmarc_never_raises(record: str) -> None:
    dmarc = parse_dmarc(record, "_dmarc.x.test")
    assert dmarc.policy in ("", "none", "quarantine", "reject")
