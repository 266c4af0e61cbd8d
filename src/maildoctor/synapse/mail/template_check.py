"""Check every email template Synapse would load for a config, and render previews.

Synapse compiles its templates at startup (a missing file or a syntax error stops it) and
renders them at send time with a lenient environment: an undefined variable becomes empty
text, but an attribute of an undefined value, or a missing ``include``, fails the send.
So each template is compiled, rendered once the way Synapse would (errors there are real
failures), and rendered again while recording every undefined value (what Synapse would
silently leave empty). A render only reaches the branches the sample data takes, and a
template extending Synapse's ``_base.html`` (which maildoctor replaces by an empty stand-in)
renders none of its blocks, so custom templates are also read statically: every top-level
name they use that Synapse does not pass is reported, wherever it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from maildoctor.config.templates import (
    EXPIRY,
    NOTIF,
    ROLES,
    SYNAPSE_BUILTIN_NAMES,
    VERIFICATION,
    TemplateFinding,
    TemplateSet,
    describe_render_error,
    groups_loaded,
    recording_environment,
)
from maildoctor.diagnostics import Severity
from maildoctor.synapse.mail.message import (
    NOTIFICATION_SUBJECTS,
    MailContent,
    MessageBuildError,
    mail_content,
    public_base,
    render_parts,
    subject_problems,
)

# Template role -> the mail kind whose variables it gets (see message.mail_content).
ROLE_KIND = {
    "password_reset_html": "password-reset", "password_reset_text": "password-reset",
    "registration_html": "registration", "registration_text": "registration",
    "add_threepid_html": "add-threepid", "add_threepid_text": "add-threepid",
    "already_in_use_html": "already-in-use", "already_in_use_text": "already-in-use",
    "notif_html": "notification", "notif_text": "notification",
}
SAMPLE_TO = "alice@example.org"
SAMPLE_SERVER_NAME = "example.org"


@dataclass(frozen=True)
class CheckedTemplate:
    role: str
    name: str
    origin: str  # the config key of the directory it came from, or "built-in"
    path: Path | None


@dataclass(frozen=True)
class TemplateReport:
    templates: TemplateSet
    groups: tuple[str, ...]
    checked: tuple[CheckedTemplate, ...]
    findings: tuple[TemplateFinding, ...]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.ERROR)


def kind_content(kind: str, config: Mapping[str, Any], templates: TemplateSet) -> MailContent:
    """Subject and variables of mail ``kind`` for this config, with sample values. A subject
    Synapse could not format falls back to the default one (``subject_problem`` reports it)."""
    email = config.get("email")
    email = email if isinstance(email, Mapping) else {}
    subjects = email.get("subjects")
    arguments: dict[str, Any] = {
        "app_name": email.get("app_name", "Matrix"),
        "server_name": templates.server_name or SAMPLE_SERVER_NAME,
        "public_baseurl": templates.public_baseurl, "to": SAMPLE_TO}
    try:
        return mail_content(kind, subjects=subjects if isinstance(subjects, Mapping) else None,
                            **arguments)
    except MessageBuildError:
        return mail_content(kind, subjects=None, **arguments)


def role_context(role: str, config: Mapping[str, Any], templates: TemplateSet) -> dict[str, Any]:
    """The variables Synapse passes when rendering ``role``, with sample values."""
    server_name = templates.server_name or SAMPLE_SERVER_NAME
    kind = ROLE_KIND.get(role)
    if kind is not None:
        return kind_content(kind, config, templates).context
    if role == "password_reset_confirmation_html":
        return {"sid": "maildoctorSampleSid", "token": "maildoctorSampleToken",
                "client_secret": "maildoctor-secret"}
    if role.endswith("_failure_html"):
        return {"failure_reason": "The sample token has expired."}
    if role in ("expiry_html", "expiry_text"):
        base = public_base(templates.public_baseurl, server_name)
        return {"display_name": "Alice", "expiration_ts": 1_700_000_000_000,
                "url": f"{base}_matrix/client/unstable/account_validity/renew?token=sample"}
    return {}  # success pages: rendered once at startup with no variables


class _SynapseStubs(jinja2.BaseLoader):
    """Empty stand-ins for Synapse's built-in helper templates (``_base.html``, ``mail.css``),
    so a custom template that includes or extends them can still be rendered and checked."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template not in SYNAPSE_BUILTIN_NAMES:
            raise jinja2.TemplateNotFound(template)
        if template not in self.used:
            self.used.append(template)
        return "", None, lambda: False  # never cached: each use is reported

    def take(self) -> list[str]:
        used, self.used = self.used, []
        return used


def _line_of(path: Path | None, name: str | None) -> int | None:
    """The first line of ``path`` that mentions ``name`` as a word, to point at an
    undefined variable (Jinja does not say where an undefined value was used)."""
    if path is None or not name:
        return None
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, text in enumerate(lines, 1):
        if pattern.search(text):
            return number
    return None


def unpassed_names(env: jinja2.Environment, path: Path, context: Mapping[str, Any]) -> list[str]:
    """Top-level names ``path`` uses anywhere (every branch and block) that are neither in
    ``context`` nor globals of ``env``, sorted. Empty when the file cannot be read or
    parsed (the render pass reports that)."""
    try:
        source = path.read_text(encoding="utf-8")
        names = jinja2.meta.find_undeclared_variables(env.parse(source))
    except (OSError, UnicodeDecodeError, jinja2.TemplateSyntaxError):
        return []
    return sorted(n for n in names if n not in context and n not in env.globals)


def check_templates(config: Mapping[str, Any], *, cwd: Path | None = None) -> TemplateReport:
    """Compile and render every template Synapse would load for ``config``."""
    templates = TemplateSet.from_config(config, cwd=cwd)
    findings = [TemplateFinding(Severity.ERROR, p) for p in templates.problems]
    findings += [TemplateFinding(Severity.WARNING, w) for w in templates.warnings]
    groups = groups_loaded(config)
    lenient = templates.environment()
    recording, found = recording_environment(templates)
    stubs = _SynapseStubs()
    for env in (lenient, recording):
        assert env.loader is not None
        env.loader = jinja2.ChoiceLoader([env.loader, stubs])
    checked: list[CheckedTemplate] = []
    seen_errors: set[tuple[str | None, int | None, str]] = set()

    def add(finding: TemplateFinding) -> None:
        key = (finding.file or finding.name, finding.line, finding.message)
        if key not in seen_errors:
            seen_errors.add(key)
            findings.append(finding)

    for role in (r for r in ROLES if r.group in groups):
        name = templates.file_name(role.name)
        located = templates.locate(name)
        if located is None:
            if name in SYNAPSE_BUILTIN_NAMES:
                add(TemplateFinding(Severity.INFO, "Synapse uses its built-in template of this "
                                    "name; maildoctor does not ship one, not checked", name))
            else:
                key = f"email.{role.key}" if role.key else "the default name"
                dirs = ", ".join(str(d) for d in templates.search_path[:-1]) or "no directory"
                add(TemplateFinding(
                    Severity.ERROR, f"file not found (set by {key}; searched {dirs} and "
                    "Synapse's built-in templates); Synapse fails to start with "
                    f"jinja2.exceptions.TemplateNotFound: {name}", name))
            continue
        path, origin = located
        checked.append(CheckedTemplate(role.name, name, origin, path))
        context = role_context(role.name, config, templates)
        try:
            lenient.get_template(name).render(**context)
        except Exception as exc:  # any render failure is a finding
            add(describe_render_error(exc, name, path))
            continue
        found.clear()
        try:
            recording.get_template(name).render(**context)
        except Exception:  # failures were reported by the lenient pass
            pass
        for used in stubs.take():
            add(TemplateFinding(
                Severity.INFO, f"uses {used} from Synapse's built-in templates, which maildoctor "
                "does not have; it was replaced by an empty stand-in" + (
                    " (so blocks of a template extending it were only syntax-checked)"
                    if used.endswith(".html") else ""), name, str(path)))
        reported: set[str | None] = set()
        for use in found:
            if use.top_level:
                reported.add(use.name)
                what = f"'{use.name}'" if use.name else use.message
                add(TemplateFinding(
                    Severity.ERROR, f"uses {what}, which Synapse never passes to this "
                    "template: it renders as empty text", name, str(path),
                    _line_of(path, use.name)))
            else:
                add(TemplateFinding(
                    Severity.WARNING, f"uses an undefined value ({use.message}); Synapse "
                    "renders it as empty text", name, str(path), _line_of(path, use.name)))
        if origin == "built-in":
            continue  # maildoctor's own stand-ins, tested with the package
        for unpassed in unpassed_names(lenient, path, context):
            if unpassed not in reported:
                add(TemplateFinding(
                    Severity.ERROR, f"uses '{unpassed}', which Synapse never passes to this "
                    "template: it renders as empty text (in a part the sample render did "
                    "not reach)", name, str(path), _line_of(path, unpassed)))
    subject_keys = {VERIFICATION: ("password_reset", "email_validation", "email_already_in_use"),
                    NOTIF: NOTIFICATION_SUBJECTS}
    email = config.get("email")
    subjects = email.get("subjects") if isinstance(email, Mapping) else None
    keys = tuple(k for g in groups for k in subject_keys.get(g, ()))
    for problem in subject_problems(subjects if isinstance(subjects, Mapping) else None, keys):
        add(TemplateFinding(Severity.ERROR, str(problem)))
    return TemplateReport(templates, groups, tuple(checked), tuple(findings))


PREVIEW_KINDS = {
    VERIFICATION: ("password-reset", "registration", "add-threepid", "already-in-use"),
    NOTIF: ("notification",),
}


def preview_kinds(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The mail kinds Synapse can send with this config (all of them when email is off,
    so templates can be previewed before email is configured)."""
    groups = groups_loaded(config)
    kinds = [k for g in (VERIFICATION, NOTIF) if g in groups for k in PREVIEW_KINDS[g]]
    kinds = kinds or [*PREVIEW_KINDS[VERIFICATION], *PREVIEW_KINDS[NOTIF]]
    if EXPIRY in groups:
        kinds.append("expiry")
    return tuple(kinds)


def render_preview(
    kind: str, config: Mapping[str, Any], templates: TemplateSet
) -> tuple[str, str, str]:
    """``(subject, text, html)`` of ``kind`` rendered with sample data."""
    if kind == "expiry":
        # The renewal subject is sent as written: Synapse does not %-format it (spec 1.3).
        validity = config.get("account_validity")
        validity = validity if isinstance(validity, Mapping) else {}
        subject = str(validity.get("renew_email_subject", "Renew your %(app)s account"))
        context = role_context("expiry_html", config, templates)
        return (subject, templates.render("expiry_text", context),
                templates.render("expiry_html", context))
    content = kind_content(kind, config, templates)
    text, html = render_parts(kind, templates, content.context)
    return content.subject, text, html

