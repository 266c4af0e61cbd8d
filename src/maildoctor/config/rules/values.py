"""MD2xx: values that YAML or Synapse read differently from what the admin meant.

Synapse does no type checking on ``email:``: a quoted ``"false"`` is a non-empty string,
hence true; an unquoted numeric password is an int and crashes Synapse at startup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from maildoctor.config.rules import LintContext, rule
from maildoctor.diagnostics import NO_START_PREFIX, Applicability, Diagnostic, Edit, Fix, Severity
from maildoctor.secrets import MASK

BOOL_KEYS = ("force_tls", "enable_tls", "require_transport_security", "enable_notifs",
             "notif_for_new_users")
FALSE_WORDS = {"false", "no", "off", "n", "0", "none", "null", "disabled"}
TRUE_WORDS = {"true", "yes", "on", "y", "1", "enabled"}

# What each boolean does when it is wrongly on (because a quoted "false" is truthy).
WRONGLY_ON = {
    "force_tls": "Synapse starts TLS on the first byte (implicit TLS); on a STARTTLS or "
                 "plain port (25, 587, 2525) every request hangs with nothing logged.",
    "enable_tls": "STARTTLS stays on: Synapse upgrades whenever the server offers it, and a "
                  "certificate it cannot verify makes every request hang.",
    "require_transport_security": "Synapse demands STARTTLS and fails with TLSRequiredError "
                                  "when the server does not offer it.",
    "enable_notifs": "Notification mails are switched on.",
    "notif_for_new_users": "New users get email notifications.",
}

PLACEHOLDER_SECRETS = {
    "redacted", "changeme", "change_me", "change-me", "password", "your_password",
    "yourpassword", "your-password", "secret", "xxx", "xxxx", "xxxxxx", "xxxxxxxx", "***",
    "****", "********", "todo", "fixme", "smtp_password", "smtp_pass", "pass", "example",
    "placeholder", "mypassword", "my_password", "<password>", "<smtp_password>",
    "<your password>", "<secret>",
}

DURATION_RE = re.compile(r"^\d+(ms|s|m|h|d|w|y)?$")

SECRET_KEYS = ("smtp_pass", "smtp_user")


def _bool_fix(ctx: LintContext, key: str, value: bool) -> Fix:
    word = "true" if value else "false"
    return Fix(f"Write `{key}: {word}` without quotes.", Applicability.SAFE,
               (Edit("set-value", ctx.file_of(("email", key)), f"email.{key}", value),))


@rule("MD201", "quoted-boolean", Severity.ERROR,
      "A boolean written as a string: Synapse treats any non-empty string as true")
def quoted_boolean(ctx: LintContext) -> Iterator[Diagnostic]:
    """``enable_tls: "false"`` is the string ``false``, which Python (so Synapse) treats as
    true: TLS stays on. Synapse never converts these strings. Unquote the value."""
    for key in BOOL_KEYS:
        if key not in ctx.email:
            continue
        value = ctx.email[key]
        if not isinstance(value, str):
            continue
        word = value.strip().lower()
        if word == "":
            yield ctx.diag("MD201", f"`{key}` is an empty string, which Synapse treats as false",
                           consequence=f"{key} is off.", fix=_bool_fix(ctx, key, False),
                           path=("email", key), at="value", severity=Severity.WARNING)
        elif word in FALSE_WORDS:
            yield ctx.diag(
                "MD201",
                f"`{key}` is the string {value!r}, which Synapse treats as TRUE",
                consequence=WRONGLY_ON[key], fix=_bool_fix(ctx, key, False),
                path=("email", key), at="value",
            )
        elif word in TRUE_WORDS:
            yield ctx.diag(
                "MD201", f"`{key}` is the string {value!r}; it works only because any "
                "non-empty string counts as true",
                consequence=f"{key} is on, as intended; `{key}: \"false\"` would be on too.",
                fix=_bool_fix(ctx, key, True), path=("email", key), at="value",
                severity=Severity.WARNING,
            )
        else:
            yield ctx.diag(
                "MD201",
                f"`{key}` is the string {value!r}, not a boolean; Synapse treats it as true",
                consequence=WRONGLY_ON[key],
                fix=Fix(f"Write `{key}: true` or `{key}: false`.", Applicability.DISPLAY_ONLY),
                path=("email", key), at="value",
            )


@rule("MD202", "bad-port", Severity.ERROR, "smtp_port is null, not a number, or out of range")
def bad_port(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse passes ``smtp_port`` to Twisted unchecked. ``smtp_port: null`` is *not* the
    default (the docs say it is): Twisted gets ``None`` and the connection is refused. A
    non-numeric string fails with a DNS error that names the host, not the port. A numeric
    string (``"2525"``) works."""
    if "smtp_port" not in ctx.email:
        return
    value = ctx.email["smtp_port"]
    path = ("email", "smtp_port")
    host = ctx.settings.smtp_host
    default = 465 if ctx.settings.implicit_tls else 25
    if value is None:
        yield ctx.diag(
            "MD202", "smtp_port is null; Synapse does not use its default for an explicit null",
            consequence="Every mail fails with `twisted.internet.error.ConnectionRefusedError: "
                        "Connection was refused by other side: 111: Connection refused.`",
            fix=Fix(f"Set the port (587 for STARTTLS, 465 with force_tls), or delete the line "
                    f"to get {default}.", Applicability.DISPLAY_ONLY),
            path=path, at="value")
    elif isinstance(value, bool) or isinstance(value, float | list | dict):
        yield ctx.diag(
            "MD202", f"smtp_port is {value!r}, not a port number",
            consequence="Synapse cannot connect; the error it logs will not mention the port.",
            fix=Fix("Set smtp_port to a number such as 587 or 465.", Applicability.DISPLAY_ONLY),
            path=path, at="value")
    elif isinstance(value, str):
        if value.isdigit() and 0 < int(value) < 65536:
            yield ctx.diag(
                "MD202", f"smtp_port is the string {value!r}; it works, but write it as a number",
                consequence="Works (Twisted accepts a numeric string).",
                fix=Fix(f"Write `smtp_port: {int(value)}` without quotes.", Applicability.SAFE,
                        (Edit("set-value", ctx.file_of(path), "email.smtp_port", int(value)),)),
                path=path, at="value", severity=Severity.INFO)
        else:
            yield ctx.diag(
                "MD202", f"smtp_port is {value!r}, not a port number",
                consequence=("Every mail fails with a misleading `twisted.internet.error."
                             f"DNSLookupError: DNS lookup failed: no results for hostname lookup: "
                             f"{host}.`"),
                fix=Fix("Set smtp_port to a number such as 587 or 465.",
                        Applicability.DISPLAY_ONLY),
                path=path, at="value")
    elif isinstance(value, int) and not 0 < value < 65536:
        yield ctx.diag(
            "MD202", f"smtp_port {value} is not a valid TCP port (1-65535)",
            consequence="Synapse cannot connect.",
            fix=Fix("Set smtp_port to 587 (STARTTLS) or 465 (with force_tls: true).",
                    Applicability.DISPLAY_ONLY),
            path=path, at="value")


@rule("MD203", "non-string-secret", Severity.ERROR,
      "smtp_pass or smtp_user is a number or boolean: Synapse crashes at startup")
def non_string_secret(ctx: LintContext) -> Iterator[Diagnostic]:
    """YAML reads ``smtp_pass: 123456`` as an integer (and ``yes`` as a boolean, ``0123``
    as an octal number). Synapse calls ``.encode()`` on it at startup and crashes. Quote the
    value exactly as written."""
    for key in SECRET_KEYS:
        if key not in ctx.email:
            continue
        value = ctx.email[key]
        if value is None or isinstance(value, str | list | dict):
            continue
        node = ctx.config.node(("email", key))
        kind = type(value).__name__
        raw = node.raw if node is not None and node.raw is not None else str(value)
        changed = "" if str(value) == raw else f" (YAML even changed it: it is now {kind} " \
                                                  "value different from what you wrote)"
        what = "the password" if key == "smtp_pass" else "the user name"
        yield ctx.diag(
            "MD203",
            f"`{key}` is read as a{'n' if kind[0] in 'aeiou' else ''} {kind}, not a string"
            + (changed if key == "smtp_user" else ""),
            consequence=f"{NO_START_PREFIX}: AttributeError: '{kind}' object has no "
                        "attribute 'encode'.",
            fix=Fix(f"Put {what} in single quotes, exactly as written.", Applicability.SAFE,
                    (Edit("quote-value", ctx.file_of(("email", key)), f"email.{key}", raw),)),
            path=("email", key), at="value",
        )


def _after_colon(line: str, column: int) -> str:
    """The text of ``line`` after the ``key:`` that starts at ``column`` (1-based)."""
    rest = line[column - 1:]
    idx = rest.find(":")
    return rest[idx + 1:].strip() if idx >= 0 else ""


@rule("MD204", "yaml-mangled-secret", Severity.ERROR,
      "YAML read smtp_pass or smtp_user differently from what is written")
def yaml_mangled_secret(ctx: LintContext) -> Iterator[Diagnostic]:
    """Unquoted YAML gives special meaning to characters a password often contains:
    ``#`` starts a comment (``pass: #abc`` is empty; ``pass: ab #cd`` is ``ab``), ``&`` and
    ``!`` start an anchor or a tag, ``[`` and ``{`` a list or mapping, ``|`` and ``>`` a block.
    Inside double quotes a backslash is an escape (``\\t`` becomes a tab). Characters that
    YAML refuses outright (``@``, `````, ``%``, ``*``) are reported as syntax errors when the
    file is read. Single quotes are the safe choice (double a ``'`` inside them)."""
    for key in SECRET_KEYS:
        node = ctx.config.node(("email", key))
        if node is None:
            continue
        line = ctx.config.source_line(node.file, node.key_line) or ""
        written = _after_colon(line, node.key_column)
        value = ctx.email.get(key)
        problem = ""
        intended: str | None = None  # the text as written, when it is knowable
        if value is None and written.startswith("#"):
            problem = "starts with `#`, so YAML reads it as a comment and the value as empty"
        elif node.style in ("|", ">"):
            problem = "starts with `|` or `>`, which YAML reads as a block of the following lines"
        elif isinstance(value, list | dict):
            problem = "starts with `[` or `{`, so YAML reads a list or mapping"
        elif written[:1] in ("&", "!") and node.style is None:
            problem = f"starts with `{written[0]}`, which YAML reads as an anchor or tag, not text"
        elif node.style is None and isinstance(value, str) and " #" in written:
            # Maybe a comment, maybe part of the password: both readings, as a warning
            # (the value YAML reads may well be the one meant; send does not refuse it).
            yield _hash_cut(ctx, key, node, value, written)
            continue
        elif node.style == '"' and "\\" in written:
            problem = "is in double quotes and contains `\\`, which YAML reads as an escape"
            intended = _double_quoted_as_written(ctx, node)
        if not problem:
            continue
        what = "password" if key == "smtp_pass" else "user name"
        fix = Fix(f"Put the {what} in single quotes: {key}: '...' (write a ' inside it as '').",
                  Applicability.DISPLAY_ONLY)
        if intended is not None:
            # Unsafe: the ` #...` may really be a comment, the `\\t` really a tab.
            how = (f"If the ` #...` is part of the {what}, not a comment: put everything "
                   f"after `{key}:` in single quotes." if node.style is None else
                   f"If the backslashes are part of the {what}: write it in single quotes, "
                   "backslashes as typed.")
            fix = Fix(how, Applicability.UNSAFE,
                      (Edit("quote-value", node.file, f"email.{key}", intended),))
        yield ctx.diag(
            "MD204",
            f"the {what} in `{key}` {problem}",
            consequence=f"Synapse sends a different {what} from the one you wrote, and the "
                        "server refuses it (or no password is sent at all).",
            fix=fix, path=("email", key), at="value",
        )


def _hash_cut(ctx: LintContext, key: str, node: Any, value: str, written: str) -> Diagnostic:
    """``smtp_pass: s3cret #with comment``: YAML (and Synapse) read ``s3cret``; the admin may
    have meant the whole line. Both readings are described by length, never shown."""
    what = "password" if key == "smtp_pass" else "user name"
    one_line = node.value_line == node.key_line
    readings = (f"Synapse uses the {len(value)} characters before ` #` (`{MASK}`) and reads "
                f"the rest of the line as a comment; if the ` #...` is part of the {what}, "
                f"it is the {len(written)} characters up to the end of the line "
                f"(`{MASK} #{MASK}`)")
    fix = Fix(f"If the ` #...` is part of the {what}, not a comment: put everything after "
              f"`{key}:` in single quotes. If it is a comment, nothing to do (or quote the "
              f"{what} to say so: `{key}: '...'  # comment`).", Applicability.UNSAFE,
              (Edit("quote-value", node.file, f"email.{key}", written),) if one_line else ())
    return ctx.diag(
        "MD204",
        f"the {what} in `{key}` is followed by ` #`, which YAML reads as a comment: {readings}",
        consequence=f"If the comment was meant as part of the {what}, Synapse sends a shorter "
                    "one and the server refuses it (535); if it is a comment, all is well.",
        fix=fix, path=("email", key), at="value", severity=Severity.WARNING)


def _double_quoted_as_written(ctx: LintContext, node: Any) -> str | None:
    """The characters between the double quotes of a one-line value, or None when they do
    not say what was meant (an escaped quote ``\\"``, or a value over several lines)."""
    if node.end_line != node.value_line:
        return None
    line = ctx.config.source_line(node.file, node.value_line) or ""
    quoted = line[node.value_column - 1: node.end_column - 1]
    if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"' or '\\"' in quoted[1:-1]:
        return None
    return quoted[1:-1]


@rule("MD205", "empty-user", Severity.ERROR, "smtp_user is an empty string")
def empty_user(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse requires authentication whenever ``smtp_user`` is not null, so
    ``smtp_user: ""`` still demands AUTH, with an empty user name."""
    if ctx.email.get("smtp_user") != "":
        return
    if ctx.settings.will_attempt_auth:
        consequence = ("Synapse authenticates with an empty user name; the server typically "
                       "refuses: `twisted.mail._except.AUTHDeclinedError: 535 ...`.")
    else:
        consequence = ("Synapse requires authentication but has no password: "
                       "`twisted.mail._except.AUTHRequiredError: 502 Server does not support "
                       "Client Authentication schemes [CRAM-MD5, LOGIN, PLAIN]`.")
    yield ctx.diag(
        "MD205", 'smtp_user is "" (empty); Synapse still requires authentication',
        consequence=consequence,
        fix=Fix("Set smtp_user to the account name, or delete smtp_user and smtp_pass if the "
                "server needs no login.", Applicability.DISPLAY_ONLY),
        path=("email", "smtp_user"), at="value",
    )


#: A value that is a shell-style environment variable reference: ``${SMTP_PASS}``,
#: ``${SMTP_PASS:-default}``, or ``$SMTP_PASS`` (without braces only in capitals, the
#: convention for variables, so a real password such as ``$ecret99`` is not taken for one).
ENV_REFERENCE = re.compile(r"^\$(\{[A-Za-z_][A-Za-z0-9_]*(:?-[^}]*)?\}|[A-Z_][A-Z0-9_]*)$")
ENV_FIX = ("Write the value itself in a file only Synapse can read, e.g. a conf.d file "
           "(mode 0600, owned by Synapse's user) that holds the whole email: block, or "
           "generate that file from the variable at deploy time (envsubst).")


def _provider_example(ctx: LintContext) -> str:
    """The example login of the provider in smtp_host (``you@gmail.com``), or ""."""
    from maildoctor.providers import find_provider_for_host

    provider = find_provider_for_host(ctx.settings.smtp_host, ctx.settings.smtp_port)
    return provider.user_example if provider is not None else ""


@rule("MD206", "placeholder-secret", Severity.ERROR,
      "smtp_pass or smtp_user still holds a placeholder ('changeme', ${VAR}, you@gmail.com)")
def placeholder_secret(ctx: LintContext) -> Iterator[Diagnostic]:
    """Example configs and redacted pastes leave words like ``redacted``, ``changeme`` or
    ``<password>`` in ``smtp_pass``. Synapse sends them as the password.

    ``${SMTP_PASS}`` (or ``$SMTP_PASS``) is the same mistake in disguise: Synapse does no
    environment-variable substitution in its YAML, so it sends the literal text.

    The login gets the same check: ``smtp_user`` set to an example such as
    ``you@gmail.com`` (what ``maildoctor init`` writes when no ``--user`` is given),
    ``user@example.com``, ``your.name@...``, or the example login of the provider in
    ``smtp_host`` (``maildoctor providers NAME`` shows it). The server refuses that login
    just like a placeholder password."""
    from maildoctor.providers.placeholders import is_example_login

    example: str | None = None
    for key in ("smtp_pass", "smtp_user"):
        value = ctx.email.get(key)
        if not isinstance(value, str):
            continue
        what = "password" if key == "smtp_pass" else "login"
        if ENV_REFERENCE.match(value.strip()):
            yield ctx.diag(
                "MD206", f"{key} is {value.strip()!r}: Synapse does no environment-variable "
                f"substitution in its YAML, so it sends this literal text as the {what}",
                consequence="The server refuses the login: `twisted.mail._except."
                            "AUTHDeclinedError: 535 ...`.",
                fix=Fix(ENV_FIX, Applicability.DISPLAY_ONLY), path=("email", key), at="value")
            continue
        if key == "smtp_pass":
            if value.strip().lower() not in PLACEHOLDER_SECRETS:
                continue
            yield ctx.diag(
                "MD206", "smtp_pass holds a placeholder, not a real password",
                consequence="The server refuses the login: `twisted.mail._except."
                            "AUTHDeclinedError: 535 ...` (or the request hangs, with some "
                            "servers).",
                fix=Fix("Put the SMTP account's real password (or app password) in smtp_pass.",
                        Applicability.DISPLAY_ONLY),
                path=("email", key), at="value")
            continue
        if example is None:
            example = _provider_example(ctx)
        if is_example_login(value, example):
            yield ctx.diag(
                "MD206", f"smtp_user {value!r} is an example login, not a real account",
                consequence="The server refuses the login: `twisted.mail._except."
                            "AUTHDeclinedError: 535 ...`.",
                fix=Fix("Put the SMTP account's real login in smtp_user (and use the same "
                        "address in notif_from where the provider requires it).",
                        Applicability.DISPLAY_ONLY),
                path=("email", key), at="value")


def _duration_ok(value: Any) -> bool:
    if type(value) is int:
        return True
    return isinstance(value, str) and bool(DURATION_RE.match(value))


@rule("MD207", "bad-duration", Severity.ERROR,
      "A duration Synapse cannot parse (validation_token_lifetime, notif_delay_before_mail)")
def bad_duration(ctx: LintContext) -> Iterator[Diagnostic]:
    """Durations are a number of milliseconds or a number with one of the suffixes ms, s,
    m, h, d, w, y (``10m``, ``1h``). Anything else crashes Synapse at startup with a
    traceback. ``notif_delay_before_mail`` is read only when ``enable_notifs`` is on."""
    keys = ["validation_token_lifetime"]
    if ctx.email.get("enable_notifs"):
        keys.append("notif_delay_before_mail")
    for key in keys:
        if key not in ctx.email or _duration_ok(ctx.email[key]):
            continue
        value = ctx.email[key]
        yield ctx.diag(
            "MD207", f"`{key}` is {value!r}, which is not a duration",
            consequence=f"{NO_START_PREFIX}: TypeError: Bad duration suffix ... ({key}).",
            fix=Fix("Write a number with a unit, e.g. 10m, 1h or 2d.", Applicability.DISPLAY_ONLY),
            path=("email", key), at="value",
        )


@rule("MD208", "bad-smtp-host", Severity.ERROR,
      "smtp_host is empty, null, or not a host name (a URL, host:port, an e-mail address)")
def bad_smtp_host(ctx: LintContext) -> Iterator[Diagnostic]:
    """``smtp_host`` must be a bare host name or IP address. Synapse does not parse
    ``host:port`` or ``smtp://`` URLs; it resolves the whole text as a name and fails."""
    if "smtp_host" not in ctx.email:
        return
    value = ctx.email["smtp_host"]
    path = ("email", "smtp_host")
    fix_host = Fix("Set smtp_host to the server's name only, e.g. smtp.example.org, and the "
                   "port in smtp_port.", Applicability.DISPLAY_ONLY)
    dns = ("Every mail fails with `twisted.internet.error.DNSLookupError: DNS lookup failed: "
           f"no results for hostname lookup: {value}.`")
    problem = ""
    if value is None or (isinstance(value, str) and not value.strip()):
        problem = "smtp_host is empty"
        dns = "Every mail fails: Twisted gets no host to connect to."
    elif not isinstance(value, str):
        problem = f"smtp_host is a {type(value).__name__}, not a host name"
    elif "://" in value:
        problem = f"smtp_host {value!r} is a URL; Synapse wants a bare host name"
    elif "@" in value:
        problem = f"smtp_host {value!r} looks like an e-mail address"
    elif re.fullmatch(r"[^:\[\]]+:\d+", value):
        host, port = value.rsplit(":", 1)
        problem = f"smtp_host {value!r} includes a port; Synapse does not split host:port"
        fix_host = Fix(f"Set smtp_host: {host} and smtp_port: {port}.", Applicability.UNSAFE,
                       (Edit("set-value", ctx.file_of(path), "email.smtp_host", host),
                        Edit("insert-key", ctx.file_of(path), "email.smtp_port", int(port))))
    elif any(c.isspace() for c in value):
        problem = f"smtp_host {value!r} contains white space (a space, tab or line break)"
    if problem:
        yield ctx.diag("MD208", problem, consequence=dns, fix=fix_host, path=path, at="value")
