"""The log reader's pieces: prefixes, traceback parsing, redaction, bounded memory."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maildoctor.secrets import MASK, Redactor
from maildoctor.synapse.logs import (
    MAX_CONTINUATION,
    last_exception,
    read_records,
    redact,
    strip_prefix,
)
from maildoctor.synapse.logs_scan import MAX_EXCERPT, classify_exception, scan

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
