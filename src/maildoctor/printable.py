"""Untrusted text made printable: the one sanitizer for every byte maildoctor did not write.

Server replies, config values, log lines, DNS TXT strings and HTTP bodies can carry terminal
control sequences: a 535 reply with ``ESC[2J`` clears the admin's screen, colour codes fake a
green verdict, an OSC 52 sequence writes the clipboard, and a newline forges a log line or
a GitHub annotation. Everything untrusted goes through :func:`printable` before it reaches
a terminal, a log line or an annotation: each character that is not printable (C0 and C1
controls, ESC, DEL, bidi overrides, line and paragraph separators) is written as a visible
escape (``\\x1b``, ``\\u202e``), so nothing is lost and nothing acts.
"""

from __future__ import annotations

__all__ = ["printable", "printable_lines"]


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: object, limit: int | None = None, *, cut: str = "…") -> str:
    """``text`` with every non-printable character shown as an escape, one line; cut to
    ``limit`` characters (``cut`` marks where) when a limit is given."""
    raw = str(text)
    shown = raw if raw.isprintable() else "".join(
        ch if ch.isprintable() else _escape(ch) for ch in raw)
    if limit is None or len(shown) <= limit:
        return shown
    return shown[: max(limit - len(cut), 0)] + cut


def printable_lines(text: object) -> str:
    """Like :func:`printable`, but line breaks (``\\n``) stay: for multi-line server replies
    shown as lines. A ``\\r`` is escaped, so no line can overwrite another."""
    return "\n".join(printable(line) for line in str(text).split("\n"))
