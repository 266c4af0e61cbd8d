"""``maildoctor shell CONFIG``: talk SMTP by hand to the server in Synapse's config.

A thin layer over :mod:`maildoctor.smtp.interactive`: read the config, then pass
stdin lines to the session and its output to stdout. Works with stdin not a tty.
"""

from __future__ import annotations

import asyncio
import sys

import click

from maildoctor.cli.common import (
    ConfigCommand,
    config_paths_arguments,
    fail_unusable,
    resolve_paths,
)
from maildoctor.cli.exit_status import ExitStatus
from maildoctor.config.sending import sending_settings
from maildoctor.smtp.interactive import ShellOptions, run_shell


@click.command("shell", cls=ConfigCommand)
@config_paths_arguments
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait for each reply or handshake.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
              help="Also trust this CA (as SSL_CERT_FILE would for Synapse).")
@click.option("--allow-plaintext-auth", is_flag=True,
              help="Let `auth` send the credentials without verified TLS to a non-loopback "
                   "host (clear text, or TLS whose certificate was rejected).")
def command(paths: tuple[str, ...], config: tuple[str, ...], timeout: float,
            ca_file: str | None, allow_plaintext_auth: bool) -> None:
    """Interactive SMTP session in the config's TLS mode.

    Lines are sent as typed. After the first EHLO the shell sends STARTTLS (and EHLO
    again) when Synapse would. Commands: `auth [MECH]` (the configured credentials,
    never shown; refused without verified TLS to a non-loopback host unless
    --allow-plaintext-auth), `starttls`, `quit`.
    """
    from maildoctor.config.load import load
    from maildoctor.errors import ConfigLoadError

    try:
        settings = sending_settings(load(resolve_paths(paths, config)))
    except ConfigLoadError as exc:
        fail_unusable(exc)

    def blocking_read() -> str:
        return sys.stdin.readline()

    async def read_line() -> str | None:
        line = await asyncio.get_running_loop().run_in_executor(None, blocking_read)
        return line or None

    def write(text: str) -> None:
        click.echo(text)

    options = ShellOptions(timeout=timeout, ca_file=ca_file,
                           allow_plaintext_auth=allow_plaintext_auth)
    status = asyncio.run(run_shell(settings, options, read_line, write))
    sys.exit(ExitStatus.OK if status == 0 else ExitStatus.PROBLEMS)
