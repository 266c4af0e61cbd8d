"""Keys outside ``email:`` that decide whether and how Synapse's mails work (spec 1.1, 1.4).

Data only. Names are dotted paths from the top of the config. ``section`` and
``synapse_attr`` are filled only where the spec or Synapse's own code shows them; otherwise
they stay ``None`` rather than guessed.
"""

from __future__ import annotations

from types import MappingProxyType

from maildoctor.config.schema.model import Change, KeySpec, Version

__all__ = ["RELATED_TOP_LEVEL_KEYS"]

V = Version

_RELATED: tuple[KeySpec, ...] = (
    KeySpec(
        name="server_name",
        types=("str",),
        summary="The homeserver's name; fills %(server_name)s in validation subjects.",
        section="server",
        synapse_attr="server_name",
        load_errors=("Missing mandatory `server_name` config option.",),
        notes=("report_stats is required as well.",),
    ),
    KeySpec(
        name="report_stats",
        types=("bool",),
        summary="Whether to report anonymous usage statistics; required by Synapse.",
        notes=("Not about email, but a config without it never starts.",),
    ),
    KeySpec(
        name="public_baseurl",
        types=("str",),
        default_note="https://<server_name>/ when unset (logged as 'Using default public_baseurl')",
        summary="Public URL of the homeserver; every link in a mail starts with it.",
        section="server",
        synapse_attr="public_baseurl",
        load_errors=(
            "Must be a string",
            "Invalid scheme '<s>': only https and http are supported",
            "public_baseurl cannot contain query parameters or a #-fragment",
        ),
        history=(
            Change(
                V(1, 47, 0),
                "Email no longer requires it; before, the partial-email-block error listed "
                "public_baseurl as missing.",
            ),
        ),
        notes=(
            "A trailing / is added.",
            "A reachable but wrong value gives broken links without any warning.",
            "The reverse proxy must forward /_synapse/client/* or reset links give 404.",
        ),
    ),
    KeySpec(
        name="enable_registration",
        types=("bool",),
        default=False,
        summary="Allow new accounts; needed for registration validation mails.",
        section="registration",
        synapse_attr="enable_registration",
        notes=(
            "Open registration is refused at startup unless a captcha, "
            "registrations_require_3pid, registration_requires_token or "
            "enable_registration_without_verification is set.",
            "When false, /register/email/requestToken answers 403 M_FORBIDDEN.",
        ),
    ),
    KeySpec(
        name="enable_registration_without_verification",
        types=("bool",),
        default=False,
        summary="Allow open registration with no email, captcha or token check.",
        section="registration",
        synapse_attr="enable_registration_without_verification",
    ),
    KeySpec(
        name="registrations_require_3pid",
        types=("list",),
        default=(),
        summary="Third-party identifiers (e.g. [email]) every new account must verify.",
        section="registration",
        synapse_attr="registrations_require_3pid",
        load_errors=(
            "ConfigError: Configuration requires email address at registration, but email "
            "validation is not configured",
        ),
        notes=(
            "That error is raised when the client servlets are built, so "
            "`python -m synapse.config` still says 'Config parses OK!'.",
        ),
    ),
    KeySpec(
        name="allowed_local_3pids",
        types=("list",),
        default=(),
        summary="Patterns ({medium, pattern}) an address must match to be registered or added.",
        section="registration",
        synapse_attr="allowed_local_3pids",
        notes=(
            "Not validated at load: a non-matching address gets 403 M_THREEPID_DENIED, and an "
            "entry without medium or pattern raises KeyError at request time.",
        ),
    ),
    KeySpec(
        name="enable_3pid_changes",
        types=("bool",),
        default=True,
        default_note="false when the Matrix Authentication Service is enabled",
        summary="Allow users to add or remove email addresses (the add-email mail).",
        section="registration",
        synapse_attr="enable_3pid_changes",
        load_errors=("ConfigError when true together with matrix_authentication_service",),
    ),
    KeySpec(
        name="account_threepid_delegates",
        types=("mapping",),
        summary="Identity servers that verify third-party identifiers; only msisdn remains.",
        section="registration",
    ),
    KeySpec(
        name="account_threepid_delegates.email",
        types=("str",),
        summary="Delegating email verification to an identity server.",
        section="registration",
        removed=V(1, 66, 0),
        load_errors=(
            "Delegation of email verification to an identity server is no longer supported. ...",
        ),
        notes=("Synapse must send the mails itself: configure email: instead.",),
    ),
    KeySpec(
        name="request_token_inhibit_3pid_errors",
        types=("bool",),
        default=False,
        summary="Hide whether an address is known; enables the 'already in use' mail.",
        section="server",
        synapse_attr="request_token_inhibit_3pid_errors",
        notes=(
            "When true, reset for an unknown address and add-email for a bound one answer 200 "
            "and send nothing; registration with a bound address sends the 'already in use' "
            "mail.",
        ),
    ),
    KeySpec(
        name="next_link_domain_whitelist",
        types=("list", "null"),
        summary="Domains a client's next_link may point to after validation.",
        section="server",
        synapse_attr="next_link_domain_whitelist",
        load_errors=("'next_link_domain_whitelist' must be a list",),
        notes=("A file: link or an unlisted host gives 400 M_INVALID_PARAM.",),
    ),
    KeySpec(
        name="templates.custom_template_directory",
        types=("str", "null"),
        summary="Directory searched first for templates, before email.template_dir.",
        section="server",
        synapse_attr="custom_template_directory",
        load_errors=(
            "'custom_template_directory' must be a string",
            "Configured template directory does not exist: <dir>",
        ),
        notes=("email.template_dir was deprecated in its favour in 1.41.0.",),
    ),
    KeySpec(
        name="rc_3pid_validation",
        types=("mapping",),
        default=MappingProxyType({"per_second": 0.003, "burst_count": 5}),
        summary="Rate limit on validation requests, per client IP and per address.",
        notes=(
            "The default allows about five quick requests; beyond that 429 M_LIMIT_EXCEEDED.",
        ),
    ),
    KeySpec(
        name="password_config",
        types=("mapping",),
        summary="Password login settings (enabled, localdb_enabled, policy).",
        notes=(
            "enabled: false does not stop reset mails: the mail goes out and the final "
            "password change fails with 403 'Password change disabled'.",
        ),
    ),
    KeySpec(
        name="matrix_authentication_service",
        types=("mapping",),
        summary="Delegates authentication to MAS, which then owns email flows.",
        notes=(
            "With enabled: true, none of Synapse's email requestToken or submit_token "
            "endpoints exist.",
        ),
    ),
    KeySpec(
        name="experimental_features.msc3861",
        types=("mapping",),
        summary="The experimental way of delegating authentication to MAS.",
        section="experimental",
        synapse_attr="msc3861",
        notes=(
            "Enabled, it removes Synapse's email endpoints, as matrix_authentication_service "
            "does.",
        ),
    ),
    KeySpec(
        name="account_validity.renew_at",
        types=("duration", "null"),
        summary="How long before expiry the account renewal mail is sent.",
        section="account_validity",
        synapse_attr="account_validity_renew_at",
        notes=(
            "Its presence loads the expiry templates, even with an empty email: block.",
            "Renewal mails are sent every 30 minutes to expiring users with an email.",
        ),
    ),
    KeySpec(
        name="account_validity.renew_email_subject",
        types=("str",),
        default="Renew your %(app)s account",
        summary="Subject of the account renewal mail.",
        section="account_validity",
        notes=("Passed unformatted: %(app)s appears literally in the subject.",),
    ),
    KeySpec(
        name="trust_identity_server_for_password_resets",
        types=("bool",),
        summary="A removed option that let identity servers send reset mails.",
        gone=True,
        load_errors=(
            'The config option "trust_identity_server_for_password_resets" is no longer '
            "supported. Please remove it from the config file.",
        ),
        notes=("Any truthy value stops Synapse at startup; the spec gives no removal version.",),
    ),
)

#: Top-level keys that interact with email, keyed by dotted path.
RELATED_TOP_LEVEL_KEYS: MappingProxyType[str, KeySpec] = MappingProxyType(
    {spec.name: spec for spec in _RELATED}
)
