"""MD3xx: TLS mode, port and authentication settings, judged as Twisted will use them.

Facts (spec synapse-email.md 2.3-2.5, twisted-smtp.md): ``force_tls`` means TLS from the
first byte; otherwise STARTTLS is used whenever offered and ``enable_tls`` is on, and the
certificate must then verify against ``tlsname`` or ``smtp_host``. Authentication is
required iff ``smtp_user`` is not null, attempted only with a truthy password. TLS and
certificate failures make Synapse hang with nothing logged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from maildoctor.config import schema
from maildoctor.config.rules import LintContext, rule
from maildoctor.diagnostics import NO_START_PREFIX, Applicability, Diagnostic, Edit, Fix, Severity
from maildoctor.hosts import is_loopback

HANG = ("The request hangs: Synapse logs 'Sending email to ...' and nothing else, and the "
        "client (or the reverse proxy) times out.")
AUTH_REQUIRED = ("`twisted.mail._except.AUTHRequiredError: 502 Server does not support Client "
                 "Authentication schemes [CRAM-MD5, LOGIN, PLAIN]`")
STARTTLS_PORTS = (25, 587, 2525)


def is_ip(host: object) -> bool:
    if not isinstance(host, str):
        return False
    try:
        ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    return True


def port_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _set(ctx: LintContext, key: str, value: object, message: str,
         applicability: Applicability = Applicability.UNSAFE) -> Fix:
    path = ("email", key)
    action = "set-value" if key in ctx.email else "insert-key"
    return Fix(message, applicability, (Edit(action, ctx.file_of(path), f"email.{key}", value),))


@rule("MD301", "force-tls-needs-enable-tls", Severity.ERROR,
      "force_tls is on while enable_tls is off: Synapse refuses to start")
def force_tls_needs_enable_tls(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse's own startup check. (Synapse's documented example config has exactly this
    combination, and does not start.)"""
    s = ctx.settings
    if ctx.has("force_tls") and s.implicit_tls and not s.starttls_enabled:
        yield ctx.diag(
            "MD301", "force_tls is on but enable_tls is off",
            consequence=f"{NO_START_PREFIX}: Error in configuration at 'email.force_tls': "
                        "email.force_tls requires email.enable_tls to be true",
            fix=Fix("Delete `enable_tls: false` (implicit TLS needs TLS enabled).",
                    Applicability.SAFE,
                    (Edit("delete-key", ctx.file_of(("email", "enable_tls")),
                          "email.enable_tls"),)),
            path=("email", "force_tls"))


@rule("MD302", "require-tls-needs-enable-tls", Severity.ERROR,
      "require_transport_security is on while enable_tls is off: Synapse refuses to start")
def require_tls_needs_enable_tls(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse's own startup check: demanding STARTTLS while forbidding TLS cannot both
    hold, so Synapse refuses the combination rather than send in clear."""
    s = ctx.settings
    if ctx.has("require_transport_security") and s.require_tls and not s.starttls_enabled:
        yield ctx.diag(
            "MD302", "require_transport_security is on but enable_tls is off",
            consequence=f"{NO_START_PREFIX}: Error in configuration at "
                        "'email.require_transport_security': email.require_transport_security "
                        "requires email.enable_tls to be true",
            fix=Fix("Delete `enable_tls: false`, or turn require_transport_security off.",
                    Applicability.DISPLAY_ONLY),
            path=("email", "require_transport_security"))


@rule("MD303", "implicit-tls-port-without-force-tls", Severity.ERROR,
      "Port 465 (implicit TLS) without force_tls: the request hangs")
def implicit_tls_port_without_force_tls(ctx: LintContext) -> Iterator[Diagnostic]:
    """Port 465 speaks TLS from the first byte. Without ``force_tls: true`` Synapse waits
    for a plain-text greeting that never comes, forever (there is no SMTP timeout)."""
    s = ctx.settings
    if port_number(s.smtp_port) == 465 and not s.implicit_tls:
        yield ctx.diag(
            "MD303", "smtp_port is 465 (implicit TLS) but force_tls is off",
            consequence=HANG,
            fix=_set(ctx, "force_tls", True, "Set `force_tls: true` (or use port 587 with "
                     "STARTTLS). `maildoctor probe` confirms what the port speaks."),
            path=("email", "smtp_port"), at="value")


@rule("MD304", "force-tls-on-starttls-port", Severity.ERROR,
      "force_tls on a STARTTLS/plain port (25, 587, 2525): the request hangs")
def force_tls_on_starttls_port(ctx: LintContext) -> Iterator[Diagnostic]:
    """Ports 25, 587 and 2525 start in plain text and upgrade with STARTTLS. ``force_tls``
    makes Synapse start a TLS handshake instead; it fails at once and Synapse hangs."""
    s = ctx.settings
    port = port_number(s.smtp_port)
    if s.implicit_tls and port in STARTTLS_PORTS and ctx.has("force_tls"):
        yield ctx.diag(
            "MD304", f"force_tls is on, but port {port} starts in plain text (STARTTLS)",
            consequence=HANG,
            fix=Fix("Delete `force_tls` (STARTTLS is used automatically), or use port 465.",
                    Applicability.UNSAFE,
                    (Edit("delete-key", ctx.file_of(("email", "force_tls")), "email.force_tls"),)),
            path=("email", "force_tls"))


@rule("MD305", "require-tls-with-force-tls", Severity.WARNING,
      "require_transport_security is ignored when force_tls is on")
def require_tls_with_force_tls(ctx: LintContext) -> Iterator[Diagnostic]:
    """``require_transport_security`` is about STARTTLS; with ``force_tls`` the connection is
    TLS from the start and the option is ignored. Often a sign of the 465 confusion
    (matrix-org/synapse#15144)."""
    s = ctx.settings
    if s.implicit_tls and s.require_tls and ctx.has("require_transport_security"):
        yield ctx.diag(
            "MD305", "require_transport_security has no effect together with force_tls",
            consequence="Ignored: the connection is already TLS from the first byte.",
            fix=Fix("Delete `require_transport_security`.", Applicability.SAFE,
                    (Edit("delete-key", ctx.file_of(("email", "require_transport_security")),
                          "email.require_transport_security"),)),
            path=("email", "require_transport_security"))


@rule("MD306", "tls-name-is-local", Severity.WARNING,
      "smtp_host is localhost or an IP: the certificate is checked against that name")
def tls_name_is_local(ctx: LintContext) -> Iterator[Diagnostic]:
    """With TLS on (the default), Synapse checks the server certificate against ``tlsname``
    or else ``smtp_host``. A local MTA's certificate is issued for its public name, not for
    ``localhost`` or ``127.0.0.1``, so verification fails whenever the server offers
    STARTTLS, and Synapse hangs (matrix-org/synapse#9566, #14934)."""
    s = ctx.settings
    if not ctx.email_enabled:
        return  # no email: block, so Synapse never connects (and would use no host)
    if not s.starttls_enabled or s.tlsname_key or not isinstance(s.smtp_host, str):
        return
    if not (is_loopback(s.smtp_host) or is_ip(s.smtp_host)):
        return
    has_tlsname = "tlsname" in schema.email_keys_for(ctx.version)
    if has_tlsname:
        fix = _set(ctx, "tlsname", "mail.example.org",
                   "Set `tlsname:` to the name in the server's certificate (maildoctor probe "
                   "shows it), or give the server a certificate for this name.",
                   Applicability.DISPLAY_ONLY)
    else:
        fix = Fix(f"Synapse {ctx.version} has no tlsname (added in 1.122.0): connect by the name "
                  "in the certificate, or upgrade.", Applicability.DISPLAY_ONLY)
    # Point at the host's value; without smtp_host, at the email: key (not at its first line).
    where, at = (("email", "smtp_host"), "value") if ctx.has("smtp_host") else (("email",), "key")
    yield ctx.diag(
        "MD306",
        f"the TLS certificate will be checked against {s.smtp_host!r}",
        consequence="If the server offers STARTTLS (most do) with a certificate for another "
                    "name, verification fails and " + HANG[0].lower() + HANG[1:],
        fix=fix, path=where, at=at)


def _typo_for(ctx: LintContext, target: str) -> str | None:
    """The key under email: that is most likely a misspelling of ``target``."""
    for key in ctx.email:
        name = str(key)
        if name in schema.email_keys_for(ctx.version):
            continue
        syn = schema.SYNONYMS.get(name)
        if syn is not None and syn.target == target:
            return name
        if schema.suggest(name, ctx.version)[:1] == [target]:
            return name
    return None


@rule("MD307", "user-without-password", Severity.ERROR,
      "smtp_user is set but smtp_pass is not: Synapse fails with AUTHRequiredError")
def user_without_password(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse requires authentication whenever ``smtp_user`` is set, but Twisted only tries
    AUTH with a password. With none it fails with ``AUTHRequiredError: 502 Server does not
    support Client Authentication schemes [CRAM-MD5, LOGIN, PLAIN]``, listing every scheme it
    knows although the server may offer them: the message is about the missing password.
    (When the password is there under a misspelt key, MD101 reports it at that key.)"""
    s = ctx.settings
    if not ctx.has("smtp_user") or s.smtp_user is None or s.smtp_user == "":
        return
    if s.will_attempt_auth:
        return
    if _typo_for(ctx, "smtp_pass") is not None or "smtp_pass" in ctx.merged:
        return  # MD101 / MD105 name the misplaced key, with this consequence
    state = "empty" if ctx.has("smtp_pass") else "not set"
    yield ctx.diag(
        "MD307", f"smtp_user is set but smtp_pass is {state}",
        consequence=f"Every mail fails with {AUTH_REQUIRED}: Synapse requires authentication "
                    "because smtp_user is set, and Twisted has no password to authenticate "
                    "with, whatever the server offers.",
        fix=Fix("Add `smtp_pass:` with the account's password (quoted), or delete smtp_user if "
                "the server needs no login.", Applicability.DISPLAY_ONLY),
        path=("email", "smtp_user"))


@rule("MD308", "password-without-user", Severity.ERROR,
      "smtp_pass is set but smtp_user is not: Twisted crashes and the request hangs")
def password_without_user(ctx: LintContext) -> Iterator[Diagnostic]:
    """With a password but no user, Twisted still tries to authenticate when the server
    offers AUTH, crashes with a TypeError inside its protocol (logged as 'Unhandled Error'),
    and the send never completes."""
    s = ctx.settings
    if not s.will_attempt_auth or s.smtp_user is not None:
        return
    typo = _typo_for(ctx, "smtp_user")
    hint = f" (you wrote `{typo}`)" if typo else ""
    yield ctx.diag(
        "MD308", f"smtp_pass is set but smtp_user is not{hint}",
        consequence="If the server offers AUTH, Twisted crashes with `TypeError` ('Unhandled "
                    "Error' in the log) and " + HANG[0].lower() + HANG[1:],
        fix=Fix("Add `smtp_user:` with the account name.", Applicability.DISPLAY_ONLY),
        path=("email", "smtp_pass"))


@rule("MD309", "plaintext-auth", Severity.WARNING,
      "The password may cross the network unencrypted")
def plaintext_auth(ctx: LintContext) -> Iterator[Diagnostic]:
    """With ``enable_tls: false`` Synapse never starts TLS, so AUTH sends the password in
    clear to a remote server. With TLS on but not required, the same happens whenever the
    server (or someone in between) does not offer STARTTLS."""
    s = ctx.settings
    if not s.will_attempt_auth or s.implicit_tls or is_loopback(s.smtp_host):
        return
    if port_number(s.smtp_port) == 465 or _typo_for(ctx, "require_transport_security"):
        return  # MD303 (force_tls) or MD101 (the misspelt key) is the better advice
    if not s.starttls_enabled:
        yield ctx.diag(
            "MD309", f"enable_tls is off, so the SMTP password goes to {s.smtp_host!r} in clear",
            consequence="Anyone on the path can read the password.",
            fix=Fix("Remove `enable_tls: false` and use STARTTLS (587) or force_tls (465).",
                    Applicability.DISPLAY_ONLY),
            path=("email", "enable_tls"), at="value")
    elif not s.require_tls:
        yield ctx.diag(
            "MD309", "STARTTLS is not required: if the server does not offer it, the password "
            "is sent in clear",
            consequence="Synapse silently authenticates without TLS when STARTTLS is missing.",
            fix=_set(ctx, "require_transport_security", True,
                     "Set `require_transport_security: true`."),
            path=("email", "smtp_user"), severity=Severity.INFO)


@rule("MD310", "default-port-25", Severity.WARNING,
      "No smtp_port: Synapse uses port 25, which providers rarely accept for logins")
def default_port_25(ctx: LintContext) -> Iterator[Diagnostic]:
    """Without ``smtp_port`` Synapse uses 25 (465 with ``force_tls``). Port 25 is for
    server-to-server mail: cloud providers often block it outbound, and mail services expect
    authenticated clients on 587 (STARTTLS) or 465 (implicit TLS)."""
    s = ctx.settings
    if ctx.has("smtp_port") or s.implicit_tls or not ctx.email_enabled:
        return
    if is_loopback(s.smtp_host) or s.smtp_user is None:
        return
    if _typo_for(ctx, "smtp_port") is not None:
        return  # MD101 names the misspelt key and says Synapse then uses port 25
    yield ctx.diag(
        "MD310", f"smtp_port is not set, so Synapse connects to {s.smtp_host}:25",
        consequence="On many hosts outbound port 25 is blocked (the connection times out after "
                    "30 s), and most mail services do not accept logins on it.",
        fix=_set(ctx, "smtp_port", 587, "Set `smtp_port: 587` (STARTTLS), or 465 with "
                 "`force_tls: true`, as your provider documents."),
        path=("email",))


@rule("MD311", "provider-advice", Severity.ERROR,
      "The settings break a rule of the mail provider in smtp_host (login name, sender)")
def provider_advice(ctx: LintContext) -> Iterator[Diagnostic]:
    """maildoctor knows the usual providers (``maildoctor providers``). When ``smtp_host`` is
    one of them, the settings are compared with the facts its data file states:

    - a fixed login name (SendGrid's ``apikey``): any other ``smtp_user`` is refused at
      login, so it is an error at the ``smtp_user`` value, with a safe fix that sets it;
    - a login the provider requires: without ``smtp_user`` Synapse sends without logging
      in and the provider refuses the mail, an error at the ``email:`` key (not on hosts
      where the provider also takes mail without a login, such as a Microsoft 365
      connector);
    - the checkable part of its sender rule: providers that send only as the account
      (Gmail, Zoho, Outlook) or for the login's domain (Mailgun) are compared with the
      address Synapse takes from notif_from. A warning at notif_from, since a verified
      alias can be legitimate.

    Example or placeholder logins (``you@gmail.com`` as ``init`` writes it) are MD206."""
    if not ctx.email_enabled:
        return
    from maildoctor.providers import find_provider_for_host

    provider = find_provider_for_host(ctx.settings.smtp_host, ctx.settings.smtp_port)
    if provider is None:
        return
    for advice in provider.advice_for_config(ctx.email, ctx.settings.envelope_from):
        if advice.value is not None:
            path = ("email", advice.key)
            fix = Fix(advice.fix, Applicability.SAFE,
                      (Edit("set-value", ctx.file_of(path), f"email.{advice.key}",
                            advice.value),))
        else:
            fix = Fix(f"{advice.fix} (`maildoctor providers {provider.name}` lists the "
                      "provider's rules.)", Applicability.DISPLAY_ONLY)
        where, at = ((("email", advice.key), "value") if advice.key and ctx.has(advice.key)
                     else (("email",), "key"))
        yield ctx.diag(
            "MD311", advice.message, consequence=advice.consequence, fix=fix, path=where,
            at=at, severity=None if advice.blocking else Severity.WARNING)
