"""``maildoctor probe``: test the SMTP server stage by stage, as Synapse would use it, and
name the root cause, the key to change, and what Synapse will do."""

from __future__ import annotations

import sys

import click

from maildoctor.cli.common import (
    ConfigCommand,
    MailAddress,
    config_paths_arguments,
    fail_unusable,
    resolve_paths,
    start_observing,
    synapse_python_option,
)
from maildoctor.cli.exit_status import ExitStatus

STOP_POINTS = ("resolve", "connect", "tls", "ehlo", "auth", "envelope")
MARK = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red"),
        "skipped": ("-", "dim")}


@click.command("probe", cls=ConfigCommand)
@config_paths_arguments
@click.option("--to", type=MailAddress(), metavar="ADDRESS",
              help="Also test RCPT TO for this recipient, a bare local@domain (no mail is "
              "sent: the probe never sends DATA).")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True,
              help="Seconds to wait for each step (a reply, a handshake).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
              help="Also trust this CA (what SSL_CERT_FILE would do for Synapse).")
@click.option("--all-mechanisms", is_flag=True,
              help="Also try every offered AUTH mechanism and report which work. Each failed "
              "try counts as a failed login at the server (fail2ban, provider lockouts).")
@click.option("--stop-after", type=click.Choice(STOP_POINTS),
              help="Stop after this stage (e.g. test the connection before logging in).")
@click.option("--allow-plaintext-auth", is_flag=True,
              help="Allow sending the password without TLS to a non-local host.")
@click.option("-v", "--verbose", is_flag=True, help="Show the SMTP transcript (secrets hidden).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: the diagnosis, the stages and the findings.")
@click.option("--synapse-version", metavar="X.Y[.Z]",
              help="Check the config as this Synapse version reads it (default: the installed "
              "Synapse's, else the newest known).")
@synapse_python_option
@click.option("--resolver", metavar="IP[:PORT]",
              help="Send every DNS question of the probe to this server (split-horizon DNS, "
              "tests) instead of the system's resolver.")
@click.option("--sending-ip", "sending_ips", metavar="IP", multiple=True,
              help="The public address your mail leaves from, to evaluate SPF for (default: "
              "smtp_host's addresses when public). Repeatable.")
@click.option("--no-sender-dns", is_flag=True,
              help="Skip the sender-dns stage (SPF, DKIM, DMARC of notif_from's domain).")
@click.option("--no-links", is_flag=True,
              help="Skip the links stage (the links of Synapse's mails through your proxy).")
@click.option("--color/--no-color", default=None, help="Force colours on or off.")
def command(paths: tuple[str, ...], config: tuple[str, ...], to: str | None, timeout: float,
            ca_file: str | None, all_mechanisms: bool, stop_after: str | None,
            allow_plaintext_auth: bool, verbose: bool, fmt: str, synapse_version: str | None,
            synapse_python: str | None, resolver: str | None,
            sending_ips: tuple[str, ...], no_sender_dns: bool, no_links: bool,
            color: bool | None) -> None:
    """Probe the SMTP server in Synapse's config and predict what Synapse will do.

    Stages: resolve, connect, TLS mode, certificate, greeting, EHLO, STARTTLS, AUTH,
    envelope (MAIL FROM, and RCPT TO with --to), then after Synapse's part: sender-dns
    (will receivers accept mail from notif_from's domain) and links (do the links in the
    mails reach Synapse through the proxy). No mail is sent.
    Exit status: 0 Synapse would send and the mail would be accepted, 1 it would fail or
    hang, receivers will reject it, or its links are dead, 2 unusable input.
    """
    observed = start_observing(synapse_python)  # runs while the rest is imported
    from maildoctor.cli.versions import checked_synapse_version
    from maildoctor.doctor import probe_config

    synapse_version = checked_synapse_version(synapse_version)
    environment, synapse_version = observed(synapse_version)
    from maildoctor.errors import ConfigLoadError
    from maildoctor.render import probe_text
    from maildoctor.smtp.report import ProbeOptions

    options = ProbeOptions(timeout=timeout, ca_file=ca_file, to=to,
                           all_mechanisms=all_mechanisms, stop_after=stop_after,
                           allow_plaintext_auth=allow_plaintext_auth, verbose=verbose,
                           resolver=_resolver_option(resolver),
                           sending_ips=_ip_options(sending_ips),
                           sender_dns=not no_sender_dns, links=not no_links)
    console = probe_text.make_console(color) if fmt == "text" else None
    try:
        with probe_text.progress(console, timeout) as on_stage:
            run = probe_config(resolve_paths(paths, config), options,
                               synapse_version=synapse_version, on_stage=on_stage,
                               environment=environment)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--synapse-version") from exc
    except ConfigLoadError as exc:
        fail_unusable(exc, fmt)
    if fmt == "json":
        from maildoctor.render import probe_json

        probe_json.render(run, sys.stdout, verbose=verbose)
    else:
        assert console is not None
        probe_text.render(console, run.check, run.report, run.diagnosis, verbose=verbose)
    sys.exit(ExitStatus.OK if run.diagnosis.ok else ExitStatus.PROBLEMS)


def _resolver_option(text: str | None) -> tuple[str, int] | None:
    from maildoctor.resolver import parse_resolver_address

    if text is None:
        return None
    try:
        return parse_resolver_address(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--resolver") from exc


def _ip_options(values: tuple[str, ...]) -> tuple[str, ...]:
    import ipaddress

    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError as exc:
            raise click.BadParameter(f"{value!r} is not an IP address",
                                     param_hint="--sending-ip") from exc
    return values
