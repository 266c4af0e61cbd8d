"""Put a generated ``email:`` block into an existing config file, textually and atomically.

Why text rather than a YAML round trip: the rest of the admin's homeserver.yaml must come
out byte for byte as it went in (comments, quoting, key order), and the only part we own
is the ``email:`` block. So the file is split at top-level keys, the old block (if any,
and only with ``force``) is cut out, and ours goes in its place or at the end.

The write is atomic (see :func:`merge_email_block`): a temporary file next to the real
file, fsync, a backup of the original, then ``os.replace``; it is refused if the file
changed while we worked. The merged text is parsed with PyYAML (Synapse's parser) before
anything is written, so a merge can never leave Synapse an unreadable config.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["MergeError", "MergeResult", "merge_email_block", "merged_text"]

_TOP_LEVEL_KEY = re.compile(r"^(?P<key>[^\s#:][^:]*?)\s*:(?:\s|$)")
_EMAIL_KEY = re.compile(r"""^(?:email|"email"|'email')\s*:(?:\s|$)""")


class MergeError(Exception):
    """The block cannot be merged (the file has one and ``force`` is off, or bad YAML)."""


@dataclass(frozen=True)
class MergeResult:
    path: str
    backup: str | None
    replaced: bool


def _email_span(lines: list[str]) -> tuple[int, int] | None:
    """Line range ``[start, end)`` of the top-level ``email:`` block, or None.

    The block runs to the next top-level key; comment and blank lines just before that
    key stay with it, since they usually describe it.
    """
    start = next((i for i, line in enumerate(lines) if _EMAIL_KEY.match(line)), None)
    if start is None:
        return None
    end = len(lines)
    for i in range(start + 1, len(lines)):
        if _TOP_LEVEL_KEY.match(lines[i]) or lines[i].startswith(("---", "...")):
            end = i
            break
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    return start, end


def _parses_with_email(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MergeError(f"the merged file would not parse as YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("email"), dict):
        raise MergeError("the merged file would not have an email: mapping")
    return data


def merged_text(original: str, block: str, *, force: bool = False) -> tuple[str, bool]:
    """The file text with ``block`` merged in, and whether an old block was replaced."""
    lines = original.splitlines(keepends=True)
    try:
        existing = yaml.safe_load(original)
    except yaml.YAMLError as exc:
        raise MergeError(f"the file is not valid YAML: {exc}") from exc
    if existing is not None and not isinstance(existing, dict):
        raise MergeError("the file is not a mapping of settings")
    span = _email_span(lines)
    has_email = isinstance(existing, dict) and "email" in existing
    if has_email and not force:
        raise MergeError("the file already has an email: block; use --force to replace it "
                         "(the original is kept as a .bak)")
    if has_email and span is None:
        raise MergeError("the file's email: block is written in a form maildoctor cannot "
                         "replace safely (e.g. flow style or an anchor); edit it by hand")
    if span is not None:
        start, end = span
        text = "".join(lines[:start]) + block + "".join(lines[end:])
        replaced = True
    else:
        body = original if not original or original.endswith("\n") else original + "\n"
        text = body + ("\n" if body.strip() else "") + block
        replaced = False
    _parses_with_email(text)
    return text, replaced


def _read_or_empty(path: str) -> str:
    """The file's text through the loader every command uses, with its limits (size, depth,
    aliases, binary, encoding, symlink loops, devices); "" when there is no file yet."""
    from maildoctor.config.load import parse_text, read_text

    if not os.path.lexists(path):
        return ""
    text = read_text(path)
    parse_text(path, text)  # the same limits as `check` before the text is worked on
    return text


def merge_email_block(path: str, block: str, *, force: bool = False) -> MergeResult:
    """Merge ``block`` into the file at ``path`` atomically, keeping a backup.

    The write is :func:`maildoctor.config.safe_write.replace_file`'s, the one ``maildoctor fix``
    uses: through a symlink to its target, with the original's owner, group and mode, and a
    backup that never overwrites an earlier one (``.bak``, ``.bak.1``...). A new file is
    created private (0600), as it holds a password field.
    """
    from maildoctor.config.safe_write import file_digest, replace_file
    from maildoctor.errors import ConfigLoadError

    try:
        digest = file_digest(path)  # before reading: a change in between fails safe
        original = _read_or_empty(path)
        text, replaced = merged_text(original, block, force=force)
        backup = replace_file(path, text, digest, backup=digest is not None)
    except ConfigLoadError as exc:
        raise MergeError(f"line {exc.line}: {exc.message}" if exc.line else exc.message) \
            from exc
    return MergeResult(path=path, backup=backup, replaced=replaced)
