"""``maildoctor explain [LOGFILE|-]``: find and explain email failures in Synapse's logs.

Thin layer: read lines lazily (file, ``.gz`` file or stdin), scan them
(:mod:`maildoctor.synapse.logs.scan`), explain each group
(:mod:`maildoctor.synapse.logs.explain`, narrowed by ``--config`` when given), render.
Everything printed went through the log redactor first.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

import click

from maildoctor.cli.exit_status import ExitStatus


def _open(logfile: str | None) -> IO[str]:
    if logfile in (None, "-"):
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    assert logfile is not None
    if logfile.endswith(".gz"):
        return gzip.open(logfile, "rt", encoding="utf-8", errors="replace")
    return open(logfile, encoding="utf-8", errors="replace")


def _lines(stream: IO[str]) -> Iterator[str]:
    """Lines with a length cap, so one enormous line cannot exhaust memory."""
    for line in stream:
        yield line if len(line) <= 8192 else line[:8192] + " ...[truncated]\n"


def _config(paths: tuple[str, ...]) -> tuple[Any, Any]:
    """(ConfigFacts, Redactor) from ``--config`` paths, or (None, None)."""
    if not paths:
        return None, None
    from maildoctor.cli.common import fail_unusable
    from maildoctor.config.check import check
    from maildoctor.errors import ConfigLoadError
    from maildoctor.secrets import Redactor
    from maildoctor.synapse.logs.explain import ConfigFacts

    try:
        result = check(list(paths))
    except ConfigLoadError as exc:
        fail_unusable(exc)
    redactor = Redactor()
    settings = result.settings
    user = settings.smtp_user if isinstance(settings.smtp_user, str) else None
    redactor.add(settings.smtp_pass, [user])
    return ConfigFacts.from_check(result, redactor), redactor


def _text(items: list[Any], source: str, lines: int, config: bool, color: bool | None) -> None:
    from maildoctor.printable import printable_lines

    def out(text: str = "", **style: Any) -> None:
        text = printable_lines(text)  # log lines may carry terminal control sequences
        click.echo(click.style(text, **style) if style else text, color=color)

    if not items:
        out(f"{source}: no email failures found in {lines} lines.", fg="green")
        return
    total = sum(item.group.count for item in items)
    out(f"{source}: {total} email failure(s) in {len(items)} group(s), {lines} lines read.\n",
        bold=True)
    for number, item in enumerate(items, start=1):
        g, first = item.group, item.group.first
        when = first.timestamp or f"line {first.line_no}"
        if g.count > 1:
            when += f" .. {g.last_timestamp or f'line {g.last_line}'}"
        out(f"{number}. {item.explanation.title}  x{g.count}  ({when})", fg="red", bold=True)
        if first.summary and first.kind != "hang":
            out(f"   logged: {first.summary}")
        if g.mails:
            out(f"   mail: {', '.join(g.mails)}")
        if first.kind in ("hang", "pass-without-user") and first.request:
            to = f" (mail to {', '.join(g.recipients)})" if g.recipients else ""
            out(f"   request: {first.request}{to}")
        if first.kind in ("hang", "pass-without-user") and g.confirmed:
            out(f"   confirmed: the client gave up waiting {g.confirmed} time(s)")
        if first.kind == "hang" and g.confirmed < g.count:
            out("   note: nothing else was logged for the request up to the end of the log; "
                "a send still in progress when the log was cut would look the same")
        out(f"   effect: {item.effect}")
        if len(item.causes) == 1:
            label = "cause (settled by the config)" if item.certain else "cause"
        else:
            label = "candidate causes" + (" (narrowed by the config)" if item.narrowed else "")
            label += ", most likely first" if item.ranked_by else ""
        out(f"   {label}:")
        for cause in item.causes:
            out(f"     - {cause.text}")
            out(f"       fix: {cause.fix}", fg="cyan")
        for why in item.narrowed_by:
            out(f"   because: {why}")
        for why in item.ranked_by:
            out(f"   more likely: {why}")
        if item.hint:
            out(f"   provider hint: {item.hint}", fg="yellow")
        if item.suggest_probe:
            probe = "maildoctor probe -c CONFIG" if not config else "maildoctor probe"
            out(f"   next: run `{probe}` to test the server the way Synapse does")
        if first.excerpt:
            out("   excerpt:", dim=True)
            for line in first.excerpt:
                out(f"     | {line}", dim=True)
        out()


@click.command("explain")
@click.argument("logfile", required=False, metavar="[LOGFILE|-]")
@click.option("-c", "--config", "config", multiple=True, metavar="PATH",
              type=click.Path(), help="Synapse config file(s), to narrow the causes.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--color/--no-color", default=None, help="Force colours on or off.")
def command(logfile: str | None, config: tuple[str, ...], fmt: str, color: bool | None) -> None:
    """Find email failures in Synapse's log and explain each one.

    LOGFILE is homeserver.log, `journalctl -u matrix-synapse` output or `docker logs`
    output; `-` or nothing reads standard input. Exit status: 0 no email failure found,
    1 failures found, 2 unreadable input or config.
    """
    from maildoctor.synapse.logs.explain import explain_group
    from maildoctor.synapse.logs.scan import scan

    if logfile in (None, "-") and sys.stdin.isatty():
        # A terminal, not a pipe: nobody types a log. Without an argument that is a usage
        # mistake; with `-` the wait is said, so it is not taken for a hang.
        if logfile is None:
            raise click.UsageError(
                "give Synapse's log: `maildoctor explain /var/log/matrix-synapse/"
                "homeserver.log`, or pipe it: `journalctl -u matrix-synapse | maildoctor "
                "explain -`")
        click.echo("maildoctor explain: reading Synapse's log from standard input; paste it, "
                   "then press Ctrl-D (or give the log file as an argument)", err=True)
    facts, redactor = _config(config)
    source = "stdin" if logfile in (None, "-") else str(logfile)
    try:
        with _open(logfile) as stream:
            result = scan(_lines(stream), redactor)
    except OSError as exc:
        click.secho(f"maildoctor: cannot read {source}: {exc.strerror or exc}", fg="red",
                    err=True)
        sys.exit(ExitStatus.UNUSABLE)
    if result.records == 0 and not result.groups:
        click.secho(f"maildoctor: {source}: no Synapse log lines found "
                    f"({result.lines} lines read)", fg="red", err=True)
        sys.exit(ExitStatus.UNUSABLE)
    items = [explain_group(group, facts) for group in result.groups]
    if fmt == "json":
        json.dump({"version": 1, "source": source, "lines": result.lines,
                   "failures": [item.to_json() for item in items]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        if color is None and os.environ.get("NO_COLOR"):
            color = False
        _text(items, source, result.lines, bool(config), color)
    sys.exit(ExitStatus.PROBLEMS if items else ExitStatus.OK)
