"""``maildoctor relay``: run the local relay, and look after its queue.

    maildoctor relay run CONFIG      foreground; SIGTERM/SIGINT stop it gracefully
    maildoctor relay status          queue depth, oldest age, each upstream's last error
    maildoctor relay list            the messages (``--state dead`` for the dead letters)
    maildoctor relay retry ID|--all  make queued/dead messages due now
    maildoctor relay drop ID         delete a message for good

The commands other than ``run`` only read and write the queue file, so they work while the
relay runs (SQLite's WAL mode lets them) and while it does not.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import click

from maildoctor.cli.common import config_paths_arguments, fail_unusable, resolve_paths
from maildoctor.cli.exit_status import ExitStatus
from maildoctor.relay.options import DEFAULT_PORT, DEFAULT_QUEUE, LOOPBACK

QUEUE_ENV = "MAILDOCTOR_RELAY_QUEUE"


def _default_queue() -> str:
    return os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT``, ``HOST`` or ``:PORT``."""
    host, port = text.strip(), default_port
    if host.startswith("["):
        inner, _, rest = host[1:].partition("]")
        host = inner
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif host.count(":") == 1:
        host, _, raw = host.partition(":")
        port = _port(raw, text)
    return host or "127.0.0.1", port


def _port(raw: str, text: str) -> int:
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise click.BadParameter(f"{text!r}: expected HOST:PORT with a port from 0 to 65535")
    return int(raw)


queue_option = click.option(
    "--queue", "queue_path", metavar="PATH", default=_default_queue,
    show_default=f"${QUEUE_ENV} or {DEFAULT_QUEUE}", help="The relay's queue file.")


def _open_queue(path: str, *, write: bool = False) -> Any:
    """The queue, read-only unless ``write`` (status and list work on a read-only mount)."""
    from maildoctor.errors import UsageError
    from maildoctor.relay.queue import Queue

    try:
        return Queue(path, create=False, readonly=not write)
    except UsageError as exc:
        click.echo(f"maildoctor: {exc}", err=True)
        sys.exit(ExitStatus.UNUSABLE)


def _write_or_exit(change: Any) -> Any:
    """Run a change to the queue; a refused write (disk full, read-only) exits 2 with why."""
    from maildoctor.errors import StorageError

    try:
        return change()
    except StorageError as exc:
        click.echo(f"maildoctor: {exc}", err=True)
        sys.exit(ExitStatus.UNUSABLE)


@click.group("relay")
def command() -> None:
    """A local SMTP relay for Synapse: durable queue, retries, XOAUTH2, plain-word errors."""


@command.command("run")
@config_paths_arguments
@click.option("--listen", default=f"127.0.0.1:{DEFAULT_PORT}", show_default=True,
              metavar="HOST:PORT", help="Where Synapse connects (loopback only).")
@queue_option
@click.option("--allow", multiple=True, metavar="CIDR",
              help=f"Clients allowed to send (repeatable). Default: {', '.join(LOOPBACK)}.")
@click.option("--metrics", metavar="HOST:PORT", help="Serve Prometheus metrics here "
              "(loopback), e.g. 127.0.0.1:9125.")
@click.option("--xoauth2-token-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Log in with XOAUTH2 using the access token in FILE (re-read on change).")
@click.option("--xoauth2-token-command", metavar="CMD", help="Log in with XOAUTH2 using the "
              "token CMD prints (bare, or JSON with access_token and expires_in).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
              help="Also trust this CA for the upstream's certificate.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Upstream connections at most.")
@click.option("--max-size", type=click.IntRange(1024), default=10 * 1024 * 1024,
              show_default=True, help="Largest message accepted, in bytes (552 above).")
@click.option("--retry-base", type=click.FloatRange(0.01), default=30.0, show_default=True,
              help="Seconds before the first retry; doubles on each failure.")
@click.option("--retry-max", type=click.FloatRange(0.01), default=3600.0, show_default=True,
              help="Longest wait between retries, in seconds.")
@click.option("--max-age", type=click.FloatRange(1), default=5 * 86400.0, show_default=True,
              help="Give up (dead-letter) on a message this many seconds old.")
@click.option("--fallback", "fallback_path", type=click.Path(dir_okay=False), metavar="CONFIG",
              help="A second upstream (a Synapse-style config like CONFIG), used when the "
              "first fails with a connection error or a 4xx (Postfix's smtp_fallback_relay).")
@click.option("--keep", type=click.FloatRange(0), default=7 * 86400.0, show_default=True,
              help="Seconds a delivered message stays listed before it is pruned.")
@click.option("--max-connections", type=click.IntRange(1, 10000), default=50,
              show_default=True, help="Client sessions at once; idle ones make room.")
@click.option("--max-recipients", type=click.IntRange(1, 100000), default=1000,
              show_default=True, help="Recipients per message (452 4.5.3 above).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True, help="The least severe log lines written.")
def run(paths: tuple[str, ...], config: tuple[str, ...], listen: str, queue_path: str,
        allow: tuple[str, ...], metrics: str | None, xoauth2_token_file: str | None,
        xoauth2_token_command: str | None, ca_file: str | None, concurrency: int,
        max_size: int, retry_base: float, retry_max: float, max_age: float,
        fallback_path: str | None, keep: float, max_connections: int, max_recipients: int,
        log_level: str) -> None:
    """Run the relay in the foreground, delivering to the server in CONFIG's email: block.

    CONFIG is a Synapse-style config whose email: block names the UPSTREAM server (your
    provider), not the relay. Logs go to stderr as key=value lines. Exit status: 0 after a
    graceful stop (SIGTERM/SIGINT), 2 unusable config or options.
    """
    import logging

    from maildoctor.config.load import load
    from maildoctor.config.settings import settings_from_config
    from maildoctor.errors import ConfigLoadError, MaildoctorError
    from maildoctor.relay import Relay, RelayOptions
    from maildoctor.relay.logs import KeyValueFormatter
    from maildoctor.relay.upstream_config import check_upstream

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    relay_logger = logging.getLogger("maildoctor.relay")
    relay_logger.addHandler(handler)
    relay_logger.setLevel(log_level.upper())
    relay_logger.propagate = False
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's chatter
    try:
        loaded = load(resolve_paths(paths, config))
        check_upstream(loaded)
        fallback = None
        if fallback_path is not None:
            fallback = load([fallback_path])
            check_upstream(fallback, "the --fallback config")
    except ConfigLoadError as exc:
        fail_unusable(exc)
    host, port = parse_hostport(listen, DEFAULT_PORT)
    metrics_host, metrics_port = (parse_hostport(metrics, 9125) if metrics
                                  else ("127.0.0.1", None))
    try:
        directory = os.path.dirname(os.path.abspath(queue_path))
        os.makedirs(directory, exist_ok=True)
        options = RelayOptions(
            upstream=settings_from_config(loaded.merged), listen_host=host, listen_port=port,
            queue_path=queue_path, allow=allow or LOOPBACK, ca_file=ca_file,
            max_message_size=max_size, retry_base=retry_base, retry_max=retry_max,
            max_age=max_age, concurrency=concurrency, metrics_port=metrics_port,
            metrics_host=metrics_host, xoauth2_token_file=xoauth2_token_file,
            xoauth2_token_command=xoauth2_token_command,
            fallback=settings_from_config(fallback.merged) if fallback else None, keep=keep,
            max_connections=max_connections, max_recipients=max_recipients)
        Relay(options).run_forever()
    except (MaildoctorError, OSError) as exc:
        click.echo(f"maildoctor relay: {exc}", err=True)
        sys.exit(ExitStatus.UNUSABLE)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


@command.command("status")
@queue_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: counts, upstreams, dead letters and bounces.")
def status(queue_path: str, fmt: str) -> None:
    """Queue depth, oldest message, and each upstream's last error in plain words.

    Exit status: 0 healthy, 1 an upstream is failing or there are dead letters, 2 no queue.
    """
    queue = _open_queue(queue_path)
    now = time.time()
    counts, oldest = queue.counts(), queue.oldest_age(now)
    upstreams, dead = queue.upstreams(), queue.list("dead", limit=20)
    bounces = queue.bounces(limit=20)
    healthy = not any(u.failing for u in upstreams) and counts["dead"] == 0
    if fmt == "json":
        click.echo(json.dumps({
            "version": 1, "queue": queue_path, "counts": counts,
            "oldest_queued_age_seconds": oldest, "healthy": healthy,
            "upstreams": [u.to_json() for u in upstreams],
            "dead": [m.to_json() for m in dead],
            "bounces": [m.to_json() for m in bounces]}, indent=2))
        sys.exit(ExitStatus.OK if healthy else ExitStatus.PROBLEMS)
    _say(f"queue {queue_path}")
    age = f" (oldest accepted {_ago(oldest)})" if oldest is not None else ""
    _say(f"  queued {counts['queued']}{age}, delivered {counts['delivered']}, "
               f"dead {counts['dead']}")
    with_roles = sum(1 for up in upstreams if up.role) > 1
    for up in upstreams:
        role = f" ({up.role})" if up.role and with_roles else ""
        if up.failing:
            since = _ago(now - up.error_at) if up.error_at else "?"
            last_ok = _ago(now - up.ok_at) if up.ok_at else "never"
            _say(f"upstream {up.upstream}{role}: FAILING (last error {since}, last "
                       f"delivery {last_ok})")
            _say(f"  cause: {up.last_error}")
            if up.last_fix:
                _say(f"  fix:   {up.last_fix}")
        else:
            _say(f"upstream {up.upstream}{role}: ok (last delivery "
                       f"{_ago(now - up.ok_at) if up.ok_at else 'never'}"
                       f"{f', {up.delivered} delivered' if with_roles else ''})")
    if dead:
        _say("dead letters (`maildoctor relay retry ID` sends one again):")
        for m in dead:
            _say(f"  #{m.id} {m.message_id or '(no Message-ID)'} to "
                       f"{', '.join(m.recipients)}: {m.last_error}")
    if bounces:
        _say("refused recipients (the others got the mail):")
        for m in bounces:
            for recipient, reply in m.refused.items():
                _say(f"  #{m.id} {m.message_id or '(no Message-ID)'} <{recipient}>: "
                           f"{reply}")
    sys.exit(ExitStatus.OK if healthy else ExitStatus.PROBLEMS)


def _say(text: str) -> None:
    """One line of status or list output: queue contents (server replies, Message-IDs and
    addresses from Synapse's mails) made printable first."""
    from maildoctor.printable import printable

    click.echo(printable(text))


@command.command("list")
@queue_option
@click.option("--state", type=click.Choice(["queued", "delivered", "dead"]),
              help="Only messages in this state.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True,
              help="At most this many messages.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one object per message.")
def list_messages(queue_path: str, state: str | None, limit: int, fmt: str) -> None:
    """The messages in the queue, oldest first."""
    messages = _open_queue(queue_path).list(state, limit=limit)
    if fmt == "json":
        click.echo(json.dumps([m.to_json() for m in messages], indent=2))
        return
    for m in messages:
        extra = f" ({m.attempts} attempts) {m.last_error}" if m.last_error else ""
        _say(f"#{m.id} {m.state:<9} {m.message_id or '-'} {m.sender or '<>'} -> "
                   f"{', '.join(m.recipients)}{extra}")


@command.command("retry")
@queue_option
@click.argument("message_id", type=int, required=False)
@click.option("--all", "all_", is_flag=True, help="Every queued and dead message.")
def retry(queue_path: str, message_id: int | None, all_: bool) -> None:
    """Make a queued or dead message (or --all) due now. Exit 1 if nothing matched."""
    if (message_id is None) == (not all_):
        raise click.UsageError("give a message ID or --all (not both)")
    changed = _write_or_exit(lambda: _open_queue(queue_path, write=True).retry(
        None if all_ else message_id))
    click.echo(f"{changed} message(s) will be tried again now")
    sys.exit(ExitStatus.OK if changed else ExitStatus.PROBLEMS)


@command.command("drop")
@queue_option
@click.argument("message_id", type=int)
def drop(queue_path: str, message_id: int) -> None:
    """Delete a message from the queue for good. Exit 1 if there is no such message."""
    if _write_or_exit(lambda: _open_queue(queue_path, write=True).drop(message_id)):
        click.echo(f"message {message_id} dropped")
        return
    click.echo(f"maildoctor: no message {message_id} in {queue_path}", err=True)
    sys.exit(ExitStatus.PROBLEMS)
