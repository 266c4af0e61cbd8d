"""Source excerpts for findings, with secrets masked.

A line that sets a secret-looking key (``smtp_pass``, ``smpt_pass``, ``*_secret``,
``*password*``, ``*token*``) shows ``********`` instead of its value, so an excerpt never
leaks a password, even a misspelt key's.
"""

from __future__ import annotations

import re

from maildoctor.secrets import MASK, is_secret_key

SECRET_LINE = re.compile(
    r"^(?P<head>\s*(?:-\s+)?[\"']?(?P<key>[A-Za-z0-9_.-]+)[\"']?\s*:)(?P<value>.*)$"
)
def mask_line(line: str) -> str:
    """Replace the value on a line that sets a secret-looking key."""
    m = SECRET_LINE.match(line)
    if not m or not m.group("value").strip() or not is_secret_key(m.group("key")):
        return line
    value = m.group("value")
    lead = value[: len(value) - len(value.lstrip())]
    return f"{m.group('head')}{lead}{MASK}"


def mask_excerpt(line: str, path: str, line_no: int, key_line: int | None) -> str:
    """The line to show for a finding at ``path``. Besides :func:`mask_line`, a secret's value
    written on a line of its own (``smtp_pass:``, the password below it) is masked whole."""
    shown = mask_line(line)
    if (shown == line and is_secret_key(path.rsplit(".", 1)[-1]) and key_line is not None
            and line_no != key_line and line.strip()):
        return line[: len(line) - len(line.lstrip())] + MASK
    return shown


def caret_span(line: str, column: int) -> int:
    """How many characters to underline from ``column`` (1-based): a key up to its colon,
    otherwise a value up to a trailing comment."""
    rest = line[column - 1:]
    if not rest.strip():
        return 1
    key = re.match(r"[\"']?[^:\s\"'#]+[\"']?(?=\s*:(\s|$))", rest)
    if key:
        return len(key.group(0))
    rest = rest.split(" #", 1)[0].rstrip()
    return max(1, len(rest))
