"""MD1xx: keys Synapse ignores, misplaces or does not know in your version.

Synapse reads ``email:`` with ``dict.get``: any key it does not ask for is ignored with no
warning, and ``python -m synapse.config`` still prints "Config parses OK!".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from maildoctor.config import schema
from maildoctor.config.load import dotted
from maildoctor.config.rules import LintContext, rule
from maildoctor.config.schema.data import NOTIF_FROM_MISSING_LINE
from maildoctor.diagnostics import (
    NO_START_PREFIX,
    Applicability,
    Diagnostic,
    Edit,
    Fix,
    Location,
    Severity,
)

IGNORED = ("Synapse ignores this key without a warning (its config check still says "
           "'Config parses OK!').")

# Renames that keep the value's meaning exactly: safe for `fix` to apply.
PLAIN_RENAMES = {"smtp_host", "smtp_port", "smtp_user", "smtp_pass", "notif_from", "app_name",
                 "tlsname", "client_base_url"}

# Email keys distinctive enough to recognise outside email: (top level, or nested).
DISTINCTIVE = ("smtp_host", "smtp_port", "smtp_user", "smtp_pass", "notif_from", "force_tls",
               "require_transport_security", "enable_tls", "tlsname", "enable_notifs",
               "notif_for_new_users", "notif_delay_before_mail")

AUTH_REQUIRED = ("twisted.mail._except.AUTHRequiredError: 502 Server does not support Client "
                 "Authentication schemes [CRAM-MD5, LOGIN, PLAIN]")


def missing_consequence(ctx: LintContext, key: str) -> str:
    """What Synapse does because ``key`` is unset (used when an admin misspelt it)."""
    s = ctx.settings
    if key == "smtp_pass":
        if ctx.has("smtp_user"):
            return ("smtp_pass is therefore unset, so Synapse never sends a password: every mail "
                    f"fails with `{AUTH_REQUIRED}`, although the server may offer those schemes "
                    "(Twisted lists every scheme it knows when it has no password).")
        return "smtp_pass is therefore unset: Synapse will not authenticate."
    if key == "smtp_user":
        if ctx.has("smtp_pass"):
            return ("smtp_user is therefore unset while smtp_pass is set: Twisted crashes with a "
                    "TypeError when it tries to authenticate, and the request hangs (nothing is "
                    "logged but 'Sending email to ...').")
        return "smtp_user is therefore unset: Synapse sends without authenticating."
    if key == "smtp_port":
        return (f"smtp_port is therefore unset, so Synapse connects to port {s.smtp_port} "
                f"({'force_tls is on' if s.implicit_tls else 'the default without force_tls'}).")
    if key == "smtp_host":
        return "smtp_host is therefore unset, so Synapse connects to localhost."
    if key == "notif_from":
        return ("notif_from is therefore unset, so Synapse refuses to start: "
                f"'{NOTIF_FROM_MISSING_LINE}'.")
    if key == "force_tls":
        return "force_tls is therefore off: Synapse speaks plain SMTP first (STARTTLS if offered)."
    if key == "enable_tls":
        return "enable_tls therefore keeps its default (true)."
    if key == "require_transport_security":
        return "require_transport_security is therefore off."
    return f"{key} therefore keeps its default."


def _rename_fix(ctx: LintContext, key: str, target: str, *, safe: bool) -> Fix:
    if ctx.has(target):
        return Fix(f"`{target}` is already set; delete `{key}` or merge the two by hand.",
                   Applicability.DISPLAY_ONLY)
    return Fix(
        f"Rename `{key}` to `{target}`.",
        Applicability.SAFE if safe else Applicability.UNSAFE,
        (Edit("rename-key", ctx.file_of(("email", key)), f"email.{key}", target),),
    )


@rule("MD101", "unknown-email-key", Severity.ERROR,
      "A key under email: that Synapse does not read (usually a typo)")
def unknown_email_key(ctx: LintContext) -> Iterator[Diagnostic]:
    """Reports every key under ``email:`` that the selected Synapse version does not read,
    with the key you probably meant: typos by edit distance (``smpt_pass`` -> ``smtp_pass``),
    and the names other software uses (``smtp_password``, ``username``, ``ssl``, ``starttls``).
    The consequence names what Synapse then does without the intended key: for the classic
    ``smpt_pass`` it is ``AUTHRequiredError: 502 ... [CRAM-MD5, LOGIN, PLAIN]``."""
    known = schema.email_keys_for(ctx.version)
    for key in ctx.email:
        name = str(key)
        if name in known or name in schema.NONEXISTENT:
            continue
        status = schema.key_status(name, ctx.version)
        if status in ("not-yet", "removed", "deprecated", "known"):
            continue  # MD103 / MD104 speak for these
        misplaced = schema.MISPLACED.get(name)
        synonym = schema.SYNONYMS.get(name)
        suggestions = schema.suggest(name, ctx.version)
        suggests: tuple[str, ...] = ()
        if misplaced is not None:
            target = ""
            message = f"`{name}` is not an email option: {misplaced.reason}"
            fix = Fix(f"Move `{name}` out of email: to `{misplaced.target}` at the top level.",
                      Applicability.UNSAFE,
                      (Edit("move-key", ctx.file_of(("email", key)), f"email.{name}",
                            misplaced.target),))
        elif synonym is not None and "." not in synonym.target:
            target = synonym.target
            message = (f"`{name}` is not a Synapse option; did you mean `{target}`? "
                       f"({synonym.reason})")
            fix = _rename_fix(ctx, name, target, safe=target in PLAIN_RENAMES)
            suggests = (target,)
        elif suggestions:
            target = suggestions[0]
            others = "".join(f" or `{s}`" for s in suggestions[1:])
            message = f"unknown key `{name}` under email:; did you mean `{target}`{others}?"
            fix = _rename_fix(ctx, name, target, safe=len(suggestions) == 1)
            suggests = tuple(suggestions)
        else:
            target = ""
            message = f"unknown key `{name}` under email:"
            fix = Fix("Remove it, or check the spelling against `maildoctor schema`.",
                      Applicability.DISPLAY_ONLY)
        consequence = IGNORED
        if target and not ctx.has(target):
            consequence += " " + missing_consequence(ctx, target)
        yield ctx.diag("MD101", message, consequence=consequence, fix=fix, path=("email", key),
                       suggests=suggests)


@rule("MD102", "nonexistent-option", Severity.ERROR,
      "An option that exists in no Synapse version (e.g. smtp_pass_path)")
def nonexistent_option(ctx: LintContext) -> Iterator[Diagnostic]:
    """Some options look as if they should exist, and exist for other software or other
    Synapse sections (``redis.password_path``), but Synapse's ``email:`` has no such thing:
    no password file, no CA file, no timeout, no choice of AUTH mechanism."""
    for key in ctx.email:
        info = schema.NONEXISTENT.get(str(key))
        if info is None:
            continue
        yield ctx.diag(
            "MD102",
            f"`{key}` does not exist in any Synapse version: {info.reason}",
            consequence=IGNORED,
            fix=Fix(info.alternative, Applicability.DISPLAY_ONLY),
            path=("email", key),
        )


@rule("MD103", "key-not-in-version", Severity.ERROR,
      "A key your Synapse version does not read (added later, or removed)")
def key_not_in_version(ctx: LintContext) -> Iterator[Diagnostic]:
    """Keys are versioned: ``tlsname`` exists since 1.122.0, ``force_tls`` since 1.64.0.
    Select your version with ``--synapse-version`` (default: the newest known)."""
    for key in ctx.email:
        name = str(key)
        status = schema.key_status(name, ctx.version)
        spec = schema.EMAIL_KEYS.get(name)
        if spec is None or status not in ("not-yet", "removed"):
            continue
        if status == "not-yet":
            message = (f"`{name}` was added in Synapse {spec.added}; Synapse {ctx.version} "
                       "ignores it")
            fix = Fix(f"Upgrade Synapse to {spec.added} or later, or remove `{name}`.",
                      Applicability.DISPLAY_ONLY)
        else:
            when = f" in {spec.removed}" if spec.removed else ""
            message = f"`{name}` was removed from Synapse{when}; Synapse {ctx.version} ignores it"
            fix = Fix(f"Use `{spec.replacement}` instead." if spec.replacement
                      else f"Remove `{name}`.", Applicability.DISPLAY_ONLY)
        yield ctx.diag("MD103", message, consequence=IGNORED, fix=fix, path=("email", key))


@rule("MD104", "deprecated-key", Severity.WARNING, "A deprecated email key")
def deprecated_key(ctx: LintContext) -> Iterator[Diagnostic]:
    """Deprecated keys still work but have a replacement: ``riot_base_url`` became
    ``client_base_url`` (1.9.0); ``email.template_dir`` became the top-level
    ``templates.custom_template_directory`` (1.41.0), which is searched first."""
    for key in ctx.email:
        name = str(key)
        if schema.key_status(name, ctx.version) != "deprecated":
            continue
        spec = schema.EMAIL_KEYS[name]
        repl = spec.replacement or ""
        if name == "riot_base_url":
            fix = _rename_fix(ctx, name, "client_base_url", safe=True)
            extra = (" It is ignored because client_base_url is also set."
                     if ctx.has("client_base_url") else "")
        else:
            fix = Fix(f"Move the value to `{repl}`." if repl else f"Stop using `{name}`.",
                      Applicability.DISPLAY_ONLY)
            extra = ""
        yield ctx.diag(
            "MD104",
            f"`{name}` is deprecated since Synapse {spec.deprecated}"
            + (f"; use `{repl}`" if repl else ""),
            consequence=("It still works for now." + extra) if not extra else extra.strip(),
            fix=fix,
            path=("email", key),
        )


@rule("MD105", "email-key-at-top-level", Severity.ERROR,
      "An email setting written at the top level instead of under email:")
def email_key_at_top_level(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse reads SMTP settings only under ``email:``. ``smtp_host:`` at the top level
    of homeserver.yaml (often an indentation slip) is silently ignored."""
    for key in ctx.merged:
        if key not in DISTINCTIVE:
            continue
        file = ctx.file_of((key,))
        if key in ctx.email:
            fix = Fix(f"email: already has `{key}`; delete this top-level one.",
                      Applicability.DISPLAY_ONLY)
        else:
            fix = Fix(f"Indent `{key}` under `email:`.", Applicability.SAFE,
                      (Edit("move-key", file, str(key), "email"),))
        consequence = IGNORED
        if key not in ctx.email and (ctx.email_enabled or key != "notif_from"):
            consequence += " " + missing_consequence(ctx, str(key))
        yield ctx.diag("MD105", f"`{key}` belongs under `email:`, not at the top level",
                       consequence=consequence, fix=fix, path=(key,))


def _looks_like_email_block(value: Any) -> bool:
    return isinstance(value, Mapping) and any(k in DISTINCTIVE for k in value)


@rule("MD106", "email-key-misplaced", Severity.ERROR,
      "An email setting or email: block nested where Synapse does not look")
def email_key_misplaced(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse reads exactly ``email.<key>``. An ``email:`` block nested inside another
    section, or SMTP keys one level too deep (``email: {smtp: {smtp_host: ...}}``), are
    ignored."""
    reported_blocks: set[tuple[Any, ...]] = set()
    for path, _node in ctx.config.iter_nodes():
        if len(path) < 2:
            continue
        last = path[-1]
        if last == "email" and len(path) >= 2:
            value = _value_at(ctx.merged, path)
            if _looks_like_email_block(value):
                reported_blocks.add(path)
                yield ctx.diag(
                    "MD106",
                    f"an email: block is nested under `{dotted(path[:-1])}`; Synapse reads only "
                    "the top-level `email:`",
                    consequence=IGNORED.replace("this key", "this block"),
                    fix=Fix("Move this block to the top level (no indentation).",
                            Applicability.UNSAFE, (Edit("move-key", ctx.file_of(path),
                                                        dotted(path), ""),)),
                    path=path,
                )
            continue
        if last not in DISTINCTIVE or path == ("email", last):
            continue
        if path[0] == misspelt_email_block(ctx):
            continue  # MD108 reports the block once
        if any(path[:n] in reported_blocks for n in range(1, len(path))):
            continue
        yield ctx.diag(
            "MD106",
            f"`{last}` is nested at `{dotted(path)}`; Synapse reads it only as `email.{last}`",
            consequence=IGNORED,
            fix=Fix(f"Move `{last}` directly under `email:`.", Applicability.UNSAFE,
                    (Edit("move-key", ctx.file_of(path), dotted(path), "email"),)),
            path=path,
        )


def _value_at(root: Any, path: tuple[Any, ...]) -> Any:
    cur = root
    for part in path:
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        else:
            return None
    return cur


@rule("MD107", "email-not-mapping", Severity.ERROR,
      "email: is a list or a plain value instead of key: value settings")
def email_not_mapping(ctx: LintContext) -> Iterator[Diagnostic]:
    """``email:`` must hold ``key: value`` pairs. An empty ``email:`` is fine (email off), but
    a list (``email: [smtp_host: x]``) or a string makes Synapse crash at startup with a
    traceback."""
    raw = ctx.email_raw
    if raw is None or isinstance(raw, Mapping):
        return
    kind = type(raw).__name__
    yield ctx.diag(
        "MD107",
        f"email: is a {kind}, not a mapping of settings",
        consequence=f"{NO_START_PREFIX}: AttributeError: '{kind}' object has no "
                    "attribute 'get'.",
        fix=Fix("Write each setting as `key: value` indented under `email:` (no leading `- `).",
                Applicability.DISPLAY_ONLY),
        path=("email",), at="value",
    )


EMAIL_LOOKALIKES = re.compile(r"^(e[-_]?mail|emial|emali|emal|eamil|mail|emails|smtp)$",
                              re.IGNORECASE)


def misspelt_email_block(ctx: LintContext) -> Any:
    """The top-level key that looks like a misspelt ``email:`` holding email settings."""
    for key, value in ctx.merged.items():
        if key == "email" or not isinstance(key, str):
            continue
        if EMAIL_LOOKALIKES.match(key) and _looks_like_email_block(value):
            return key
    return None


@rule("MD108", "email-block-misspelt", Severity.ERROR,
      "The email settings are under a misspelt top-level key (emial:, Email:, mail:)")
def email_block_misspelt(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse reads exactly ``email:`` (lower case). Under ``emial:``, ``Email:`` or
    ``mail:`` every SMTP setting is ignored, email is off, and password reset answers
    "Email-based password resets have been disabled on this server"."""
    key = misspelt_email_block(ctx)
    if key is None:
        return
    fix = (Fix("Rename it to `email:`.", Applicability.SAFE,
               (Edit("rename-key", ctx.file_of((key,)), str(key), "email"),))
           if "email" not in ctx.merged else
           Fix("Merge these settings into the existing `email:` block.",
               Applicability.DISPLAY_ONLY))
    yield ctx.diag(
        "MD108", f"`{key}:` holds email settings, but Synapse reads only `email:`",
        consequence="Synapse ignores the whole block: email is off, no mail is sent, and "
                    "password reset answers 400 'Email-based password resets have been "
                    "disabled on this server'.",
        fix=fix, path=(key,))


@rule("MD109", "email-not-configured", Severity.WARNING,
      "There is no email: block: Synapse sends no mail at all")
def email_not_configured(ctx: LintContext) -> Iterator[Diagnostic]:
    """Without a non-empty ``email:`` block Synapse has email off: no password reset, no
    email verification at registration, no notification mails. The endpoints answer 400
    ("Email-based password resets have been disabled on this server")."""
    if ctx.email_enabled or misspelt_email_block(ctx) is not None:
        return
    if ctx.email_raw is not None and not isinstance(ctx.email_raw, Mapping):
        return  # MD107
    required = ctx.merged.get("registrations_require_3pid")
    if isinstance(required, list) and "email" in required:
        return  # MD503 says what this breaks
    where = ("email",) if "email" in ctx.merged else ()
    locations = ctx.loc(where) if where else tuple(
        Location(pf.path, 1, 1, "") for pf in ctx.config.files[:1])
    yield ctx.diag(
        "MD109", "email is not configured" + (" (email: is empty)" if where else ""),
        consequence="Synapse sends no mail: password reset answers 400 'Email-based password "
                    "resets have been disabled on this server', and registration by email is "
                    "refused.",
        fix=Fix("Add an email: block (`maildoctor init --provider NAME` prints one).",
                Applicability.DISPLAY_ONLY),
        locations=locations)
