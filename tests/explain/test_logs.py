"""The log reader's pieces: prefixes, traceback parsing, redaction, bounded memory."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maildoctor.secrets import MASK, Redactor
from maildoctor.synapse.logs.records import (
    MAX_CONTINUATION,
    last_exception,
    read_records,
    redact,
    strip_prefix,
)
from maildoctor.synapse.logs.scan import MAX_EXCERPT, classify_exception, scan

RECORD = ("2026-11-27 10:00:00,123 - synapse.handlers.send_email - 193 - INFO - POST-1 - "
          "Sending email to x@example.org")


@pytest.mark.parametrize("prefix", [
    "",
    "Nov 27 10:00:00 matrix matrix-synapse[812]: ",
    "2026-11-27T10:00:00+0000 matrix synapse[1]: ",
    "2026-11-27T10:00:00.123456789Z ",
    "synapse-1  | ",
    "synapse-1  | 2026-11-27T10:00:00.123456789Z ",
])
def test_prefixes_are_stripped(prefix: str) -> None:
    (record,) = read_records([prefix + RECORD])
    assert record.logger == "synapse.handlers.send_email"
    assert record.request == "POST-1"
    assert record.message == "Sending email to x@example.org"
    assert record.timestamp == "2026-11-27 10:00:00,123"


def test_journal_timestamp_used_when_synapse_has_none() -> None:
    line = ("Nov 27 10:00:00 matrix matrix-synapse[812]: synapse.handlers.send_email - 193 - "
            "INFO - - Sending email to x@example.org")
    (record,) = read_records([line])
    assert record.timestamp == "Nov 27 10:00:00" and record.request is None
    assert strip_prefix("plain text")[0] == "plain text"


def test_last_exception_of_chained_traceback() -> None:
    lines = [
        "Traceback (most recent call last):", '  File "a.py", line 1, in f', "    g()",
        "KeyError: 'x'", "", "During handling of the above exception, another exception "
        "occurred:", "", "Traceback (most recent call last):", '  File "b.py", line 2, in h',
        "twisted.mail._except.SMTPDeliveryError: 550 No recipients accepted",
        "a@example.org: 550 5.1.1 User unknown", ">>> RCPT TO:<a@example.org>",
        "<<< 550 5.1.1 User unknown", "",
    ]
    exc = last_exception(lines)
    assert exc is not None
    assert exc.name == "SMTPDeliveryError" and exc.code == 550
    assert exc.extra[-1] == "<<< 550 5.1.1 User unknown"
    assert "RCPT" not in exc.reply_text and "User unknown" in exc.reply_text
    assert classify_exception(exc) == "recipient-rejected"


def test_twisted_failure_format() -> None:
    lines = ["Traceback (most recent call last):", '  File "x.py", line 1, in f',
             "--- <exception caught here> ---", '  File "y.py", line 2, in g',
             "builtins.TypeError: a bytes-like object is required, not 'NoneType'"]
    exc = last_exception(lines)
    assert exc is not None and exc.qualname == "builtins.TypeError"
    assert classify_exception(exc) == "pass-without-user"
    assert last_exception(["no traceback here"]) is None


@pytest.mark.parametrize(("line", "expected"), [
    (">>> AUTH PLAIN dXNlcgB1c2VyAHBhc3M=", f">>> AUTH PLAIN {MASK}"),
    (">>> AUTH LOGIN dXNlcg==", f">>> AUTH LOGIN {MASK}"),
    (">>> cGFzc3dvcmQ=", f">>> {MASK}"),
    (">>> QUIT", ">>> QUIT"),
    (">>> DATA", ">>> DATA"),
    (">>> MAIL FROM:<a@example.org>", ">>> MAIL FROM:<a@example.org>"),
    ("<<< 334 VXNlcm5hbWU6", "<<< 334 VXNlcm5hbWU6"),
])
def test_redact_trailer_lines(line: str, expected: str) -> None:
    assert redact(line) == expected


@given(st.text(min_size=1, max_size=40), st.text(min_size=0, max_size=20))
def test_redact_never_leaks_base64_of_any_password(password: str, user: str) -> None:
    pw, u = password.encode(), user.encode()
    login = base64.b64encode(pw).decode()
    plain = base64.b64encode(u + b"\0" + u + b"\0" + pw).decode()
    assert login not in redact(f">>> {login}") or login.upper() in {"DATA", "QUIT", "RSET",
                                                                     "NOOP", "HELP", "EXPN",
                                                                     "VRFY", "TURN", "EHLO",
                                                                     "HELO", "MAIL", "RCPT"}
    assert plain not in redact(f">>> AUTH PLAIN {plain}")


def test_redactor_masks_configured_password_in_any_line() -> None:
    redactor = Redactor()
    redactor.add("hunter2-long", ["me@example.org"])
    assert "hunter2-long" not in redact("weird text hunter2-long here", redactor)


def _huge() -> Iterator[str]:
    yield RECORD.replace("Sending email to", "Error sending threepid validation email to")
    yield "Traceback (most recent call last):"
    for i in range(100_000):
        yield f'  File "f{i}.py", line {i}, in deep'
    yield "twisted.mail._except.AUTHRequiredError: 502 Server does not support Client"
    for i in range(20_000):
        yield RECORD.replace("POST-1", f"POST-{i + 2}")


def test_huge_log_streams_with_bounded_records() -> None:
    result = scan(_huge())
    assert result.lines == 1 + 1 + 100_000 + 1 + 20_000
    kinds = {g.first.kind: g for g in result.groups}
    assert kinds["auth-required"].count == 1
    assert len(kinds["auth-required"].first.excerpt) <= MAX_EXCERPT
    assert kinds["hang"].count == 20_000
    assert len(kinds["hang"].recipients) <= 5
    rec = next(iter(read_records(["x"] * (MAX_CONTINUATION * 3))))
    assert len(rec.continuation) == MAX_CONTINUATION


def test_empty_request_field_is_a_record() -> None:
    """Outside a request some setups write an empty request field ("ERROR - - msg")."""
    (rec,) = read_records(["2026-11-27 02:10:00,010 - twisted - 275 - ERROR - - Unhandled Error"])
    assert (rec.logger, rec.level, rec.request, rec.message) == (
        "twisted", "ERROR", None, "Unhandled Error")
    (rec,) = read_records(["2026-11-27 02:10:00,010 - twisted - 275 - ERROR - sentinel - x"])
    assert rec.request is None and rec.message == "x"


def _sending(ts: str, request: str, to: str) -> str:
    return (f"2026-11-27 02:10:{ts} - synapse.handlers.send_email - 193 - INFO - {request} - "
            f"Sending email to {to}")


_CRASH = ["2026-11-27 02:10:05,010 - twisted - 275 - ERROR - - Unhandled Error",
          "Traceback (most recent call last):",
          '  File "/usr/lib/python3/dist-packages/twisted/mail/smtp.py", line 1, in f',
          "TypeError: unsupported operand type(s) for +: 'NoneType' and 'bytes'"]


def test_twisted_crash_attaches_to_the_latest_open_send() -> None:
    result = scan([_sending("00,000", "POST-1", "a@example.org"),
                   _sending("05,000", "POST-2", "b@example.org"), *_CRASH])
    kinds = {g.first.kind: g.first for g in result.groups}
    assert kinds["pass-without-user"].request == "POST-2"
    assert kinds["pass-without-user"].recipient == "b@example.org"
    assert kinds["hang"].request == "POST-1"  # the other send is still open at the end


def test_generic_type_error_is_not_the_smtp_crash() -> None:
    """The same Python text elsewhere (not Twisted's Unhandled Error, or no send open and
    no Twisted mail frames) is not an email failure."""
    other = ["2026-11-27 02:10:05,010 - synapse.http.server - 130 - ERROR - GET-3 - "
             "Failed handle request via 'RoomHandler'",
             "Traceback (most recent call last):", '  File "room.py", line 1, in f',
             "TypeError: unsupported operand type(s) for +: 'NoneType' and 'bytes'"]
    assert scan([_sending("00,000", "POST-1", "a@example.org"), *other,
                 "2026-11-27 02:10:06,000 - synapse.access.http.8008 - 473 - INFO - POST-1 - "
                 "Processed request: 200"]).groups == []
    no_send = [_CRASH[0], _CRASH[1], '  File "/srv/app/handlers.py", line 1, in f', _CRASH[3]]
    assert scan(no_send).groups == []
