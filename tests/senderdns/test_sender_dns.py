"""The sender-domain checks against a real authoritative DNS server (Knot on loopback, the
zone in zones.py), and against servers that answer badly on purpose."""

from __future__ import annotations

import json
from typing import Any

import pytest

from maildoctor.providers import get_provider
from maildoctor.resolver import Resolver, parse_resolver_address
from maildoctor.senderdns import gather, judge
from maildoctor.senderdns.records import merged_spf, parse_dmarc, spf_with_term, zone_line
from tests.senderdns.zones import ORIGIN, SENDING_IP

# (label, provider, verdict, finding codes that must be there, codes that must not)
CASES = [
    ("good", None, "ok", [], ["spf-fail", "dmarc-missing", "spf-missing"]),
    ("nospf", None, "at-risk", ["spf-missing"], []),
    ("nodmarc", None, "at-risk", ["dmarc-missing"], ["spf-missing"]),
    ("twospf", None, "at-risk", ["spf-multiple"], []),
    ("limit", None, "at-risk", ["spf-permerror"], []),
    ("exclude", None, "will-fail", ["dmarc-reject-unaligned"], []),
    ("reject", None, "will-fail", ["dmarc-reject-unaligned", "spf-not-authorized"], []),
    ("gone", None, "will-fail", ["sender-domain-missing"], []),
    ("viagoogle", "google-workspace-relay", "ok", [], ["dkim-missing", "spf-provider-missing"]),
    ("nogoogle", "google-workspace-relay", "will-fail",
     ["spf-provider-missing", "dkim-missing", "spf-fail"], []),
    ("split", None, "ok", [], ["spf-missing", "dmarc-missing", "spf-invalid"]),
    ("nonascii", None, "at-risk", ["spf-invalid"], []),
    ("nomx", None, "at-risk", ["no-bounce-route"], []),
    ("void", None, "at-risk", ["spf-permerror"], []),
    ("nested", "google-workspace-relay", "ok", [], ["spf-provider-missing", "dkim-missing"]),
    ("viasendgrid", "sendgrid", "ok", ["spf-not-aligned"], ["dkim-missing"]),
]


def _judge(knot: Any, label: str, provider: str | None = None) -> Any:
    resolver = Resolver(parse_resolver_address(knot.resolver), timeout=3)
    prov = get_provider(provider) if provider else None
    facts = gather(f"noreply@{label}.{ORIGIN}", resolver=resolver, provider=prov,
                   sending_ips=() if prov else (SENDING_IP,), ip_source="--sending-ip")
    return facts, judge(facts)


@pytest.mark.parametrize(("label", "provider", "level", "present", "absent"), CASES,
                         ids=[c[0] for c in CASES])
def test_each_zone_gets_its_verdict(knot: Any, label: str, provider: str | None, level: str,
                                    present: list[str], absent: list[str]) -> None:
    _facts, verdict = _judge(knot, label, provider)
    codes = [f.code for f in verdict.findings]
    assert verdict.level == level, verdict.findings
    for code in present:
        assert code in codes, verdict.findings
    for code in absent:
        assert code not in codes, verdict.findings


def test_the_fix_is_a_record_to_paste_that_authorizes_the_server(knot: Any) -> None:
    _facts, verdict = _judge(knot, "exclude")
    worst = verdict.worst
    assert worst is not None and worst.code == "dmarc-reject-unaligned"
    assert worst.record == (f'exclude.{ORIGIN}. 3600 IN TXT '
                            f'"v=spf1 ip4:198.51.100.0/24 ip4:{SENDING_IP} -all"')


def test_missing_spf_and_dmarc_records_to_publish(knot: Any) -> None:
    _f, nospf = _judge(knot, "nospf")
    assert next(f for f in nospf.findings if f.code == "spf-missing").record == \
        f'nospf.{ORIGIN}. 3600 IN TXT "v=spf1 ip4:{SENDING_IP} ~all"'
    _f, nodmarc = _judge(knot, "nodmarc")
    assert next(f for f in nodmarc.findings if f.code == "dmarc-missing").record == \
        f'_dmarc.nodmarc.{ORIGIN}. 3600 IN TXT "v=DMARC1; p=none"'


def test_a_txt_split_over_strings_is_one_record(knot: Any) -> None:
    facts, _verdict = _judge(knot, "split")
    assert facts.spf_records == ("v=spf1 ip4:192.0.2.0/24 -all",)
    assert facts.spf_result == "pass"
    assert facts.dmarc is not None and facts.dmarc.policy == "none"


def test_non_ascii_bytes_are_escaped_not_guessed(knot: Any) -> None:
    facts, verdict = _judge(knot, "nonascii")
    assert facts.spf_records == ("v=spf1 ip4:192.0.2.0/24 caf\\xc3\\xa9 -all",)
    assert all(ch.isprintable() for f in verdict.findings for ch in f.message)


def test_the_lookup_limit_is_named(knot: Any) -> None:
    _facts, verdict = _judge(knot, "limit")
    finding = next(f for f in verdict.findings if f.code == "spf-permerror")
    assert "lookup" in finding.message.lower()


def test_void_lookups_are_counted(knot: Any) -> None:
    _facts, verdict = _judge(knot, "void")
    finding = next(f for f in verdict.findings if f.code == "spf-permerror")
    assert "void" in finding.message.lower()


def test_provider_selectors_published_as_cnames(knot: Any) -> None:
    facts, _verdict = _judge(knot, "viasendgrid", "sendgrid")
    assert [(k.selector, k.status) for k in facts.dkim] == [("s1", "published"),
                                                            ("s2", "published")]
    assert facts.dkim[0].detail == "CNAME to s1.domainkey.u1.wl1.sendgrid.net"


def test_a_provider_selector_is_found_by_its_documented_name(knot: Any) -> None:
    facts, _verdict = _judge(knot, "viagoogle", "google-workspace-relay")
    assert [(k.selector, k.status) for k in facts.dkim] == [("google", "published")]
    assert facts.provider_include_found is True


@pytest.mark.parametrize(("mode", "words"), [
    ("servfail", "SERVFAIL"),
    ("truncated", "truncated"),
    ("silent", "no answer"),
])
def test_bad_answers_are_clear_findings(bad_dns: Any, mode: str, words: str) -> None:
    server = bad_dns(mode)
    resolver = Resolver(parse_resolver_address(server.resolver), timeout=0.5)
    facts = gather(f"noreply@good.{ORIGIN}", resolver=resolver, sending_ips=(SENDING_IP,))
    verdict = judge(facts)
    assert verdict.level == "at-risk"
    errors = [f for f in verdict.findings if f.code == "dns-failure"]
    assert errors and words in errors[0].message, verdict.findings
    if mode == "silent":  # a dead server costs one timeout, not one per question
        assert len(facts.dns_errors) == 1
    json.dumps(verdict.as_dict())


def test_resolver_addresses_parse_or_say_why() -> None:
    assert parse_resolver_address("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_resolver_address("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_resolver_address("[::1]:5353") == ("::1", 5353)
    assert parse_resolver_address("::1") == ("::1", 53)
    for bad in ("ns.example.org", "127.0.0.1:0", "127.0.0.1:x", "[::1"):
        with pytest.raises(ValueError):
            parse_resolver_address(bad)


def test_record_helpers() -> None:
    assert spf_with_term("v=spf1 mx -all", "ip4:192.0.2.1") == "v=spf1 mx ip4:192.0.2.1 -all"
    assert spf_with_term("v=spf1 redirect=_spf.x.test", "a") == "v=spf1 a redirect=_spf.x.test"
    assert merged_spf(["v=spf1 a -all", "v=spf1 a mx ~all"]) == "v=spf1 a mx -all"
    long = "v=spf1 " + "ip4:192.0.2.1 " * 30 + "-all"
    line = zone_line("x.test", long)
    assert line.count('" "') == 1 and line.startswith("x.test. 3600 IN TXT \"v=spf1")
    dmarc = parse_dmarc("v=DMARC1; p=reject; sp=none; adkim=s", "_dmarc.x.test")
    assert (dmarc.policy, dmarc.subdomain_policy, dmarc.adkim, dmarc.aspf) == \
        ("reject", "none", "s", "r")
    assert parse_dmarc("v=DMARC1; p=maybe", "_dmarc.x.test").problem
