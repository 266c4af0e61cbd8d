"""Class test for issue 10 item 12: the options of every command agree with each other.

Seen: ``fix`` had no ``--format``/``--color``, ``send`` no ``--color``, options without help,
and ``--timeout`` meaning one step in ``probe`` but the whole send in one ``send`` engine.
This walks every command (subcommands included) so a new command or option is held to it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import click
import pytest

from maildoctor.cli.main import cli

#: Commands whose result is a report: they offer --format (text first, json among them).
REPORTS = {"check", "fix", "probe", "send", "explain", "rules", "providers", "relay status",
           "relay list"}
#: Commands whose text is coloured on a terminal: they offer --color/--no-color.
COLOURED = {"check", "fix", "probe", "send", "explain"}


def commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(cli)

    def walk(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            assert cmd is not None
            path = f"{prefix}{name}"
            if isinstance(cmd, click.Group):
                yield from walk(cmd, path + " ")
            else:
                yield path, cmd

    yield from walk(cli, "")


ALL = dict(commands())


def options(cmd: click.Command) -> list[click.Option]:
    return [p for p in cmd.params if isinstance(p, click.Option)]


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_option_has_help(name: str) -> None:
    missing = [p.opts[0] for p in options(ALL[name]) if not (p.help or "").strip()]
    assert not missing, f"{name}: {missing}"


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_reports_offer_text_and_json(name: str) -> None:
    fmt = next((p for p in options(ALL[name]) if p.opts == ["--format"]), None)
    assert fmt is not None, name
    choices = list(fmt.type.choices)  # type: ignore[attr-defined]
    assert choices[0] == "text" and "json" in choices and fmt.default == "text", name


@pytest.mark.parametrize("name", sorted(COLOURED))
def test_coloured_output_can_be_forced(name: str) -> None:
    color = next((p for p in options(ALL[name]) if p.name == "color"), None)
    assert color is not None, name
    assert color.opts == ["--color"] and color.secondary_opts == ["--no-color"], name


def test_one_name_per_meaning() -> None:
    """An option's destination is always spelled the same way (``fmt`` is ``--format``...),
    and a flag means one thing: ``--timeout`` is per step wherever it appears."""
    spellings: dict[str | None, set[tuple[str, ...]]] = defaultdict(set)
    for cmd in ALL.values():
        for p in options(cmd):
            if p.name not in ("config",):
                spellings[p.name].add(tuple(p.opts))
    mixed = {name: opts for name, opts in spellings.items() if len(opts) > 1}
    assert not mixed, mixed
    for name, cmd in ALL.items():
        for p in options(cmd):
            if p.opts == ["--timeout"]:
                assert "each" in (p.help or "") or "single" in (p.help or ""), name
                assert "whole" not in (p.help or ""), name
