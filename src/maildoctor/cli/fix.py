"""``maildoctor fix``: apply the safe fixes ``check`` proposes, keeping everything else."""

from __future__ import annotations

import difflib
import json
import sys
from typing import Any, NoReturn

import click

from maildoctor.cli.common import (
    ConfigCommand,
    config_paths_arguments,
    fail_unusable,
    resolve_paths,
)
from maildoctor.cli.exit_status import ExitStatus
from maildoctor.diagnostics import Applicability, Diagnostic, Severity


def mask_lines(lines: list[str]) -> list[str]:
    """The lines as a diff may show them: a secret's value is masked, but its quoting is
    kept (``smtp_pass: 0123456`` -> ``smtp_pass: ********``, ``'0123456'`` ->
    ``'********'``), so a fix that only quotes a password still shows. Lines indented below
    a secret's key (a value written on the following lines) are masked whole. A comment
    after a secret is not shown: it may be part of the password (MD204)."""
    from maildoctor.secrets import MASK, SECRET_LINE, is_secret_key

    out: list[str] = []
    below: int | None = None  # indentation of the secret key whose value may continue
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if below is not None and (not line.strip() or indent > below):
            out.append(line[:indent] + MASK if line.strip() else line)
            continue
        below = None
        m = SECRET_LINE.match(line)
        if m is None or not is_secret_key(m.group("key")):
            out.append(line)
            continue
        below = indent
        value = m.group("value")
        text = value.lstrip()
        if not text:
            out.append(line)
            continue
        quote = text[0] if text[0] in "'\"" else ""
        out.append(f"{m.group('head')}{value[: len(value) - len(text)]}{quote}{MASK}{quote}")
    return out


def _hunk_range(start: int, stop: int) -> str:
    length = stop - start
    first = start + 1 if length else start
    return str(first) if length == 1 else f"{first},{length}"


def masked_diff(path: str, old: str, new: str) -> str:
    """A unified diff with secret values masked (see :func:`mask_lines`).

    The lines are compared as written and shown masked, so a changed line is shown as
    changed even when both sides mask alike.
    """
    before, after = old.splitlines(), new.splitlines()
    shown_before, shown_after = mask_lines(before), mask_lines(after)
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for group in matcher.get_grouped_opcodes(3):
        out.append(f"@@ -{_hunk_range(group[0][1], group[-1][2])} "
                   f"+{_hunk_range(group[0][3], group[-1][4])} @@\n")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out += [f" {x}\n" for x in shown_before[a1:a2]]
                continue
            out += [f"-{x}\n" for x in shown_before[a1:a2]]
            out += [f"+{x}\n" for x in shown_after[b1:b2]]
    if not out:
        return ""
    return f"--- {path} (before)\n+++ {path} (after)\n" + "".join(out)


@click.command("fix", cls=ConfigCommand)
@config_paths_arguments
@click.option("--diff", "show_diff", is_flag=True, help="Show the changes; write nothing.")
@click.option("--unsafe-fixes", is_flag=True,
              help="Also apply fixes that may change behaviour beyond the finding.")
@click.option("--no-backup", is_flag=True, help="Do not keep FILE.bak.")
@click.option("--select", multiple=True, metavar="CODES", help="Only fix these rules.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Do not fix these rules.")
@click.option("--synapse-version", metavar="X.Y[.Z]",
              help="Check against this Synapse version (default: the newest known).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: what was fixed, not fixed and left, in one "
              "document.")
@click.option("--color/--no-color", default=None, help="Force colours on or off.")
def command(paths: tuple[str, ...], config: tuple[str, ...], show_diff: bool, unsafe_fixes: bool,
            no_backup: bool, select: tuple[str, ...], ignore: tuple[str, ...],
            synapse_version: str | None, fmt: str, color: bool | None) -> None:
    """Fix the config in place: rename misspelt keys, move keys into email:, quote values
    YAML would mangle... Only the flagged lines change; comments, order, quoting and
    indentation stay as they are. A backup is kept as FILE.bak (or FILE.bak.1,
    FILE.bak.2... when an earlier backup exists: none is overwritten).

    Exit status: 0 no errors remain, 1 errors remain (fix them by hand), 2 unusable input.
    """
    from maildoctor.cli.check import _split
    from maildoctor.config.check import check
    from maildoctor.config.fix import plan_checked, write
    from maildoctor.errors import ConfigLoadError

    all_paths = resolve_paths(paths, config)
    try:
        result = check(all_paths, synapse_version=synapse_version, select=_split(select),
                       ignore=_split(ignore))
        fixes, rolled_back = plan_checked(result.config, result.diagnostics, result.version,
                                          unsafe=unsafe_fixes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--synapse-version") from exc
    except ConfigLoadError as exc:
        fail_unusable(exc, fmt)
    out = _Report(fmt, color)
    applied = 0
    said: set[tuple[str, str, str]] = set()
    for rb in rolled_back:
        out.not_fixed(rb.diagnostic, rb.reason)
    for ff in fixes:
        for d, why in ff.skipped:
            if (d.code, d.message, why) not in said:
                said.add((d.code, d.message, why))
                out.not_fixed(d, why)
        if not ff.changed:
            continue
        applied += len(ff.applied)
        if show_diff:
            out.diff(masked_diff(ff.path, ff.original, ff.new_text))
            continue
        try:
            bak = write(ff, backup=not no_backup)
        except ConfigLoadError as exc:
            fail_unusable(exc, fmt)
        for d in ff.applied:
            out.fixed(d, ff.path)
        if bak:
            out.backup(bak)
    if applied == 0:
        out.say("nothing to fix automatically.")
    if show_diff:
        # What `fix` would exit with after writing: the planned texts, checked in memory.
        from maildoctor.config.fix import planned_config
        from maildoctor.config.rules import LintContext, run_rules

        left = run_rules(LintContext(planned_config(result.config), result.version))
        out.finish(left, would=True, unsafe_fixes=unsafe_fixes)
    try:
        after = check(all_paths, synapse_version=synapse_version)
    except ConfigLoadError as exc:
        fail_unusable(exc, fmt)
    out.finish(after.diagnostics, would=False, unsafe_fixes=unsafe_fixes)


class _Report:
    """What ``fix`` did, said as it happens (text) or as one JSON document at the end."""

    def __init__(self, fmt: str, color: bool | None) -> None:
        self.fmt = fmt
        self.color = color
        self.doc: dict[str, Any] = {"version": 1, "tool": "maildoctor", "applied": [],
                                    "not_fixed": [], "backups": [], "diff": ""}

    def _echo(self, text: str, *, err: bool = False, fg: str | None = None) -> None:
        if self.fmt == "text":
            click.echo(click.style(text, fg=fg) if fg else text, err=err, color=self.color)

    def say(self, text: str) -> None:
        self._echo(text)

    def not_fixed(self, d: Diagnostic, why: str) -> None:
        self.doc["not_fixed"].append({"code": d.code, "message": d.message, "reason": why})
        self._echo(f"not fixed: {d.code} {d.message} ({why})", err=True, fg="yellow")

    def fixed(self, d: Diagnostic, path: str) -> None:
        how = d.fix.message if d.fix else ""
        self.doc["applied"].append({"code": d.code, "name": d.name, "file": path, "fix": how})
        self._echo(f"fixed {d.code} ({d.name}) in {path}: {how}", fg="green")

    def backup(self, bak: str) -> None:
        self.doc["backups"].append(bak)
        kept = "" if bak.endswith(".bak") else \
            f" (earlier backups {bak.rsplit('.bak', 1)[0]}.bak... are kept as they were)"
        self._echo(f"  backup of the original: {bak}{kept}")

    def diff(self, text: str) -> None:
        self.doc["diff"] += text
        if self.fmt == "text":
            sys.stdout.write(text)

    def finish(self, left: list[Diagnostic], *, would: bool, unsafe_fixes: bool) -> NoReturn:
        """Say how many errors are (or, with --diff, would be) left, and exit accordingly."""
        errors = [d for d in left if d.severity is Severity.ERROR]
        unsafe = sum(1 for d in errors if d.fix and d.fix.edits
                     and d.fix.applicability is Applicability.UNSAFE)
        if self.fmt == "json":
            self.doc.update(written=not would, errors_left=len(errors),
                            unsafe_fixes_available=0 if unsafe_fixes else unsafe,
                            left=[d.to_json() for d in errors])
            json.dump(self.doc, sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        elif errors:
            state = "would be left after these fixes" if would else "left"
            hint = "" if unsafe_fixes or not unsafe else (
                f" (`maildoctor fix --unsafe-fixes` can fix {unsafe} of them: read them first)")
            self._echo(f"{len(errors)} error{'s' * (len(errors) != 1)} {state}{hint}: run "
                       "`maildoctor check` for the details and fix them by hand.", err=would,
                       fg="red")
        else:
            self._echo("no errors would be left." if would else "no errors left.", err=would)
        sys.exit(ExitStatus.PROBLEMS if errors else ExitStatus.OK)
