"""``maildoctor shell CONFIG``: talk SMTP by hand to the server in Synapse's config.

A thin layer over :mod:`maildoctor.smtp.interactive`: read the config, then pass
stdin lines to the session and its output to stdout. Works with stdin not a tty.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
import yaml

from maildoctor.cli.exit_status import ExitStatus
from maildoctor.smtp.interactive import ShellOptions, run_shell
from maildoctor.synapse.settings import settings_from_config


def _load(path: str) -> Any:
    # The lead replaces this with the multi-file loader (config/load.py).
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path}: cannot read the config: {exc}") from exc


@click.command("shell")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait for each reply or handshake.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
              help="Also trust this CA (as SSL_CERT_FILE would for Synapse).")
def command(config: str, timeout: float, ca_file: str | None) -> None:
    """Interactive SMTP session in the config's TLS mode.

    Lines are sent as typed. Commands: `auth [MECH]` (the configured credentials,
    never shown), `starttls`, `quit`.
    """
    raw = _load(config)
    if not isinstance(raw, dict):
        click.echo(f"{config}: the config is not a mapping", err=True)
        sys.exit(ExitStatus.UNUSABLE)
    settings = settings_from_config(raw)

    def blocking_read() -> str:
        return sys.stdin.readline()

    async def read_line() -> str | None:
        line = await asyncio.get_running_loop().run_in_executor(None, blocking_read)
        return line or None

    def write(text: str) -> None:
        click.echo(text)

    options = ShellOptions(timeout=timeout, ca_file=ca_file)
    status = asyncio.run(run_shell(settings, options, read_line, write))
    sys.exit(ExitStatus.OK if status == 0 else ExitStatus.PROBLEMS)
