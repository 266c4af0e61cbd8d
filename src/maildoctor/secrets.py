"""Keeping secrets out of output.

A :class:`Secret` holds a password and never shows it in ``repr``/``str``.
A :class:`Redactor` knows every secret in play and every encoded form an SMTP
dialogue can carry (base64 of the password, of ``user\\0user\\0pass`` and
``\\0user\\0pass`` for AUTH PLAIN, the CRAM-MD5 response is a digest and safe),
and replaces them in any text before it leaves the process.
:func:`mask_line` and :func:`mask_excerpt` hide the value of a secret-looking key in a line of
config shown as an excerpt (``smtp_pass``, ``smpt_pass``, ``*_secret``, ``*password*``,
``*token*``), a misspelt key's included.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

MASK = "********"

# A key is secret-looking when it mentions a password, secret or token (typos included:
# `smpt_pass`, `smtp_pasword`), unless it is one of Synapse's settings *about* passwords.
SECRET_KEY = re.compile(r"pass|pasw|pwd|secret|token|private_key|api_?key", re.IGNORECASE)
NOT_SECRET = re.compile(r"reset|config|provider|policy|enabled|_path$|_file$|lifetime",
                        re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key)) and not NOT_SECRET.search(key)


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


class Secret:
    """A password. ``str()`` and ``repr()`` are masked; use :meth:`reveal` to send it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encoded_forms(password: str, users: Iterable[str | None] = ()) -> set[str]:
    """Every text form of ``password`` that can show up in an SMTP transcript or log."""
    if not password:
        return set()
    forms = {password}
    pw = password.encode("utf-8", "surrogateescape")
    forms.add(_b64(pw))
    forms.add(_b64(pw).rstrip("="))
    for user in users:
        u = (user or "").encode("utf-8", "surrogateescape")
        for blob in (u + b"\0" + u + b"\0" + pw, b"\0" + u + b"\0" + pw):
            forms.add(_b64(blob))
            forms.add(_b64(blob).rstrip("="))
    return {f for f in forms if len(f) >= 2}


class Redactor:
    """Replaces known secrets (and their base64 forms) in text."""

    def __init__(self) -> None:
        self._forms: set[str] = set()

    def add(self, password: str | Secret | None, users: Iterable[str | None] = ()) -> None:
        if password is None:
            return
        value = password.reveal() if isinstance(password, Secret) else str(password)
        self._forms |= encoded_forms(value, [*users, None])

    def __call__(self, text: str) -> str:
        # Longest first, so a base64 blob is masked whole before a shorter form inside it.
        for form in sorted(self._forms, key=len, reverse=True):
            if form in text:
                text = text.replace(form, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._forms)
