"""Named server setups, one per row of spec/synapse-observed.md and spec/twisted-smtp.md.

The same table drives ``maildoctor testserver --scenario NAME``, the test suite and the
benchmarks, so "the sender-rejected server" means the same thing everywhere. Each entry says
which Synapse outcome it reproduces; the reply texts are the ones observed from real servers
(Postfix wording unless the row was observed against aiosmtpd).

Credentials are always the defaults (``synapse@example.org`` / ``s3cret``): a scenario about a
wrong password is a server behaviour plus a client that sends another password.
"""

from __future__ import annotations

from maildoctor.testing.options import Fault, ServerOptions

_STARTTLS = ServerOptions(tls="starttls")

# name -> (what Synapse does against it, the options)
_TABLE: dict[str, tuple[str, ServerOptions]] = {
    "works": ("plain submission, AUTH LOGIN PLAIN: Synapse sends", ServerOptions()),
    "starttls": ("STARTTLS with a trusted certificate: works with SSL_CERT_FILE", _STARTTLS),
    "implicit-tls": (
        "TLS from the first byte (port 465 style): needs force_tls, else Synapse hangs",
        ServerOptions(tls="implicit"),
    ),
    "no-auth-offered": (
        "EHLO lists no AUTH: AUTHRequiredError 502 when smtp_user is set",
        ServerOptions(advertise_auth=False),
    ),
    "xoauth2-only": (
        "only XOAUTH2 offered: AUTHRequiredError 502 (Twisted knows no XOAUTH2)",
        ServerOptions(mechanisms=("XOAUTH2",)),
    ),
    "lowercase-auth": (
        "'auth login plain' in lowercase: Twisted ignores it, AUTHRequiredError 502",
        ServerOptions(replies={"ehlo": "250-mail.test\n250-auth login plain\n250 HELP"}),
    ),
    "auth-equals-only": (
        "only the legacy 'AUTH=LOGIN PLAIN' line: AUTHRequiredError 502",
        ServerOptions(replies={"ehlo": "250-mail.test\n250-AUTH=LOGIN PLAIN\n250 HELP"}),
    ),
    "auth-after-starttls-only": (
        "AUTH offered only after STARTTLS: AUTHRequiredError 502 with enable_tls: false",
        _STARTTLS.replace(auth_after_starttls_only=True),
    ),
    "auth-required": (
        "530 at MAIL without AUTH: SMTPDeliveryError 530 when smtp_user is unset",
        ServerOptions(auth_required=True),
    ),
    "starttls-required": (
        "530 'Must issue a STARTTLS command first': SMTPDeliveryError with enable_tls: false",
        _STARTTLS.replace(starttls_required=True),
    ),
    "no-starttls": (
        "plain server: TLSRequiredError 502 with require_transport_security: true",
        ServerOptions(),
    ),
    "untrusted-cert-starttls": (
        "STARTTLS, certificate from an unknown CA: Synapse hangs, logs nothing",
        _STARTTLS.replace(cert="untrusted"),
    ),
    "untrusted-cert-implicit": (
        "implicit TLS, certificate from an unknown CA: Synapse hangs, logs nothing",
        ServerOptions(tls="implicit", cert="untrusted"),
    ),
    "self-signed-starttls": (
        "STARTTLS, self-signed certificate: Synapse hangs",
        _STARTTLS.replace(cert="self-signed"),
    ),
    "expired-cert-starttls": (
        "STARTTLS, expired certificate: Synapse hangs",
        _STARTTLS.replace(cert="expired"),
    ),
    "name-mismatch-starttls": (
        "STARTTLS, certificate for another name: Synapse hangs (service_identity mismatch)",
        _STARTTLS.replace(cert_names=("smtp.other.example",)),
    ),
    "starttls-454": (
        "STARTTLS answered 454: Synapse hangs (4xx SMTPTLSError is retried, never reported)",
        _STARTTLS.replace(replies={"starttls": "454 4.7.0 TLS not available due to local problem"}),
    ),
    "starttls-502": (
        "STARTTLS answered 502: SMTPTLSError 502 'Could not complete the SSL/TLS handshake'",
        _STARTTLS.replace(replies={"starttls": "502 5.5.1 Error: command not implemented"}),
    ),
    "greeting-421": (
        "greeting 421 then close: Synapse hangs (SMTPConnectError is retried)",
        ServerOptions(replies={"greeting": "421 4.3.2 Service not available, closing channel"}),
    ),
    "greeting-554": (
        "greeting 554 (blocked client): Synapse hangs",
        ServerOptions(replies={"greeting": "554 5.7.1 Service unavailable; client host blocked"}),
    ),
    "ehlo-rejected": (
        "EHLO refused: EHLORequiredError 502 with smtp_user, HELO fallback without",
        ServerOptions(replies={"ehlo": "502 5.5.2 Error: command not recognized"}),
    ),
    "ehlo-helo-rejected": (
        "EHLO and HELO refused: EHLORequiredError 502 with smtp_user (without, Twisted "
        "resends HELO in a tight loop)",
        ServerOptions(replies={"ehlo": "502 5.5.2 Error: command not recognized",
                               "helo": "501 5.5.2 Error: HELO refused"}),
    ),
    "auth-454": (
        "AUTH answered 454: Synapse hangs (4xx AUTHDeclinedError is retried)",
        ServerOptions(replies={"auth": "454 4.7.0 Temporary authentication failure"}),
    ),
    "cram-md5": (
        "working CRAM-MD5 (Twisted prefers it): Synapse sends",
        ServerOptions(mechanisms=("CRAM-MD5", "LOGIN", "PLAIN")),
    ),
    "cram-md5-broken": (
        "CRAM-MD5 advertised but unverifiable (hashed passwords): AUTHDeclinedError 535 "
        "even with the right password",
        ServerOptions(mechanisms=("CRAM-MD5-BROKEN", "LOGIN", "PLAIN")),
    ),
    "cram-md5-refused": (
        "AUTH CRAM-MD5 answered 504: AuthenticationError 504, no fallback to LOGIN",
        ServerOptions(
            mechanisms=("CRAM-MD5", "LOGIN", "PLAIN"),
            replies={"auth": "504 5.5.4 Unrecognized authentication type"},
        ),
    ),
    "auth-failure-drop": (
        "wrong password, server closes without a reply: Synapse hangs",
        ServerOptions(auth_failure="drop"),
    ),
    "auth-failure-silent": (
        "wrong password, server never answers: Synapse hangs",
        ServerOptions(auth_failure="silent"),
    ),
    "sender-rejected": (
        "MAIL FROM refused 553: SMTPDeliveryError 553",
        ServerOptions(replies={
            "mail": "553 5.7.1 <{address}>: Sender address rejected: not owned by user "
                    "synapse@example.org",
        }),
    ),
    "recipient-rejected": (
        "RCPT TO refused 550: SMTPDeliveryError 550 'No recipients accepted'",
        ServerOptions(replies={
            "rcpt": "550 5.1.1 <{address}>: Recipient address rejected: User unknown",
        }),
    ),
    "sender-rejected-at-rcpt": (
        "RCPT TO refused 553 for the sender (Postfix's reject_sender_login_mismatch with "
        "smtpd_delay_reject): SMTPDeliveryError 553 'No recipients accepted'",
        ServerOptions(replies={
            "rcpt": "553 5.7.1 <noreply@example.org>: Sender address rejected: not owned by "
                    "user synapse@example.org",
        }),
    ),
    "smtp-auth-disabled": (
        "wrong or any password, Microsoft 365's 535 5.7.139 (SMTP AUTH off for the tenant): "
        "AUTHDeclinedError 535",
        ServerOptions(mechanisms=("LOGIN",), replies={
            "auth_failed": "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
                           "is disabled for the Tenant.",
        }),
    ),
    "greylisted": (
        "RCPT TO answered 450: SMTPDeliveryError 450",
        ServerOptions(replies={
            "rcpt": "450 4.2.0 <{address}>: Recipient address rejected: Greylisted",
        }),
    ),
    "data-refused": (
        "DATA refused 554: SMTPDeliveryError 554 (after DATA: the probe, which never sends DATA, "
        "cannot see it)",
        ServerOptions(replies={"data": "554 5.5.1 Error: no valid recipients"}),
    ),
    "message-too-large": (
        "final dot answered 552: SMTPDeliveryError 552 (after DATA: the probe, which never "
        "sends DATA, cannot see it)",
        ServerOptions(replies={"dot": "552 5.3.4 Message size exceeds fixed limit"}),
    ),
    "not-smtp": (
        "a POP3 server on the port: SMTPProtocolError",
        ServerOptions(faults=(Fault.NOT_SMTP,)),
    ),
    "silent": (
        "accepts TCP, never speaks: Synapse hangs forever",
        ServerOptions(faults=(Fault.SILENT,)),
    ),
    "stall-after-ehlo": (
        "answers EHLO, then nothing: Synapse hangs forever",
        ServerOptions(faults=(Fault.STALL_AFTER_EHLO,)),
    ),
    "drop-after-greeting": (
        "closes after the greeting: Synapse hangs",
        ServerOptions(faults=(Fault.DROP_AFTER_GREETING,)),
    ),
    "drop-after-ehlo": (
        "closes after EHLO: Synapse hangs",
        ServerOptions(faults=(Fault.DROP_AFTER_EHLO,)),
    ),
    "drop-after-mail": (
        "answers MAIL FROM, closes at the next command (RCPT): Synapse hangs",
        ServerOptions(faults=(Fault.DROP_AFTER_MAIL,)),
    ),
    "drop-after-data": (
        "takes the message, closes without answering the dot: Synapse hangs (after DATA: the "
        "probe, which never sends DATA, cannot see it)",
        ServerOptions(faults=(Fault.DROP_AFTER_DATA,)),
    ),
    "slow": (
        "answers one byte per 100 ms: Synapse waits (no timeout)",
        ServerOptions(faults=(Fault.SLOW_DRIP,)),
    ),
    "endless-reply": (
        "a greeting line that never ends: Synapse hangs (Twisted drops the line, waits on)",
        ServerOptions(faults=(Fault.ENDLESS_REPLY,)),
    ),
    "huge-reply": (
        "an EHLO reply of thousands of lines: Synapse sends (Twisted reads them all)",
        ServerOptions(faults=(Fault.HUGE_REPLY,)),
    ),
    "invalid-utf8": (
        "a greeting with bytes that are not UTF-8: Synapse sends (Twisted reads bytes)",
        ServerOptions(faults=(Fault.INVALID_UTF8,)),
    ),
}

SCENARIOS: dict[str, ServerOptions] = {name: opts for name, (_, opts) in _TABLE.items()}
DESCRIPTIONS: dict[str, str] = {name: text for name, (text, _) in _TABLE.items()}
