"""``maildoctor fix``: apply the safe fixes ``check`` proposes, keeping everything else."""

from __future__ import annotations

import difflib
import sys

import click

from maildoctor.cli.common import (
    ConfigCommand,
    config_paths_arguments,
    fail_unusable,
    resolve_paths,
)
from maildoctor.cli.exit_status import ExitStatus


def masked_diff(path: str, old: str, new: str) -> str:
    """A unified diff with secret values masked on every line."""
    from maildoctor.render.excerpt import mask_line

    lines = difflib.unified_diff(
        [mask_line(x) + "\n" for x in old.splitlines()],
        [mask_line(x) + "\n" for x in new.splitlines()],
        fromfile=f"{path} (before)", tofile=f"{path} (after)",
    )
    return "".join(lines)


@click.command("fix", cls=ConfigCommand)
@config_paths_arguments
@click.option("--diff", "show_diff", is_flag=True, help="Show the changes; write nothing.")
@click.option("--unsafe-fixes", is_flag=True,
              help="Also apply fixes that may change behaviour beyond the finding.")
@click.option("--no-backup", is_flag=True, help="Do not keep FILE.bak.")
@click.option("--select", multiple=True, metavar="CODES", help="Only fix these rules.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Do not fix these rules.")
@click.option("--synapse-version", metavar="X.Y[.Z]")
def command(paths: tuple[str, ...], config: tuple[str, ...], show_diff: bool, unsafe_fixes: bool,
            no_backup: bool, select: tuple[str, ...], ignore: tuple[str, ...],
            synapse_version: str | None) -> None:
    """Fix the config in place: rename misspelt keys, move keys into email:, quote values
    YAML would mangle... Only the flagged lines change; comments, order, quoting and
    indentation stay as they are. A backup is kept as FILE.bak.

    Exit status: 0 no errors remain, 1 errors remain (fix them by hand), 2 unusable input.
    """
    from maildoctor.cli.check import _split
    from maildoctor.config.check import check
    from maildoctor.config.fix import plan, write
    from maildoctor.diagnostics import Severity
    from maildoctor.errors import ConfigLoadError

    all_paths = resolve_paths(paths, config)
    try:
        result = check(all_paths, synapse_version=synapse_version, select=_split(select),
                       ignore=_split(ignore))
        fixes = plan(result.config, result.diagnostics, unsafe=unsafe_fixes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--synapse-version") from exc
    except ConfigLoadError as exc:
        fail_unusable(exc)
    out = sys.stdout
    applied = 0
    for ff in fixes:
        for d, why in ff.skipped:
            click.echo(f"not fixed: {d.code} {d.message} ({why})", err=True)
        if not ff.changed:
            continue
        applied += len(ff.applied)
        if show_diff:
            out.write(masked_diff(ff.path, ff.original, ff.new_text))
            continue
        try:
            bak = write(ff, backup=not no_backup)
        except ConfigLoadError as exc:
            fail_unusable(exc)
        for d in ff.applied:
            click.echo(f"fixed {d.code} ({d.name}) in {ff.path}: {d.fix.message if d.fix else ''}")
        if bak:
            click.echo(f"  backup of the original: {bak}")
    if applied == 0:
        click.echo("nothing to fix automatically.")
    if show_diff:
        sys.exit(ExitStatus.OK)
    try:
        after = check(all_paths, synapse_version=synapse_version)
    except ConfigLoadError as exc:
        fail_unusable(exc)
    errors = after.count(Severity.ERROR)
    if errors:
        click.echo(f"{errors} error{'s' * (errors != 1)} left: run `maildoctor check` for the "
                   "details and fix them by hand.")
        sys.exit(ExitStatus.PROBLEMS)
    click.echo("no errors left.")
    sys.exit(ExitStatus.OK)
