"""What a reply blames, decided by its words and enhanced code, not by its stage; and the
cause table, one test per row."""

from __future__ import annotations

import pytest

from maildoctor.causes import CAUSES, Cause, Kind, cause_for
from maildoctor.meaning import classify
from maildoctor.replies import Blame, EnhancedCode, Reply


@pytest.mark.parametrize(("code", "text", "stage", "blame", "temporary"), [
    # Postfix answers sender rules at RCPT: the words name the sender.
    (553, "5.7.1 <a@example.org>: Sender address rejected: not owned by user b@example.org",
     "rcpt", Blame.SENDER, False),
    (450, "4.1.8 <a@example.invalid>: Sender address rejected: Domain not found", "rcpt",
     Blame.SENDER, False),
    (450, "4.2.0 <alice@example.org>: Recipient address rejected: Greylisted", "rcpt",
     Blame.GREYLISTED, True),
    (550, "5.1.1 <bob@example.org>: Recipient address rejected: User unknown", "rcpt",
     Blame.RECIPIENT, False),
    (535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
     "the Tenant.", "auth", Blame.ACCOUNT, False),
    (535, "5.7.8 Error: authentication failed: authentication failure", "auth",
     Blame.CREDENTIALS, False),
    (504, "5.5.4 Unrecognized authentication type", "auth", Blame.MECHANISM, False),
    (454, "4.7.0 Temporary authentication failure", "auth", Blame.SERVER, True),
    (454, "Throttling failure: Maximum sending rate exceeded", "data", Blame.RATE_LIMIT, True),
    (552, "5.3.4 Message size exceeds fixed limit", "data", Blame.CONTENT, False),
    (530, "5.7.0 Must issue a STARTTLS command first", "mail", Blame.TLS, False),
    (550, "5.7.1 Client host rejected: cannot find your reverse hostname", "rcpt",
     Blame.CLIENT_HOST, False),
    (501, "5.5.2 Syntax: HELO hostname", "ehlo", Blame.CLIENT_HOST, False),
    # Only the enhanced code speaks: 5.1.8 is the sender's domain, at any stage.
    (553, "5.1.8 rejected", "rcpt", Blame.SENDER, False),
    # Nothing speaks: the stage decides, last.
    (550, "no", "mail", Blame.SENDER, False),
    (550, "no", "rcpt", Blame.RECIPIENT, False),
])
def test_classify(code: int, text: str, stage: str, blame: Blame, temporary: bool) -> None:
    meaning = classify(Reply(code, text), stage)
    assert (meaning.blame, meaning.temporary) == (blame, temporary), meaning


def test_generate_is_not_a_rate() -> None:
    """Words are matched as words: 'generate' does not say 'rate'."""
    assert classify(Reply(550, "could not generate the key"), "rcpt").blame is Blame.RECIPIENT


@pytest.mark.parametrize(("text", "found"), [
    ("5.7.139 Authentication unsuccessful", EnhancedCode(5, 7, 139)),
    ("4.2.0 Greylisted", EnhancedCode(4, 2, 0)),
    ("2.0.0 Ok: queued", EnhancedCode(2, 0, 0)),
    ("5.7.1.2 not a code", None),
    ("Authentication unsuccessful 5.7.3", None),
    ("", None),
])
def test_enhanced_code(text: str, found: EnhancedCode | None) -> None:
    assert EnhancedCode.find(text) == found


def _stage_for(row: Cause) -> str:
    return row.stage or "data"


@pytest.mark.parametrize("row", CAUSES, ids=lambda r: r.id)
def test_cause_row(row: Cause) -> None:
    """Each row is the one chosen for its own (stage, kind, blame), and renders fully."""
    assert cause_for(_stage_for(row), row.kind, row.blame) is row
    cause, consequence, fix = row.render({"where": "h:1", "reply": "550 no", "stage": "rcpt"})
    for text in (cause, consequence, fix):
        assert text and "{" not in text and "}" not in text
    assert row.key is None or row.key.startswith("email.")


def test_reply_rows_cover_every_blame() -> None:
    for blame in Blame:
        assert cause_for("rcpt", Kind.REPLY, blame).kind == Kind.REPLY


def test_blame_beats_stage() -> None:
    """A sender refused at RCPT gets the sender's row, not the recipient's."""
    assert cause_for("rcpt", Kind.REPLY, Blame.SENDER).id == "refused-sender"
    assert cause_for("rcpt", Kind.REPLY, Blame.SENDER).key == "email.notif_from"
