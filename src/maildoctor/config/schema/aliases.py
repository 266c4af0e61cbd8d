"""What admins write instead of Synapse's key names, and keys that exist in no Synapse.

Synapse ignores unknown keys without a word (spec 3), so ``smtp_password: hunter2`` leaves
``smtp_pass`` unset and the first mail fails with a misleading AUTH error. These two tables
turn the common wrong names into an exact answer:

- ``SYNONYMS``: a name from another program's vocabulary (Django, GitLab, Gitea, nodemailer,
  or plain English) that means one real key. ``maildoctor fix`` may rename it.
- ``MISPLACED``: a real top-level key written under ``email:``, where Synapse never looks
  for it; the target is where it belongs.
- ``NONEXISTENT``: a plausible option Synapse simply does not have. There is nothing to
  rename to, only advice.

Keys are lower-case with underscores; look-ups normalise case, ``-`` and blanks first.
"""

from __future__ import annotations

from types import MappingProxyType

from maildoctor.config.schema.model import Nonexistent, Synonym

__all__ = ["MISPLACED", "NONEXISTENT", "SYNONYMS"]

_TOP = "a top-level key, not under email:"
_STARTTLS_ON = (
    "STARTTLS is already used whenever the server offers it (enable_tls defaults to true)"
)
_IMPLICIT = "implicit TLS from the first byte, as on port 465, is force_tls (Synapse 1.64.0+)"


def _syn(target: str, reason: str, *names: str) -> dict[str, Synonym]:
    return {name: Synonym(target, reason) for name in names}


SYNONYMS: MappingProxyType[str, Synonym] = MappingProxyType({
    **_syn("smtp_pass", "Synapse's password key is smtp_pass",
           "smtp_password", "smtp_passwd", "smtp_pwd", "password", "passwd", "pass", "pwd",
           "smtp_secret", "email_password", "mail_password", "email_host_password"),
    **_syn("smtp_user", "Synapse's user-name key is smtp_user",
           "smtp_username", "smtp_login", "username", "user", "login", "email_host_user",
           "mail_username", "smtp_user_name", "auth_user"),
    **_syn("smtp_host", "Synapse's server key is smtp_host",
           "host", "hostname", "smtp_server", "smtp_hostname", "smtp_address", "server",
           "mail_server", "smtp_relay", "relay", "relayhost", "smarthost", "email_host",
           "mail_host"),
    **_syn("smtp_port", "Synapse's port key is smtp_port",
           "port", "smtp_port_number", "email_port", "mail_port"),
    **_syn("force_tls", _IMPLICIT,
           "ssl", "use_ssl", "smtp_ssl", "smtps", "implicit_tls", "tls_implicit", "secure",
           "force_ssl", "email_use_ssl", "tls_wrapper"),
    **_syn("force_tls", f"GitLab's smtp_tls means SMTPS; here {_IMPLICIT}; {_STARTTLS_ON}",
           "smtp_tls"),
    **_syn("enable_tls", f"STARTTLS is governed by enable_tls; {_STARTTLS_ON}",
           "starttls", "use_tls", "tls", "smtp_starttls", "enable_starttls", "use_starttls",
           "enable_starttls_auto", "smtp_enable_starttls_auto", "email_use_tls", "smtp_use_tls",
           "enable_ssl"),
    **_syn("require_transport_security",
           "making STARTTLS mandatory is require_transport_security",
           "require_tls", "require_starttls", "tls_required", "starttls_required",
           "force_starttls"),
    **_syn("tlsname", "the certificate and SNI name is tlsname (Synapse 1.122.0+)",
           "tls_name", "tls_hostname", "tls_server_name", "sni", "servername", "server_name_tls",
           "smtp_tls_name", "verify_hostname", "ssl_hostname"),
    **_syn("notif_from", "the From address of every Synapse mail is notif_from",
           "from", "sender", "from_address", "from_addr", "smtp_from", "from_email",
           "mail_from", "email_from", "sender_address", "sender_email", "default_from_email",
           "notification_from", "notify_from", "notif_sender"),
    **_syn("app_name", "the product name in mails is app_name",
           "app", "brand", "application_name", "site_name", "app_title"),
    **_syn("enable_notifs", "notification mails are switched on by enable_notifs",
           "enable_notifications", "notifications", "notifs", "enable_notif", "notify",
           "email_notifications"),
    **_syn("notif_delay_before_mail", "the notification delay is notif_delay_before_mail",
           "notif_delay", "notification_delay", "delay_before_mail"),
    **_syn("client_base_url", "the web client URL in notification mails is client_base_url",
           "base_url", "client_url", "web_client_url", "element_url", "webclient_url"),
    **_syn("validation_token_lifetime", "link lifetime is validation_token_lifetime",
           "token_lifetime", "validation_lifetime", "token_validity"),
    **_syn("subjects", "subject lines live in the subjects mapping", "subject", "email_subjects"),
    **_syn("templates.custom_template_directory",
           f"the template directory is templates.custom_template_directory, {_TOP}",
           "templates_dir", "template_directory", "templates_directory"),
})

MISPLACED: MappingProxyType[str, Synonym] = MappingProxyType({
    **_syn("templates.custom_template_directory",
           f"custom_template_directory belongs under templates:, {_TOP}",
           "custom_template_directory"),
    **{
        name: Synonym(name, f"{name} is {_TOP}; under email: Synapse never reads it")
        for name in (
            "server_name", "public_baseurl", "enable_registration",
            "enable_registration_without_verification", "registrations_require_3pid",
            "allowed_local_3pids", "enable_3pid_changes", "request_token_inhibit_3pid_errors",
            "next_link_domain_whitelist", "rc_3pid_validation", "password_config",
            "account_threepid_delegates",
        )
    },
    **_syn("public_baseurl", f"public_baseurl (one word, no underscore) is {_TOP}",
           "public_base_url", "public_url"),
})

_PASS_FILE = Nonexistent(
    "put smtp_pass in a separate file readable only by Synapse inside a config directory "
    "passed with -c DIR; that file must then hold the whole email: block",
    "no Synapse has a file variant of smtp_pass. Config files are merged shallowly, so a later "
    "file's email: replaces the earlier one entirely (notif_from included)",
)
_AUTH_METHOD = Nonexistent(
    "offer the mechanism you want on the server, or leave the choice to Synapse",
    "the mechanism is not configurable: Twisted picks the first of CRAM-MD5, LOGIN, PLAIN "
    "that the server offers",
)
_CA_FILE = Nonexistent(
    "set SSL_CERT_FILE (or SSL_CERT_DIR) in Synapse's environment to a bundle with your CA",
    "Synapse trusts OpenSSL's default store and has no CA option",
)
_VERIFY = Nonexistent(
    "make the certificate trusted (SSL_CERT_FILE), set tlsname to the name it was issued for, "
    "or, only as a last resort, enable_tls: false (mail then travels unencrypted)",
    "certificate checking cannot be switched off in Synapse",
)
_TIMEOUT = Nonexistent(
    "put a timeout in the reverse proxy, and fix the cause of the hang (maildoctor probe)",
    "Synapse sets no SMTP timeout; only each TCP connect attempt is bounded (30 s)",
)
_XOAUTH = Nonexistent(
    "use an app password or a local relay (e.g. Postfix or exim) that does OAuth2 upstream",
    "Synapse authenticates with a user name and password only",
)


def _none(entry: Nonexistent, *names: str) -> dict[str, Nonexistent]:
    return dict.fromkeys(names, entry)


NONEXISTENT: MappingProxyType[str, Nonexistent] = MappingProxyType({
    **_none(_PASS_FILE, "smtp_pass_path", "smtp_pass_file", "smtp_password_file",
            "smtp_password_path", "password_file", "password_path", "smtp_pass_env"),
    **_none(_AUTH_METHOD, "smtp_auth_method", "auth_mechanism", "auth_method",
            "smtp_authentication", "smtp_auth", "authentication", "auth_mechanisms"),
    **_none(_CA_FILE, "smtp_ca_file", "tls_ca", "ca_file", "smtp_ca_cert", "ca_cert",
            "tls_ca_file", "ssl_ca_file", "cafile", "ca_path"),
    **_none(_VERIFY, "tls_verify", "smtp_verify_certificate", "verify_certificate",
            "tls_insecure", "insecure", "smtp_tls_verify", "ssl_verify", "verify_tls",
            "skip_verify", "smtp_openssl_verify_mode", "tls_skip_verify"),
    **_none(_TIMEOUT, "smtp_timeout", "timeout", "connect_timeout", "smtp_connect_timeout"),
    **_none(_XOAUTH, "xoauth2", "oauth2", "smtp_oauth2", "oauth_token", "smtp_oauth_token"),
    **_none(Nonexistent(
        "nothing to set: the EHLO name is the FQDN of Synapse's host (socket.getfqdn())",
        "the EHLO/HELO name is not configurable in Synapse",
    ), "helo_name", "ehlo_name", "smtp_helo", "smtp_domain", "local_hostname", "helo"),
    **_none(Nonexistent(
        "run maildoctor from the Synapse host or its container network namespace",
        "Synapse ignores proxy settings for SMTP and connects directly",
    ), "smtp_proxy", "proxy", "socks_proxy"),
    **_none(Nonexistent(
        "point smtp_host at a local MTA that accepts mail on port 25",
        "Synapse speaks SMTP only; there is no sendmail or other transport",
    ), "sendmail", "sendmail_path", "transport", "delivery_method", "protocol"),
    **_none(Nonexistent(
        "put the wanted client certificate on a local relay instead",
        "Synapse cannot present a TLS client certificate",
    ), "tls_cert", "tls_key", "smtp_client_cert", "client_cert"),
    **_none(Nonexistent(
        "the envelope sender is the address part of notif_from",
        "Synapse has no separate envelope sender or Reply-To",
    ), "envelope_from", "return_path", "reply_to", "bounce_address"),
    **_none(Nonexistent(
        "any non-empty email: block turns email on; remove the block to turn it off",
        "there is no on/off switch for email verification and password reset",
    ), "enabled", "enable", "enable_email"),
    **_none(Nonexistent(
        "put already_in_use.txt in templates.custom_template_directory",
        "never read by any Synapse: by a bug the text part uses already_in_use_template_html",
    ), "already_in_use_template_text"),
})
