"""What a delivery failure means: a reason label, plain words, a fix, and what to do with the
message (retry later or dead-letter).

The words are the exception's own message (the mailer's one error boundary already names the
cause: "the connection to mail.example.org:587 was refused: nothing listens on that port");
the fixes reuse the wording ``probe`` gives for the same cause (``diagnose.py``), so an admin
reads the same advice in ``relay status``, the relay's log and ``maildoctor probe``.

Only a refusal *of this message* is permanent: a 5xx to MAIL FROM, to every RCPT TO, or to the
data. A 5xx to the login or the greeting is the server refusing the relay, not the mail: the
message waits (until ``max_age``) while the admin fixes the config, and is not thrown away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from maildoctor import errors


@dataclass(frozen=True)
class Explanation:
    reason: str
    """A short stable label (metrics label, ``reason`` in JSON)."""
    words: str
    fix: str
    permanent: bool


_PERMANENT_KINDS = (errors.SenderRejected, errors.RecipientRejected, errors.DataRejected)

_FIX_CONNECT_REFUSED = ("check smtp_host and smtp_port against your provider (587 for STARTTLS, "
                        "465 with force_tls), and that the mail server is running")
_FIX_CONNECT_TIMEOUT = ("many hosting providers block outbound port 25 (and sometimes "
                        "465/587); use your provider's submission port, or ask them to open it")
_FIX_UNREACHABLE = "check this machine's network (IPv6 without a route?)"
_FIX_RESOLVE = ("correct smtp_host (check the spelling against your provider's docs), or check "
                "this machine's DNS resolver (/etc/resolv.conf)")
_FIX_NAME = "set tlsname to the name in the server's certificate"
_FIX_UNTRUSTED = ("give the server a certificate from a public CA, or make the relay trust the "
                  "CA (--ca-file /path/ca.pem)")
_FIX_TLS = "check the TLS mode (force_tls) against the port"
_FIX_AUTH = ("check smtp_user and smtp_pass; many providers need an app password when "
             "two-factor authentication is on")
_FIX_XOAUTH2 = ("check the XOAUTH2 token (--xoauth2-token-file / --xoauth2-token-command): it "
                "must be a current access token for smtp_user with the SMTP scope")
_FIX_AUTH_LATER = "retry later; check the server's authentication backend"
_FIX_GREETING = "check the server's logs and whether this IP is allowed to send"
_FIX_SENDER = ("set notif_from to an address this SMTP account may send from (often exactly "
               "smtp_user)")
_FIX_RECIPIENT = "check the recipient address; the server may not relay for it"
_FIX_DATA = "the server refused the message itself; its log says why (spam filter, size limit)"
_FIX_HUNG = "check the server (overloaded? a filter holding the connection?)"
_FIX_LOST = "check the server's logs for why it drops this client"


def _connect(failure: errors.SMTPFailure) -> str:
    text = failure.message
    if "refused" in text:
        return _FIX_CONNECT_REFUSED
    if "timed out" in text:
        return _FIX_CONNECT_TIMEOUT
    return _FIX_UNREACHABLE


def _tls(failure: errors.SMTPFailure) -> str:
    text = failure.message
    if "does not offer STARTTLS" in text:
        return ("use the provider's STARTTLS port (587), or port 465 with `force_tls: true`")
    if "for the name" in text and ("mismatch" in text or "match" in text):
        return _FIX_NAME
    if "verification" in text:
        return _FIX_UNTRUSTED
    return _FIX_TLS


def _auth(failure: errors.SMTPFailure) -> str:
    if failure.code is not None and 400 <= failure.code < 500:
        return _FIX_AUTH_LATER
    if "XOAUTH2" in failure.message or "token" in failure.message:
        return _FIX_XOAUTH2
    if "offers only" in failure.message:
        return ("use a mechanism both sides know: give the relay an XOAUTH2 token if the "
                "provider wants OAuth2")
    return _FIX_AUTH


_TABLE: tuple[tuple[type[errors.SMTPFailure], str, Callable[[errors.SMTPFailure], str]], ...] = (
    (errors.NotConfiguredError, "config", lambda f: "fix the email: block of the relay's config"),
    (errors.ResolveError, "resolve", lambda f: _FIX_RESOLVE),
    (errors.ConnectFailure, "connect", _connect),
    (errors.TLSFailure, "tls", _tls),
    (errors.GreetingRejected, "greeting", lambda f: _FIX_GREETING),
    (errors.AuthFailure, "auth", _auth),
    (errors.SenderRejected, "sender", lambda f: _FIX_SENDER),
    (errors.RecipientRejected, "recipient", lambda f: _FIX_RECIPIENT),
    (errors.DataRejected, "data", lambda f: _FIX_DATA),
    (errors.ServerHung, "timeout", lambda f: _FIX_HUNG),
    (errors.ConnectionLost, "connection_lost", lambda f: _FIX_LOST),
)


def explain(failure: errors.SMTPFailure) -> Explanation:
    """The explanation for ``failure``, a maildoctor error raised by the mailer."""
    permanent = isinstance(failure, _PERMANENT_KINDS) and failure.code is not None \
        and 500 <= failure.code < 600
    for kind, reason, fix in _TABLE:
        if isinstance(failure, kind):
            return Explanation(reason, failure.message, fix(failure), permanent)
    return Explanation("other", failure.message or type(failure).__name__,
                       "see the relay's log", permanent)


def explain_unexpected(exc: BaseException) -> Explanation:
    """A failure that is not an SMTP one (a bug, a full disk): retried, and reported."""
    return Explanation("internal", f"internal error: {type(exc).__name__}: {exc}",
                       "report this as a maildoctor bug (the relay's log has the traceback)",
                       False)
