"""``maildoctor send``: send a mail identical to Synapse's, through maildoctor's engine or
through Twisted set up exactly as Synapse sets it up."""

from __future__ import annotations

import json
import shlex
import sys
import time
from typing import Any

import click

from maildoctor.cli.common import (
    ConfigCommand,
    MailAddress,
    config_paths_arguments,
    fail_unusable,
    resolve_paths,
)
from maildoctor.cli.exit_status import ExitStatus

#: Bumped when a key of ``send --format json`` changes meaning (as for check and probe).
JSON_VERSION = 1

#: What to say instead of the final reply when the Twisted engine sent the mail: Twisted's
#: sender fires its result with per-recipient RCPT replies only, so neither this engine nor
#: Synapse ever sees the reply to DATA that carries the queue id.
NO_REPLY_NOTE = ("not available: Twisted (and so Synapse) does not pass on the server's final "
                 "reply or its queue id. Find the mail in the mail server's log by the "
                 "Message-ID above, or send with --engine native to see the reply")

KINDS = ("test", "password-reset", "registration", "add-threepid", "already-in-use",
         "notification")


@click.command("send", cls=ConfigCommand)
@config_paths_arguments
@click.option("--to", "to", required=True, type=MailAddress(), metavar="ADDRESS",
              help="Recipient (a bare local@domain).")
@click.option("--kind", type=click.Choice(KINDS), default="test", show_default=True,
              help="Which of Synapse's mails to send.")
@click.option("--engine", type=click.Choice(["native", "synapse"]), default="native",
              show_default=True, help="native: maildoctor's engine (timeouts, retries, clear "
              "errors). synapse: Twisted configured exactly as Synapse (reproduces its hangs, "
              "under a watchdog; needs maildoctor[twisted]).")
@click.option("--dry-run", is_flag=True, help="Build the mail but do not send it.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the mail as .eml (with --dry-run, or as a copy of what is sent).")
@click.option("--correct-headers", is_flag=True,
              help="Write a standard From header where Synapse's would be malformed "
              "(non-ASCII display names).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
              help="Also trust this CA (what SSL_CERT_FILE would do for Synapse).")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=30.0, show_default=True,
              help="Seconds to wait for each step (the connection, each reply); native engine.")
@click.option("--watchdog", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Seconds before the whole send counts as a hang; synapse engine (Twisted, "
              "like Synapse, has no timeout of its own).")
@click.option("--force", is_flag=True, help="Send even when check reports errors.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: what was sent (or built), the reply, the timings.")
@click.option("--color/--no-color", default=None, help="Force colours on or off.")
@click.option("--imap", "imap", metavar="HOST[:PORT]",
              help="Round trip: wait for the mail in this IMAP mailbox (IMAPS, port 993 by "
              "default) and report its folder, Authentication-Results, DKIM and links.")
@click.option("--imap-user", metavar="USER", help="The mailbox login (default: --to).")
@click.option("--imap-password-file", type=click.Path(exists=True, dir_okay=False),
              help="A file holding the mailbox password (its first line). Without it the "
              "password is asked for; it is never a command-line argument.")
@click.option("--imap-plain", is_flag=True,
              help="IMAP without TLS (refused for hosts other than loopback).")
@click.option("--imap-ca-file", type=click.Path(exists=True, dir_okay=False),
              help="Also trust this CA for IMAPS and the links (default: --ca-file).")
@click.option("--wait", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Seconds to wait for the mail to arrive.")
@click.option("--keep", is_flag=True, help="Leave the mail in the mailbox (default: delete).")
@click.option("--resolver", metavar="IP[:PORT]",
              help="Ask this DNS server for the DKIM keys (and the links' host).")
@click.option("--no-links", is_flag=True, help="Do not check the links in the received mail.")
def command(paths: tuple[str, ...], config: tuple[str, ...], to: str, kind: str, engine: str,
            dry_run: bool, output: str | None, correct_headers: bool, ca_file: str | None,
            timeout: float, watchdog: float, force: bool, fmt: str, color: bool | None,
            imap: str | None, imap_user: str | None,
            imap_password_file: str | None, imap_plain: bool, imap_ca_file: str | None,
            wait: float, keep: bool, resolver: str | None, no_links: bool) -> None:
    """Send one of Synapse's mails with the config's settings, and report what happened.

    Prints the Message-ID, the server's final reply (with its queue id; the native engine
    only, as Twisted does not pass it on) and the timings, so you can find the mail in the
    server's logs. A failed send ends with the next step to take. With --imap, waits for
    the mail in that mailbox (the round trip) and reports the folder it landed in, the
    receiving server's Authentication-Results, the DKIM signature verified here against
    the published key, and whether its links work; then deletes it (unless --keep).
    Exit status: 0 sent (and, with --imap, arrived in the Inbox with nothing failing), 1
    not sent (or the round trip found a problem), 2 unusable input.
    """
    from maildoctor.config.check import check
    from maildoctor.config.templates import TemplateSet
    from maildoctor.diagnostics import Severity
    from maildoctor.errors import ConfigLoadError, MaildoctorError
    from maildoctor.synapse.mail.message import build_message

    trip = None
    if imap and not dry_run:
        from maildoctor.cli.round_trip import round_trip_options

        trip = round_trip_options(imap, imap_user or to, imap_password_file, imap_plain,
                                  imap_ca_file or ca_file, wait, keep, resolver, not no_links,
                                  timeout)
    from maildoctor.config.sending import sending_settings
    from maildoctor.config.settings import email_block

    try:
        result = check(resolve_paths(paths, config))
        settings = sending_settings(result.config)  # one loader, one set of limits
    except ConfigLoadError as exc:
        fail_unusable(exc, fmt)
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    if errors and not force and not dry_run:
        click.echo("maildoctor: not sending: the config has errors Synapse would hit too "
                   "(use --force to try anyway):", err=True)
        for d in errors:
            where = f" ({d.location})" if d.location else ""
            click.echo(f"  error[{d.code}] {d.message}{where}", err=True)
        click.echo("next: run `maildoctor check "
                   f"{shlex.join(resolve_paths(paths, config))}` for the details and fixes",
                   err=True)
        sys.exit(ExitStatus.PROBLEMS)
    merged = result.config.merged
    probe_hint = ("run `maildoctor probe "
                  f"{shlex.join(resolve_paths(paths, config))}` for the cause")
    try:
        templates = TemplateSet.from_config(merged)
        built = build_message(
            kind, settings, to=to, server_name=str(merged.get("server_name", "localhost")),
            public_baseurl=merged.get("public_baseurl"),
            subjects=email_block(merged).get("subjects"), templates=templates,
            correct_headers=correct_headers)
    except MaildoctorError as exc:
        click.echo(f"maildoctor: cannot build the mail: {exc}", err=True)
        sys.exit(ExitStatus.PROBLEMS)
    data = built.as_bytes()
    if output:
        with open(output, "wb") as fh:
            fh.write(data)
    for warning in built.warnings:
        click.echo(f"warning: {warning}", err=True)
    info: dict[str, Any] = {"version": JSON_VERSION, "kind": kind, "engine": engine,
                            "message_id": built.message_id, "from": built.envelope_from,
                            "to": built.envelope_to,
                            "subject": built.subject, "bytes": len(data)}
    if dry_run:
        info["sent"] = False
        _report(info, fmt, output, color)
        sys.exit(ExitStatus.OK)
    started = time.monotonic()
    if engine == "synapse":
        ok = _send_synapse(settings, built.envelope_from, built.envelope_to, data, watchdog,
                           ca_file, info)
    else:
        ok = _send_native(settings, built.envelope_from, built.envelope_to, data, timeout,
                          ca_file, info)
    info["seconds"] = round(time.monotonic() - started, 3)
    info["sent"] = ok
    if not ok and info.get("error_kind") != "TwistedMissingError":
        info["next_step"] = probe_hint
    if ok and trip is not None:
        from maildoctor.cli.round_trip import report_round_trip
        from maildoctor.roundtrip.run import round_trip

        if fmt == "text":
            _report(info, fmt, output, color)
        got = round_trip(built.message_id, trip, public_baseurl=merged.get("public_baseurl"),
                         sent_at=started)
        info["round_trip"] = got.as_dict()
        if fmt == "json":
            _report(info, fmt, output, color)
        else:
            report_round_trip(got, trip)
        sys.exit(ExitStatus.OK if got.ok else ExitStatus.PROBLEMS)
    _report(info, fmt, output, color)
    sys.exit(ExitStatus.OK if ok else ExitStatus.PROBLEMS)


def _send_native(settings: Any, sender: str, to: str, data: bytes, timeout: float,
                 ca_file: str | None, info: dict[str, Any]) -> bool:
    from maildoctor.errors import SMTPFailure
    from maildoctor.mailer.session import Timeouts
    from maildoctor.mailer.sync import SyncMailer

    timeouts = Timeouts(connect=min(timeout, 30.0), command=timeout, data=max(timeout, 60.0))
    try:
        with SyncMailer.from_settings(settings, ca_file=ca_file, timeouts=timeouts) as mailer:
            sent = mailer.send(sender, [to], data)
    except SMTPFailure as exc:
        from maildoctor.causes import cause_of_failure
        from maildoctor.providers import find_provider_for_host

        provider = find_provider_for_host(settings.smtp_host, settings.smtp_port)
        row, fix = cause_of_failure(exc, provider.name if provider else None)
        meaning = exc.meaning(provider.name if provider else None)
        info.update(error=str(exc), error_kind=type(exc).__name__, stage=exc.stage,
                    cause=row.id, fix=fix, consequence=row.synapse,
                    blames=str(meaning.blame) if meaning else None)
        return False
    info.update(reply=sent.reply, attempts=sent.attempts, refused=sent.refused)
    return True


def _send_synapse(settings: Any, sender: str, to: str, data: bytes, timeout: float,
                  ca_file: str | None, info: dict[str, Any]) -> bool:
    from maildoctor.synapse.engine.twisted_engine import TwistedMissingError, send_like_synapse

    try:
        res = send_like_synapse(settings, sender, to, data, watchdog=timeout, ca_file=ca_file)
    except TwistedMissingError as exc:
        info.update(error=str(exc), error_kind="TwistedMissingError")
        return False
    info.update(outcome=res.kind, exception=res.exception or None, error=res.message or None)
    reply = res.reply
    if res.kind == "ok":
        info["reply"] = reply or None
        if not reply:
            info["reply_note"] = NO_REPLY_NOTE
    if res.kind == "hang":
        info["error"] = (f"no result after {timeout:g} s: Synapse would hang here (its request "
                         "never returns, and nothing is logged)")
    return res.kind == "ok"


def _report(info: dict[str, Any], fmt: str, output: str | None,
            color: bool | None = None) -> None:
    if fmt == "json":
        json.dump(info, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    state = "built (not sent)" if not info.get("sent") and "seconds" not in info else (
        "sent" if info.get("sent") else "NOT sent")
    fg = "green" if info.get("sent") else ("red" if "seconds" in info else None)
    click.echo(click.style(f"{info['kind']} mail {state}", fg=fg, bold=True)
               + f" ({info['engine']} engine)", color=color)
    click.echo(f"  Message-ID: {info['message_id']}")
    click.echo(f"  From: {info['from']}  To: {info['to']}")
    click.echo(f"  Subject: {info['subject']}")
    if info.get("reply"):
        click.echo(f"  server's reply: {info['reply']}")
    elif info.get("reply_note"):
        click.echo(f"  server's reply: {info['reply_note']}")
    if info.get("exception"):
        click.echo(f"  Synapse would log: {info['exception']}: {info.get('error') or ''}")
    elif info.get("error"):
        click.echo(f"  error: {info['error']}")
    if info.get("blames"):
        click.echo(f"  what the reply blames: {info['blames']}")
    if info.get("fix"):
        click.echo(f"  fix: {info['fix']}")
    if "seconds" in info:
        click.echo(f"  took {info['seconds']:.2f} s")
    if output:
        click.echo(f"  written to {output}")
    if info.get("next_step"):
        click.echo(f"next: {info['next_step']}")
