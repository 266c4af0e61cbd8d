"""Which replies are throttling, row by row, and how the pace answers them."""

from __future__ import annotations

import pytest

from maildoctor import errors
from maildoctor.relay.throttle import Pace, is_throttling

# (the failure's kind, the stage, the reply as the server sent it)
THROTTLING = [
    (errors.SenderRejected, "mail", "421 4.7.0 Try again later, closing connection."),
    (errors.SenderRejected, "mail", "421 4.7.28 Gmail has detected an unusual rate of "
     "unsolicited mail originating from your IP address."),
    (errors.GreetingRejected, "greeting", "421 4.3.2 Service not available"),
    (errors.RecipientRejected, "rcpt", "450 4.7.1 Client host rejected: rate limit exceeded"),
    (errors.SenderRejected, "mail", "451 4.7.500 Server busy. Please try again later from "
     "[192.0.2.10]. (S77719)"),
    (errors.AuthFailure, "auth", "454 4.7.0 Too many login attempts, please try again later."),
    (errors.RecipientRejected, "rcpt", "450 4.2.1 The user you are trying to contact is "
     "receiving mail at a rate that prevents additional messages from being delivered."),
    (errors.SenderRejected, "mail", "452 4.3.2 Too many concurrent SMTP connections"),
    (errors.SenderRejected, "mail", "450 4.7.1 Service temporarily unavailable"),
    (errors.DataRejected, "data", "451 4.7.0 Temporary policy deferral, slow down"),
]

NOT_THROTTLING = [
    (errors.RecipientRejected, "rcpt", "450 4.2.0 Mailbox busy"),
    (errors.DataRejected, "data", "451 4.3.0 Local error in processing"),
    (errors.RecipientRejected, "rcpt", "452 4.2.2 Mailbox full"),
    (errors.SenderRejected, "mail", "550 5.7.1 Rate limit exceeded"),  # permanent
    (errors.AuthFailure, "auth", "535 5.7.8 Authentication credentials invalid"),
    (errors.TLSFailure, "starttls", "454 4.7.0 TLS not available due to local problem"),
    (errors.RecipientRejected, "rcpt", "450 4.7.1 <a@example.org>: Recipient address "
     "rejected: Greylisted, see http://postgrey.schweikert.ch/"),
    (errors.RecipientRejected, "rcpt", "450 4.7.1 Client host rejected: cannot find your "
     "reverse hostname, [192.0.2.10]"),
]


def failure(kind: type[errors.SMTPFailure], stage: str, wire: str) -> errors.SMTPFailure:
    code, _, text = wire.partition(" ")
    return kind("refused", stage=stage, code=int(code), reply=text)


@pytest.mark.parametrize(("kind", "stage", "wire"), THROTTLING)
def test_throttling_replies(kind: type[errors.SMTPFailure], stage: str, wire: str) -> None:
    assert is_throttling(failure(kind, stage, wire))


@pytest.mark.parametrize(("kind", "stage", "wire"), NOT_THROTTLING)
def test_other_replies(kind: type[errors.SMTPFailure], stage: str, wire: str) -> None:
    assert not is_throttling(failure(kind, stage, wire))


def test_no_reply_is_not_throttling() -> None:
    assert not is_throttling(errors.ConnectFailure("refused", outcome="refused"))


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
