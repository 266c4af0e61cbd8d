"""MD0xx: how Synapse finds, parses and merges the config files."""

from __future__ import annotations

import re
from collections.abc import Iterator

from maildoctor.config.load import MAX_FILE_BYTES, dotted
from maildoctor.config.rules import LintContext, rule
from maildoctor.config.schema.data import NOTIF_FROM_MISSING_LINE
from maildoctor.diagnostics import Applicability, Diagnostic, Fix, Location, Severity


@rule("MD001", "duplicate-key", Severity.WARNING, "A key appears twice in one file")
def duplicate_key(ctx: LintContext) -> Iterator[Diagnostic]:
    """PyYAML, which Synapse uses, keeps the *last* value of a key written twice in one
    mapping, without a word. Editing the first occurrence then has no effect. When both
    values are blocks (two ``email:`` blocks in one file), the later block replaces the
    first whole, exactly as MD002's later file does: an error listing the keys lost."""
    for pf in ctx.config.files:
        for dup in pf.duplicates:
            name = dotted(dup.path)
            lost = dup.lost_keys
            consequence = f"Synapse silently ignores line {dup.first.key_line}."
            if dup.first_keys is not None and dup.later_keys is not None:
                lost_text = ", ".join(f"`{k}`" for k in lost) if lost else "nothing (same keys)"
                consequence = (f"Synapse uses only the `{name}:` block of line "
                               f"{dup.later.key_line}; the keys only in the block of line "
                               f"{dup.first.key_line} are ignored: {lost_text}.")
                if dup.path == ("email",) and "notif_from" in lost:
                    consequence += " Without notif_from Synapse refuses to start."
            yield ctx.diag(
                "MD001",
                f"`{name}` is set twice in this file (lines {dup.first.key_line} and "
                f"{dup.later.key_line}); Synapse uses the last one",
                consequence=consequence,
                severity=Severity.ERROR if lost else Severity.WARNING,
                fix=Fix(f"Merge the two `{dup.path[-1]}:` blocks into one." if lost else
                        f"Delete one of the two `{dup.path[-1]}` lines, keeping the value you "
                        "mean.", Applicability.DISPLAY_ONLY),
                locations=(
                    Location(pf.path, dup.first.key_line, dup.first.key_column, name),
                    Location(pf.path, dup.later.key_line, dup.later.key_column, name),
                ),
            )


@rule("MD002", "email-block-replaced", Severity.ERROR,
      "A later config file replaces the whole email: block of an earlier one")
def email_block_replaced(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse merges config files with a shallow ``dict.update``: a top-level key in a later
    file replaces the earlier value whole. Splitting ``email:`` across two files (say the
    password in ``20-secret.yaml``) loses every key of the first file."""
    for ov in ctx.config.overrides:
        if ov.key != "email":
            continue
        earlier = ov.earlier.data.get("email")
        later = ov.later.data.get("email")
        earlier_keys = set(earlier) if isinstance(earlier, dict) else set()
        later_keys = set(later) if isinstance(later, dict) else set()
        lost = sorted(str(k) for k in earlier_keys - later_keys)
        node = ov.later.nodes.get(("email",))
        first = ov.earlier.nodes.get(("email",))
        locs = []
        if node is not None:
            locs.append(Location(ov.later.path, node.key_line, node.key_column, "email"))
        if first is not None:
            locs.append(Location(ov.earlier.path, first.key_line, first.key_column, "email"))
        lost_text = ", ".join(f"`{k}`" for k in lost) if lost else "nothing (same keys)"
        consequence = (
            f"Synapse uses only the email: block of {ov.later.path}; the keys only in "
            f"{ov.earlier.path} are ignored: {lost_text}."
        )
        if "notif_from" in lost:
            consequence += (
                f" Without notif_from Synapse refuses to start: '{NOTIF_FROM_MISSING_LINE}'.")
        yield ctx.diag(
            "MD002",
            f"the email: block in {ov.later.path} replaces the one in {ov.earlier.path}",
            consequence=consequence,
            fix=Fix("Keep the whole email: block in one file (Synapse does not merge inside "
                    "a top-level key).", Applicability.DISPLAY_ONLY),
            locations=tuple(locs),
            severity=Severity.ERROR if lost else Severity.WARNING,
        )


@rule("MD003", "file-ignored", Severity.WARNING,
      "A config file is empty or not a mapping, so Synapse ignores it")
def file_ignored(ctx: LintContext) -> Iterator[Diagnostic]:
    """A file whose YAML is empty, or is a list or a plain value rather than ``key: value``
    pairs, is skipped by Synapse with only a line on stdout."""
    for pf in ctx.config.files:
        if pf.used:
            continue
        what = "empty" if pf.data is None else f"a {type(pf.data).__name__}, not a mapping"
        yield ctx.diag(
            "MD003",
            f"this file is {what}; Synapse ignores it",
            consequence=f"Synapse prints: File {pf.path!r} is empty or doesn't parse into a "
                        "key-value map. IGNORING.",
            fix=Fix("Write the settings as `key: value` lines, or remove the file.",
                    Applicability.DISPLAY_ONLY),
            locations=(Location(pf.path, 1, 1, ""),),
        )


_EMAIL_LINE = re.compile(r"""^(?:email|"email"|'email')[ \t]*:""", re.MULTILINE)


def _rename_warning(ctx: LintContext, path: str) -> str:
    """What renaming a skipped file would change beyond "it is read": an ``email:`` in it
    would replace, whole, the block of every file read before it. (Read as text: the file
    may not even be valid YAML.) This is why the rename is advice, never applied by fix."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read(MAX_FILE_BYTES)
    except OSError:
        return ""
    if not _EMAIL_LINE.search(text):
        return ""
    current = ctx.config.origin.get("email")
    now = f" (now {current.path}'s)" if current is not None else ""
    return (" Careful: it has an email: block, which would then replace the whole email: "
            f"block of the files read before it{now}; Synapse does not merge inside it.")


@rule("MD004", "file-skipped", Severity.WARNING,
      "A file in a config directory is skipped because it does not end in .yaml")
def file_skipped(ctx: LintContext) -> Iterator[Diagnostic]:
    """When ``-c`` names a directory, Synapse reads only regular files ending in ``.yaml``.
    A ``.yml`` file, any other file and any subdirectory are skipped (with a message on
    stdout, not in the log). ``fix`` never renames one: a ``.yml`` with an ``email:`` block
    would, once read, replace the whole ``email:`` block of the files read before it."""
    for sk in ctx.config.skipped:
        if sk.reason == "subdirectory":
            message = "subdirectory in a config directory; Synapse does not read it"
            said = f"Found subdirectory in config directory: {sk.path!r}. IGNORING."
            fix = Fix("Move its files up into the config directory if they are config.",
                      Applicability.DISPLAY_ONLY)
            severity = Severity.INFO
        else:
            message = "file does not end in .yaml; Synapse does not read it"
            said = ("Found file in config directory that does not end in '.yaml': "
                    f"{sk.path!r}. IGNORING.")
            if sk.path.endswith(".yml"):
                fix = Fix(f"Rename it to {sk.path[:-4]}.yaml if it is config."
                          + _rename_warning(ctx, sk.path), Applicability.DISPLAY_ONLY)
                severity = Severity.WARNING
            else:
                fix = Fix("Rename it to end in .yaml if it is config.", Applicability.DISPLAY_ONLY)
                severity = Severity.INFO
        yield ctx.diag("MD004", message, consequence=f"Synapse prints: {said}", fix=fix,
                       locations=(Location(sk.path, 1, 1, ""),), severity=severity)
