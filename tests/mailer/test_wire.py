"""The pure parts: reply parsing, DATA encoding, backoff. No sockets."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maildoctor import errors
from maildoctor.mailer import RetryPolicy
from maildoctor.mailer.mailer import message_id_of
from maildoctor.mailer.replies import MalformedReply, Reply, ReplyParser, address_arg, encode_data


def test_parser_splits_replies_in_order() -> None:
    parser = ReplyParser()
    assert parser.feed(b"250 2.1.0 Ok\r\n250-first\r\n250 second\r\n354 go") == [
        Reply(250, "2.1.0 Ok"), Reply(250, "first\nsecond")]
    assert parser.feed(b" ahead\r\n") == [Reply(354, "go ahead")]


@given(st.lists(st.tuples(st.integers(200, 599), st.lists(st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    min_size=1, max_size=3)), min_size=1, max_size=6), st.data())
def test_parser_is_independent_of_chunking(replies: list[tuple[int, list[str]]],
                                           data: st.DataObject) -> None:
    wire = b"".join(
        b"".join(f"{code}{'-' if i < len(lines) - 1 else ' '}{line}\r\n".encode()
                 for i, line in enumerate(lines)) for code, lines in replies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    parser, got, start = ReplyParser(), [], 0
    for cut in [*cuts, len(wire)]:
        got += parser.feed(wire[start:cut])
        start = cut
    assert got == [Reply(code, "\n".join(lines)) for code, lines in replies]


@pytest.mark.parametrize("junk", [b"+OK Dovecot\r\n", b"\x16\x03\x01\x00\r\n",
                                  b"250-a\r\n251 b\r\n"])
def test_parser_rejects_non_smtp(junk: bytes) -> None:
    with pytest.raises(MalformedReply):
        ReplyParser().feed(junk)


def slow_encoding(message: bytes) -> bytes:
    """The rule written plainly: every line end to CRLF, dot-stuff, terminate."""
    crlf = re.sub(rb"\r\n|\r|\n", b"\r\n", message)
    stuffed = re.sub(rb"^\.", b"..", crlf, flags=re.MULTILINE)
    return stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n"


@given(st.binary(max_size=200))
def test_encode_data_fast_path_matches_the_full_rule(message: bytes) -> None:
    assert encode_data(message) == slow_encoding(message)


@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"..", b"a"]), max_size=30))
def test_encode_data_on_line_end_and_dot_soup(parts: list[bytes]) -> None:
    """Random binary rarely hits the cases that matter; these pieces always do."""
    assert encode_data(b"".join(parts)) == slow_encoding(b"".join(parts))


@pytest.mark.parametrize("message", [b"a\r\nb\r\n", b".a\r\n", b"a\r\n.b", b"a\rb",
                                     b"a\nb", b"\r\n\r\n.", b"a\n\r\n.b", b".\n.\n",
                                     b"a\n.\n..\n"])
def test_encode_data_examples(message: bytes) -> None:
    assert encode_data(message) == slow_encoding(message)


def test_encode_data_normalises_and_stuffs() -> None:
    assert encode_data(b"a\n.b\r\n..c\rd") == b"a\r\n..b\r\n...c\r\nd\r\n.\r\n"
    assert encode_data(b"") == b"\r\n.\r\n"


def test_address_arg_refuses_injection() -> None:
    assert address_arg("a@b") == b"<a@b>"
    with pytest.raises(ValueError):
        address_arg("a@b>\r\nRCPT TO:<evil@x")


def test_message_id_only_from_headers() -> None:
    assert message_id_of(b"Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody") == "<a@b>"
    assert message_id_of(b"Subject: x\r\n\r\nMessage-ID: <a@b>\r\n") is None


def test_backoff_grows_and_is_bounded() -> None:
    policy = RetryPolicy(attempts=10, base_delay=1.0, factor=2.0, max_delay=5.0, jitter=0.5)
    rng = random.Random(1)
    delays = [policy.delay(n, rng) for n in range(1, 9)]
    assert 1.0 <= delays[0] <= 1.5 and 2.0 <= delays[1] <= 3.0
    assert delays[3:] == [5.0] * 5  # capped, jitter included


@pytest.mark.parametrize(("failure", "retry"), [
    (errors.SenderRejected("x", code=451), True),
    (errors.RecipientRejected("x", code=450), True),
    (errors.GreetingRejected("x", code=421), True),
    (errors.SenderRejected("x", code=550), False),
    (errors.DataRejected("x", code=554), False),
    (errors.AuthFailure("x", code=535), False),
    (errors.ConnectionLost("x"), True),
    (errors.ServerHung("x"), False),
    (errors.TLSFailure("x"), False),
])
def test_what_is_retried(failure: errors.SMTPFailure, retry: bool) -> None:
    assert RetryPolicy(attempts=2).should_retry(failure, 1) is retry
    assert RetryPolicy(attempts=2).should_retry(failure, 2) is False
