"""Header names and order, MIME tree, encodings and links of each kind of mail."""

from __future__ import annotations

import email
import re
import urllib.parse

import pytest

from maildoctor.synapse.mail.message import KINDS

from .conftest import Build

COMMON = ["Content-Type", "MIME-Version", "Subject", "From", "To", "Date", "Message-ID",
          "Auto-Submitted", "X-Auto-Response-Suppress"]


def parts(built):  # (content type, charset, transfer encoding, header names) per part
    return [(p.get_content_type(), p.get_param("charset"), p["Content-Transfer-Encoding"],
             list(p.keys())) for p in built.message.get_payload()]


@pytest.mark.parametrize("kind", KINDS)
def test_headers_in_synapse_order(build: Build, kind: str) -> None:
    built = build(kind)
    expected = COMMON + (["List-Unsubscribe-Post", "List-Unsubscribe"]
                         if kind == "notification" else [])
    assert list(built.message.keys()) == expected
    parsed = email.message_from_bytes(built.as_bytes())
    assert list(parsed.keys()) == expected
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} -0000", parsed["Date"])
    assert re.fullmatch(r"<\d+\.\d+\.\d+@maildoctor\.test>", parsed["Message-ID"])
    assert built.message_id == parsed["Message-ID"]


@pytest.mark.parametrize("kind", KINDS)
def test_mime_tree_and_encodings(build: Build, kind: str) -> None:
    built = build(kind)
    assert built.message.get_content_type() == "multipart/alternative"
    assert built.message.get_boundary()
    part_headers = ["Content-Type", "MIME-Version", "Content-Transfer-Encoding"]
    assert parts(built) == [("text/plain", "utf-8", "base64", part_headers),
                            ("text/html", "utf-8", "base64", part_headers)]
    data = built.as_bytes()
    assert data == built.message.as_string().encode("utf8")
    assert b"\r\n" not in data  # Twisted turns \n into CRLF, not Synapse
    assert b'Content-Type: text/plain; charset="utf-8"' in data


def test_envelope_is_the_address_parts(build: Build) -> None:
    built = build("registration", to="Alice <alice@example.org>")
    assert built.envelope_from == "noreply@example.org"
    assert built.envelope_to == "alice@example.org"
    assert built.message["To"] == "Alice <alice@example.org>"
    assert built.message["From"] == "Example Matrix <noreply@example.org>"


def _text(built) -> str:
    return built.message.get_payload()[0].get_payload(decode=True).decode()


def _html(built) -> str:
    return built.message.get_payload()[1].get_payload(decode=True).decode()


@pytest.mark.parametrize(("kind", "path"), [
    ("password-reset", "_synapse/client/password_reset/email/submit_token"),
    ("registration", "_matrix/client/unstable/registration/email/submit_token"),
    ("add-threepid", "_matrix/client/unstable/add_threepid/email/submit_token"),
])
def test_verification_links(build: Build, kind: str, path: str) -> None:
    built = build(kind, public_baseurl="http://127.0.0.1:8008",
                  variables={"token": "t0k", "client_secret": "c s/1", "sid": "S1"})
    link = f"http://127.0.0.1:8008/{path}?token=t0k&client_secret=c+s%2F1&sid=S1"
    assert link in _text(built)
    assert link.replace("&", "&amp;") in _html(built)  # autoescaped in the HTML part


def test_default_public_baseurl_and_sample_link(build: Build) -> None:
    text = _text(build("password-reset"))
    match = re.search(r"https://example\.org/_synapse/client/password_reset/email/"
                      r"submit_token\?(\S+)", text)
    assert match is not None
    assert [k for k, _ in urllib.parse.parse_qsl(match.group(1))] == [
        "token", "client_secret", "sid"]


def test_notification_unsubscribe_headers(build: Build) -> None:
    built = build("notification", to="carol@example.org", public_baseurl="https://hs.example/",
                  variables={"access_token": "mac/aroon"})
    value = "https://hs.example/_synapse/client/unsubscribe?access_token=mac%2Faroon" \
            "&app_id=m.email&pushkey=carol%40example.org"
    assert built.message["List-Unsubscribe"] == f"<{value}>"
    assert built.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert value in _text(built)


def test_notification_renders_rooms_and_messages(build: Build) -> None:
    rooms = [{"title": "Ops <team>", "hash": 1, "invite": False, "link": "https://l/room",
              "avatar_url": "mxc://hs.example/abc#frag",
              "notifs": [{"link": "https://l/ev", "ts": 0, "messages": [
                  {"sender_name": "Dana", "ts": 0, "msgtype": "m.text", "is_historical": False,
                   "body_text_html": "<b>bold</b>", "body_text_plain": "plain body",
                   "id": "$e", "event_type": "m.room.message", "sender_hash": 1,
                   "sender_avatar_url": None, "image_url": ""}]}]}]
    built = build("notification", public_baseurl="https://hs.example/",
                  variables={"rooms": rooms, "summary_text": "custom summary"})
    assert built.subject == "custom summary"
    assert "Dana: plain body" in _text(built)
    html = _html(built)
    assert "Ops &lt;team&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # a plain str is escaped; Synapse passes Markup
    assert ("https://hs.example/_matrix/media/v1/thumbnail/hs.example/abc?"
            "width=32&amp;height=32&amp;method=crop#frag") in html


def test_test_kind_says_it_is_from_maildoctor(build: Build) -> None:
    built = build("test")
    assert built.subject == "[example.org] maildoctor test"
    assert "maildoctor" in _text(built)
    assert "alice@example.org" in _text(built)
    assert "<html" in _html(built)
