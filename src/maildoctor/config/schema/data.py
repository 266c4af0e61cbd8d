"""Every key Synapse reads under ``email:``, with the version facts from spec/synapse-email.md.

This module is data only: tables of :mod:`.model` records, in the order an admin would
meet the keys. Facts come from the spec (sections 1.1-1.4, 2, 3, 6), which was read from
Synapse 1.157.1 and cross-checked on 1.163.2; summaries and notes are our own words.
Where the spec names no version the field stays ``None`` ("unknown"), never a guess.
"""

from __future__ import annotations

from types import MappingProxyType

from maildoctor.config.schema.model import Change, KeySpec, SubjectSpec, Version

__all__ = ["EMAIL_KEYS", "NEWEST", "NOTIF_FROM_MISSING", "NOTIF_FROM_MISSING_LINE", "SUBJECT_KEYS"]

V = Version

#: The newest Synapse the project has verified its facts against.
NEWEST = V(1, 163, 2)

#: Synapse's startup error (a ConfigError, after "Error in configuration:") when the email:
#: block is non-empty and notif_from is unset, with Synapse's own line breaks.
NOTIF_FROM_MISSING = ("Password reset emails are enabled on this homeserver due to a partial\n"
                      "'email' block. However, the following required keys are missing:\n"
                      "    email.notif_from")
#: The same words on one line, for quoting inside a sentence.
NOTIF_FROM_MISSING_LINE = " ".join(NOTIF_FROM_MISSING.split())

_NOTIFS = "only when email.enable_notifs is truthy"
_VERIFY = "only when the email: block is non-empty (email verification is then on)"
_RENEW = "only when account_validity.renew_at is set"
_CUSTOM_DIR = "templates.custom_template_directory"
_DURATION_ERR = "TypeError: Bad duration suffix ... (a traceback, not a ConfigError)"


def _legacy_template(name: str, filename: str, read_when: str, attr: str | None) -> KeySpec:
    """An undocumented ``*_template_*`` filename key: superseded by a custom template dir."""
    return KeySpec(
        name=name,
        types=("str",),
        default=filename,
        summary=f"File name of the {filename} template, looked up in the template directories.",
        synapse_attr=attr,
        legacy=True,
        documented=False,
        replacement=_CUSTOM_DIR,
        read_when=read_when,
        load_errors=(
            "jinja2.exceptions.TemplateNotFound when the file is missing (traceback)",
            "jinja2.exceptions.TemplateSyntaxError when the template does not parse",
        ),
        notes=(
            f"Put a file named {filename} in {_CUSTOM_DIR} instead of renaming the template.",
        ),
    )


_CORE_EMAIL_KEYS: tuple[KeySpec, ...] = (
    KeySpec(
        name="smtp_host",
        types=("str",),
        default="localhost",
        summary="Host name or IP address of the SMTP server Synapse connects to.",
        synapse_attr="email_smtp_host",
        added=V(0, 16, 0),
        history=(
            Change(
                V(1, 92, 0),
                "Connections go through HostnameEndpoint: IPv6 literals and IPv6-only hosts work "
                "and /etc/hosts is honoured; failures that used to give five quick retries and a "
                "500 now often hang.",
            ),
        ),
        notes=(
            "Also the name the certificate is checked against unless tlsname is set.",
            "'host:port' is not split: the whole string is looked up as a host name.",
            "null is accepted at load and fails at the first send.",
        ),
    ),
    KeySpec(
        name="smtp_port",
        types=("int",),
        default=25,
        default_note="465 when force_tls is truthy, else 25; only when the key is absent",
        summary="TCP port of the SMTP server.",
        synapse_attr="email_smtp_port",
        added=V(0, 16, 0),
        history=(Change(V(1, 64, 0), "The default follows force_tls: 465 if set, else 25."),),
        notes=(
            "An explicit null is passed through and the send fails with ConnectionRefusedError, "
            "although the docs say null means the default.",
            "A numeric string such as \"2525\" works; a non-numeric one fails with a misleading "
            "DNSLookupError.",
            "Synapse's JSON Schema types it as string|null.",
        ),
    ),
    KeySpec(
        name="smtp_user",
        types=("str", "null"),
        summary="User name for SMTP AUTH; setting it makes authentication mandatory.",
        synapse_attr="email_smtp_user",
        added=V(0, 21, 0),
        notes=(
            "Any value other than null (even \"\") makes Twisted require AUTH; without "
            "smtp_pass the send fails with AUTHRequiredError listing CRAM-MD5, LOGIN, PLAIN.",
        ),
    ),
    KeySpec(
        name="smtp_pass",
        types=("str", "null"),
        summary="Password for SMTP AUTH, stored in the config in clear.",
        synapse_attr="email_smtp_pass",
        added=V(0, 21, 0),
        secret=True,
        history=(
            Change(
                V(1, 126, 0),
                "--no-secrets-in-config appeared; it does not cover smtp_pass.",
            ),
        ),
        notes=(
            "There is no smtp_pass_path or other file variant in any Synapse.",
            "Without smtp_user, a server offering AUTH makes Twisted raise TypeError and the "
            "request hangs.",
        ),
    ),
    KeySpec(
        name="force_tls",
        types=("bool",),
        default=False,
        summary="Speak TLS from the first byte (implicit TLS, usually port 465).",
        synapse_attr="force_tls",
        added=V(1, 64, 0),
        load_errors=("email.force_tls requires email.enable_tls to be true",),
        notes=(
            "No type check: a quoted \"no\" or \"false\" is truthy and turns implicit TLS on.",
            "With force_tls, require_transport_security is ignored.",
        ),
    ),
    KeySpec(
        name="require_transport_security",
        types=("bool",),
        default=False,
        summary="Refuse to send when the server does not offer STARTTLS.",
        synapse_attr="require_transport_security",
        added=V(0, 21, 0),
        load_errors=("email.require_transport_security requires email.enable_tls to be true",),
        notes=(
            "It does not mean implicit TLS: port 465 needs force_tls.",
            "A missing STARTTLS then fails with TLSRequiredError 502.",
        ),
    ),
    KeySpec(
        name="enable_tls",
        types=("bool",),
        default=True,
        summary="Allow TLS at all; when true STARTTLS is used whenever the server offers it.",
        synapse_attr="enable_smtp_tls",
        added=V(1, 41, 0),
        notes=(
            "false means STARTTLS is never attempted, even when offered.",
            "No type check: a quoted \"false\" is truthy, so TLS stays on.",
        ),
    ),
    KeySpec(
        name="tlsname",
        types=("str", "null"),
        default_note="null means smtp_host is used",
        summary="Name used for SNI and for checking the server certificate.",
        synapse_attr="email_tlsname",
        added=V(1, 122, 0),
        notes=(
            "An IP literal is checked against the certificate's IP SANs and sends no SNI.",
            "The fix for a local MTA reached as localhost or by IP with a public certificate.",
        ),
    ),
    KeySpec(
        name="notif_from",
        types=("str",),
        summary="From header of every mail; %(app)s is replaced by app_name.",
        synapse_attr="email_notif_from",
        added=V(0, 16, 0),
        load_errors=(
            "RuntimeError: Invalid notif_from address (traceback) when parseaddr finds no address",
            NOTIF_FROM_MISSING,
        ),
        notes=(
            "Mandatory as soon as the email: block is non-empty.",
            "The address check is weak: 'Matrix' passes on Python 3.11.7.",
            "A stray % (e.g. '%(app) <') makes every send fail with ValueError; an unknown "
            "placeholder is left literally in the header.",
            "Non-ASCII display names produce a malformed From header.",
        ),
    ),
    KeySpec(
        name="app_name",
        types=("str",),
        default="Matrix",
        summary="Product name shown in mails and substituted for %(app)s.",
        synapse_attr="email_app_name",
        added=V(0, 16, 0),
        notes=("For notification mails a pusher's data.brand overrides it.",),
    ),
    KeySpec(
        name="enable_notifs",
        types=("bool",),
        default=False,
        summary="Send notification mails for unread messages and invites.",
        synapse_attr="email_enable_notifs",
        added=V(0, 16, 0),
        load_errors=(
            "email.enable_notifs is True but required keys are missing: email.notif_from",
        ),
        notes=("When false, email pushers can still be created but silently never run.",),
    ),
    KeySpec(
        name="notif_for_new_users",
        types=("bool",),
        default=True,
        summary="Create an email pusher for users who register with a verified address.",
        synapse_attr="email_notif_for_new_users",
        added=V(0, 16, 0),
        read_when=_NOTIFS,
        history=(Change(V(1, 15, 0), "Also applied to users created through the admin API."),),
    ),
    KeySpec(
        name="notif_delay_before_mail",
        types=("duration",),
        default="10m",
        summary="How long a notification waits before it is mailed; also the first throttle.",
        synapse_attr="notif_delay_before_mail_ms",
        added=V(1, 99, 0),
        read_when=_NOTIFS,
        load_errors=(_DURATION_ERR,),
        notes=("Later per-room throttles multiply by 144, capped at 24 hours.",),
    ),
    KeySpec(
        name="client_base_url",
        types=("str", "null"),
        default=None,
        docs_default='"https://matrix.to"',
        default_note="unset: links go to https://matrix.to/#/..., or vector.im/beta when "
        "app_name is 'Vector'",
        summary="Web client URL that notification mails link to.",
        synapse_attr="email_riot_base_url",
        added=V(1, 9, 0),
        read_when=_NOTIFS,
        notes=("Wins over riot_base_url when both are set.",),
    ),
    KeySpec(
        name="riot_base_url",
        types=("str", "null"),
        summary="Old name of client_base_url, still read.",
        synapse_attr="email_riot_base_url",
        added=V(0, 19, 0),
        deprecated=V(1, 9, 0),
        replacement="client_base_url",
        read_when=_NOTIFS,
        notes=("Ignored when client_base_url is also set.",),
    ),
    KeySpec(
        name="validation_token_lifetime",
        types=("duration",),
        default="1h",
        summary="How long validation and password-reset links stay valid.",
        synapse_attr="email_validation_token_lifetime",
        added=V(1, 0, 0),
        load_errors=(_DURATION_ERR,),
        notes=("Always parsed, even with an empty email: block. A bare int is milliseconds.",),
    ),
    KeySpec(
        name="invite_client_location",
        types=("str", "null"),
        summary="Web client URL given to identity servers for 3PID invites (not SMTP).",
        synapse_attr="invite_client_location",
        added=V(1, 25, 0),
        load_errors=(
            "Config option email.invite_client_location must be type str",
            "Config option email.invite_client_location must be a http or https URL",
        ),
    ),
    KeySpec(
        name="template_dir",
        types=("str", "null"),
        summary="Old per-email template directory, searched after the custom one.",
        deprecated=V(1, 41, 0),
        replacement=_CUSTOM_DIR,
        load_errors=(
            "Config option email.template_dir must be type str",
            "Configured template directory does not exist: <dir>",
        ),
        notes=(
            "Any value logs a deprecation warning at startup.",
            "A relative path is resolved against Synapse's working directory.",
        ),
    ),
    KeySpec(
        name="subjects",
        types=("mapping",),
        default=MappingProxyType({}),
        default_note="each subject has its own default (see SUBJECT_KEYS)",
        summary="Subject lines of the mails Synapse sends.",
        synapse_attr="email_subjects",
        added=V(1, 18, 0),
        load_errors=("AttributeError traceback when the value is not a mapping (null included)",),
        notes=("Placeholders are not checked at load: a wrong one fails at send time.",),
    ),
)

_LEGACY_TEMPLATE_KEYS: tuple[KeySpec, ...] = (
    _legacy_template(
        "password_reset_template_html", "password_reset.html", _VERIFY,
        "email_password_reset_template_html",
    ),
    _legacy_template(
        "password_reset_template_text", "password_reset.txt", _VERIFY,
        "email_password_reset_template_text",
    ),
    _legacy_template(
        "registration_template_html", "registration.html", _VERIFY,
        "email_registration_template_html",
    ),
    _legacy_template(
        "registration_template_text", "registration.txt", _VERIFY,
        "email_registration_template_text",
    ),
    _legacy_template(
        "add_threepid_template_html", "add_threepid.html", _VERIFY,
        "email_add_threepid_template_html",
    ),
    _legacy_template(
        "add_threepid_template_text", "add_threepid.txt", _VERIFY,
        "email_add_threepid_template_text",
    ),
    _legacy_template(
        "password_reset_template_failure_html", "password_reset_failure.html", _VERIFY,
        "email_password_reset_template_failure_html",
    ),
    _legacy_template(
        "registration_template_failure_html", "registration_failure.html", _VERIFY,
        "email_registration_template_failure_html",
    ),
    _legacy_template(
        "add_threepid_template_failure_html", "add_threepid_failure.html", _VERIFY,
        "email_add_threepid_template_failure_html",
    ),
    _legacy_template(
        "password_reset_template_success_html", "password_reset_success.html", _VERIFY,
        "email_password_reset_template_success_html_content",
    ),
    _legacy_template(
        "registration_template_success_html", "registration_success.html", _VERIFY,
        "email_registration_template_success_html_content",
    ),
    _legacy_template(
        "add_threepid_template_success_html", "add_threepid_success.html", _VERIFY,
        "email_add_threepid_template_success_html_content",
    ),
    _legacy_template(
        "notif_template_html", "notif_mail.html", _NOTIFS, "email_notif_template_html"
    ),
    _legacy_template(
        "notif_template_text", "notif_mail.txt", _NOTIFS, "email_notif_template_text"
    ),
    _legacy_template("expiry_template_html", "notice_expiry.html", _RENEW, None),
    _legacy_template("expiry_template_text", "notice_expiry.txt", _RENEW, None),
)

_ALREADY_IN_USE = KeySpec(
    name="already_in_use_template_html",
    types=("str",),
    default="already_in_use.html",
    summary="File name of the 'email already in use' template (both parts, by a bug).",
    legacy=True,
    documented=False,
    replacement=_CUSTOM_DIR,
    read_when=_VERIFY,
    load_errors=_LEGACY_TEMPLATE_KEYS[0].load_errors,
    notes=(
        "Bug: the plain-text part is also looked up under this key (its default is "
        "already_in_use.txt), so setting it puts the HTML file in the text part too.",
        "already_in_use_template_text is never read by any Synapse.",
    ),
)

_NESTED_TRUST = KeySpec(
    name="trust_identity_server_for_password_resets",
    types=("bool",),
    summary="A removed top-level option, misplaced under email:.",
    gone=True,
    documented=False,
    notes=(
        "Synapse checks for this key only at the top level; under email: it is silently "
        "ignored. Delete it: password resets by identity server are gone.",
    ),
)

#: Every key Synapse has read under ``email:``, keyed by name (spec 1.2).
EMAIL_KEYS: MappingProxyType[str, KeySpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (*_CORE_EMAIL_KEYS, *_LEGACY_TEMPLATE_KEYS, _ALREADY_IN_USE, _NESTED_TRUST)
    }
)

_VALIDATION_PLACEHOLDERS = frozenset({"server_name", "app"})


def _notif(name: str, default: str, placeholders: set[str], summary: str,
           documented: bool = True) -> SubjectSpec:
    return SubjectSpec(
        name=name,
        default=default,
        placeholders=frozenset(placeholders),
        used_for="notification mail (summary line of the digest)",
        kind="notification",
        summary=summary,
        documented=documented,
        notes=("%(server_name)s is not available here: it raises KeyError at send time.",),
    )


_SUBJECTS: tuple[SubjectSpec, ...] = (
    SubjectSpec(
        name="password_reset",
        default="[%(server_name)s] Password reset",
        placeholders=_VALIDATION_PLACEHOLDERS,
        used_for="password reset mail",
        kind="validation",
        summary="Subject of the password reset mail.",
    ),
    SubjectSpec(
        name="email_validation",
        default="[%(server_name)s] Validate your email",
        placeholders=_VALIDATION_PLACEHOLDERS,
        used_for="registration and add-email validation mails",
        kind="validation",
        summary="Subject of the mails that confirm an address.",
    ),
    SubjectSpec(
        name="email_already_in_use",
        default="[%(server_name)s] Email already in use",
        placeholders=_VALIDATION_PLACEHOLDERS,
        used_for="registration attempt with an address already bound "
        "(needs request_token_inhibit_3pid_errors)",
        kind="validation",
        summary="Subject of the mail telling someone the address is already registered.",
        documented=False,
    ),
    _notif(
        "message_from_person_in_room",
        "[%(app)s] You have a message on %(app)s from %(person)s in the %(room)s room...",
        {"person", "room", "app"}, "One message from one person in a named room.",
    ),
    _notif(
        "message_from_person",
        "[%(app)s] You have a message on %(app)s from %(person)s...",
        {"person", "app"}, "One message from one person.",
    ),
    _notif(
        "messages_from_person",
        "[%(app)s] You have messages on %(app)s from %(person)s...",
        {"person", "app"}, "Several messages from one person.",
    ),
    _notif(
        "messages_in_room",
        "[%(app)s] You have messages on %(app)s in the %(room)s room...",
        {"room", "app"}, "Several messages in one room.",
    ),
    _notif(
        "messages_in_room_and_others",
        "[%(app)s] You have messages on %(app)s in the %(room)s room and others...",
        {"room", "app"}, "Messages in one room and in others.",
    ),
    _notif(
        "messages_from_person_and_others",
        "[%(app)s] You have messages on %(app)s from %(person)s and others...",
        {"person", "app"}, "Messages from one person and from others.",
    ),
    _notif(
        "invite_from_person",
        "[%(app)s] %(person)s has invited you to chat on %(app)s...",
        {"person", "app"}, "An invitation to a direct chat.",
    ),
    _notif(
        "invite_from_person_to_room",
        "[%(app)s] %(person)s has invited you to join the %(room)s room on %(app)s...",
        {"person", "room", "app"}, "An invitation to a room.",
    ),
    _notif(
        "invite_from_person_to_space",
        "[%(app)s] %(person)s has invited you to join the %(space)s space on %(app)s...",
        {"person", "space", "app"}, "An invitation to a space.", documented=False,
    ),
)

#: Every ``email.subjects.*`` key (spec 1.3). The block itself appeared in 1.18.0.
SUBJECT_KEYS: MappingProxyType[str, SubjectSpec] = MappingProxyType(
    {spec.name: spec for spec in _SUBJECTS}
)

