"""The bounded reply reader fed arbitrary bytes (an asyncio StreamReader, no socket):
it returns a reply or raises a named maildoctor error, within its limits, whatever comes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildoctor.errors import ConnectionLost, SMTPFailure
from maildoctor.smtp.facts import Reply
from maildoctor.smtp.transcript import Transcript
from maildoctor.smtp.wire import (
    LINE_LIMIT,
    LINES_LIMIT,
    Connection,
    MalformedReply,
    ReplyLimitExceeded,
    SlowReply,
)


def read(data: bytes, *, eof: bool = True, timeout: float = 0.2) -> Reply:
    async def go() -> Reply:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        if eof:
            reader.feed_eof()
        writer: Any = None  # reading never writes
        return await Connection(reader, writer, Transcript()).read_reply("test", timeout)

    return asyncio.run(go())


def test_multiline_reply() -> None:
    reply = read(b"250-mail.test\r\n250-AUTH LOGIN\r\n250 HELP\r\n")
    assert reply == Reply(250, "mail.test\nAUTH LOGIN\nHELP")


def test_bare_lf_is_accepted() -> None:
    assert read(b"220 hi\n").code == 220


@pytest.mark.parametrize(("data", "error", "finding"), [
    (b"2" * (LINE_LIMIT + 10), ReplyLimitExceeded, "line-too-long"),
    (b"250-x\r\n" * (LINES_LIMIT + 5), ReplyLimitExceeded, "too-many-lines"),
    (b"+OK POP3\r\n", MalformedReply, None),
    (b"220-first\r\n", ConnectionLost, None),
])
def test_limits_and_errors(data: bytes, error: type[SMTPFailure], finding: str | None) -> None:
    with pytest.raises(error) as caught:
        read(data, timeout=30)  # bounded by the data: 100,000 lines take a moment
    if finding:
        assert caught.value.finding == finding  # type: ignore[attr-defined]


def test_incomplete_reply_without_eof_is_a_slow_reply() -> None:
    with pytest.raises(SlowReply):
        read(b"220 partial", eof=False, timeout=0.1)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_any_bytes_end_in_a_reply_or_a_named_error(data: bytes) -> None:
    try:
        reply = read(data, timeout=0.05)
    except SMTPFailure:
        return
    assert 0 <= reply.code <= 999
