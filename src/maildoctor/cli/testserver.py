"""``maildoctor testserver``: run the fault-injecting SMTP server in the foreground.

For admins rehearsing a Synapse email setup (point Synapse at it, watch what it does) and for
scripts (``--ready-file`` says when it listens, so no sleeps). Options mirror
:class:`~maildoctor.testing.options.ServerOptions`; ``--scenario`` starts from a named row of
the observed-behaviour table and explicit options change it.

The start block prints the test credential on purpose: it is the test server's own throwaway
login, and the ready-to-paste ``email:`` block needs it. Session logs never contain AUTH
payloads.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Sequence
from typing import Any

import click
import yaml

from maildoctor.cli.exit_status import ExitStatus
from maildoctor.hosts import is_loopback
from maildoctor.testing.certs import CERT_KINDS
from maildoctor.testing.journal import Event, EventKind, ReceivedMessage
from maildoctor.testing.options import (
    AUTH_FAILURES,
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    MECHANISMS,
    STAGES,
    TLS_MODES,
    Fault,
    ServerOptions,
)
from maildoctor.testing.scenarios import DESCRIPTIONS, SCENARIOS
from maildoctor.testing.server import TestServer

__all__ = ["SCENARIOS", "build_options", "command"]

DEFAULT_PORT = 2525


def _parse_reply(text: str) -> tuple[str, str]:
    stage, sep, reply = text.partition("=")
    stage = stage.strip().lower()
    if not sep or stage not in STAGES:
        raise click.BadParameter(
            f"{text!r}: expected STAGE=CODE TEXT with STAGE one of {', '.join(STAGES)}"
        )
    return stage, reply.strip().replace("\\n", "\n")


def build_options(params: dict[str, Any], explicit: set[str]) -> ServerOptions:
    """Scenario first, then every option the user actually typed (``explicit``)."""
    base = SCENARIOS[params["scenario"]] if params.get("scenario") else ServerOptions()

    def given(name: str) -> bool:
        return name in explicit

    changes: dict[str, Any] = {"host": params["host"], "port": params["port"]}
    for name in ("tls", "cert", "greeting_delay", "auth_failure", "auth_required",
                 "accept_any_login", "allow_remote", "starttls_required", "max_message_size",
                 "auth_after_starttls_only", "server_name"):
        if given(name):
            changes[name] = params[name]
    if given("no_auth"):
        changes["advertise_auth"] = not params["no_auth"]
    if given("hide_starttls"):
        changes["advertise_starttls"] = not params["hide_starttls"]
    if params["cert_names"]:
        changes["cert_names"] = tuple(params["cert_names"])
    if params["mechanisms"]:
        changes["mechanisms"] = tuple(params["mechanisms"])
    if given("user") or given("password"):
        changes["credentials"] = {params["user"]: params["password"]}
    if params["replies"]:
        changes["replies"] = {**base.replies, **dict(params["replies"])}
    if params["faults"]:
        changes["faults"] = tuple(dict.fromkeys(base.faults + tuple(params["faults"])))
    return base.replace(**changes)


def _fault(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> list[Fault]:
    try:
        return [Fault.parse(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _replies(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> list[tuple[str, str]]:
    return [_parse_reply(value) for value in values]


def _list_scenarios(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    width = max(map(len, DESCRIPTIONS))
    for name, text in DESCRIPTIONS.items():
        click.echo(f"{name:<{width}}  {text}")
    ctx.exit(ExitStatus.OK)


# What a verifying client (Python's ssl, OpenSSL, Synapse's Twisted) reports for each
# certificate kind, even with the server's CA file trusted. Checked against a real
# handshake in tests/testing/test_cli.py.
VERIFY_ERRORS = {
    "untrusted": "unable to get local issuer certificate",
    "self-signed": "self-signed certificate",
    "expired": "certificate has expired",
}
_WHY_UNTRUSTED = {
    "untrusted": "none works: the certificate is deliberately untrusted (signed by a second "
                 "CA that is never written out)",
    "self-signed": "none works: the certificate is deliberately self-signed (no CA signed "
                   "it, and it is never written out)",
    "expired": "SSL_CERT_FILE={ca} trusts its CA, but the certificate has deliberately "
               "expired",
}


def _trust_lines(server: TestServer) -> list[str]:
    """How a client comes to trust the certificate, or why it deliberately cannot and
    what it will see then."""
    opts = server.options
    if opts.tls == "plain":
        return ["  trust        nothing to trust (no TLS)"]
    if opts.cert == "trusted":
        return [f"  trust        SSL_CERT_FILE={server.ca_file}   (in Synapse's environment)"]
    return [f"  trust        {_WHY_UNTRUSTED[opts.cert].replace('{ca}', server.ca_file)}",
            f"  clients see  certificate verify failed: {VERIFY_ERRORS[opts.cert]}   "
            "(Synapse: hangs, logs nothing)"]


def _login_line(opts: ServerOptions) -> str:
    creds = ", ".join(f"{user} / {password}" for user, password in opts.credentials.items())
    if not opts.advertise_auth:
        offered = "AUTH not advertised"
    elif "ehlo" in opts.replies:
        offered = "AUTH as in the EHLO reply below"
    else:
        offered = f"mechanisms: {' '.join(opts.mechanisms) or 'none'}"
        if opts.auth_after_starttls_only:
            offered += ", offered after STARTTLS only"
    return f"{creds or 'none'}   ({offered})"


def _banner(server: TestServer, scenario: str | None) -> str:
    opts = server.options
    title = "maildoctor test SMTP server" + (f" (scenario: {scenario})" if scenario else "")
    tls = opts.tls if opts.tls == "plain" else (
        f"{opts.tls}, {opts.cert} certificate for {', '.join(opts.cert_names)}"
    )
    lines = [
        title,
        f"  listening    {server.host}:{server.port}",
        f"  TLS          {tls}",
        *_trust_lines(server),
        f"  login        {_login_line(opts)}",
    ]
    if opts.faults:
        lines.append(f"  faults       {', '.join(f.value for f in opts.faults)}")
    for stage, reply in opts.replies.items():
        lines.append(f"  reply        {stage}: {' | '.join(reply.strip().splitlines())}")
    if opts.accept_any_login:
        lines.append("  any login    accepted")
    if opts.auth_failure != "reply":
        lines.append(f"  bad login    {opts.auth_failure}")
    block = yaml.safe_dump({"email": server.synapse_email_config()}, sort_keys=False)
    lines += ["", "homeserver.yaml:", *("  " + line for line in block.splitlines()), "",
              "Logging each session below. Ctrl-C stops the server."]
    return "\n".join(lines)


def _write_ready_file(path: str, port: int) -> None:
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(f"{port}\n")
    os.replace(temporary, path)  # readers never see a half-written file


@click.command(name="testserver", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--scenario", type=click.Choice(sorted(SCENARIOS)), metavar="NAME",
              help="Start from a named setup (see --list-scenarios).")
@click.option("--list-scenarios", is_flag=True, expose_value=False, is_eager=True,
              callback=_list_scenarios, help="List the scenarios and exit.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host.")
@click.option("--tls", type=click.Choice(TLS_MODES), default="plain", show_default=True,
              help="plain, STARTTLS offered, or TLS from the first byte (port 465 style).")
@click.option("--cert", type=click.Choice(CERT_KINDS), default="trusted", show_default=True,
              help="The certificate: from the CA printed at start, an unknown CA, "
              "self-signed, or expired.")
@click.option("--cert-name", "cert_names", multiple=True, metavar="NAME",
              help="Certificate name (repeatable). Default: localhost, 127.0.0.1, mail.test.")
@click.option("--mech", "mechanisms", multiple=True, type=click.Choice(MECHANISMS,
              case_sensitive=False), help="AUTH mechanism to offer, in order (repeatable).")
@click.option("--user", default=DEFAULT_USER, show_default=True, help="Test login.")
@click.option("--password", default=DEFAULT_PASSWORD, show_default=True,
              help="Test password (a throwaway credential of this test server).")
@click.option("--accept-any-login", is_flag=True, help="Accept any user and password.")
@click.option("--no-auth", is_flag=True, help="Do not offer AUTH at all.")
@click.option("--auth-required", is_flag=True, help="Answer 530 at MAIL without AUTH.")
@click.option("--auth-after-starttls-only", is_flag=True, help="Offer AUTH only after STARTTLS.")
@click.option("--hide-starttls", is_flag=True, help="Accept STARTTLS but leave it out of EHLO.")
@click.option("--starttls-required", is_flag=True, help="530 to commands before STARTTLS.")
@click.option("--auth-failure", type=click.Choice(AUTH_FAILURES), default="reply",
              show_default=True, help="What a failed login gets.")
@click.option("--reply", "replies", multiple=True, callback=_replies, metavar="STAGE=REPLY",
              help=f"Override a stage's reply, e.g. 'mail=553 5.7.1 Not owned' "
                   f"(repeatable; stages: {', '.join(STAGES)}; \\n separates lines).")
@click.option("--fault", "faults", multiple=True, callback=_fault, metavar="NAME",
              help=f"Inject a fault (repeatable): {', '.join(f.value for f in Fault)}.")
@click.option("--greeting-delay", type=click.FloatRange(min=0), default=0.0,
              help="Seconds before the greeting.")
@click.option("--max-message-size", type=click.IntRange(min=1), default=None,
              help="Refuse messages over this many bytes (552).")
@click.option("--server-name", default="mail.test", show_default=True,
              help="Name in the greeting and EHLO.")
@click.option("--ready-file", type=click.Path(dir_okay=False), default=None,
              help="Write the listening port to this file once ready.")
@click.option("--save-dir", type=click.Path(file_okay=False), default=None,
              help="Save each received message as DIR/NNNN.eml (to open in a mail client).")
@click.option("--quiet", is_flag=True, help="Print the start block only, no session log.")
@click.pass_context
def command(
    ctx: click.Context, /, ready_file: str | None, save_dir: str | None, quiet: bool,
    **params: Any,
) -> None:
    """Run the built-in fault-injecting SMTP server until Ctrl-C.

    Prints the address, the CA file to trust (or why the certificate deliberately cannot
    be trusted) and a ready `email:` block for homeserver.yaml, then logs every session as
    it happens (AUTH payloads masked).

    \b
    Examples:
      maildoctor testserver                              plain, AUTH LOGIN PLAIN, port 2525
      maildoctor testserver --scenario cram-md5-broken   the Dovecot CRAM-MD5 trap
      maildoctor testserver --tls starttls --fault drop-after-mail
      maildoctor testserver --reply 'mail=553 5.7.1 Sender address rejected'
    """
    explicit = {
        name for name in params
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    try:
        options = build_options(params, explicit)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if not options.allow_remote and not is_loopback(options.host):
        raise click.UsageError(
            f"--host {options.host}: not a loopback address. Add --allow-remote to listen "
            "there (anyone who can reach it can then use the test server and its test login)."
        )

    # aiosmtpd's own logger would repeat our session log, less clearly, on stderr.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    def log(event: Event) -> None:
        if not quiet:
            click.echo(str(event))

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    saved = 0

    def save(message: ReceivedMessage) -> None:
        nonlocal saved
        if save_dir:
            saved += 1
            path = os.path.join(save_dir, f"{saved:04d}.eml")
            with open(path, "wb") as handle:
                handle.write(message.data)
            click.echo(f"saved message to {path}")

    if save_dir:
        os.makedirs(save_dir, exist_ok=True)
    server = TestServer(options, on_event=log, on_message=save)
    try:
        try:
            server.start()
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"cannot start the test server: {exc}") from exc
        try:
            if ready_file:  # before the banner: whoever reads the banner finds the file
                _write_ready_file(ready_file, server.port)
            click.echo(_banner(server, params.get("scenario")))
            stop.wait()
        finally:
            server.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sessions = {event.session for event in server.events if event.kind is EventKind.CONNECT}
    click.echo(f"stopped: {len(sessions)} connections, {len(server.messages)} messages received")
    ctx.exit(ExitStatus.OK)
