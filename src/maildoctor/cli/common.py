"""Options and error handling shared by the commands that read a Synapse config."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from maildoctor.cli.exit_status import ExitStatus
from maildoctor.errors import ConfigLoadError


def config_paths_arguments(func: Callable[..., Any]) -> Callable[..., Any]:
    """``PATHS...`` and repeatable ``-c PATH``, merged in the order given (like Synapse)."""
    with_config = click.option(
        "-c", "--config", "config", multiple=True, metavar="PATH", type=click.Path(),
        help="A config file or directory (repeatable, like Synapse's -c).")(func)
    return click.argument("paths", nargs=-1, type=click.Path())(with_config)


class MailAddress(click.types.StringParamType):
    """A recipient on the command line: a bare ``local@domain`` (what Synapse mails to)."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        from maildoctor.addresses import is_plain_address
        from maildoctor.printable import printable

        text = str(value).strip()
        if not is_plain_address(text):
            self.fail(f"{printable(text)!r} is not a mail address: give a bare local@domain, "
                      "without a name, angle brackets or a list", param, ctx)
        return text


def synapse_python_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--synapse-python PATH``: the interpreter Synapse runs under (``none``: do not look)."""
    return click.option(
        "--synapse-python", metavar="PATH",
        help="The python Synapse runs under (its venv's bin/python): its Synapse, Twisted and "
        "OpenSSL are read from it, and the check runs as that Synapse. Default: look in the "
        "usual places (Debian's /opt/venvs/matrix-synapse, the container image, "
        "synapse_homeserver on PATH); `none` to skip.")(func)


def start_observing(synapse_python: str | None) -> Callable[[str | None], tuple[Any, str | None]]:
    """Start looking at where Synapse runs (its interpreter is asked in a subprocess) while
    the command imports and loads the rest; call the result with ``--synapse-version`` to get
    ``(environment, version to check as)``: the given version when there is one, else the
    installed Synapse's (clamped to what maildoctor knows, with a note)."""
    import threading

    from maildoctor.host import observe

    # A plain thread, not concurrent.futures (which imports logging: 10 ms of `check`).
    observed: list[Any] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            observed.append(observe(synapse_python))
        except BaseException as exc:  # re-raised in the caller's thread, as a future would
            failed.append(exc)

    thread = threading.Thread(target=run, name="maildoctor-host", daemon=True)
    thread.start()

    def result(synapse_version: str | None) -> tuple[Any, str | None]:
        thread.join()  # bounded: observe's subprocess has a timeout
        if failed:
            raise failed[0]
        environment = observed[0]
        if synapse_version is None and environment.checked_as is not None:
            return environment, environment.checked_as
        return environment, synapse_version

    return result


ORDER_KEY = "maildoctor.config_path_order"


class ConfigCommand(click.Command):
    """A command reading config paths: remembers the order in which they were given.

    Synapse merges ``-c`` files in command-line order, later ones winning. Click collects a
    positional argument and a repeated option separately, which loses how they interleave
    (``check homeserver.yaml -c conf.d`` means homeserver.yaml first), so the order is
    read from the raw arguments before Click parses them.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[ORDER_KEY] = _path_order(self, args)
        return super().parse_args(ctx, args)


def _path_order(command: click.Command, args: list[str]) -> list[str]:
    takes_value = {opt for p in command.params if isinstance(p, click.Option)
                   and not p.is_flag and not p.count for opt in (*p.opts, *p.secondary_opts)}
    order: list[str] = []
    it = iter(args)
    for token in it:
        if token == "--":
            order.extend(it)
            break
        if token in ("-c", "--config"):
            value = next(it, None)
            if value is not None:
                order.append(value)
        elif token.startswith("--config="):
            order.append(token.split("=", 1)[1])
        elif token.startswith("-c") and not token.startswith("--") and len(token) > 2:
            order.append(token[2:])
        elif token in takes_value:
            next(it, None)
        elif token.startswith("-") and token != "-":
            continue
        else:
            order.append(token)
    return order


def resolve_paths(paths: tuple[str, ...], config: tuple[str, ...]) -> list[str]:
    """Config paths in the order given on the command line (Synapse's merge order)."""
    ctx = click.get_current_context(silent=True)
    given = ctx.meta.get(ORDER_KEY) if ctx is not None else None
    if given is not None and sorted(given) == sorted([*paths, *config]):
        all_paths = list(given)
    else:
        all_paths = [*paths, *config]
    if not all_paths:
        sub = ctx.command_path.split(" ", 1)[1] if ctx and " " in ctx.command_path else "check"
        name = f"maildoctor {sub}"
        raise click.UsageError("give the config file(s) Synapse uses, e.g. "
                               f"`{name} /etc/matrix-synapse/homeserver.yaml`")
    return all_paths


def fail_unusable(exc: ConfigLoadError, fmt: str = "text") -> NoReturn:
    """Report an unusable config and exit 2: a located, traceback-free message on stderr,
    and with a machine ``--format`` also its document on stdout (JSON, annotations, SARIF),
    so CI gets one on broken input too."""
    from maildoctor.render import FORMATS, renderer
    from maildoctor.render.text import render_load_error

    if fmt != "text" and fmt in FORMATS:
        renderer(fmt).render_load_error(exc, sys.stdout)
        sys.stdout.flush()
    render_load_error(exc, sys.stderr)
    sys.exit(ExitStatus.UNUSABLE)
