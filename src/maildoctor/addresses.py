"""What a plain mail address is: ``local@domain``, with no name, brackets or list around it.

One definition for every place that needs it: the notif_from rule (MD404) and the commands
that take a recipient (``probe --to``, ``send --to``).
"""

from __future__ import annotations

import re

__all__ = ["PLAIN_ADDRESS", "is_plain_address"]

#: One ``@``, something on both sides, and none of RFC 5322's specials or white space.
PLAIN_ADDRESS = re.compile(r"^[^\s@<>()\[\]\\,;:\"]+@[^\s@<>()\[\]\\,;:\"]+$")


def is_plain_address(text: str) -> bool:
    """True when ``text`` is a bare ``local@domain`` address."""
    return PLAIN_ADDRESS.match(text) is not None
