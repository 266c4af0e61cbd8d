"""``maildoctor schema``: print a JSON Schema of the email section, for editors and CI.

Point yaml-language-server at its output (a ``# yaml-language-server: $schema=...``
comment, or ``yaml.schemas`` in VS Code settings) to get completion, descriptions and
typo warnings in homeserver.yaml as you type.
"""

from __future__ import annotations

import json
import sys

import click

from maildoctor.cli.exit_status import ExitStatus


@click.command("schema")
@click.option("--whole-file", is_flag=True,
              help="Schema for a whole homeserver.yaml (other top-level keys allowed).")
@click.option("--synapse-version", metavar="X.Y[.Z]",
              help="Keys as this Synapse version reads them (default: the newest known).")
@click.option("-o", "--output", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write to FILE instead of standard output.")
def command(whole_file: bool, synapse_version: str | None, output: str | None) -> None:
    """Print a JSON Schema (draft 2020-12) of Synapse's email: section.

    A version maildoctor does not know (newer than its newest, older than its oldest) gets
    the nearest known version's keys, with a warning on standard error.
    Exit status: 0 printed, 2 bad --synapse-version or unwritable FILE.
    """
    from maildoctor.cli.versions import checked_synapse_version
    from maildoctor.config.jsonschema import email_schema, whole_file_schema
    from maildoctor.config.schema import NEWEST, parse_version

    # Outside the known range: a warning on stderr, and the nearest known version's keys.
    checked = checked_synapse_version(synapse_version)
    version = parse_version(checked) if checked else NEWEST
    schema = whole_file_schema(version) if whole_file else email_schema(version)
    text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.exit(ExitStatus.OK)
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        click.secho(f"maildoctor: cannot write {output}: {exc.strerror}", fg="red", err=True)
        sys.exit(ExitStatus.UNUSABLE)
    click.echo(f"wrote {output}", err=True)
    sys.exit(ExitStatus.OK)
