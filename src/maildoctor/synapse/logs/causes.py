"""What each logged email failure means: the table of candidate root causes.

Data only (the narrowing logic is in :mod:`maildoctor.synapse.logs.explain`). One
:class:`Explanation` per failure kind found by :mod:`maildoctor.synapse.logs.scan`; facts
from spec synapse-email.md 2.4-2.6 and 6, and twisted-smtp.md 3A/3B. The candidates' words
are rows of the cause table (:mod:`maildoctor.causes`): the probe's row for the same
failure, filled as far as a log can tell, or a "log" row where only the log sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

from maildoctor.causes import NO_START, Kind, cause_for
from maildoctor.replies import Blame

__all__ = ["CAUSES", "CLIENT_500", "CRASH_HANG", "EFFECT_BY_MAIL", "MAIL_LABELS", "Cause",
           "Explanation"]


@dataclass(frozen=True)
class Cause:
    """One candidate cause, worded by a row of the cause table (:mod:`maildoctor.causes`)."""

    id: str
    text: str
    fix: str
    row: str = ""  # the cause table row it reads


@dataclass(frozen=True)
class Explanation:
    title: str
    effect: str
    causes: tuple[Cause, ...]
    probe: bool = True  # whether `maildoctor probe` can tell the causes apart


#: What a log never says (host, port, the dialogue step): the probe rows' fields read so.
_LOG_FIELDS = {"where": "smtp_host:smtp_port", "host": "smtp_host", "stage": "the dialogue"}


def _sentence(text: str) -> str:
    """A row's words as a sentence; a config key that starts it keeps its spelling."""
    first = text.split(" ", 1)[0]
    if "_" not in first and "`" not in first:
        text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def C(cause_id: str, kind: str, blame: Blame | None = None, *, at: str = "log",
      **fields: str) -> Cause:
    """Candidate ``cause_id`` worded by the table's row for (stage, kind, blame): the log's
    own row (stage "log") unless ``at`` names the stage of the probe's row for the same
    failure, whose fields ``fields`` fill as far as a log can tell."""
    row = cause_for(at, kind, blame)
    text, _, fix = row.render({**_LOG_FIELDS, **fields})
    return Cause(cause_id, _sentence(text), _sentence(fix), row.id)


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

_HANG_CAUSES = (
    C("implicit-tls-port", Kind.SPEAKS_TLS, at="connect", port="465"),
    C("force-tls-plain-port", Kind.SPEAKS_PLAIN),
    C("cert-untrusted", Kind.UNTRUSTED, at="tls", how="STARTTLS or implicit TLS",
      what="self-signed, expired or from a CA Synapse does not trust"),
    C("cert-name", Kind.NAME_MISMATCH),
    C("greeting-4xx", Kind.REPLY, at="greeting", reply="421 or 554"),
    C("tls-4xx", Kind.REPLY, at="starttls", reply="454 (TLS temporarily unavailable)"),
    C("auth-4xx-or-drop", Kind.CLOSED),
    C("pass-without-user", Kind.PASS_WITHOUT_USER),
    C("silent-server", Kind.SILENT),
)

CAUSES: dict[str, Explanation] = {
    "auth-required": Explanation(
        "Authentication required but not possible (AUTHRequiredError)",
        _500 + " The \"[CRAM-MD5, LOGIN, PLAIN]\" text is Twisted's, whatever the cause.",
        (C("no-password", Kind.PASSWORD_MISSING), C("no-auth-offered", Kind.NO_AUTH_OFFERED),
         C("unsupported-mechanisms", Kind.MECHANISMS_UNUSABLE))),
    "auth-declined": Explanation(
        "The server refused the login (AUTHDeclinedError)", _500,
        (C("wrong-credentials", Kind.REPLY, Blame.CREDENTIALS),
         C("placeholder", Kind.PASSWORD_PLACEHOLDER),
         C("cram-md5-backend", Kind.CRAM_TRAP, at="auth", worked="LOGIN or PLAIN",
           verb="would work"))),
    "auth-temporary": Explanation(
        "Temporary authentication failure (4xx to AUTH)",
        "Synapse >= 1.92 hangs on this; older Synapse retried 5 times, then failed.",
        (C("auth-4xx", Kind.REPLY, Blame.SERVER, at="auth",
           reply="a 4xx reply"),)),
    "auth-mechanism": Explanation(
        "The chosen AUTH mechanism failed (AuthenticationError)", _500,
        (C("mechanism-refused", Kind.REPLY, Blame.MECHANISM),)),
    "tls-required": Explanation(
        "STARTTLS required but not offered (TLSRequiredError)", _500,
        (C("no-starttls", Kind.NO_STARTTLS, at="ehlo"),)),
    "starttls-refused": Explanation(
        "STARTTLS refused (SMTPTLSError)", _500,
        (C("starttls-5xx", Kind.REPLY, at="starttls",
           reply="a 5xx: its TLS is broken or disabled"),)),
    "ehlo-required": Explanation(
        "EHLO rejected (EHLORequiredError)", _500,
        (C("ehlo-rejected", Kind.REPLY, Blame.CLIENT_HOST, at="ehlo",
           reply="it rejected EHLO, which Twisted needs for AUTH and TLS"),)),
    "auth-needed-at-mail": Explanation(
        "The server wants a login or STARTTLS first (530 at MAIL)", _500,
        (C("needs-auth", Kind.LOGIN_REQUIRED),
         C("needs-starttls", Kind.REPLY, Blame.TLS, at="mail",
           reply="530 at MAIL FROM, with enable_tls off"))),
    "sender-rejected": Explanation(
        "The server refused the sender (at MAIL FROM, or at RCPT TO as Postfix does)", _500,
        (C("sender-not-allowed", Kind.REPLY, Blame.SENDER),)),
    "greylisted": Explanation(
        "The server greylisted the mail (450 at RCPT)",
        _500 + " Synapse does not retry; a later try would have passed.",
        (C("greylisted", Kind.REPLY, Blame.GREYLISTED, at="rcpt", reply="the 450"),)),
    "recipient-rejected": Explanation(
        "The server refused the recipient (RCPT TO)", _500,
        (C("recipient-refused", Kind.REPLY, Blame.RECIPIENT),)),
    "message-too-large": Explanation(
        "Message too large", _500,
        (C("size-limit", Kind.REPLY, Blame.CONTENT),)),
    "delivery-refused": Explanation(
        "The server refused the message (SMTPDeliveryError)", _500,
        (C("refused", Kind.REPLY, at="data", stage="MAIL, RCPT or DATA",
           reply="its reply, in the excerpt, says why"),)),
    "not-smtp": Explanation(
        "Not an SMTP server (SMTPProtocolError)", _500,
        (C("wrong-service", Kind.NOT_SMTP, at="connect"),)),
    "dns": Explanation(
        "The SMTP host name does not resolve (DNSLookupError)", _500,
        (C("bad-host", Kind.NXDOMAIN),)),
    "refused": Explanation(
        "Connection refused (ConnectionRefusedError)", _500,
        (C("nothing-listening", Kind.REFUSED, at="connect"),)),
    "tcp-timeout": Explanation(
        "TCP connect timed out (User timeout caused connection failure)",
        _500 + " Each attempt takes about 30 s per address (the TCP connect timeout).",
        (C("blocked", Kind.TIMEOUT, at="connect"),)),
    "connect-error": Explanation(
        "Connection failed", _500,
        (C("network", Kind.UNREACHABLE, at="connect"),)),
    "non-ascii-address": Explanation(
        "Non-ASCII address (UnicodeEncodeError)", _500,
        (C("smtputf8", Kind.NON_ASCII),)),
    "pass-without-user": Explanation(
        "The send never finished: Twisted crashed on smtp_pass without smtp_user "
        "(TypeError, 'Unhandled Error')", CRASH_HANG,
        (_HANG_CAUSES[7],), probe=False),
    "invalid-to": Explanation(
        "Invalid recipient address", _500,
        (C("bad-to", Kind.INVALID_RECIPIENT),)),
    "bad-format": Explanation(
        "A broken % placeholder in notif_from or a subject (ValueError)",
        "Every mail of that kind fails.",
        (C("stray-percent", Kind.BAD_PLACEHOLDER),), probe=False),
    "subject-placeholder": Explanation(
        "A notification subject uses a placeholder it does not have (KeyError)",
        "Notification mails fail (\"Exception processing notifs\"); users see nothing.",
        (C("subject-key", Kind.SUBJECT_PLACEHOLDER),),
        probe=False),
    "hang": Explanation("The send never finished (silent hang)", _HANG, _HANG_CAUSES),
    "legacy-retry": Explanation(
        "SMTP retries (Synapse before 1.92)",
        "Old Synapse reconnected 5 times at once and then failed with a 500.",
        (C("retry", Kind.LEGACY_RETRY),)),
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
        "email: is set but notif_from is missing", NO_START,
        (C("no-notif-from", Kind.NOTIF_FROM_MISSING),),
        probe=False),
    "config-notif-from-invalid": Explanation(
        "notif_from has no address (Invalid notif_from address)", NO_START,
        (C("bad-notif-from", Kind.NOTIF_FROM_INVALID),), probe=False),
    "config-tls-flags": Explanation(
        "force_tls / require_transport_security with enable_tls off", NO_START,
        (C("tls-flags", Kind.TLS_FLAGS),), probe=False),
    "config-require-3pid": Explanation(
        "registrations_require_3pid demands email, but email is not configured", NO_START,
        (C("no-email", Kind.REQUIRE_3PID),), probe=False),
    "config-numeric-secret": Explanation(
        "smtp_pass or smtp_user is a number ('int' object has no attribute 'encode')", NO_START,
        (C("numeric-secret", Kind.NUMERIC_SECRET),), probe=False),
    "config-bad-duration": Explanation(
        "A duration Synapse cannot parse (Bad duration suffix)", NO_START,
        (C("duration", Kind.BAD_DURATION),), probe=False),
    "config-email-other": Explanation(
        "Error in the email configuration", NO_START,
        (C("config", Kind.NO_START),), probe=False),
    "other": Explanation(
        "Sending failed with an unexpected exception", _500,
        (C("unknown", Kind.UNKNOWN),)),
}
