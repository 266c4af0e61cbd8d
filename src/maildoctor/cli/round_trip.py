"""``send --imap``: the round trip's options (the password from a file or a prompt, never an
argument) and its text report."""

from __future__ import annotations

import sys

import click

from maildoctor.cli.exit_status import ExitStatus
from maildoctor.hosts import is_loopback
from maildoctor.resolver import parse_resolver_address, printable
from maildoctor.roundtrip.run import RoundTripOptions, RoundTripReport
from maildoctor.secrets import Secret


def _host_port(text: str, default: int) -> tuple[str, int]:
    host, port = text.strip(), default
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif host.count(":") == 1:
        host, _, raw = host.partition(":")
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise click.BadParameter(f"{text!r}: the port must be a number", param_hint="--imap")
        port = int(raw)
    if not host:
        raise click.BadParameter("give the IMAP server as HOST[:PORT]", param_hint="--imap")
    return host, port


def _password(path: str | None) -> Secret:
    if path is not None:
        try:
            with open(path, encoding="utf-8") as fh:
                line = fh.readline().rstrip("\r\n")
        except (OSError, UnicodeError) as exc:
            click.echo(f"maildoctor: cannot read --imap-password-file {path}: "
                       f"{getattr(exc, 'strerror', None) or exc}", err=True)
            sys.exit(ExitStatus.UNUSABLE)
        if not line:
            click.echo(f"maildoctor: --imap-password-file {path} is empty", err=True)
            sys.exit(ExitStatus.UNUSABLE)
        return Secret(line)
    if not sys.stdin.isatty():
        click.echo("maildoctor: the mailbox password: give --imap-password-file FILE (no "
                   "terminal to ask on)", err=True)
        sys.exit(ExitStatus.UNUSABLE)
    return Secret(click.prompt("IMAP password", hide_input=True))


def round_trip_options(imap: str, user: str, password_file: str | None, plain: bool,
                       ca_file: str | None, wait: float, keep: bool, resolver: str | None,
                       links: bool, timeout: float) -> RoundTripOptions:
    host, port = _host_port(imap, 143 if plain else 993)
    if plain and not is_loopback(host):
        raise click.BadParameter("IMAP without TLS would send the mailbox password in clear "
                                 "text; only for loopback", param_hint="--imap-plain")
    server = None
    if resolver is not None:
        try:
            server = parse_resolver_address(resolver)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--resolver") from exc
    return RoundTripOptions(host=host, port=port, user=user, password=_password(password_file),
                            tls=not plain, ca_file=ca_file, wait=wait, keep=keep,
                            resolver=server, links=links, timeout=min(timeout, 30.0))


def report_round_trip(got: RoundTripReport, options: RoundTripOptions) -> None:
    where = f"{printable(options.user)} at {printable(options.host)}:{options.port}"
    if not got.found:
        click.echo(f"round trip: ✗ {got.error or 'not found'}")
        return
    mark = "✗" if got.junk else "✓"
    click.echo(f"round trip: {mark} arrived in {printable(got.folder)} after "
               f"{got.seconds:.2f} s ({where})")
    for r in got.auth_results:
        props = " ".join(f"{k}={v}" for k, v in r["properties"].items())
        click.echo(f"  Authentication-Results ({r['server']}): {r['method']}={r['result']}"
                   + (f" {props}" if props else ""))
    for problem in got.auth_problems:
        click.echo(f"  ! {problem}")
    if not got.auth_results and not got.auth_problems:
        click.echo("  Authentication-Results: none (the receiving server adds none)")
    for d in got.dkim:
        click.echo(f"  DKIM here: {'✓' if d['verified'] else '✗'} d={d['d']} s={d['s']}: "
                   f"{d['detail']}")
    if not got.dkim:
        click.echo("  DKIM here: ! the mail carries no DKIM-Signature: nothing signed it")
    for link in got.links:
        click.echo(f"  link: {'✓' if link['works'] else '✗'} {link['url']}: {link['seen']}")
        if link.get("fix"):
            click.echo(f"    Fix: {link['fix']}")
    click.echo("  deleted from the mailbox" if got.deleted else "  kept in the mailbox (--keep)")
    if got.ok:
        click.echo("result: the mail arrives, authenticated, in the Inbox")
    else:
        for problem in got.problems():
            click.echo(f"problem: {problem}")
