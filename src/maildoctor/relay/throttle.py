"""Provider throttling: replies that say "you send too fast", and the pace that answers them.

A provider that rate-limits an account answers every further mail the same way until the
account slows down; retrying each message on its own backoff keeps hammering it (and
providers lengthen the block when hammered). So a throttling reply slows the whole upstream:
one connection at a time, a growing pause between mails, and back to full speed step by step
after mails go through again (additive decrease of the pause, like TCP after a loss).

Which replies count (the server's words are read through the shared reply model,
``maildoctor.meaning``, whose catalogue lists the providers' own rate-limit replies in
``providers/data/replies/rate-limits.yaml``):

- ``421`` at any stage: "service not available, closing channel", what Postfix's anvil
  limits and most providers send when overloaded or limiting a client;
- any temporary reply whose meaning blames a rate limit: Gmail's ``421 4.7.28``,
  ``450 4.2.1 ... receiving mail at a rate``, ``454 4.7.0 Too many login attempts``,
  Microsoft's ``451 4.7.500 Server busy``, and the words "rate", "too many", "throttl"...;
- ``450``/``451``/``454`` with an enhanced status ``4.7.x`` (a policy deferral) that the reply
  itself does not pin on another input (a greylisting, the sender, the client's host...).
"""

from __future__ import annotations

from dataclasses import dataclass

from maildoctor import errors
from maildoctor.meaning import classify
from maildoctor.replies import Blame

_OTHER_CAUSE_STAGES = frozenset({"connect", "greeting", "ehlo", "starttls", "tls"})


def is_throttling(failure: errors.SMTPFailure) -> bool:
    """True when the server's reply in ``failure`` says the account (or this client) is
    sending too fast, or the server is too busy for it, rather than something about this
    one mail."""
    reply = failure.server_reply
    if reply is None or not reply.transient:
        return False
    if reply.code == 421:
        return True
    # No stage: only the reply's own evidence decides, never the place it arrived at.
    meaning = classify(reply)
    if meaning.blame is Blame.RATE_LIMIT:
        return True
    enhanced = reply.enhanced
    return (reply.code in (450, 451, 454) and enhanced is not None and enhanced.subject == 7
            and meaning.blame in (Blame.UNKNOWN, Blame.SERVER)
            and failure.stage not in _OTHER_CAUSE_STAGES)


@dataclass
class Pace:
    """How gently to use one upstream. ``level`` 0 is full speed."""

    base: float
    """Pause after the first throttling reply, in seconds (the relay's ``retry_base``)."""
    cap: float
    """Longest pause between two mails."""
    level: int = 0
    paused_until: float = 0.0
    last_start: float = 0.0
    successes: int = 0

    @property
    def slowed(self) -> bool:
        return self.level > 0

    @property
    def spacing(self) -> float:
        """Seconds between two mails while slowed."""
        return 0.0 if not self.level else min(self.cap, self.base * 2.0 ** (self.level - 1))

    def throttled(self, now: float) -> float:
        """The upstream said slow down: pause it; returns until when. Replies to mails that
        were already under way when the pause began do not slow it down further."""
        if now < self.paused_until:
            return self.paused_until
        self.level += 1
        self.successes = 0
        self.paused_until = max(self.paused_until, now + self.spacing)
        return self.paused_until

    def delivered(self) -> None:
        """A mail went through: after a few in a row, one step back towards full speed."""
        if not self.level:
            return
        self.successes += 1
        if self.successes >= 3:
            self.level -= 1
            self.successes = 0

    def ready_at(self) -> float:
        """Earliest time the next mail may start."""
        return max(self.paused_until, self.last_start + self.spacing if self.level else 0.0)
