"""Provider throttling: replies that say "you send too fast", and the pace that answers them.

A provider that rate-limits an account answers every further mail the same way until the
account slows down; retrying each message on its own backoff keeps hammering it (and
providers lengthen the block when hammered). So a throttling reply slows the whole upstream:
one connection at a time, a growing pause between mails, and back to full speed step by step
after mails go through again (additive decrease of the pause, like TCP after a loss).

The replies, as the providers document them (only the code and enhanced status matter; the
text is matched only where the code alone would be ambiguous):

- ``421`` at any stage: "service not available, closing channel", what Postfix's
  ``smtpd_client_connection_rate_limit`` and most providers send when overloaded;
- ``450 4.7.x`` / ``451 4.7.x`` / ``454 4.7.0``: a policy deferral (Microsoft's
  ``451 4.7.500 Server busy``, ``454 4.7.0 Temporary authentication failure`` of Gmail when
  logins come too fast);
- Gmail's ``421 4.7.28`` and ``450 4.2.1 ... receiving mail at a rate that prevents
  additional messages``, ``4.7.0 ... Try again later, closing connection``;
- Microsoft's ``4.7.66`` (too many connections) and ``4.3.2 ... too many concurrent``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STATUS = re.compile(r"\b4\.(\d{1,3})\.(\d{1,3})\b")
_RATE_WORDS = re.compile(r"rate|too many|too fast|try again later|throttl|busy|concurren",
                         re.IGNORECASE)


def is_throttling(code: int | None, reply: str) -> bool:
    """True when ``code`` / ``reply`` (the server's words) say the account is sending too
    fast, or the server is too busy for it, rather than something about this one mail."""
    if code is None or not 400 <= code < 500:
        return False
    if code == 421:
        return True
    status = _STATUS.search(reply)
    if status is not None:
        subject, detail = int(status.group(1)), int(status.group(2))
        if subject == 7 and code in (450, 451, 454):
            return True
        if (subject, detail) in ((2, 1), (3, 2)) and _RATE_WORDS.search(reply):
            return True
    return bool(code in (450, 451) and _RATE_WORDS.search(reply) and "rate" in reply.lower())


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
