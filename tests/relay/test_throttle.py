"""Which replies are throttling, row by row, and how the pace answers them."""

from __future__ import annotations

import pytest

from maildoctor.relay.throttle import Pace, is_throttling

THROTTLING = [
    (421, "421 4.7.0 Try again later, closing connection. (Gmail)"),
    (421, "421 4.7.28 Gmail has detected an unusual rate of unsolicited mail"),
    (421, "421 4.3.2 Service not available"),
    (450, "450 4.7.1 Client host rejected: rate limit exceeded"),
    (451, "451 4.7.500 Server busy. Please try again later."),
    (454, "454 4.7.0 Too many login attempts, please try again later."),
    (450, "450 4.2.1 The user you are trying to contact is receiving mail at a rate that "
          "prevents additional messages from being delivered."),
    (452, "452 4.3.2 Too many concurrent SMTP connections from this IP"),
]

NOT_THROTTLING = [
    (450, "450 4.2.0 Mailbox busy"),
    (451, "451 4.3.0 Local error in processing"),
    (452, "452 4.2.2 Mailbox full"),
    (550, "550 5.7.1 Rate limit exceeded"),  # permanent: not a slow-down
    (535, "535 5.7.8 Authentication credentials invalid"),
    (None, "connection refused"),
    (454, "454 4.3.0 TLS not available due to local problem"),
]


@pytest.mark.parametrize(("code", "reply"), THROTTLING)
def test_throttling_replies(code: int, reply: str) -> None:
    assert is_throttling(code, reply)


@pytest.mark.parametrize(("code", "reply"), NOT_THROTTLING)
def test_other_replies(code: int | None, reply: str) -> None:
    assert not is_throttling(code, reply)


def test_pace_slows_down_and_recovers_step_by_step() -> None:
    pace = Pace(base=1.0, cap=8.0)
    assert not pace.slowed and pace.ready_at() == 0.0
    assert pace.throttled(100.0) == 101.0
    assert pace.throttled(100.5) == 101.0  # a reply to a mail sent before the pause
    assert pace.throttled(101.0) == 103.0 and pace.level == 2
    for now in (104.0, 110.0, 130.0):
        pace.throttled(now)
    assert pace.spacing == 8.0  # capped
    pace.last_start = 200.0
    assert pace.ready_at() == 208.0
    for _ in range(3 * pace.level):
        pace.delivered()
    assert not pace.slowed and pace.spacing == 0.0
