"""Structured log lines: ``event=delivered id=12 upstream=smtp.example.org:587 ...``.

key=value (logfmt) because it is greppable by eye and parsed by Loki, Vector and friends
without a schema. Every failure line carries ``reason`` (a stable label), ``error`` (the cause
in plain words, as ``probe`` names it) and ``fix``. Values go through the upstream's Redactor
before they are written, so a password the server echoes back never reaches the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from maildoctor.printable import printable

LOGGER = logging.getLogger("maildoctor.relay")

_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                  "-_./:@<>+=,[]")


def quote(value: object) -> str:
    """A logfmt value: bare when it is safe, else double-quoted with escapes."""
    text = "" if value is None else str(value)
    if text and all(ch in _BARE for ch in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{printable(escaped)}"'


def line(event: str, **fields: object) -> str:
    parts = [f"event={quote(event)}"]
    parts += [f"{key}={quote(value)}" for key, value in fields.items() if value is not None]
    return " ".join(parts)


class EventLog:
    """Writes events to the ``maildoctor.relay`` logger, redacting every line."""

    def __init__(self, redact: Callable[[str], str] = lambda text: text,
                 logger: logging.Logger = LOGGER) -> None:
        self._redact = redact
        self.logger = logger

    def __call__(self, level: int, event: str, **fields: object) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(level, self._redact(line(event, **fields)))


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=info event=...``: the whole line is logfmt (the CLI installs this)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        text = f"ts={stamp}.{int(record.msecs):03d}Z level={record.levelname.lower()} "
        message = record.getMessage()
        text += message if message.startswith("event=") else line("log", message=message)
        if record.exc_info:
            text += " traceback=" + quote(self.formatException(record.exc_info))
        return text


class Throttle:
    """At most one log line per ``interval`` seconds for one kind of trouble.

    A full disk or exhausted file descriptors fail every request in the same way, many
    times a second; one line per interval, with how many were left out, says all of it."""

    def __init__(self, interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def due(self, key: str) -> int | None:
        """None: stay silent; else log now, and the number of lines left out since the last."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._skipped.pop(key, 0)
