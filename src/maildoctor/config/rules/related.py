"""MD5xx: settings outside ``email:`` that decide whether and how mails work.

public_baseurl builds every link in a mail; registration settings can demand email;
template directories must exist; with MAS (Matrix Authentication Service) Synapse sends no
email at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from maildoctor.config.rules import LintContext, rule
from maildoctor.diagnostics import (
    NO_START_PREFIX,
    Applicability,
    Diagnostic,
    Edit,
    Fix,
    Location,
    Severity,
)

NO_START = f"{NO_START_PREFIX}: Error in configuration"

def _legacy_template_keys() -> dict[str, str]:
    """Legacy email keys naming template files -> the file Synapse uses by default."""
    from maildoctor.config.schema import EMAIL_KEYS

    return {name: str(spec.default) for name, spec in EMAIL_KEYS.items()
            if spec.legacy and isinstance(spec.default, str)}


def _get(root: Mapping[Any, Any], *path: str) -> Any:
    cur: Any = root
    for part in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


@rule("MD501", "public-baseurl-invalid", Severity.ERROR,
      "public_baseurl is not an http(s) URL without query or fragment")
def public_baseurl_invalid(ctx: LintContext) -> Iterator[Diagnostic]:
    """Every link in a mail is ``public_baseurl`` plus a path. Synapse refuses to start when
    it is not a string, has a scheme other than http/https, or has a query or fragment."""
    if "public_baseurl" not in ctx.merged or ctx.merged["public_baseurl"] is None:
        return
    value = ctx.merged["public_baseurl"]
    path = ("public_baseurl",)
    fix = Fix("Set public_baseurl to the URL clients use to reach Synapse, e.g. "
              "https://matrix.example.org/", Applicability.DISPLAY_ONLY)
    if not isinstance(value, str):
        yield ctx.diag("MD501", f"public_baseurl is a {type(value).__name__}, not a URL",
                       consequence=f"{NO_START} at 'public_baseurl': Must be a string", fix=fix,
                       path=path, at="value")
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        yield ctx.diag("MD501", f"public_baseurl {value!r} does not start with https:// or http://",
                       consequence=f"{NO_START}: Invalid scheme '{parts.scheme}': only https and "
                                   "http are supported", fix=fix, path=path, at="value")
    elif parts.query or parts.fragment:
        yield ctx.diag("MD501", f"public_baseurl {value!r} has a query or a #fragment",
                       consequence=f"{NO_START}: public_baseurl cannot contain query parameters "
                                   "or a #-fragment", fix=fix, path=path, at="value")


@rule("MD502", "public-baseurl-missing", Severity.WARNING,
      "public_baseurl is unset: mail links point at https://<server_name>/")
def public_baseurl_missing(ctx: LintContext) -> Iterator[Diagnostic]:
    """Without ``public_baseurl`` Synapse builds links from ``https://<server_name>/``. With
    delegation (server_name ``example.org``, Synapse at ``matrix.example.org``) every reset
    and validation link in a mail is then wrong, with no warning."""
    if not ctx.email_enabled or ctx.merged.get("public_baseurl"):
        return
    name = ctx.merged.get("server_name", "<server_name>")
    yield ctx.diag(
        "MD502", f"public_baseurl is not set, so links in mails start with https://{name}/",
        consequence="If clients reach Synapse at another address (delegation, a port, a path), "
                    "every link in password reset and validation mails is broken.",
        fix=Fix(f"Set public_baseurl: https://matrix.{name}/ (the URL clients use).",
                Applicability.DISPLAY_ONLY),
        path=("email",))


@rule("MD503", "require-3pid-without-email", Severity.ERROR,
      "registrations_require_3pid demands email, but email is not configured")
def require_3pid_without_email(ctx: LintContext) -> Iterator[Diagnostic]:
    """This is raised when Synapse builds its HTTP handlers, after the config check:
    ``python -m synapse.config`` says "Config parses OK!" and the real start fails."""
    required = ctx.merged.get("registrations_require_3pid")
    if not isinstance(required, list) or "email" not in required or ctx.email_enabled:
        return
    yield ctx.diag(
        "MD503", "registrations_require_3pid includes email, but there is no email: block",
        consequence="Synapse fails to start ('Error during startup'): ConfigError: Configuration "
                    "requires email address at registration, but email validation is not "
                    "configured",
        fix=Fix("Configure email: (smtp_host, notif_from, ...), or drop email from "
                "registrations_require_3pid.", Applicability.DISPLAY_ONLY),
        path=("registrations_require_3pid",))


@rule("MD504", "removed-option", Severity.ERROR,
      "An option Synapse removed: it refuses to start, or ignores it")
def removed_option(ctx: LintContext) -> Iterator[Diagnostic]:
    """``trust_identity_server_for_password_resets`` (top level) and
    ``account_threepid_delegates.email`` (since 1.66.0) make Synapse refuse to start.
    ``trust_identity_server_for_password_resets`` nested under ``email:`` is never checked,
    so it is silently ignored."""
    if "trust_identity_server_for_password_resets" in ctx.merged:
        yield ctx.diag(
            "MD504", "trust_identity_server_for_password_resets is no longer supported",
            consequence=f"{NO_START}: The config option \"trust_identity_server_for_password_"
                        "resets\" is no longer supported. Please remove it from the config file.",
            fix=Fix("Delete the line.", Applicability.SAFE,
                    (Edit("delete-key", ctx.file_of(("trust_identity_server_for_password_resets",)),
                          "trust_identity_server_for_password_resets"),)),
            path=("trust_identity_server_for_password_resets",))
    if "trust_identity_server_for_password_resets" in ctx.email:
        yield ctx.diag(
            "MD504", "trust_identity_server_for_password_resets under email: is ignored "
                     "(and removed from Synapse)",
            consequence="Ignored: Synapse sends reset mails itself.",
            fix=Fix("Delete the line.", Applicability.SAFE,
                    (Edit("delete-key",
                          ctx.file_of(("email", "trust_identity_server_for_password_resets")),
                          "email.trust_identity_server_for_password_resets"),)),
            path=("email", "trust_identity_server_for_password_resets"),
            severity=Severity.WARNING)
    delegates = ctx.merged.get("account_threepid_delegates")
    if isinstance(delegates, Mapping) and delegates.get("email"):
        yield ctx.diag(
            "MD504", "account_threepid_delegates.email is no longer supported (since 1.66.0)",
            consequence=f"{NO_START}: Delegation of email verification to an identity server is "
                        "no longer supported.",
            fix=Fix("Delete account_threepid_delegates.email and configure email: so Synapse "
                    "sends the mails itself.", Applicability.DISPLAY_ONLY),
            path=("account_threepid_delegates", "email"))


def _template_dirs(ctx: LintContext) -> list[tuple[tuple[str, ...], Any]]:
    dirs: list[tuple[tuple[str, ...], Any]] = []
    custom = _get(ctx.merged, "templates", "custom_template_directory")
    if custom is not None:
        dirs.append((("templates", "custom_template_directory"), custom))
    if ctx.email.get("template_dir") is not None:
        dirs.append((("email", "template_dir"), ctx.email["template_dir"]))
    return dirs


def _templates_loaded(ctx: LintContext) -> bool:
    return ctx.email_enabled or _get(ctx.merged, "account_validity", "renew_at") is not None


@rule("MD505", "template-dir-missing", Severity.ERROR,
      "A template directory is not a string or does not exist")
def template_dir_missing(ctx: LintContext) -> Iterator[Diagnostic]:
    """``templates.custom_template_directory`` and the deprecated ``email.template_dir``
    must be existing directories. Relative paths are resolved against Synapse's working
    directory (maildoctor checks against its own: run it from the same place)."""
    if not _templates_loaded(ctx):
        return
    for path, value in _template_dirs(ctx):
        key = path[-1]
        if not isinstance(value, str):
            yield ctx.diag(
                "MD505", f"{'.'.join(path)} is a {type(value).__name__}, not a path",
                consequence=f"{NO_START}: '{key}' must be a string",
                fix=Fix("Set it to a directory path.", Applicability.DISPLAY_ONLY),
                path=path, at="value")
        elif not os.path.isdir(value):
            yield ctx.diag(
                "MD505", f"template directory {value!r} does not exist"
                + ("" if os.path.isabs(value) else f" (relative to {os.getcwd()})"),
                consequence=f"{NO_START}: Configured template directory does not exist: "
                            f"{os.path.abspath(value)}",
                fix=Fix("Create it, fix the path, or remove the setting to use the built-in "
                        "templates.", Applicability.DISPLAY_ONLY),
                path=path, at="value")


@rule("MD506", "template-file-missing", Severity.ERROR,
      "A legacy *_template_* key names a file in no template directory")
def template_file_missing(ctx: LintContext) -> Iterator[Diagnostic]:
    """The undocumented ``*_template_html``/``*_template_text`` keys choose file names, looked
    up in the custom directories and then Synapse's built-ins. A name found nowhere makes
    Synapse crash at startup with jinja2's TemplateNotFound."""
    if not ctx.email_enabled:
        return
    dirs = [d for _p, d in _template_dirs(ctx) if isinstance(d, str) and os.path.isdir(d)]
    for key, default in _legacy_template_keys().items():
        name = ctx.email.get(key)
        if not isinstance(name, str) or name == default:
            continue
        if any(os.path.isfile(os.path.join(d, name)) for d in dirs):
            continue
        yield ctx.diag(
            "MD506", f"{key} names {name!r}, which is in no template directory",
            consequence=f"{NO_START_PREFIX}: jinja2.exceptions.TemplateNotFound: {name}",
            fix=Fix(f"Put {name} in templates.custom_template_directory, or delete `{key}` to "
                    "use the default.", Applicability.DISPLAY_ONLY),
            path=("email", key), at="value")


@rule("MD507", "reset-without-password-login", Severity.WARNING,
      "Password reset mails go out although password login is disabled")
def reset_without_password_login(ctx: LintContext) -> Iterator[Diagnostic]:
    """The reset request does not check ``password_config.enabled``: users get the mail,
    click the link, and only then fail with 403 "Password change disabled"."""
    enabled = _get(ctx.merged, "password_config", "enabled")
    if not ctx.email_enabled or enabled is None or enabled:
        return
    yield ctx.diag(
        "MD507", "password_config.enabled is false, but email (hence password reset) is on",
        consequence='Users receive reset mails, then get 403 M_FORBIDDEN "Password change '
                    'disabled" when they set the new password.',
        fix=Fix("Expect this, or tell users password reset is not available.",
                Applicability.DISPLAY_ONLY),
        path=("password_config", "enabled"), at="value")


def _mas_enabled(ctx: LintContext) -> tuple[str, ...] | None:
    if _get(ctx.merged, "matrix_authentication_service", "enabled"):
        return ("matrix_authentication_service", "enabled")
    if _get(ctx.merged, "experimental_features", "msc3861", "enabled"):
        return ("experimental_features", "msc3861", "enabled")
    return None


@rule("MD508", "mas-handles-email", Severity.WARNING,
      "Matrix Authentication Service is enabled: it sends the mails, not Synapse")
def mas_handles_email(ctx: LintContext) -> Iterator[Diagnostic]:
    """With MAS, Synapse registers none of its email request-token endpoints; MAS sends
    registration and reset mails with its own email settings. ``enable_3pid_changes: true``
    is then a startup error."""
    where = _mas_enabled(ctx)
    if where is None:
        return
    if ctx.merged.get("enable_3pid_changes") is True:
        yield ctx.diag(
            "MD508", "enable_3pid_changes is true while MAS is enabled",
            consequence=f"{NO_START}: enable_3pid_changes cannot be enabled when MAS is used.",
            fix=Fix("Delete enable_3pid_changes.", Applicability.DISPLAY_ONLY),
            path=("enable_3pid_changes",), severity=Severity.ERROR)
    if ctx.email_enabled:
        yield ctx.diag(
            "MD508", "MAS is enabled: Synapse's email: settings do not send registration or "
                     "password reset mails",
            consequence="Those mails come from MAS, configured in MAS's own email section; only "
                        "notification mails (enable_notifs) still use Synapse's settings.",
            fix=Fix("Check MAS's email configuration for reset and registration mails.",
                    Applicability.DISPLAY_ONLY),
            path=where)


@rule("MD509", "invite-client-location-invalid", Severity.ERROR,
      "email.invite_client_location is not an http(s) URL")
def invite_client_location_invalid(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse's startup check on the URL sent to identity servers for 3PID invites."""
    value = ctx.email.get("invite_client_location")
    if value is None:
        return
    path = ("email", "invite_client_location")
    if not isinstance(value, str):
        msg = "Config option email.invite_client_location must be type str"
    elif urlsplit(value).scheme not in ("http", "https"):
        msg = "Config option email.invite_client_location must be a http or https URL"
    else:
        return
    yield ctx.diag("MD509", msg.replace("Config option ", "") ,
                   consequence=f"{NO_START} at 'email.invite_client_location': {msg}",
                   fix=Fix("Set it to your web client's URL, e.g. https://app.element.io",
                           Applicability.DISPLAY_ONLY),
                   path=path, at="value")


@rule("MD510", "client-base-url-invalid", Severity.ERROR,
      "email.client_base_url (or riot_base_url) is not an http(s) URL")
def client_base_url_invalid(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse does not check ``client_base_url`` at startup: it writes it in front of
    ``/#/room/...`` in every notification mail. Without ``https://`` the links are relative
    (``app.element.io/#/room/...``), and mail clients open them nowhere."""
    key = "client_base_url" if ctx.has("client_base_url") else "riot_base_url"
    value = ctx.email.get(key)
    if value is None:
        return
    if isinstance(value, str) and urlsplit(value).scheme in ("http", "https") \
            and urlsplit(value).netloc:
        return
    path = ("email", key)
    what = (f"{key} {value!r} has no http:// or https://" if isinstance(value, str)
            else f"{key} is a {type(value).__name__}, not a URL")
    fixed = f"https://{value.lstrip('/')}" if isinstance(value, str) and value \
        and "://" not in value else None
    fix = Fix(f"Write the full URL: {key}: {fixed}" if fixed else
              "Set it to your web client's URL, e.g. https://app.element.io",
              Applicability.UNSAFE if fixed else Applicability.DISPLAY_ONLY,
              (Edit("set-value", ctx.file_of(path), f"email.{key}", fixed),) if fixed else ())
    yield ctx.diag(
        "MD510", what,
        consequence=f"Synapse starts, but every notification mail links to "
                    f"'{value}/#/room/...', a relative link that opens nothing.",
        fix=fix, path=path, at="value")


@rule("MD511", "template-syntax-error", Severity.ERROR,
      "A custom email template Synapse compiles at startup has a syntax error")
def template_syntax_error(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse compiles the email templates it will use (your custom ones first) while it
    reads its config: a Jinja syntax error (``{{ link }``) stops it with
    ``TemplateSyntaxError``, although its own config check passes. ``maildoctor templates
    check`` goes further (undefined variables, a render of every mail)."""
    if not _templates_loaded(ctx):
        return
    where = next((p for p, v in _template_dirs(ctx) if isinstance(v, str)), None)
    if where is None and not any(isinstance(ctx.email.get(k), str)
                                 for k in _legacy_template_keys()):
        return  # only maildoctor's own templates: nothing to compile (and no jinja2 import)
    from maildoctor.config.templates import startup_syntax_errors

    for finding in startup_syntax_errors(ctx.merged):
        file = finding.file or finding.name
        yield ctx.diag(
            "MD511", f"template {finding.name}: {finding.message.split(' (Synapse')[0]}",
            consequence=f"{NO_START_PREFIX}: jinja2.exceptions.TemplateSyntaxError in "
                        f"{finding.name}"
                        + (f" line {finding.line}" if finding.line else ""),
            fix=Fix(f"Correct the template ({file}), then run `maildoctor templates check`.",
                    Applicability.DISPLAY_ONLY),
            locations=(Location(file, finding.line or 1, 1,
                                ".".join(where) if where else ""),))
