"""Options and error handling shared by the commands that read a Synapse config."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from maildoctor.cli.exit_status import ExitStatus
from maildoctor.errors import ConfigLoadError


def config_paths_arguments(func: Callable[..., Any]) -> Callable[..., Any]:
    """``PATHS...`` and repeatable ``-c PATH``, merged in the order given (like Synapse)."""
    with_config = click.option(
        "-c", "--config", "config", multiple=True, metavar="PATH", type=click.Path(),
        help="A config file or directory (repeatable, like Synapse's -c).")(func)
    return click.argument("paths", nargs=-1, type=click.Path())(with_config)


def resolve_paths(paths: tuple[str, ...], config: tuple[str, ...]) -> list[str]:
    all_paths = list(config) + list(paths)
    if not all_paths:
        raise click.UsageError("give the config file(s) Synapse uses, e.g. "
                               "`maildoctor check /etc/matrix-synapse/homeserver.yaml`")
    return all_paths


def fail_unusable(exc: ConfigLoadError) -> NoReturn:
    """Print a located, traceback-free message for an unusable config and exit 2."""
    from maildoctor.render.excerpt import mask_line

    err = sys.stderr
    click.secho(f"maildoctor: {exc}", fg="red", bold=True, file=err)
    if exc.file and exc.line:
        try:
            with open(exc.file, encoding="utf-8", errors="replace") as fh:
                lines = fh.read().splitlines()
            src = lines[exc.line - 1] if exc.line <= len(lines) else ""
        except OSError:
            src = ""
        if src:
            shown = mask_line(src.expandtabs(1))
            click.echo(f"  {exc.line} | {shown}", file=err)
            if exc.column and shown == src.expandtabs(1):
                click.echo(f"  {' ' * len(str(exc.line))} | {' ' * (exc.column - 1)}^", file=err)
    if exc.hint:
        click.echo(f"  hint: {exc.hint}", file=err)
    sys.exit(ExitStatus.UNUSABLE)
