"""Mails built byte for byte the way Synapse builds them (spec/synapse-email.md 1.3, 1.4, 2.2).

What Synapse does, and this module reproduces:

- ``From`` is ``notif_from % {"app": app_name}``; a ``KeyError`` or ``TypeError`` keeps the raw
  string (so ``%(brand)s`` reaches the header); a ``ValueError`` fails the send.
- The envelope uses the address parts (``parseaddr``) of ``From`` and ``To``.
- ``MIMEMultipart("alternative")`` with the compat32 policy; headers in the order Subject,
  From, To, Date, Message-ID, Auto-Submitted, X-Auto-Response-Suppress, then for
  notifications List-Unsubscribe-Post and List-Unsubscribe; a text/plain then a text/html
  part, both utf-8 and base64. The bytes handed to Twisted are ``as_string()`` in UTF-8.
- A non-ASCII display name makes compat32 encode the whole From value, address included, as
  one RFC 2047 word: a malformed header. We reproduce it (with a warning) unless asked for
  correct headers. A non-ASCII *address* makes Twisted raise ``UnicodeEncodeError``: there is
  no SMTPUTF8, so we refuse to build such a mail.
"""

from __future__ import annotations

import email.utils
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

from markupsafe import Markup

from maildoctor.config.settings import EmailSettings
from maildoctor.config.templates import BUILTIN_DIR, TemplateSet, make_environment
from maildoctor.errors import MaildoctorError

KINDS = ("test", "password-reset", "registration", "add-threepid", "already-in-use",
         "notification")

# Synapse's default subjects (spec 1.3); the config's email.subjects is merged over these.
DEFAULT_SUBJECTS: dict[str, str] = {
    "message_from_person_in_room":
        "[%(app)s] You have a message on %(app)s from %(person)s in the %(room)s room...",
    "message_from_person": "[%(app)s] You have a message on %(app)s from %(person)s...",
    "messages_from_person": "[%(app)s] You have messages on %(app)s from %(person)s...",
    "messages_in_room": "[%(app)s] You have messages on %(app)s in the %(room)s room...",
    "messages_in_room_and_others":
        "[%(app)s] You have messages on %(app)s in the %(room)s room and others...",
    "messages_from_person_and_others":
        "[%(app)s] You have messages on %(app)s from %(person)s and others...",
    "invite_from_person": "[%(app)s] %(person)s has invited you to chat on %(app)s...",
    "invite_from_person_to_room":
        "[%(app)s] %(person)s has invited you to join the %(room)s room on %(app)s...",
    "invite_from_person_to_space":
        "[%(app)s] %(person)s has invited you to join the %(space)s space on %(app)s...",
    "password_reset": "[%(server_name)s] Password reset",
    "email_validation": "[%(server_name)s] Validate your email",
    "email_already_in_use": "[%(server_name)s] Email already in use",
}

# The placeholders Synapse provides when it formats each subject (spec 1.3).
SUBJECT_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "message_from_person_in_room": ("person", "room", "app"),
    "message_from_person": ("person", "app"),
    "messages_from_person": ("person", "app"),
    "messages_in_room": ("room", "app"),
    "messages_in_room_and_others": ("room", "app"),
    "messages_from_person_and_others": ("person", "app"),
    "invite_from_person": ("person", "app"),
    "invite_from_person_to_room": ("person", "room", "app"),
    "invite_from_person_to_space": ("person", "space", "app"),
    "password_reset": ("server_name", "app"),
    "email_validation": ("server_name", "app"),
    "email_already_in_use": ("server_name", "app"),
}
NOTIFICATION_SUBJECTS = tuple(k for k, v in SUBJECT_PLACEHOLDERS.items() if "server_name" not in v)

TEST_SUBJECT = "[%(server_name)s] maildoctor test"

# kind -> (subject key, template roles (html, text), link path or None)
_KINDS: dict[str, tuple[str, tuple[str, str], str | None]] = {
    "password-reset": ("password_reset", ("password_reset_html", "password_reset_text"),
                       "_synapse/client/password_reset/email/submit_token"),
    "registration": ("email_validation", ("registration_html", "registration_text"),
                     "_matrix/client/unstable/registration/email/submit_token"),
    "add-threepid": ("email_validation", ("add_threepid_html", "add_threepid_text"),
                     "_matrix/client/unstable/add_threepid/email/submit_token"),
    "already-in-use": ("email_already_in_use", ("already_in_use_html", "already_in_use_text"),
                       None),
    "notification": ("message_from_person_in_room", ("notif_html", "notif_text"), None),
}

UNSUBSCRIBE_PATH = "_synapse/client/unsubscribe"

# Sample values for mails sent by maildoctor rather than by a real Synapse request.
SAMPLE_LINK_PARAMS = {"token": "maildoctorSampleToken", "client_secret": "maildoctor-secret",
                      "sid": "maildoctorSampleSid"}
SAMPLE_UNSUBSCRIBE_PARAMS = {"access_token": "maildoctor-sample-token", "app_id": "m.email"}


class MessageBuildError(MaildoctorError, ValueError):
    """The mail cannot be built, and Synapse would fail to send it too. ``key`` names the
    config key at fault when there is one (``email.notif_from``, ``email.subjects.x``)."""

    def __init__(self, message: str, *, key: str = "") -> None:
        self.key = key
        super().__init__(message)


@dataclass(frozen=True)
class BuiltMessage:
    """A mail as Synapse would hand it to Twisted, with its envelope."""

    message: MIMEMultipart
    data: bytes
    envelope_from: str
    envelope_to: str
    message_id: str
    subject: str
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def as_bytes(self) -> bytes:
        """Exactly what Synapse passes to Twisted (``as_string().encode("utf8")``)."""
        return self.data


def public_base(public_baseurl: str | None, server_name: str) -> str:
    """Synapse's ``public_baseurl``: ``https://<server_name>/`` by default, ending in ``/``."""
    base = public_baseurl or f"https://{server_name}/"
    return base if base.endswith("/") else base + "/"


def verification_link(base: str, path: str, token: str, client_secret: str, sid: str) -> str:
    """A submit_token link: ``<base><path>?token=..&client_secret=..&sid=..`` (urlencoded)."""
    query = urllib.parse.urlencode({"token": token, "client_secret": client_secret, "sid": sid})
    return f"{base}{path}?{query}"


def unsubscribe_link(base: str, access_token: str, app_id: str, pushkey: str) -> str:
    """The notification unsubscribe link, parameters in Synapse's order."""
    query = urllib.parse.urlencode(
        {"access_token": access_token, "app_id": app_id, "pushkey": pushkey})
    return f"{base}{UNSUBSCRIBE_PATH}?{query}"


def merged_subjects(subjects: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """The config's subjects over the defaults. Unknown keys are ignored by Synapse."""
    merged: dict[str, Any] = dict(DEFAULT_SUBJECTS)
    warnings: list[str] = []
    for key, value in (subjects or {}).items():
        if key in DEFAULT_SUBJECTS:
            merged[key] = value
        else:
            warnings.append(f"email.subjects.{key} is not a subject Synapse knows; it is ignored")
    return merged, warnings


def format_subject(key: str, template: Any, values: Mapping[str, Any]) -> str:
    """``template % values`` as Synapse does it, with a clear error where Synapse would fail."""
    try:
        return str(template % dict(values))
    except KeyError as exc:
        raise MessageBuildError(
            f"email.subjects.{key} uses the placeholder %({exc.args[0]})s, which Synapse does "
            f"not provide for this mail (available: {', '.join(sorted(values))}); "
            "Synapse fails to send it", key=f"email.subjects.{key}") from exc
    except (ValueError, TypeError) as exc:
        raise MessageBuildError(
            f"email.subjects.{key} is not a valid %-format string ({exc}); write a literal % "
            "as %%; Synapse fails to send this mail", key=f"email.subjects.{key}") from exc


def subject_problems(
    subjects: Mapping[str, Any] | None, keys: tuple[str, ...] = tuple(DEFAULT_SUBJECTS),
) -> list[MessageBuildError]:
    """Every subject among ``keys`` that Synapse would fail to format, as errors."""
    merged, _ = merged_subjects(subjects)
    problems = []
    for key in keys:
        sample = {name: f"<{name}>" for name in SUBJECT_PLACEHOLDERS[key]}
        try:
            format_subject(key, merged[key], sample)
        except MessageBuildError as exc:
            problems.append(exc)
    return problems


def format_from(notif_from: Any, app_name: Any) -> str:
    """``notif_from % {"app": app_name}`` with Synapse's fallbacks."""
    if not isinstance(notif_from, str) or not notif_from:
        raise MessageBuildError("email.notif_from is not set (or not a string); Synapse "
                                "refuses to start without it", key="email.notif_from")
    try:
        return str(notif_from % {"app": app_name})
    except (KeyError, TypeError):
        return notif_from
    except ValueError as exc:
        raise MessageBuildError(
            f"email.notif_from {notif_from!r} is not a valid %-format string ({exc}); "
            "Synapse fails every send with it. Write %(app)s for the app name and %% for "
            "a literal %", key="email.notif_from") from exc


def _header_address(value: str, header: str, correct: bool, warnings: list[str]) -> str:
    """The From/To header value: Synapse's raw string, or a proper one when asked."""
    if value.isascii():
        return value
    if correct:
        name, addr = email.utils.parseaddr(value)
        return email.utils.formataddr((name, addr))
    warnings.append(
        f"the {header} header has non-ASCII text, so Synapse encodes the whole value, address "
        f"included, as one RFC 2047 word ({header}: =?utf-8?...?=); many mail servers and "
        "clients reject or mangle that. Use an ASCII display name (or app_name) to avoid it")
    return value


def _envelope(value: str, what: str, key: str) -> str:
    addr = email.utils.parseaddr(value)[1]
    if not addr.isascii():
        raise MessageBuildError(
            f"the {what} address {addr!r} is not ASCII; Synapse's SMTP client (Twisted) has "
            "no SMTPUTF8 and fails with UnicodeEncodeError", key=key)
    return addr


def sample_variables(kind: str, *, base: str, to: str) -> dict[str, Any]:
    """Template variables Synapse would pass for ``kind``, with sample values where Synapse
    would use live data (tokens, rooms, messages); ``app_name``/``server_name`` are added by
    :func:`mail_content`."""
    spec = _KINDS.get(kind)
    if spec is not None and spec[2] is not None:
        return {"link": verification_link(base, spec[2], **SAMPLE_LINK_PARAMS)}
    if kind == "notification":
        return sample_notification(base=base, to=to)
    if kind == "test":
        return {"to": to}
    return {}


def sample_notification(*, base: str, to: str) -> dict[str, Any]:
    """A one-room, one-message notification (the 4.3 variables), with the unsubscribe link."""
    now = 1_700_000_000_000
    room_id = "!sample:example.org"
    message = {
        "event_type": "m.room.message", "is_historical": False, "id": "$sample-event",
        "ts": now - 60_000, "sender_name": "Alice", "sender_avatar_url": None,
        "sender_hash": sum(map(ord, "@alice:example.org")), "msgtype": "m.text",
        "body_text_html": Markup("Hello! This is a <em>sample</em> message."),
        "body_text_plain": "Hello! This is a sample message.", "image_url": "",
    }
    room = {
        "title": "Sample", "hash": sum(map(ord, room_id)), "invite": False,
        "link": f"https://matrix.to/#/{room_id}", "avatar_url": None,
        "notifs": [{"link": f"https://matrix.to/#/{room_id}/$sample-event", "ts": now - 60_000,
                    "messages": [message]}],
    }
    return {
        "user_display_name": "Bob",
        "unsubscribe_link": unsubscribe_link(base, pushkey=to, **SAMPLE_UNSUBSCRIBE_PARAMS),
        "summary_text": None,  # filled with the subject by build_message
        "rooms": [room],
        "reason": {"room_id": room_id, "room_name": "Sample", "now": now,
                   "received_at": now - 60_000, "delay_before_mail_ms": 600_000,
                   "last_sent_ts": 0, "throttle_ms": 600_000},
    }


def render_parts(kind: str, templates: TemplateSet, context: Mapping[str, Any]) -> tuple[str, str]:
    """Render ``(text, html)`` for ``kind`` with Synapse's environment and search path.

    The test mail's templates are maildoctor's own and are never looked up in the
    configured directories.
    """
    if kind == "test":
        env = make_environment([BUILTIN_DIR], public_baseurl=templates.public_baseurl,
                               server_name=templates.server_name)
        html = env.get_template("maildoctor_test.html").render(**context)
        return env.get_template("maildoctor_test.txt").render(**context), html
    html_role, text_role = _KINDS[kind][1]
    return templates.render(text_role, context), templates.render(html_role, context)


@dataclass(frozen=True)
class MailContent:
    """Subject and template variables of one mail, before rendering."""

    subject: str
    context: dict[str, Any]
    warnings: tuple[str, ...]


def mail_content(
    kind: str, *, app_name: Any, server_name: str, public_baseurl: str | None, to: str,
    subjects: Mapping[str, Any] | None, variables: Mapping[str, Any] | None = None,
) -> MailContent:
    """The subject and template variables Synapse would use for ``kind``.

    ``variables`` are merged over the sample template variables; the keys ``token``,
    ``client_secret``, ``sid`` (verification links) and ``access_token``, ``app_id``,
    ``pushkey`` (unsubscribe link) build the links instead of reaching the templates.
    For notifications the subject is the ``summary_text`` (as in Synapse).
    """
    if kind not in KINDS:
        raise MessageBuildError(f"unknown mail kind {kind!r}; expected one of {', '.join(KINDS)}")
    base = public_base(public_baseurl, server_name)
    extra = dict(variables or {})
    link_params: dict[str, str] = {
        k: str(extra.pop(k)) for k in ("token", "client_secret", "sid") if k in extra}
    unsub_params: dict[str, str] = {
        k: str(extra.pop(k)) for k in ("access_token", "app_id", "pushkey") if k in extra}
    template_vars: dict[str, Any] = sample_variables(kind, base=base, to=to)
    spec = _KINDS.get(kind)
    if spec is not None and spec[2] is not None and link_params:
        params: dict[str, str] = {**SAMPLE_LINK_PARAMS, **link_params}
        template_vars["link"] = verification_link(base, spec[2], **params)
    if kind == "notification" and unsub_params:
        unsub: dict[str, str] = {**SAMPLE_UNSUBSCRIBE_PARAMS, "pushkey": to, **unsub_params}
        template_vars["unsubscribe_link"] = unsubscribe_link(base, **unsub)

    all_subjects, warnings = merged_subjects(subjects)
    if kind == "test":
        subject = format_subject("(maildoctor test)", TEST_SUBJECT,
                                 {"server_name": server_name, "app": app_name})
    elif kind == "notification":
        subject = format_subject("message_from_person_in_room",
                                 all_subjects["message_from_person_in_room"],
                                 {"person": "Alice", "room": "Sample", "app": app_name})
    else:
        key = _KINDS[kind][0]
        subject = format_subject(key, all_subjects[key],
                                 {"server_name": server_name, "app": app_name})
    template_vars.update(extra)
    if kind == "notification":
        if template_vars.get("summary_text") is None:
            template_vars["summary_text"] = subject
        subject = str(template_vars["summary_text"])
    context = {"app_name": app_name, "server_name": server_name, **template_vars}
    return MailContent(subject=subject, context=context, warnings=tuple(warnings))


def build_message(
    kind: str, settings: EmailSettings, *, to: str, server_name: str,
    public_baseurl: str | None, subjects: Mapping[str, Any] | None, templates: TemplateSet,
    variables: Mapping[str, Any] | None = None, correct_headers: bool = False,
    msgid_domain: str | None = None,
) -> BuiltMessage:
    """Build the mail Synapse would send for ``kind`` (one of :data:`KINDS`).

    ``variables``: see :func:`mail_content`. ``msgid_domain`` replaces this host's FQDN in
    the Message-ID (Synapse uses its own host's). ``correct_headers`` writes a standard
    From/To for non-ASCII display names instead of Synapse's malformed one.
    """
    if kind not in KINDS:
        raise MessageBuildError(f"unknown mail kind {kind!r}; expected one of {', '.join(KINDS)}")
    warnings: list[str] = []
    from_string = format_from(settings.notif_from, settings.app_name)
    envelope_from = _envelope(from_string, "From", "email.notif_from")
    envelope_to = _envelope(to, "To", "")
    if not envelope_to:
        raise MessageBuildError(f"invalid To address {to!r}: Synapse raises "
                                "RuntimeError(\"Invalid 'to' address\")")
    if "@" not in envelope_from:
        warnings.append(f"the From address {envelope_from!r} has no @domain; Twisted appends "
                        "this host's FQDN to it in MAIL FROM")
    content = mail_content(kind, app_name=settings.app_name, server_name=server_name,
                           public_baseurl=public_baseurl, to=to, subjects=subjects,
                           variables=variables)
    warnings.extend(content.warnings)
    subject = content.subject
    # The mxc_to_http filter must use the same public_baseurl as the links.
    templates = replace(templates, public_baseurl=public_base(public_baseurl, server_name))
    text, html = render_parts(kind, templates, content.context)

    msg = MIMEMultipart("alternative")
    msg["Subject"] = subject
    msg["From"] = _header_address(from_string, "From", correct_headers, warnings)
    msg["To"] = _header_address(to, "To", correct_headers, warnings)
    msg["Date"] = email.utils.formatdate()
    message_id = email.utils.make_msgid(domain=msgid_domain)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    if kind == "notification":
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["List-Unsubscribe"] = f"<{content.context['unsubscribe_link']}>"
    msg.attach(MIMEText(text, "plain", "utf-8"))
    msg.attach(MIMEText(html, "html", "utf-8"))
    return BuiltMessage(
        message=msg, data=msg.as_string().encode("utf8"), envelope_from=envelope_from,
        envelope_to=envelope_to, message_id=message_id, subject=subject,
        warnings=tuple(warnings),
    )
