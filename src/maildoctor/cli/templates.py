"""``maildoctor templates check|preview``: the email templates Synapse would load.

``check`` compiles and renders each template with sample data the way Synapse would and
reports missing files, syntax errors and undefined variables. ``preview`` writes the rendered
mails to a directory (``./maildoctor-preview`` unless ``--out`` says otherwise) so they can
be opened in a browser or mail client. Both take the config paths as ``check`` does:
``PATHS...`` and ``-c PATH``, merged in the order given, like Synapse's ``-c``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from maildoctor.cli.common import ConfigCommand, config_paths_arguments, resolve_paths
from maildoctor.cli.exit_status import ExitStatus
from maildoctor.config.templates import BUILTIN_DIR, TemplateSet, describe_render_error
from maildoctor.diagnostics import Severity
from maildoctor.errors import ConfigLoadError
from maildoctor.synapse.mail.template_check import (
    check_templates,
    preview_kinds,
    render_preview,
)


def load_config(paths: tuple[str, ...]) -> dict[str, Any]:
    """Read the config files and directories exactly as Synapse does (see config/load.py)."""
    from maildoctor.config.load import load

    return load(list(paths)).merged


def _load_or_exit(paths: tuple[str, ...]) -> dict[str, Any]:
    from maildoctor.cli.common import fail_unusable

    try:
        return load_config(paths)
    except ConfigLoadError as exc:
        fail_unusable(exc)


#: Where ``preview`` writes when ``--out`` is not given (relative to the working directory).
DEFAULT_PREVIEW_DIR = "maildoctor-preview"


def _describe_search(templates: TemplateSet) -> str:
    if not templates.directories:
        return ("Template search order: Synapse's built-in templates only (no custom "
                "template directory is configured)")
    parts = [f"{path} ({key})" for path, key in templates.directories]
    return "Template search order: " + ", ".join(parts) + ", then Synapse's built-in templates"


@click.group(name="templates")
def command() -> None:
    """Check or preview the email templates Synapse would use."""


@command.command(name="check", cls=ConfigCommand)
@config_paths_arguments
def check(paths: tuple[str, ...], config: tuple[str, ...]) -> None:
    """Render every template Synapse would load for the config and report problems.

    PATHS (or -c PATH) are the config files or directories, in the order of Synapse's -c
    options. Custom templates are also read statically, so a variable Synapse does not pass
    is reported even in a branch or block the sample render does not reach.
    Exit status: 0 no errors, 1 errors found, 2 unusable config.
    """
    merged = _load_or_exit(tuple(resolve_paths(paths, config)))
    report = check_templates(merged)
    if not report.groups:
        click.echo("Synapse loads no email templates with this config "
                   "(email: is empty or absent, and account_validity.renew_at is not set).")
    else:
        click.echo(_describe_search(report.templates))
        defaults = [item.name for item in report.checked if item.origin == "built-in"]
        for item in report.checked:
            if item.origin != "built-in":
                click.echo(f"  {item.name}: {item.path} (from {item.origin})")
        if defaults:
            others = "other template(s)" if len(defaults) < len(report.checked) else "template(s)"
            click.echo(f"  {len(defaults)} {others} from Synapse's built-in templates (checked "
                       "with maildoctor's stand-ins)")
    for finding in report.findings:
        click.echo(str(finding))
    errors = report.errors
    warnings = sum(1 for f in report.findings if f.severity is Severity.WARNING)
    click.echo(f"{len(report.checked)} templates checked: {errors} error(s), "
               f"{warnings} warning(s)")
    raise SystemExit(ExitStatus.PROBLEMS if errors else ExitStatus.OK)


@command.command(name="preview", cls=ConfigCommand)
@config_paths_arguments
@click.option("--out", "out", default=DEFAULT_PREVIEW_DIR, show_default=True,
              type=click.Path(file_okay=False),
              help="Directory to write the rendered mails to (created if missing).")
def preview(paths: tuple[str, ...], config: tuple[str, ...], out: str) -> None:
    """Render each mail Synapse would send with the config into OUT as .html and .txt files.

    PATHS (or -c PATH) are the config files or directories, in the order of Synapse's -c
    options. Existing files of the same name in OUT are overwritten.
    """
    merged = _load_or_exit(tuple(resolve_paths(paths, config)))
    templates = TemplateSet.from_config(merged)
    for problem in templates.problems:
        click.echo(f"error: {problem}", err=True)
    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        click.echo(f"error: cannot create {out_dir}: {exc.strerror or exc}", err=True)
        raise SystemExit(ExitStatus.UNUSABLE) from None
    failed = bool(templates.problems)
    for kind in preview_kinds(merged):
        try:
            subject, text, html = render_preview(kind, merged, templates)
        except Exception as exc:  # any template failure is reported, then the next kind
            click.echo(f"{describe_render_error(exc, kind, None)}", err=True)
            failed = True
            continue
        for suffix, body in (("html", html), ("txt", text)):
            target = out_dir / f"{kind}.{suffix}"
            target.write_text(body, encoding="utf-8")
            click.echo(str(target))
        click.echo(f"  subject: {subject}")
    if not templates.directories:
        click.echo(f"(no custom template directory: maildoctor's own templates from "
                   f"{BUILTIN_DIR} stand in for Synapse's built-in ones)")
    raise SystemExit(ExitStatus.PROBLEMS if failed else ExitStatus.OK)
