"""Every catalogue entry, with its real reply text, through a real aiosmtpd server.

The Mailer sends through a test server that answers the entry's stage with the entry's
example text; the error it raises carries the reply, and the reply's meaning names the
entry. The same text fed to the probe's classifier names it too (one parser, one tree).
"""

from __future__ import annotations

from typing import Any

import pytest

from maildoctor import errors
from maildoctor.config.settings import settings_from_config
from maildoctor.mailer.sync import SyncMailer
from maildoctor.replies import Reply, parse_reply_line
from maildoctor.reply_catalogue import CatalogueError, Entry, _entry, entries
from maildoctor.testing.server import ServerOptions

# Where the Mailer meets each stage's reply on the test server.
OVERRIDE = {"auth": "auth_failed", "mail": "mail", "rcpt": "rcpt", "data": "dot"}
ERROR = {"auth": errors.AuthFailure, "mail": errors.SenderRejected,
         "rcpt": errors.RecipientRejected, "data": errors.DataRejected}


def wire_reply(example: str) -> Reply:
    """The example as the wire reader turns it into a Reply (code, joined texts)."""
    lines = [parse_reply_line(line) for line in example.split("\n")]
    return Reply(lines[0].code, "\n".join(line.text for line in lines))


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.id)
def test_entry_through_a_real_server(entry: Entry, smtp_server: Any) -> None:
    assert entry.cite.startswith("https://") and entry.cause and entry.fix
    stage = entry.stage or "rcpt"
    server = smtp_server(ServerOptions(replies={OVERRIDE[stage]: entry.example},
                                       mechanisms=("LOGIN",)))
    config = server.synapse_email_config()
    if stage == "auth":
        config["smtp_pass"] = "not-the-password"
    settings = settings_from_config({"email": config})
    provider = entry.providers[0] if entry.providers else None
    with pytest.raises(errors.SMTPFailure) as caught, \
            SyncMailer.from_settings(settings, ca_file=server.ca_file) as mailer:
        mailer.send("noreply@example.org", ["alice@example.org"], b"Subject: t\n\nhi\n")
    failure = caught.value
    assert isinstance(failure, ERROR[stage]), failure
    assert failure.server_reply == wire_reply(entry.example)
    meaning = failure.meaning(provider)
    assert meaning is not None and meaning.entry is not None and meaning.entry.id == entry.id
    assert meaning.blame is entry.blames


def test_provider_entries_need_their_provider() -> None:
    only = [e for e in entries() if e.providers and e.match is None]
    assert only, "the catalogue has provider-wide entries"
    for entry in only:
        reply = wire_reply(entry.example)
        found = [e.id for e in entries() if e.applies(reply, None)]
        assert entry.id not in found


@pytest.mark.parametrize(("raw", "problem"), [
    ({"id": "x"}, "missing code"),
    ({"id": "x", "code": 250, "example": "", "blames": "sender", "cause": "c", "fix": "f",
      "cite": "https://e"}, "4xx/5xx"),
    ({"id": "x", "code": 550, "example": "", "blames": "nobody", "cause": "c", "fix": "f",
      "cite": "https://e"}, "is not one of"),
    ({"id": "x", "code": 550, "example": "", "blames": "sender", "cause": "c", "fix": "f",
      "cite": "somewhere"}, "https://"),
    ({"id": "x", "code": 550, "typo": 1}, "unknown fields"),
])
def test_malformed_entries_are_refused(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(CatalogueError, match=problem):
        _entry("test", raw, "test.yaml entry 1")
