"""``maildoctor check``: read the config as Synapse does and report every email problem."""

from __future__ import annotations

import sys

import click

from maildoctor.cli.common import (
    ConfigCommand,
    config_paths_arguments,
    fail_unusable,
    resolve_paths,
    start_observing,
    synapse_python_option,
)
from maildoctor.cli.exit_status import ExitStatus
from maildoctor.render import FORMATS


def _split(values: tuple[str, ...]) -> list[str]:
    return [part for v in values for part in v.split(",") if part.strip()]


@click.command("check", cls=ConfigCommand)
@config_paths_arguments
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)),
              default="text", show_default=True,
              help="Output format (sarif: SARIF 2.1.0 for GitHub code scanning).")
@click.option("--select", multiple=True, metavar="CODES",
              help="Only these rules (codes, code prefixes like MD3, or names; comma-separated).")
@click.option("--ignore", multiple=True, metavar="CODES", help="Skip these rules.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--synapse-version", metavar="X.Y[.Z]",
              help="Check against this Synapse version (default: the installed Synapse's, "
              "else the newest known).")
@synapse_python_option
@click.option("--color/--no-color", default=None, help="Force colours on or off.")
def command(paths: tuple[str, ...], config: tuple[str, ...], fmt: str, select: tuple[str, ...],
            ignore: tuple[str, ...], strict: bool, synapse_version: str | None,
            synapse_python: str | None, color: bool | None) -> None:
    """Check Synapse's email configuration, read exactly as Synapse reads it.

    PATHS are config files or directories, in the order you give Synapse's -c options.
    Exit status: 0 no errors, 1 errors (or warnings with --strict), 2 unusable input.
    """
    observed = start_observing(synapse_python)  # runs while the rest is imported
    from maildoctor.cli.versions import checked_synapse_version
    from maildoctor.config.check import check, validate_selectors
    from maildoctor.errors import ConfigLoadError

    synapse_version = checked_synapse_version(synapse_version)
    environment, synapse_version = observed(synapse_version)
    all_paths = resolve_paths(paths, config)
    selected, ignored = _split(select), _split(ignore)
    unknown = validate_selectors(selected + ignored)
    if unknown:
        raise click.UsageError(f"no rule matches {', '.join(unknown)} (see `maildoctor rules`)")
    try:
        result = check(all_paths, synapse_version=synapse_version, select=selected,
                       ignore=ignored, environment=environment)
    except ValueError as exc:  # a bad --synapse-version
        raise click.BadParameter(str(exc), param_hint="--synapse-version") from exc
    except ConfigLoadError as exc:
        fail_unusable(exc, fmt)  # every format says where the file broke (exit 2)
    from maildoctor.render import renderer

    renderer(fmt).render(result, sys.stdout, color=color)
    from maildoctor.diagnostics import Severity

    if result.has_errors or (strict and result.count(Severity.WARNING)):
        sys.exit(ExitStatus.PROBLEMS)
    sys.exit(ExitStatus.OK)
