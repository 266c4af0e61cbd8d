"""What a reply means: which input it blames, and whether a retry can clear it.

:func:`classify` decides *which input a reply blames*: the sender, the recipient, the
credentials, the mechanism, TLS, the client's host or EHLO name, a rate limit, greylisting,
the message, or the provider account. It reads the catalogue of well-known replies
(:mod:`maildoctor.reply_catalogue`) first, then the words of the text and the RFC 3463
enhanced code, and only last the stage the reply arrived at: Postfix answers a sender rule
at RCPT (``smtpd_delay_reject``), so the stage alone names the wrong input.

The words matched here are the server's, which is the evidence; maildoctor's own
exception messages are never read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from maildoctor.replies import Blame, Reply
from maildoctor.reply_catalogue import Entry, lookup

__all__ = ["Meaning", "classify"]


@dataclass(frozen=True)
class Meaning:
    """What a reply means: the input it blames and whether a retry can clear it."""

    blame: Blame
    temporary: bool
    because: str  # what decided it: a catalogue entry, the enhanced code, the words
    entry: Entry | None = None  # the catalogue entry, when a well-known reply matched




# The words of a reply, checked in order; the first that matches decides. These read the
# server's text, which is the evidence; they never read maildoctor's own messages.
_WORDS: tuple[tuple[re.Pattern[str], Blame], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), blame) for pattern, blame in (
        (r"grey-?list|gray-?list", Blame.GREYLISTED),
        (r"sender address rejected|sender .*(not owned|not allowed|not verified|mismatch)"
         r"|not owned by|send ?as ?denied|from address|sender identity|identit(y|ies) "
         r"failed|domain of sender|sender domain", Blame.SENDER),
        (r"recipient address rejected|user unknown|no such user|mailbox unavailable"
         r"|relay access denied|relaying denied|not permitted to relay", Blame.RECIPIENT),
        (r"\brate\b|throttl|too many|quota exceeded|daily .*quota|limit exceeded"
         r"|sending limit", Blame.RATE_LIMIT),
        (r"must issue a starttls|starttls (first|required)|encryption required",
         Blame.TLS),
        (r"\bhelo\b|\behlo\b|client host rejected|reverse (dns|hostname)|blocked using"
         r"|blacklist|blocklist", Blame.CLIENT_HOST),
        (r"message (size|too big|content)|size limit|\bspam\b|virus", Blame.CONTENT),
        (r"mechanism", Blame.MECHANISM),
        (r"authentication (failed|unsuccessful|credentials)|invalid (login|credentials)"
         r"|username and password|incorrect authentication|bad username", Blame.CREDENTIALS),
    ))

# RFC 3463 subject.detail codes that name the input on their own.
_DETAILS: dict[tuple[int, int], Blame] = {
    (1, 0): Blame.UNKNOWN, (1, 1): Blame.RECIPIENT, (1, 2): Blame.RECIPIENT,
    (1, 3): Blame.RECIPIENT, (1, 6): Blame.RECIPIENT, (1, 7): Blame.SENDER,
    (1, 8): Blame.SENDER, (1, 10): Blame.RECIPIENT,
    (2, 1): Blame.RECIPIENT, (2, 2): Blame.RECIPIENT, (2, 3): Blame.CONTENT,
    (3, 4): Blame.CONTENT, (4, 5): Blame.RATE_LIMIT, (5, 3): Blame.RECIPIENT,
    (6, 0): Blame.CONTENT, (7, 0): Blame.UNKNOWN, (7, 8): Blame.CREDENTIALS,
    (7, 9): Blame.MECHANISM, (7, 11): Blame.TLS, (7, 12): Blame.CREDENTIALS,
    (7, 13): Blame.ACCOUNT, (7, 14): Blame.ACCOUNT, (7, 25): Blame.CLIENT_HOST,
    (7, 26): Blame.CONTENT, (7, 27): Blame.SENDER,
}

# When neither the catalogue, the words nor the enhanced code decide: the stage.
_BY_STAGE: dict[str, Blame] = {
    "greeting": Blame.CLIENT_HOST, "ehlo": Blame.CLIENT_HOST, "helo": Blame.CLIENT_HOST,
    "starttls": Blame.TLS, "auth": Blame.CREDENTIALS, "mail": Blame.SENDER,
    "rcpt": Blame.RECIPIENT, "data": Blame.CONTENT, "message": Blame.CONTENT,
}


def classify(reply: Reply, stage: str = "", *, provider: str | None = None) -> Meaning:
    """Which input ``reply`` (a refusal received at ``stage``) blames.

    ``provider`` (a provider name, e.g. ``microsoft-365``) lets provider-only catalogue
    entries apply. A 4xx is temporary, except where the catalogue says otherwise.
    """
    temporary = reply.transient
    entry = lookup(reply, provider=provider)
    if entry is not None:
        return Meaning(entry.blames, entry.temporary if entry.temporary is not None
                       else temporary, f"known reply: {entry.id}", entry)
    if stage == "auth" and reply.code == 504:
        return Meaning(Blame.MECHANISM, False, "504 to AUTH: the mechanism is refused")
    for pattern, blame in _WORDS:
        if pattern.search(reply.text):
            return Meaning(blame, temporary or blame is Blame.GREYLISTED,
                           f"the reply says {pattern.search(reply.text)[0]!r}")  # type: ignore[index]
    enhanced = reply.enhanced
    if enhanced is not None:
        by_code = _DETAILS.get((enhanced.subject, enhanced.detail))
        if by_code is not None and by_code is not Blame.UNKNOWN:
            return Meaning(by_code, temporary, f"enhanced status code {enhanced}")
    if stage == "auth" and temporary:
        return Meaning(Blame.SERVER, True, "a 4xx to AUTH: the server could not check now")
    blame = _BY_STAGE.get(stage, Blame.UNKNOWN)
    return Meaning(blame, temporary, f"refused at {stage}" if stage else "no clue in the reply")
