"""``maildoctor exporter``: a Prometheus exporter probing many homeservers' mail settings."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

import click

from maildoctor.cli.exit_status import ExitStatus

DEFAULT_LISTEN = "127.0.0.1:9176"
VERB = {"error": "fails", "hang": "hangs", "no-start": "does not start",
        "untested": "is not predicted"}


def _fail(message: str) -> None:
    click.echo(f"maildoctor exporter: {message}", err=True)
    sys.exit(ExitStatus.UNUSABLE)


def _log_outcome(outcome: Any) -> None:
    from maildoctor.exporter.probe_metrics import printable

    if outcome.load_error is not None:
        text = f"config unusable: {outcome.load_error}"
    elif outcome.internal_error:
        text = f"failed inside maildoctor ({outcome.internal_error}); please report it"
    elif outcome.run.diagnosis.ok:
        text = "Synapse sends"
    else:
        d = outcome.run.diagnosis
        verb = VERB.get(str(d.synapse.kind), str(d.synapse.kind))
        text = f"Synapse {verb}: {d.root_cause}" + (
            f" [{d.code}]" if d.code else "")
    click.echo(printable(f"probe {outcome.target} ({outcome.seconds:.2f}s): {text}", 400),
               err=True)


@click.command("exporter")
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT",
              help="Where Prometheus scrapes.")
@click.option("--target", "target_options", multiple=True, metavar="NAME=CONFIG",
              help="A target: its name in scrapes, and its Synapse config file or directory "
              "(repeat a name to add -c paths in order). Repeatable.")
@click.option("--targets-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="YAML: target name -> config path, or list of paths (relative to the file).")
@click.option("--min-interval", type=click.FloatRange(0, 86400), default=60.0,
              show_default=True, metavar="SECONDS",
              help="Probe a target at most once per this interval; scrapes in between get the "
              "last result (a scrape storm cannot get a provider account locked).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Probes running at once, at most.")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=5.0, show_default=True,
              metavar="SECONDS", help="Seconds to wait for any single step of a probe.")
@click.option("--deadline", type=click.FloatRange(0.5, 600), default=30.0, show_default=True,
              metavar="SECONDS", help="Longest a scrape waits for its probe (Prometheus' "
              "scrape timeout, when it is shorter).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
              help="Also trust this CA (what SSL_CERT_FILE would do for Synapse).")
@click.option("--allow-plaintext-auth", is_flag=True,
              help="Allow sending passwords without TLS to non-local hosts.")
@click.option("--resolver", metavar="IP[:PORT]",
              help="Ask every DNS question of the probes (smtp_host, the sender domain's SPF, "
              "DKIM, DMARC) to this server instead of the system's resolver.")
@click.option("--sending-ip", "sending_ips", metavar="IP", multiple=True,
              help="The public address the mail leaves from, for the SPF verdict (repeatable).")
@click.option("--no-sender-dns", is_flag=True,
              help="Skip the sender-dns stage (SPF, DKIM, DMARC of notif_from's domain).")
@click.option("--no-links", is_flag=True,
              help="Skip the links stage (public_baseurl through the reverse proxy).")
@click.option("--synapse-version", metavar="X.Y[.Z]",
              help="Check configs as this Synapse version reads them (default: newest known).")
@click.option("--ready-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the port listened on to FILE once ready (for --listen HOST:0).")
def command(listen: str, target_options: tuple[str, ...], targets_file: str | None,
            min_interval: float, concurrency: int, timeout: float, deadline: float,
            ca_file: str | None, allow_plaintext_auth: bool, resolver: str | None,
            sending_ips: tuple[str, ...], no_sender_dns: bool, no_links: bool,
            synapse_version: str | None, ready_file: str | None) -> None:
    """Serve /probe?target=NAME for Prometheus: probe a configured homeserver's mail like
    `maildoctor probe` and answer with metrics (blackbox_exporter style), and /metrics.

    Only configured targets can be probed: a request never names a file or a host.
    SIGTERM or SIGINT stop it gracefully. Exit status: 0 stopped, 2 bad options, an unusable
    targets file, or an address it cannot listen on.
    """
    from maildoctor.cli.probe import _ip_options, _resolver_option
    from maildoctor.cli.versions import checked_synapse_version
    from maildoctor.errors import UsageError
    from maildoctor.exporter import (
        Exporter,
        ExporterServer,
        load_targets_file,
        parse_listen,
        parse_target_options,
    )
    from maildoctor.exporter.targets import merge_targets
    from maildoctor.smtp.report import ProbeOptions

    synapse_version = checked_synapse_version(synapse_version)
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from exc
    try:
        from_file = load_targets_file(targets_file) if targets_file else {}
        targets = merge_targets(parse_target_options(target_options), from_file)
    except UsageError as exc:
        _fail(str(exc))
    if not targets:
        raise click.UsageError("give at least one --target NAME=CONFIG or a --targets-file")
    options = ProbeOptions(timeout=timeout, ca_file=ca_file,
                           allow_plaintext_auth=allow_plaintext_auth,
                           resolver=_resolver_option(resolver),
                           sending_ips=_ip_options(sending_ips),
                           sender_dns=not no_sender_dns, links=not no_links)
    app = Exporter(targets, options, min_interval=min_interval, concurrency=concurrency,
                   deadline=deadline, synapse_version=synapse_version, log=_log_outcome)
    try:
        server = ExporterServer((host, port), app)
    except OSError as exc:
        _fail(f"cannot listen on {listen}: {exc.strerror or exc}")

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.stop, name="maildoctor-exporter-stop").start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"maildoctor exporter: listening on http://{shown}:{server.port} "
               f"({len(targets)} target{'s' * (len(targets) != 1)})", err=True)
    if ready_file:
        try:
            with open(ready_file, "w", encoding="utf-8") as fh:
                fh.write(f"{server.port}\n")
        except OSError as exc:
            server.server_close()
            _fail(f"cannot write --ready-file {ready_file}: {exc.strerror or exc}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    click.echo("maildoctor exporter: stopped", err=True)
    sys.exit(ExitStatus.OK)
