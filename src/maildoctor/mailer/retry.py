"""When and how long to wait before trying a mail again.

Only failures the server calls temporary are retried: a 4xx reply (RFC 5321 4.2.1) and a
connection lost mid-dialogue. A 5xx is a decision, so retrying it only hammers the server
(Twisted's instant retries did exactly that: twisted#9946). Timeouts are not retried by
default, since a hung server costs a full timeout per attempt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from maildoctor import errors


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in total (1 = no retry); delay ``base * factor**n``, capped, with jitter."""

    attempts: int = 3
    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.2
    """Fraction of the delay added at random, so many senders do not retry in step."""
    retry_timeouts: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("RetryPolicy delays must be >= 0 and jitter within [0, 1]")

    def should_retry(self, failure: errors.SMTPFailure, attempt: int) -> bool:
        """True if ``failure`` on attempt number ``attempt`` (1-based) deserves another go."""
        if attempt >= self.attempts:
            return False
        return is_transient(failure, retry_timeouts=self.retry_timeouts)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); bounded."""
        raw = min(self.max_delay, self.base_delay * self.factor ** (attempt - 1))
        spread = (rng or random).random() * self.jitter * raw
        return min(self.max_delay, raw + spread)


def is_transient(failure: errors.SMTPFailure, *, retry_timeouts: bool = False) -> bool:
    """A 4xx reply or a lost connection: worth another attempt. Never a 5xx."""
    if failure.code is not None:
        return 400 <= failure.code < 500
    if isinstance(failure, errors.ConnectionLost):
        return True
    return retry_timeouts and isinstance(failure, errors.ServerHung)
