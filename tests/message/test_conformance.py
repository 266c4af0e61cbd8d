"""Our mails against mails captured from a real Synapse 1.163.2 (tests/conformance/captured).

Given the same config, recipient, tokens and unsubscribe macaroon, our mail must have the same
skeleton as Synapse's: the same header lines in the same order with the same values (Date,
Message-ID and the boundary masked), the same MIME tree and part headers, base64 bodies, and
the same links. Only the body text differs (our templates are our own).
"""

from __future__ import annotations

import email
import re
import urllib.parse
from email.message import Message
from pathlib import Path

import pytest

from maildoctor.config.settings import settings_from_config
from maildoctor.config.templates import TemplateSet
from maildoctor.synapse.mail.message import DEFAULT_SUBJECTS, build_message

CAPTURED = Path(__file__).parents[1] / "conformance" / "captured"
NOTIF_FROM = "Example %(app)s <noreply@example.org>"  # as in captured/README.md
KINDS = {"registration": "registration", "password_reset": "password-reset",
         "add_threepid": "add-threepid", "already_in_use": "already-in-use",
         "notification": "notification"}
BASE64_LINE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def skeleton(raw: bytes) -> list[str]:
    """The mail's lines with Date, Message-ID and boundary masked and base64 runs collapsed."""
    message = email.message_from_bytes(raw)
    boundary = message.get_boundary()
    assert boundary
    lines: list[str] = []
    for line in raw.decode("ascii").replace("\r\n", "\n").split("\n"):
        line = line.replace(boundary, "<boundary>")
        if line.startswith("Date: "):
            line = "Date: <date>"
        elif line.startswith("Message-ID: "):
            line = "Message-ID: <id>"
        elif BASE64_LINE.match(line) and len(line) <= 76:
            if lines and lines[-1] == "<base64>":
                continue
            line = "<base64>"
        lines.append(line)
    return lines


def _text(message: Message) -> str:
    part = message.get_payload()[0]
    assert isinstance(part, Message)
    return part.get_payload(decode=True).decode()


def _captured(name: str) -> tuple[bytes, Message]:
    path = CAPTURED / f"{name}.eml"
    assert path.is_file(), f"{path} is missing: regenerate it (see captured/README.md)"
    raw = path.read_bytes()
    return raw, email.message_from_bytes(raw)


def _ours(kind: str, captured: Message) -> bytes:
    """Build our mail with what the captured one reveals: recipient, base URL, tokens."""
    variables: dict[str, str] = {}
    urls = re.findall(r"http://127\.0\.0\.1:\d+/\S+", _text(captured))
    base = None
    if urls:
        base = re.match(r"http://127\.0\.0\.1:\d+/", urls[-1]).group(0)  # type: ignore[union-attr]
        variables.update(urllib.parse.parse_qsl(urllib.parse.urlsplit(urls[-1]).query))
    if kind == "notification":
        variables["summary_text"] = DEFAULT_SUBJECTS["invite_from_person"] % {
            "person": "admin", "app": "Matrix"}
    config = {"server_name": "example.org", "public_baseurl": base,
              "email": {"smtp_host": "127.0.0.1", "notif_from": NOTIF_FROM}}
    built = build_message(
        kind, settings_from_config(config), to=str(captured["To"]), server_name="example.org",
        public_baseurl=base, subjects=None, templates=TemplateSet.from_config(config),
        variables=variables)
    return built.as_bytes()


@pytest.mark.parametrize("name", sorted(KINDS))
def test_same_skeleton_as_synapse(name: str) -> None:
    raw, captured = _captured(name)
    ours = _ours(KINDS[name], captured)
    assert skeleton(ours) == skeleton(raw)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_same_date_and_message_id_formats(name: str) -> None:
    _, captured = _captured(name)
    ours = email.message_from_bytes(_ours(KINDS[name], captured))
    for message in (captured, ours):
        assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} -0000",
                            str(message["Date"]))
        assert re.fullmatch(r"<\d+\.\d+\.\d+@[^>]+>", str(message["Message-ID"]))
        assert re.fullmatch(r"===============\d+==", str(message.get_boundary()))


@pytest.mark.parametrize("name", ["registration", "password_reset", "add_threepid"])
def test_same_link(name: str) -> None:
    _, captured = _captured(name)
    ours = email.message_from_bytes(_ours(KINDS[name], captured))
    theirs_links = re.findall(r"http://127\.0\.0\.1:\d+/\S+", _text(captured))
    assert theirs_links
    assert theirs_links[-1] in _text(ours)
