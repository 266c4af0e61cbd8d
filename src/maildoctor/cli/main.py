"""The ``maildoctor`` command. A thin layer: each subcommand lives in its own module under
``maildoctor.cli`` and is imported only when used, so ``maildoctor check`` starts fast."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# command name -> (module under maildoctor.cli, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("check", "command", "Check Synapse's email config the way Synapse reads it."),
    "rules": ("rules", "command", "List the rules, or explain one."),
    "fix": ("fix", "command", "Apply the safe fixes check proposes, keeping comments and layout."),
    "probe": ("probe", "command", "Test the SMTP server stage by stage and predict Synapse."),
    "shell": ("shell", "command", "Interactive SMTP session in the config's TLS mode."),
    "send": ("send", "command",
             "Send a Synapse-identical mail (maildoctor's engine or Twisted's)."),
    "templates": ("templates", "command", "Check or preview email templates."),
    "testserver": ("testserver", "command", "Run the built-in fault-injecting SMTP server."),
    "init": ("init", "command", "Print (or merge) a provider's email: block."),
    "providers": ("providers", "command", "List the mail providers init knows."),
    "explain": ("explain", "command", "Find and explain the email failures in Synapse's logs."),
    "relay": ("relay", "command",
              "Run the local relay Synapse sends through; queue status, retry, drop."),
    "schema": ("schema", "command", "Print a JSON Schema of the email: section (for editors)."),
    "exporter": ("exporter", "command",
                 "Serve Prometheus metrics probing many homeservers' mail (/probe?target=)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (mod, _, _) in COMMANDS.items() if _module_exists(mod)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _module_exists(entry[0]):
            return None
        module = importlib.import_module(f"maildoctor.cli.{entry[0]}")
        cmd: click.Command = getattr(module, entry[1])
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _module_exists(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(f"maildoctor.cli.{mod}") is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="maildoctor")
def cli() -> None:
    """maildoctor: make a Matrix homeserver's email work, and say why when it doesn't.

    Exit codes: 0 fine, 1 problems found (or Synapse would fail to send), 2 unusable input.
    """


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="maildoctor")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
