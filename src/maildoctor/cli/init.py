"""``maildoctor init --provider NAME``: print (or merge) a correct, commented email: block.

The block comes from the provider library (:mod:`maildoctor.providers`). With
``--merge PATH`` it goes into an existing config through
:func:`maildoctor.config.merge_block.merge_email_block` (atomic, with a ``.bak``); the
password stays a placeholder that ``maildoctor check`` flags (MD206) until it is filled in.
"""

from __future__ import annotations

import sys

import click

from maildoctor.cli.exit_status import ExitStatus


@click.command("init")
@click.option("--provider", "provider_name", metavar="NAME",
              help="A provider from `maildoctor providers` (gmail, amazon-ses, ...).")
@click.option("--region", metavar="REGION", help="Region, for regional providers (amazon-ses).")
@click.option("--user", metavar="LOGIN", help="The SMTP login (smtp_user).")
@click.option("--from", "sender", metavar="ADDR",
              help='notif_from, e.g. "Example Matrix <noreply@example.org>".')
@click.option("--app-name", default="Matrix", show_default=True, help="app_name.")
@click.option("--merge", "merge_path", metavar="PATH", type=click.Path(dir_okay=False),
              help="Write the block into this config file instead of printing it.")
@click.option("--force", is_flag=True, help="With --merge: replace an existing email: block.")
@click.option("--relay", is_flag=True,
              help="The block that points Synapse at `maildoctor relay` on this host (the "
              "provider's block then goes in the relay's own config).")
@click.option("--relay-port", type=click.IntRange(1, 65535), default=2525, show_default=True,
              help="With --relay: the port the relay listens on.")
def command(provider_name: str | None, region: str | None, user: str | None,
            sender: str | None, app_name: str, merge_path: str | None, force: bool,
            relay: bool, relay_port: int) -> None:
    """Print a commented email: block for a provider, or merge it into a config file.

    Exit status: 0 done, 2 unknown provider, bad option, or a file that cannot be merged.
    """
    from maildoctor.providers import get_provider, load_providers
    from maildoctor.providers.template import BlockOptions, render_email_block

    if relay:
        if provider_name:
            raise click.UsageError(
                "--relay and --provider go to different files: `maildoctor init --relay` for "
                "homeserver.yaml, `maildoctor init --provider NAME` for the relay's config")
        _print_or_merge(_relay_block(relay_port, sender), merge_path, force)
        return
    if not provider_name:
        raise click.UsageError("give --provider NAME (see `maildoctor providers`)")
    provider = get_provider(provider_name)
    if provider is None:
        import difflib

        known = list(load_providers())
        close = difflib.get_close_matches(provider_name.lower(), known, n=1, cutoff=0.6)
        hint = (f"; did you mean {close[0]!r}?" if close else
                f"; known: {', '.join(known)} (`maildoctor providers` describes them)")
        raise click.BadParameter(f"unknown provider {provider_name!r}{hint}",
                                 param_hint="--provider")
    if user and not provider.auth:
        click.echo(f"note: {provider.name} takes mail without a login; --user ignored", err=True)
    if user and provider.fixed_user:
        click.echo(f"note: {provider.name} always uses smtp_user {provider.fixed_user!r}; "
                   "--user ignored", err=True)
    try:
        block = render_email_block(provider, BlockOptions(region, user, sender, app_name))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--region") from exc
    next_step = (f"next: put the real password in smtp_pass, then run `maildoctor check "
                 f"{merge_path}` and `maildoctor probe {merge_path}`") if provider.auth else ""
    _print_or_merge(block, merge_path, force, next_step)


def _relay_block(port: int, sender: str | None) -> str:
    from maildoctor.relay import relay_email_block

    block = relay_email_block(port)
    if sender:
        block = "\n".join(
            (line.split("notif_from:")[0] + f"notif_from: {sender!r}")
            if line.lstrip().startswith("notif_from:") else line
            for line in block.splitlines()) + "\n"
    return block


def _print_or_merge(block: str, merge_path: str | None, force: bool,
                    next_step: str = "") -> None:
    """Print the block, or merge it into ``merge_path`` (atomic, with a backup); exit."""
    if merge_path is None:
        sys.stdout.write(block)
        sys.exit(ExitStatus.OK)
    from maildoctor.config.merge_block import MergeError, merge_email_block

    try:
        result = merge_email_block(merge_path, block, force=force)
    except MergeError as exc:
        click.secho(f"maildoctor: {merge_path}: {exc}", fg="red", err=True)
        sys.exit(ExitStatus.UNUSABLE)
    verb = "replaced the email: block in" if result.replaced else "added an email: block to"
    click.echo(f"{verb} {result.path}" + (f" (backup: {result.backup})" if result.backup else ""))
    if next_step:
        click.echo(next_step)
    sys.exit(ExitStatus.OK)
