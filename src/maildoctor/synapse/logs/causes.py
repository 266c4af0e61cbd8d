"""What each logged email failure means: the table of candidate root causes.

Data only (the narrowing logic is in :mod:`maildoctor.synapse.logs.explain`). One
:class:`Explanation` per failure kind found by :mod:`maildoctor.synapse.logs.scan`; facts
from spec synapse-email.md 2.4-2.6 and 6, and twisted-smtp.md 3A/3B.
"""

from __future__ import annotations

from dataclasses import dataclass

from maildoctor.causes import CAUSES as _ROWS

__all__ = ["CAUSES", "CLIENT_500", "CRASH_HANG", "EFFECT_BY_MAIL", "MAIL_LABELS", "Cause",
           "Explanation"]

_TABLE = {row.id: row for row in _ROWS}  # the one cause table, for the rows it shares


@dataclass(frozen=True)
class Cause:
    id: str
    text: str
    fix: str


@dataclass(frozen=True)
class Explanation:
    title: str
    effect: str
    causes: tuple[Cause, ...]
    probe: bool = True  # whether `maildoctor probe` can tell the causes apart


C = Cause
#: The effect of a failed send during a client's request (validation mails, spec 2.6).
CLIENT_500 = ("The client got HTTP 500 (M_UNKNOWN, \"An error was encountered when sending "
              "the email\").")
_500 = CLIENT_500
_HANG = ("The HTTP request never completes; the client spins and a reverse proxy answers "
         "502/504 minutes later. Synapse logs nothing after \"Sending email to\".")
#: The effect of Twisted's TypeError crash during a client's request.
CRASH_HANG = ("The HTTP request never completes: Twisted dropped the connection without "
              "telling Synapse, so the send never returns; the client spins and a reverse "
              "proxy answers 502/504 minutes later.")

#: How an effect reads when the mail was not sent for a client's request. Keyed by the
#: request effect it replaces (the start of :attr:`Explanation.effect`), then by the mail
#: context the scanner found: the email pusher has no client to answer (spec 2.6).
EFFECT_BY_MAIL: dict[str, dict[str, str]] = {
    CLIENT_500: {
        "notification": "No client is involved: the user gets no notification mail. The "
                        "email pusher does not advance past these events, so it tries again "
                        "when new events arrive, and fails the same way until the cause is "
                        "fixed.",
        "request": "The client got HTTP 500 (M_UNKNOWN, \"Internal server error\").",
    },
    CRASH_HANG: {
        "notification": "No client is involved: the email pusher stays stuck on this send "
                        "until Synapse restarts, and its users get no notification mails.",
    },
}
#: Names of the mail contexts, for effects that differ within one group.
MAIL_LABELS = {"validation": "Validation mails", "notification": "Notification mails",
               "request": "Mails sent while handling a request"}
_START = "Synapse refuses to start (exit 1)."

_HANG_CAUSES = (
    C("implicit-tls-port", "Port 465 (implicit TLS) without force_tls: Synapse waits for a "
      "plain-text greeting that never comes.", "Set `force_tls: true`, or use port 587."),
    C("force-tls-plain-port", "force_tls on a plain/STARTTLS port (25, 587, 2525): the TLS "
      "handshake fails and Twisted never reports it.", "Remove force_tls, or use port 465."),
    C("cert-untrusted", "The server's certificate is self-signed, expired or from a CA the "
      "Synapse host does not trust (STARTTLS or implicit TLS).",
      "Use a certificate from a public CA, or trust the CA through SSL_CERT_FILE."),
    C("cert-name", "The certificate does not cover the name Synapse checks (tlsname, else "
      "smtp_host; often 'localhost' or an IP).",
      "Set `tlsname` to a name in the certificate, or fix smtp_host."),
    C("greeting-4xx", "The server greeted with 421/554 (busy, rate-limited, blocked IP).",
      "Check the server's logs and its policy for the Synapse host's IP."),
    C("tls-4xx", "The server answered STARTTLS with 454 (TLS temporarily unavailable).",
      "Fix the server's TLS setup."),
    C("auth-4xx-or-drop", "AUTH got a 4xx, or the server closed the connection after a failed "
      "login (wrong password on some servers).",
      "Check smtp_user/smtp_pass with `maildoctor probe`."),
    C("pass-without-user", "smtp_pass is set without smtp_user: Twisted crashes with a "
      "TypeError (logged as 'Unhandled Error') and the send never returns.",
      "Add smtp_user, or remove smtp_pass."),
    C("silent-server", "The server accepts the TCP connection but never answers, or stalls "
      "mid-dialogue; Synapse has no SMTP timeout.", "Check the server and any firewall/proxy."),
)

CAUSES: dict[str, Explanation] = {
    "auth-required": Explanation(
        "Authentication required but not possible (AUTHRequiredError)",
        _500 + " The \"[CRAM-MD5, LOGIN, PLAIN]\" text is Twisted's, whatever the cause.",
        (C("no-password", "smtp_user is set but Synapse has no smtp_pass: missing, empty, or "
           "misspelt (e.g. smpt_pass), which Synapse silently ignores.",
           "Write the password as `smtp_pass` under email: (`maildoctor check` finds typos)."),
         C("no-auth-offered", "The server did not advertise AUTH: it offers it only after "
           "STARTTLS (and enable_tls is off or STARTTLS is not offered), or not on this port.",
           "Use the submission port (587 STARTTLS or 465 with force_tls) with enable_tls on; "
           "or remove smtp_user if the server relays without a login."),
         C("unsupported-mechanisms", "The server offers only mechanisms Twisted cannot use "
           "(e.g. XOAUTH2/OAUTHBEARER), or writes its AUTH line in a form Twisted misses.",
           "Enable LOGIN or PLAIN on the server, or relay through one that has them."))),
    "auth-declined": Explanation(
        "The server refused the login (AUTHDeclinedError)", _500,
        (C("wrong-credentials", "smtp_user or smtp_pass is wrong for this server.",
           "Check both; many providers need an app password or API key, not the account "
           "password."),
         C("placeholder", "smtp_pass still holds a placeholder (changeme, redacted, ...).",
           "Put the real password in smtp_pass."),
         C("cram-md5-backend", "The server advertises CRAM-MD5, Twisted prefers it, but the "
           "server cannot verify it (passwords stored hashed); LOGIN/PLAIN would work.",
           "Stop advertising CRAM-MD5 on the server."))),
    "auth-temporary": Explanation(
        "Temporary authentication failure (4xx to AUTH)",
        "Synapse >= 1.92 hangs on this; older Synapse retried 5 times, then failed.",
        (C("auth-4xx", "The server answered AUTH with a 4xx (temporary failure, rate limit).",
           "Check the server's authentication backend and rate limits."),)),
    "auth-mechanism": Explanation(
        "The chosen AUTH mechanism failed (AuthenticationError)", _500,
        (C("mechanism-refused", "The server advertises CRAM-MD5 but refuses it when used "
           "(504), or sent a malformed challenge (501); Twisted does not fall back.",
           "Stop advertising CRAM-MD5 on the server, or fix its SASL setup."),)),
    "tls-required": Explanation(
        "STARTTLS required but not offered (TLSRequiredError)", _500,
        (C("no-starttls", "require_transport_security is on, and the server does not offer "
           "STARTTLS on this port (or offers it in a form Twisted misses).",
           "Use the provider's STARTTLS port (587), or port 465 with force_tls: true."),)),
    "starttls-refused": Explanation(
        "STARTTLS refused (SMTPTLSError)", _500,
        (C("starttls-5xx", "The server answered STARTTLS with a 5xx: its TLS is broken or "
           "disabled.", "Fix the server's TLS configuration, or use implicit TLS (465)."),)),
    "ehlo-required": Explanation(
        "EHLO rejected (EHLORequiredError)", _500,
        (C("ehlo-rejected", "The server rejected EHLO; Twisted needs ESMTP for AUTH and TLS. "
           "The EHLO name is the Synapse host's FQDN (often a random container name).",
           "Check the server's HELO/EHLO restrictions; give the host a proper FQDN."),)),
    "auth-needed-at-mail": Explanation(
        "The server wants a login or STARTTLS first (530 at MAIL)", _500,
        (C("needs-auth", "No smtp_user is configured, but the server requires a login.",
           "Add smtp_user and smtp_pass."),
         C("needs-starttls", "enable_tls is off, but the server requires STARTTLS first.",
           "Turn enable_tls back on (and fix certificate trust if needed)."))),
    "sender-rejected": Explanation(
        "The server refused the sender (at MAIL FROM, or at RCPT TO as Postfix does)", _500,
        (C("sender-not-allowed", "notif_from's address is not one this account may send as "
           "(not verified, not owned by the login, or not a domain the relay accepts).",
           "Use the account's own address or a verified sender/domain in notif_from."),)),
    "greylisted": Explanation(
        "The server greylisted the mail (450 at RCPT)",
        _500 + " Synapse does not retry; a later try would have passed.",
        (C("greylisted", _TABLE["refused-greylisted"].cause.replace(
            "{reply}", "the 450").capitalize() + ".",
           _TABLE["refused-greylisted"].fix.capitalize() + "."),)),
    "recipient-rejected": Explanation(
        "The server refused the recipient (RCPT TO)", _500,
        (C("recipient-refused", "The recipient address was refused (unknown user, greylisting "
           "450, relay denied, or a sandbox that only allows verified recipients).",
           "Check the address and the server's relay/recipient policy."),)),
    "message-too-large": Explanation(
        "Message too large", _500,
        (C("size-limit", "The server's size limit is below the mail's size.",
           "Raise the limit or shrink custom templates."),)),
    "delivery-refused": Explanation(
        "The server refused the message (SMTPDeliveryError)", _500,
        (C("refused", "The server refused MAIL, RCPT or DATA; its reply says why.",
           "Read the server's reply in the excerpt."),)),
    "not-smtp": Explanation(
        "Not an SMTP server (SMTPProtocolError)", _500,
        (C("wrong-service", "smtp_port points at another service (POP3, IMAP, HTTP).",
           "Use the server's SMTP submission port."),)),
    "dns": Explanation(
        "The SMTP host name does not resolve (DNSLookupError)", _500,
        (C("bad-host", "smtp_host is misspelt, contains host:port or a URL, or is a container "
           "name not on Synapse's Docker network.", "Fix smtp_host (`maildoctor check`)."),)),
    "refused": Explanation(
        "Connection refused (ConnectionRefusedError)", _500,
        (C("nothing-listening", "Nothing listens on smtp_host:smtp_port: a wrong or misspelt "
           "port (e.g. smpt_port, so the default 25 is used), or the server is down.",
           "Fix smtp_port / smtp_host, or start the server."),)),
    "tcp-timeout": Explanation(
        "TCP connect timed out (User timeout caused connection failure)",
        _500 + " Each attempt takes about 30 s per address (the TCP connect timeout).",
        (C("blocked", "The port is filtered: many clouds block outbound port 25; or a firewall "
           "drops the packets.", "Use port 587/465, or open the firewall."),)),
    "connect-error": Explanation(
        "Connection failed", _500,
        (C("network", "A network error before SMTP started (no route, IPv6 literal on old "
           "Synapse).", "Check routing; upgrade Synapse to >= 1.92 for IPv6."),)),
    "non-ascii-address": Explanation(
        "Non-ASCII address (UnicodeEncodeError)", _500,
        (C("smtputf8", "notif_from or the recipient has a non-ASCII address; Twisted has no "
           "SMTPUTF8.", "Use an ASCII address in notif_from."),)),
    "pass-without-user": Explanation(
        "The send never finished: Twisted crashed on smtp_pass without smtp_user "
        "(TypeError, 'Unhandled Error')", CRASH_HANG,
        (_HANG_CAUSES[7],), probe=False),
    "invalid-to": Explanation(
        "Invalid recipient address", _500,
        (C("bad-to", "The recipient address has no address part.", "Check the address."),)),
    "bad-format": Explanation(
        "A broken % placeholder in notif_from or a subject (ValueError)",
        "Every mail of that kind fails.",
        (C("stray-percent", "notif_from or a subject has a lone % or a malformed placeholder.",
           "Write %% for a literal percent sign; use %(app)s."),), probe=False),
    "subject-placeholder": Explanation(
        "A notification subject uses a placeholder it does not have (KeyError)",
        "Notification mails fail (\"Exception processing notifs\"); users see nothing.",
        (C("subject-key", "A notification subject uses e.g. %(server_name)s, which notification "
           "mails do not provide.", "Use only that subject's placeholders (`maildoctor check`)."),),
        probe=False),
    "hang": Explanation("The send never finished (silent hang)", _HANG, _HANG_CAUSES),
    "legacy-retry": Explanation(
        "SMTP retries (Synapse before 1.92)",
        "Old Synapse reconnected 5 times at once and then failed with a 500.",
        (C("retry", "A connection problem, a 4xx reply, or a TLS failure made Twisted retry; the "
           "last exception of the request says which.", "Read the failure logged after the "
           "retries; upgrade Synapse."),)),
    "greeting-refused": Explanation(
        "The server refused the connection at the greeting (SMTPConnectError)", _500,
        (_HANG_CAUSES[4],)),
    "tls-verify": Explanation(
        "TLS certificate verification failed", _500, (_HANG_CAUSES[2],)),
    "tls-mode": Explanation(
        "TLS spoken to a plain-text port (wrong version number)", _500, (_HANG_CAUSES[1],)),
    "tls-name-mismatch": Explanation(
        "Certificate name mismatch", _500, (_HANG_CAUSES[3],)),
    "connection-dropped": Explanation(
        "The server closed the connection (SMTPConnectError)", _500,
        (_HANG_CAUSES[0], _HANG_CAUSES[1], _HANG_CAUSES[2], _HANG_CAUSES[6])),
    "smtp-timeout": Explanation(
        "No reply from the SMTP server (SMTPTimeoutError)", _500, (_HANG_CAUSES[8],)),
    "config-notif-from-missing": Explanation(
        "email: is set but notif_from is missing", _START,
        (C("no-notif-from", "Any non-empty email: block turns on email verification, which "
           "needs notif_from (a later config file may have replaced the whole block).",
           "Add `notif_from: \"%(app)s <noreply@example.org>\"` to the email: block."),),
        probe=False),
    "config-notif-from-invalid": Explanation(
        "notif_from has no address (Invalid notif_from address)", _START,
        (C("bad-notif-from", "notif_from parses to an empty address.",
           "Write it as `Name <address@domain>`."),), probe=False),
    "config-tls-flags": Explanation(
        "force_tls / require_transport_security with enable_tls off", _START,
        (C("tls-flags", "force_tls or require_transport_security needs enable_tls on.",
           "Remove enable_tls: false, or the other flag."),), probe=False),
    "config-require-3pid": Explanation(
        "registrations_require_3pid demands email, but email is not configured", _START,
        (C("no-email", "Registration requires an email address but there is no email: block.",
           "Configure email: (`maildoctor init --provider NAME`)."),), probe=False),
    "config-numeric-secret": Explanation(
        "smtp_pass or smtp_user is a number ('int' object has no attribute 'encode')", _START,
        (C("numeric-secret", "YAML read an unquoted numeric password as a number.",
           "Quote it: smtp_pass: \"123456\"."),), probe=False),
    "config-bad-duration": Explanation(
        "A duration Synapse cannot parse (Bad duration suffix)", _START,
        (C("duration", "validation_token_lifetime or notif_delay_before_mail is malformed.",
           "Use a number with ms/s/m/h/d/w/y, e.g. 10m."),), probe=False),
    "config-email-other": Explanation(
        "Error in the email configuration", _START,
        (C("config", "Synapse rejected an email: setting; the message says which.",
           "Run `maildoctor check` on the config."),), probe=False),
    "other": Explanation(
        "Sending failed with an unexpected exception", _500,
        (C("unknown", "An exception maildoctor has no table entry for; see the excerpt.",
           "Run `maildoctor probe` against the config."),)),
}
