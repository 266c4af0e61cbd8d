"""``maildoctor rules [CODE]``: list the rules, or explain one."""

from __future__ import annotations

import sys

import click

from maildoctor.cli.exit_status import ExitStatus


@click.command("rules")
@click.argument("code", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: code, name, severity, summary and doc per rule.")
def command(code: str | None, fmt: str) -> None:
    """List every rule, or explain the rule CODE (a code like MD101 or a name)."""
    import json

    from maildoctor.config.rules import all_rules, find_rule

    if code:
        found = find_rule(code)
        if found is None:
            click.echo(f"maildoctor: no rule {code!r} (see `maildoctor rules`)", err=True)
            sys.exit(ExitStatus.UNUSABLE)
        rules = [found]
    else:
        rules = list(all_rules().values())
    if fmt == "json":
        json.dump([{"code": r.code, "name": r.name, "severity": r.severity.value,
                    "summary": r.summary, "doc": r.doc} for r in rules], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    if code:
        r = rules[0]
        click.echo(f"{r.code} {r.name} ({r.severity.value})\n\n{r.summary}.\n\n{r.doc}")
        return
    width = max(len(r.name) for r in rules)
    for r in rules:
        click.echo(f"{r.code}  {r.name:<{width}}  {r.severity.value:<7}  {r.summary}")
