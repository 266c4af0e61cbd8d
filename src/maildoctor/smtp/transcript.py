"""The SMTP dialogue as the user may see it: every line, with secrets taken out.

A transcript line is recorded *after* redaction, so nothing that leaves the probe
(rendered text, JSON, logs) can carry a password or an AUTH payload. Two layers:

- AUTH payloads (the base64 after ``AUTH PLAIN``, LOGIN's user/password lines, the
  CRAM-MD5 and XOAUTH2 responses) are replaced by :data:`HIDDEN` when they are sent:
  the sender marks them with ``secret=True``.
- Every line also goes through the :class:`~maildoctor.secrets.Redactor`, which knows
  the password and its base64 forms, in case a server echoes them back.

Memory is bounded: lines are cut to :data:`MAX_TEXT` characters and the transcript
keeps at most :data:`MAX_LINES` lines (a server sending an endless reply cannot grow it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from maildoctor.secrets import Redactor

HIDDEN = "<credentials hidden>"
MAX_TEXT = 400
MAX_LINES = 2000


class Direction(StrEnum):
    SENT = "sent"  # client -> server
    RECEIVED = "received"  # server -> client
    NOTE = "note"  # not on the wire: connection opened, TLS started, limits hit


@dataclass(frozen=True)
class TranscriptLine:
    direction: Direction
    text: str
    tls: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"direction": str(self.direction), "text": self.text, "tls": self.tls}


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    """Cut ``text`` to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


@dataclass
class Transcript:
    """An append-only, redacted, bounded record of one or more connections."""

    redact: Redactor = field(default_factory=Redactor)
    lines: list[TranscriptLine] = field(default_factory=list)
    enabled: bool = True
    dropped: int = 0
    # Called with each line as it is recorded (the interactive shell prints them live).
    on_line: Callable[[TranscriptLine], None] | None = None

    def add(self, direction: Direction, text: str, *, tls: bool = False,
            secret: bool = False) -> None:
        if not self.enabled:
            return
        if len(self.lines) >= MAX_LINES:
            self.dropped += 1
            return
        if secret:
            text = _hide_payload(text)
        line = TranscriptLine(direction, shorten(self.redact(text)), tls)
        self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line)

    def note(self, text: str, *, tls: bool = False) -> None:
        self.add(Direction.NOTE, text, tls=tls)


def _hide_payload(line: str) -> str:
    """Keep the verb and mechanism of an ``AUTH MECH payload`` line, hide the rest."""
    parts = line.split(" ", 2)
    if len(parts) >= 2 and parts[0].upper() == "AUTH":
        head = f"{parts[0]} {parts[1]}"
        return f"{head} {HIDDEN}" if len(parts) == 3 else head
    return HIDDEN
