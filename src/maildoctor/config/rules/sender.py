"""MD4xx: the sender (notif_from, app_name) and the subjects.

Synapse formats ``notif_from % {"app": app_name}`` at send time (KeyError and TypeError
fall back to the raw text, ValueError fails the send), takes the envelope sender from
``parseaddr`` of the result, and formats each subject with a fixed set of placeholders,
also only at send time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from email.utils import parseaddr
from typing import Any

from maildoctor.addresses import is_plain_address
from maildoctor.config import schema
from maildoctor.config.rules import LintContext, rule
from maildoctor.config.schema.data import NOTIF_FROM_MISSING_LINE
from maildoctor.diagnostics import NO_START_PREFIX, Applicability, Diagnostic, Edit, Fix, Severity

PARTIAL_BLOCK = f"{NO_START_PREFIX}: Error in configuration: {NOTIF_FROM_MISSING_LINE}"
EXAMPLE_FROM = "Your Friendly %(app)s homeserver <noreply@example.org>"
SEND_FAILS = ('Every mail fails: the client gets 500 M_UNKNOWN "An error was encountered when '
              'sending the email"')


class _Probe(dict[str, Any]):
    """A format mapping that records which placeholders a string asks for."""

    def __init__(self, allowed: set[str]) -> None:
        super().__init__()
        self.allowed = allowed
        self.missing: list[str] = []

    def __missing__(self, key: str) -> str:
        if key in self.allowed:
            return "x"
        self.missing.append(key)
        raise KeyError(key)


def format_problem(text: str, allowed: set[str]) -> tuple[str, str] | None:
    """Try ``text % {allowed...}`` as Synapse will; return (exception, detail) on failure."""
    probe = _Probe(allowed)
    try:
        text % probe
    except KeyError as exc:
        return ("KeyError", str(exc.args[0]) if exc.args else "")
    except ValueError as exc:
        return ("ValueError", str(exc))
    except TypeError as exc:
        return ("TypeError", str(exc))
    return None


@rule("MD401", "notif-from-missing", Severity.ERROR,
      "email: is set but notif_from is not: Synapse refuses to start")
def notif_from_missing(ctx: LintContext) -> Iterator[Diagnostic]:
    """Any non-empty ``email:`` block switches on password reset and email verification,
    and those need ``notif_from``. Synapse refuses to start without it."""
    if not ctx.email_enabled or ctx.email.get("notif_from") is not None:
        return
    yield ctx.diag(
        "MD401", "notif_from is missing from the email: block",
        consequence=PARTIAL_BLOCK,
        fix=Fix(f'Add `notif_from: "{EXAMPLE_FROM}"` with an address your SMTP account may '
                "send from.", Applicability.UNSAFE,
                (Edit("insert-key", ctx.file_of(("email",)), "email.notif_from", EXAMPLE_FROM),)),
        path=("email",))


@rule("MD402", "notif-from-invalid", Severity.ERROR,
      "notif_from has no address part: Synapse crashes at startup")
def notif_from_invalid(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse checks ``parseaddr(notif_from)`` at startup and raises
    ``RuntimeError("Invalid notif_from address")`` (a traceback) when it finds no address."""
    if "notif_from" not in ctx.email or ctx.email["notif_from"] is None:
        return
    value = ctx.email["notif_from"]
    if not isinstance(value, str):
        yield ctx.diag(
            "MD402", f"notif_from is a {type(value).__name__}, not text",
            consequence=f"{NO_START_PREFIX} (a traceback while reading notif_from).",
            fix=Fix(f'Write notif_from as text: "{EXAMPLE_FROM}".', Applicability.DISPLAY_ONLY),
            path=("email", "notif_from"), at="value")
        return
    if parseaddr(value)[1] == "":
        yield ctx.diag(
            "MD402", f"notif_from {value!r} contains no e-mail address",
            consequence=f"{NO_START_PREFIX}: RuntimeError: Invalid notif_from address",
            fix=Fix(f'Write it as "Name <address>", e.g. "{EXAMPLE_FROM}".',
                    Applicability.DISPLAY_ONLY),
            path=("email", "notif_from"), at="value")


@rule("MD403", "notif-from-format", Severity.ERROR,
      "notif_from has a broken or unknown % placeholder")
def notif_from_format(ctx: LintContext) -> Iterator[Diagnostic]:
    """Only ``%(app)s`` is substituted (with ``app_name``). ``%(app)`` without the ``s`` or a
    lone ``%`` raises ValueError at send time and every mail fails. Another placeholder
    (``%(brand)s``) raises KeyError, which Synapse catches: the text is then used as is and
    the literal ``%(brand)s`` appears in the From header. Write a literal % as %%."""
    value = ctx.email.get("notif_from")
    if not isinstance(value, str) or "%" not in value:
        return
    problem = format_problem(value, {"app"})
    if problem is None:
        return
    exc, detail = problem
    path = ("email", "notif_from")
    if exc == "ValueError":
        hint = " (did you mean `%(app)s`?)" if re.search(r"%\(app\)(?!s)", value) else ""
        yield ctx.diag(
            "MD403", f"notif_from has a malformed % placeholder{hint}: {detail}",
            consequence=SEND_FAILS + ", and homeserver.log shows ValueError: " + detail + ".",
            fix=Fix("Write the app name as `%(app)s`, and a literal percent sign as `%%`.",
                    Applicability.DISPLAY_ONLY),
            path=path, at="value")
    else:
        what = f"`%({detail})s`" if exc == "KeyError" else "a positional %s"
        yield ctx.diag(
            "MD403", f"notif_from uses {what}; only `%(app)s` is available",
            consequence="Synapse sends notif_from unformatted: the From header shows the "
                        "placeholder text literally.",
            fix=Fix("Use `%(app)s` for the app name, or plain text.", Applicability.DISPLAY_ONLY),
            path=path, at="value", severity=Severity.WARNING)


#: What a mail server accepts in MAIL FROM:<...> without quoting: no space, no brackets, one @.


def _corrected_from(raw: str) -> str | None:
    """``Matrix noreply@example.org`` -> ``Matrix <noreply@example.org>``: the last word
    holding an @ becomes the bracketed address, the words before it the display name.
    None when no such reading exists."""
    words = raw.split()
    if "<" in raw or ">" in raw or len(words) < 2 or not is_plain_address(words[-1]):
        return None
    name = " ".join(words[:-1]).strip()
    if any(c in name for c in '<>@,;:"'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{words[-1]}>"


def _angle_address(text: str) -> str | None:
    m = re.search(r"<([^<>]*)>\s*$", text)
    return m.group(1).strip() if m else None


@rule("MD404", "notif-from-address", Severity.WARNING,
      "notif_from's address is not what it looks like (display-name specials, no domain)")
def notif_from_address(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse takes the envelope sender from ``parseaddr`` of the formatted ``notif_from``.
    An unquoted ``;`` or ``,`` in the display name makes it take the display name's first
    word instead (``Matrix; Server <noreply@x>`` gives ``Matrix``). An address with no
    ``@domain`` is completed by Twisted with this host's name (``noreply@synapse-7f9c``),
    which relays reject. Quote display names that contain specials."""
    s = ctx.settings
    formatted = s.from_string
    if not isinstance(ctx.email.get("notif_from"), str) or formatted is None:
        return
    address = parseaddr(formatted)[1]
    if not address:
        return  # MD402
    path = ("email", "notif_from")
    bracketed = _angle_address(formatted)
    if bracketed and bracketed != address:
        name = formatted[: formatted.rfind("<")].strip()
        yield ctx.diag(
            "MD404", f"notif_from's display name {name!r} contains a special character, so "
                     f"Synapse's sender address becomes {address!r}, not {bracketed!r}",
            consequence=f"Synapse sends MAIL FROM:<{address}@this-host's-name>, which servers "
                        "refuse or treat as spam.",
            fix=Fix(f'Quote the display name: notif_from: \'"{name}" <{bracketed}>\'.',
                    Applicability.DISPLAY_ONLY),
            path=path, at="value")
    elif not is_plain_address(address) and "@" in address:
        corrected = _corrected_from(str(ctx.email["notif_from"]))
        fix = Fix(f"Put the address in angle brackets: notif_from: {corrected!r}."
                  if corrected else f'Write it as "Name <address>", e.g. "{EXAMPLE_FROM}".',
                  Applicability.UNSAFE if corrected else Applicability.DISPLAY_ONLY,
                  (Edit("set-value", ctx.file_of(path), "email.notif_from", corrected),)
                  if corrected else ())
        yield ctx.diag(
            "MD404", f"notif_from's address {address!r} is not a plain local@domain address "
                     "(the address needs angle brackets when a display name comes before it)",
            consequence=f"Synapse sends MAIL FROM:<{address}>, which mail servers refuse "
                        "(501/553 bad sender address syntax): every mail fails.",
            fix=fix, path=path, at="value", severity=Severity.ERROR)
    elif "@" not in address:
        yield ctx.diag(
            "MD404", f"notif_from's address {address!r} has no @domain",
            consequence=f"Twisted appends this host's name: MAIL FROM:<{address}@<fqdn>>, which "
                        "most servers refuse (553/550 sender rejected).",
            fix=Fix(f'Use a full address: "{EXAMPLE_FROM}".', Applicability.DISPLAY_ONLY),
            path=path, at="value")


@rule("MD405", "non-ascii-sender", Severity.WARNING,
      "Non-ASCII text in notif_from or app_name breaks the From header")
def non_ascii_sender(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse builds its mails with Python's legacy (compat32) email policy, which encodes a
    non-ASCII From value *whole*, address included, as one RFC 2047 word: the header is
    malformed and many servers and clients reject or mangle it. A non-ASCII *address* makes
    Twisted fail with UnicodeEncodeError before connecting (no SMTPUTF8)."""
    s = ctx.settings
    formatted = s.from_string
    if not isinstance(formatted, str) or formatted.isascii():
        return
    address = parseaddr(formatted)[1]
    source = "notif_from" if not str(ctx.email.get("notif_from", "")).isascii() else "app_name"
    path = ("email", source if ctx.has(source) else "notif_from")
    if not address.isascii():
        yield ctx.diag(
            "MD405", f"notif_from's address {address!r} is not ASCII",
            consequence=SEND_FAILS + ": UnicodeEncodeError: 'ascii' codec can't encode "
                        "character ... (Twisted has no SMTPUTF8).",
            fix=Fix("Use an ASCII address (punycode for the domain).", Applicability.DISPLAY_ONLY),
            path=path, at="value", severity=Severity.ERROR)
    else:
        yield ctx.diag(
            "MD405", f"the From header {formatted!r} is not ASCII (from {source})",
            consequence="Synapse encodes the whole From value, address included, as one "
                        "=?utf-8?b?...?= word: a malformed header that servers may reject and "
                        "clients show as garbage.",
            fix=Fix("Use an ASCII display name (and app_name), or send through maildoctor with "
                    "--correct-headers to see the difference.", Applicability.DISPLAY_ONLY),
            path=path, at="value")


@rule("MD406", "subjects-not-mapping", Severity.ERROR,
      "email.subjects is not a mapping: Synapse crashes at startup")
def subjects_not_mapping(ctx: LintContext) -> Iterator[Diagnostic]:
    """``email.subjects`` must map subject names to texts."""
    if "subjects" not in ctx.email:
        return
    value = ctx.email["subjects"]
    if value is None or isinstance(value, Mapping):
        return
    kind = type(value).__name__
    yield ctx.diag(
        "MD406", f"email.subjects is a {kind}, not a mapping of subject names to texts",
        consequence=f"{NO_START_PREFIX}: AttributeError: '{kind}' object has no attribute ...",
        fix=Fix("Write `subjects:` with `password_reset: ...` style entries under it.",
                Applicability.DISPLAY_ONLY),
        path=("email", "subjects"), at="value")


def _subjects(ctx: LintContext) -> Mapping[Any, Any]:
    value = ctx.email.get("subjects")
    return value if isinstance(value, Mapping) else {}


@rule("MD407", "unknown-subject-key", Severity.ERROR,
      "A key under email.subjects that Synapse does not read")
def unknown_subject_key(ctx: LintContext) -> Iterator[Diagnostic]:
    """Subject keys are fixed (``password_reset``, ``email_validation``, ``messages_in_room``
    ...). A misspelt one is ignored and the default subject is used."""
    known = schema.subject_keys_for(ctx.version)
    for key in _subjects(ctx):
        name = str(key)
        if name in known:
            continue
        candidates = schema.suggest_subject(name, ctx.version)
        best = candidates[0] if candidates else None
        hint = f"; did you mean `{best}`?" if best else ""
        fix = (Fix(f"Rename `{name}` to `{best}`.", Applicability.SAFE,
                   (Edit("rename-key", ctx.file_of(("email", "subjects", key)),
                         f"email.subjects.{name}", best),))
               if best and best not in _subjects(ctx)
               else Fix("Remove it; `maildoctor schema` lists the subject keys.",
                        Applicability.DISPLAY_ONLY))
        yield ctx.diag("MD407", f"unknown subject `{name}`{hint}",
                       consequence="Synapse ignores it and uses the default subject.",
                       fix=fix, path=("email", "subjects", key))


@rule("MD408", "subject-placeholder", Severity.ERROR,
      "A subject uses a placeholder that mail does not have, or a stray %")
def subject_placeholder(ctx: LintContext) -> Iterator[Diagnostic]:
    """Each subject is formatted with a fixed set of placeholders: ``%(server_name)s`` and
    ``%(app)s`` for password reset and validation mails; ``%(person)s``, ``%(room)s``,
    ``%(space)s`` and ``%(app)s`` (not ``server_name``) for notifications. Anything else
    raises KeyError when that mail is sent (never at startup); a lone ``%`` raises
    ValueError."""
    known = schema.subject_keys_for(ctx.version)
    for key, text in _subjects(ctx).items():
        spec = known.get(str(key))
        if spec is None or not isinstance(text, str):
            continue
        problem = format_problem(text, set(spec.placeholders))
        if problem is None:
            continue
        exc, detail = problem
        available = ", ".join(f"%({p})s" for p in sorted(spec.placeholders))
        if spec.kind == "notification":
            consequence = ("Notification mails fail: homeserver.log shows 'Exception processing "
                           f"notifs' with {exc}; users get nothing.")
        else:
            consequence = f"{SEND_FAILS} ({spec.used_for}); homeserver.log shows {exc}."
        message = (f"subject `{key}` uses `%({detail})s`, which is not available for this mail"
                   if exc == "KeyError" else f"subject `{key}` has a stray %: {detail}")
        yield ctx.diag(
            "MD408", message, consequence=consequence,
            fix=Fix(f"Use only {available} (write a literal % as %%).",
                    Applicability.DISPLAY_ONLY),
            path=("email", "subjects", key), at="value")
