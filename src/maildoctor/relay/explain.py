"""What a delivery failure means: a reason label, plain words, a fix, and what to do with the
message (retry later or dead-letter).

The words are the exception's own message (the mailer's one error boundary already names the
cause: "the connection to mail.example.org:587 was refused: nothing listens on that port");
the fix comes from the cause table (``maildoctor.causes``) that ``probe`` reads too, chosen
from the error's type and fields (its outcome, errno, verify code, and what its reply
blames), never from its message, so an admin reads the same advice in ``relay status``,
the relay's log and ``maildoctor probe``.

Only a refusal *of this message* is permanent: a 5xx to MAIL FROM, to every RCPT TO, or to the
data. A 5xx to the login or the greeting is the server refusing the relay, not the mail: the
message waits (until ``max_age``) while the admin fixes the config, and is not thrown away.
"""

from __future__ import annotations

from dataclasses import dataclass

from maildoctor import errors
from maildoctor.causes import cause_of_failure


@dataclass(frozen=True)
class Explanation:
    reason: str
    """A short stable label (metrics label, ``reason`` in JSON)."""
    words: str
    fix: str
    permanent: bool
    cause: str = ""
    """The cause table row (``maildoctor.causes``) behind the fix."""


_PERMANENT_KINDS = (errors.SenderRejected, errors.RecipientRejected, errors.DataRejected)

# The reason label (metrics, JSON) by error type: stable, whatever the cause table says.
_REASONS: tuple[tuple[type[errors.SMTPFailure], str], ...] = (
    (errors.NotConfiguredError, "config"), (errors.ResolveError, "resolve"),
    (errors.ConnectFailure, "connect"), (errors.TLSFailure, "tls"),
    (errors.GreetingRejected, "greeting"), (errors.AuthFailure, "auth"),
    (errors.SenderRejected, "sender"), (errors.RecipientRejected, "recipient"),
    (errors.DataRejected, "data"), (errors.ServerHung, "timeout"),
    (errors.ConnectionLost, "connection_lost"), (errors.MalformedReply, "connection_lost"),
    (errors.ReplyLimitExceeded, "connection_lost"),
)
def explain(failure: errors.SMTPFailure, provider: str | None = None) -> Explanation:
    """The explanation for ``failure``, a maildoctor error raised by the mailer: the words
    are its own message; the fix is the cause table's (or the catalogue's, for a
    well-known reply)."""
    permanent = isinstance(failure, _PERMANENT_KINDS) and failure.code is not None \
        and 500 <= failure.code < 600
    reason = next((label for kind, label in _REASONS if isinstance(failure, kind)), "other")
    row, fix = cause_of_failure(failure, provider, relay=True)
    return Explanation(reason, failure.message or type(failure).__name__, fix, permanent,
                       row.id)


def explain_unexpected(exc: BaseException) -> Explanation:
    """A failure that is not an SMTP one (a bug, a full disk): retried, and reported."""
    return Explanation("internal", f"internal error: {type(exc).__name__}: {exc}",
                       "report this as a maildoctor bug (the relay's log has the traceback)",
                       False)
