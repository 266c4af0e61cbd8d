"""Twisted's EHLO parsing and AUTH walk, without sockets (spec/twisted-smtp.md 2.2, 2.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maildoctor.smtp.facts import Reply
from maildoctor.smtp.twisted_caps import (
    auth_mechanisms,
    choose_mechanism,
    offers_starttls,
    parse_capabilities,
    walk_auth,
)

word = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-=",
               min_size=1, max_size=12)
line = st.lists(word, min_size=1, max_size=4).map(" ".join)


@given(st.lists(line, max_size=12))
def test_last_line_with_a_keyword_wins(lines: list[str]) -> None:
    caps = parse_capabilities(lines)
    assert set(caps) == {x.split()[0] for x in lines}
    for keyword, value in caps.items():
        last = [x for x in lines if x.split()[0] == keyword][-1]
        assert value == (last.split(None, 1)[1] if " " in last else None)


@given(st.lists(word, max_size=6))
def test_mechanisms_are_upper_cased_and_order_is_twisteds(mechs: list[str]) -> None:
    offered = auth_mechanisms(parse_capabilities(["mx", "AUTH " + " ".join(mechs)]))
    assert offered == tuple(m.upper() for m in mechs)
    chosen = choose_mechanism(offered)
    preferred = [m for m in ("CRAM-MD5", "LOGIN", "PLAIN") if m in offered]
    assert chosen == (preferred[0] if preferred else None)


@pytest.mark.parametrize(
    ("lines", "starttls", "mechs"),
    [
        (["mx", "STARTTLS", "AUTH LOGIN"], True, ("LOGIN",)),
        (["mx", "starttls", "auth LOGIN"], False, ()),
        (["mx", "AUTH=LOGIN PLAIN"], False, ()),
        (["mx", "AUTH"], False, ()),
        (["mx", "AUTH login cram-md5"], False, ("LOGIN", "CRAM-MD5")),
    ],
)
def test_case_sensitive_keywords(lines: list[str], starttls: bool, mechs: tuple[str, ...]) -> None:
    caps = parse_capabilities(lines)
    assert (offers_starttls(caps), auth_mechanisms(caps)) == (starttls, mechs)


@pytest.mark.parametrize(
    ("mechanism", "codes", "dropped", "result"),
    [
        ("PLAIN", [235], False, "ok"),
        ("PLAIN", [535, 235], False, "ok"),  # the second, authzid-less try works
        ("PLAIN", [535, 535], False, "declined"),
        ("PLAIN", [535], True, "dropped"),
        ("LOGIN", [334, 334, 235], False, "ok"),
        ("LOGIN", [334, 334, 535], False, "declined"),
        ("LOGIN", [504], False, "server-error"),
        ("LOGIN", [334, 334], False, "unknown"),
        ("CRAM-MD5", [334, 535], False, "declined"),
        ("CRAM-MD5", [334], True, "dropped"),
    ],
)
def test_walk_auth(mechanism: str, codes: list[int], dropped: bool, result: str) -> None:
    replies = tuple(Reply(c, "VXNlcm5hbWU6" if c == 334 else "x") for c in codes)
    assert walk_auth(mechanism, replies, dropped).result == result


def test_malformed_challenge_fails_whatever_follows() -> None:
    replies = (Reply(334, "abc"), Reply(501, "5.7.0 Auth aborted"))
    verdict = walk_auth("LOGIN", replies, dropped=False)
    assert verdict.result == "malformed"
