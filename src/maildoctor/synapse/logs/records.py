"""Reading Synapse's logs: line formats, records, tracebacks, and redaction.

Synapse writes ``%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s -
%(message)s`` (its generated log config), e.g.::

    2026-11-27 10:00:00,123 - synapse.handlers.send_email - 193 - INFO - POST-1 - Sending email to x

Admins hand us that file, or the same lines behind a ``journalctl`` prefix
(``Nov 27 10:00:00 host matrix-synapse[812]: ...``, with or without Synapse's own
timestamp), or ``docker logs`` output (optionally ``-t`` timestamps or a compose
``synapse-1  | `` prefix). Everything after a record line that is not itself a record
(a traceback, the rest of a multi-line exception text, a startup error on stderr) is that
record's continuation.

Twisted's SMTP exceptions end with the last four lines of the SMTP dialogue, which can hold
the password: ``>>> AUTH PLAIN <base64(user\\0user\\0pass)>`` or, after a ``334``, a bare
``>>> <base64(pass)>`` (twisted-smtp.md 2.7). :func:`redact` masks those forms always (a log
alone cannot tell us the password) and, through a :class:`~maildoctor.secrets.Redactor`,
the exact password from ``--config`` in any form. Nothing leaves this module unredacted.

The reader streams: memory is bounded by the longest record we keep (continuations are
capped to their last :data:`MAX_CONTINUATION` lines, which is where the exception is).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from maildoctor.secrets import MASK, Redactor

__all__ = [
    "MAX_CONTINUATION",
    "ExceptionInfo",
    "Record",
    "last_exception",
    "read_records",
    "redact",
    "strip_prefix",
]

#: Continuation lines kept per record: the exception and its trailer are at the end.
MAX_CONTINUATION = 80

_PREFIXES = (
    # docker compose: "synapse-1  | ", "matrix_synapse.1.abc | "
    re.compile(r"^[\w.-]+\s+\|\s?"),
    # journalctl (short): "Nov 27 10:00:00 host matrix-synapse[812]: "
    re.compile(r"^(?P<jts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) \S+ [\w.@/-]+(?:\[\d+\])?: "),
    # journalctl (short-iso / short-precise): "2026-11-27T10:00:00+0000 host synapse[1]: "
    re.compile(r"^(?P<jts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
               r" \S+ [\w.@/-]+(?:\[\d+\])?: "),
    # docker logs -t: "2026-11-27T10:00:00.123456789Z "
    re.compile(r"^(?P<jts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) "),
)

_RECORD = re.compile(
    r"^(?:(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?)\s+-\s+)?"
    r"(?P<logger>[A-Za-z_][\w.]*)\s+-\s+(?P<lineno>\d+)\s+-\s+"
    # An empty request field ("ERROR - - Unhandled Error") is what some setups write
    # outside any request context; Synapse's own filter writes "sentinel" there.
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+-\s+(?:(?P<request>\S+)\s+)?-\s?(?P<msg>.*)$"
)

_SMTP_VERBS = frozenset({"EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT", "RSET", "NOOP",
                         "STARTTLS", "VRFY", "EXPN", "HELP", "TURN", "."})
_AUTH_ARG = re.compile(r"(?P<pre>\bAUTH\s+[A-Za-z0-9_-]+\s+)(?P<arg>\S+)", re.IGNORECASE)
_CLIENT_TOKEN = re.compile(r"^(?P<pre>\s*>>>\s?)(?P<tok>[A-Za-z0-9+/]+={0,2})\s*$")


def redact(line: str, redactor: Redactor | None = None) -> str:
    """Mask credentials Twisted may have left in a log line (see the module docstring).

    - the argument of any ``AUTH <MECH> <initial-response>``;
    - a client (``>>>``) line that is a single base64 token and not an SMTP verb: the
      answer to a ``334`` challenge (LOGIN user and password, CRAM-MD5 response);
    - every form of the configured password, when ``redactor`` knows it.
    """
    line = _AUTH_ARG.sub(lambda m: m.group("pre") + MASK, line)
    token = _CLIENT_TOKEN.match(line)
    if token and token.group("tok").upper() not in _SMTP_VERBS:
        line = token.group("pre") + MASK
    return redactor(line) if redactor else line


def strip_prefix(line: str) -> tuple[str, str | None]:
    """Remove a journalctl / docker prefix; return the rest and the prefix's timestamp."""
    stamp: str | None = None
    for pattern in _PREFIXES:
        match = pattern.match(line)
        if match:
            stamp = match.groupdict().get("jts") or stamp
            line = line[match.end():]
    return line, stamp


@dataclass
class Record:
    """One log record: the header line and what followed it (redacted, capped)."""

    line_no: int
    timestamp: str | None
    logger: str
    level: str
    request: str | None
    message: str
    continuation: deque[str]
    truncated: bool = False  # the cap dropped early lines (the "Traceback" header too)

    @property
    def exception(self) -> ExceptionInfo | None:
        if self.truncated:
            return last_exception(["Traceback (most recent call last):", *self.continuation])
        return last_exception(self.continuation)


@dataclass(frozen=True)
class ExceptionInfo:
    """The last exception of a traceback: ``module.Class: text`` plus its extra lines."""

    qualname: str
    text: str
    extra: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    @property
    def code(self) -> int | None:
        match = re.match(r"(\d{3})(?:[ -]|$)", self.text)
        return int(match.group(1)) if match else None

    @property
    def reply_text(self) -> str:
        """The server's reply without the transcript trailer (multi-line replies joined)."""
        lines = [self.text, *(x for x in self.extra if not x.lstrip().startswith(("<<<", ">>>")))]
        return " ".join(x.strip() for x in lines if x.strip())

    @property
    def first_line(self) -> str:
        return f"{self.qualname}: {self.text}" if self.text else self.qualname


_EXC_HEADER = re.compile(r"^(?P<cls>[A-Za-z_][\w.]*)(?::\s?(?P<text>.*))?$")
_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")


def last_exception(lines: Iterable[str]) -> ExceptionInfo | None:
    """The final exception of the last traceback in ``lines`` (Python or Twisted format).

    A traceback's frames are indented; the first unindented line after them starts the
    exception, and the lines up to the next traceback (or chaining sentence) are the rest
    of its text, e.g. a multi-line SMTP reply and Twisted's ``<<<``/``>>>`` trailer.
    """
    found: ExceptionInfo | None = None
    head: tuple[str, str] = ("", "")
    extra: list[str] = []
    state = "idle"
    for raw in lines:
        line = raw.rstrip("\n")
        if line.startswith("Traceback (most recent call last)"):
            state = "frames"
        elif state == "frames":
            if not line.strip() or line[0] in " \t" or line.startswith("---"):
                continue
            match = _EXC_HEADER.match(line)
            if match is not None:
                head, extra, state = (match.group("cls"), match.group("text") or ""), [], "text"
                found = ExceptionInfo(head[0], head[1], ())
        elif state == "text":
            if line.startswith(_CHAIN):
                state = "idle"
                continue
            extra.append(line)
            kept = list(extra)
            while kept and not kept[-1].strip():
                kept.pop()
            found = ExceptionInfo(head[0], head[1], tuple(kept))
    return found


def read_records(
    lines: Iterable[str],
    redactor: Redactor | None = None,
    on_raw: Callable[[int, str, str | None], None] | None = None,
) -> Iterator[Record]:
    """Group raw log lines into :class:`Record` s, streaming, redacting every line.

    Lines before the first record line (e.g. a startup error printed to stderr) form a
    record with an empty logger. ``on_raw(line_no, text, stamp)`` sees every line that is
    not a record header, uncapped, so a startup error is found wherever it sits.
    """
    current: Record | None = None
    for number, raw in enumerate(lines, start=1):
        text, stamp = strip_prefix(raw.rstrip("\r\n"))
        text = redact(text, redactor)
        match = _RECORD.match(text)
        if match is None:
            if on_raw is not None:
                on_raw(number, text, stamp)
            if current is None:
                current = Record(number, stamp, "", "", None, "", deque(maxlen=MAX_CONTINUATION))
            current.truncated |= len(current.continuation) == MAX_CONTINUATION
            current.continuation.append(text)
            continue
        if current is not None:
            yield current
        request = match.group("request")
        current = Record(
            line_no=number,
            timestamp=match.group("ts") or stamp,
            logger=match.group("logger"),
            level=match.group("level"),
            request=None if request in (None, "-", "None", "sentinel") else request,
            message=match.group("msg"),
            continuation=deque(maxlen=MAX_CONTINUATION),
        )
    if current is not None:
        yield current
