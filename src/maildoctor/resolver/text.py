"""DNS bytes made safe for a terminal, a log line or JSON.

TXT strings are bytes: a record split over several strings is one value once joined
(RFC 7208 3.3), and nothing guarantees ASCII, let alone printable characters.
"""

from __future__ import annotations

from collections.abc import Iterable


def printable(text: str, limit: int = 300) -> str:
    """``text`` with every control or non-printable character shown as an escape, cut to
    ``limit`` characters (``…`` marks the cut): :func:`maildoctor.printable.printable`."""
    from maildoctor.printable import printable as one_sanitizer

    return one_sanitizer(text, limit)


def txt_text(strings: Iterable[bytes]) -> tuple[str, bool]:
    """One TXT record's strings joined into its value, and whether it was pure ASCII.

    Non-ASCII bytes are kept as escapes (``\\xe9``) rather than guessed at: SPF and DMARC
    records are ASCII by definition, so such a byte is itself the finding."""
    raw = b"".join(strings)
    try:
        return raw.decode("ascii"), True
    except UnicodeDecodeError:
        return raw.decode("ascii", errors="backslashreplace"), False
