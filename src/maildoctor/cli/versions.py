"""``--synapse-version`` for every command that takes it (check, probe, fix, schema).

maildoctor's facts about Synapse's keys run from the oldest release where one of them
appeared (0.16.0) to the newest release it was checked against (``schema.NEWEST``).
A version outside that range is not an error (an admin on a newer Synapse should still get
a check), but answering "checked as Synapse 2.0.0" would claim knowledge maildoctor does
not have. So the version is clamped to the known range, and a warning on stderr says so
once, before any output: stdout (JSON, a schema) stays machine-readable.
"""

from __future__ import annotations

import click

from maildoctor.config import schema

__all__ = ["checked_synapse_version", "known_range"]


def known_range() -> tuple[schema.Version, schema.Version]:
    """The oldest and newest Synapse versions maildoctor has facts for."""
    return schema.KNOWN_VERSIONS[0], schema.NEWEST


def _text(version: schema.Version) -> str:
    return f"{version.major}.{version.minor}.{version.patch}"


def checked_synapse_version(text: str | None, *, param_hint: str = "--synapse-version"
                            ) -> str | None:
    """The version to check with, for a ``--synapse-version`` value (None: not given).

    A version newer than the newest known or older than the oldest known is replaced by
    that bound, with a warning on stderr naming both. A value that is not a version raises
    :class:`click.BadParameter` (exit status 2), like the commands' own parsing.
    """
    if text is None:
        return None
    try:
        version = schema.parse_version(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from exc
    oldest, newest = known_range()
    if version > newest:
        click.echo(f"maildoctor: warning: Synapse {_text(version)} is unknown: maildoctor "
                   f"knows Synapse up to {_text(newest)}; checking as {_text(newest)} rules",
                   err=True)
        return _text(newest)
    if version < oldest:
        click.echo(f"maildoctor: warning: Synapse {_text(version)} is unknown: maildoctor "
                   f"knows Synapse from {_text(oldest)} on; checking as {_text(oldest)} rules",
                   err=True)
        return _text(oldest)
    return text
