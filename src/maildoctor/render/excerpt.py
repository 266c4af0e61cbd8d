"""Source excerpts for findings: how much of a line to underline.

Masking the secrets in an excerpt is :func:`maildoctor.secrets.mask_line` and
:func:`maildoctor.secrets.mask_excerpt`, so that reading a config never needs the renderers.
"""

from __future__ import annotations

import re


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
