"""``maildoctor providers``: list the provider library (or show one provider in full)."""

from __future__ import annotations

import json
import sys

import click

from maildoctor.cli.exit_status import ExitStatus

_TLS_LABEL = {"force_tls": "implicit TLS", "starttls": "STARTTLS", "none": "no TLS"}


@click.command("providers")
@click.argument("name", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
def command(name: str | None, fmt: str) -> None:
    """List the providers `maildoctor init --provider NAME` knows, or show one in detail."""
    from maildoctor.providers import get_provider, load_providers

    providers = load_providers()
    chosen = list(providers.values())
    if name is not None:
        one = get_provider(name)
        if one is None:
            raise click.BadParameter(f"unknown provider {name!r}; known: {', '.join(providers)}",
                                     param_hint="NAME")
        chosen = [one]
    if fmt == "json":
        rows = [{"name": p.name, "title": p.title, "host": p.host, "port": p.port,
                 "tls": p.tls, "auth": p.auth, "user": p.user, "note": p.note,
                 "auth_notes": list(p.auth_notes), "sender_rules": list(p.sender_rules),
                 "host_patterns": list(p.host_patterns)} for p in chosen]
        json.dump({"version": 1, "providers": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        sys.exit(ExitStatus.OK)
    if name is None:
        width = max(len(p.name) for p in chosen)
        hosts = max(len(f"{p.host}:{p.port}") for p in chosen)
        for p in chosen:
            click.echo(f"{p.name:<{width}}  {p.host + ':' + str(p.port):<{hosts}}  "
                       f"{_TLS_LABEL[p.tls]:<12}  {p.note}")
        click.echo("\nDetails: maildoctor providers NAME; a config block: "
                   "maildoctor init --provider NAME")
        sys.exit(ExitStatus.OK)
    p = chosen[0]
    click.echo(f"{p.title} ({p.name})\n  {p.host}:{p.port}, {_TLS_LABEL[p.tls]}")
    for alt in p.alternatives:
        click.echo(f"  or {alt}")
    if p.auth:
        click.echo(f"  smtp_user: {p.user_help or p.user}\n  smtp_pass: {p.password_help}")
    for title, items in (("Authentication", p.auth_notes), ("Sender", p.sender_rules)):
        if items:
            click.echo(f"{title}:")
            for item in items:
                click.echo(f"  - {item}")
    sys.exit(ExitStatus.OK)
