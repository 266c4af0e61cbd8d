"""From formatting with Synapse's fallbacks, non-ASCII cases and subject placeholders."""

from __future__ import annotations

import email
import email.header

import pytest

from maildoctor.synapse.mail.message import MessageBuildError, format_from, subject_problems

from .conftest import Build


@pytest.mark.parametrize(("notif_from", "app", "expected"), [
    ("Example %(app)s <noreply@example.org>", "Matrix", "Example Matrix <noreply@example.org>"),
    ("%(brand)s <noreply@example.org>", "Matrix", "%(brand)s <noreply@example.org>"),  # KeyError
    ("%d <noreply@example.org>", "Matrix", "%d <noreply@example.org>"),  # TypeError
    ("noreply@example.org", "Matrix", "noreply@example.org"),
    ("100%% <noreply@example.org>", "Matrix", "100% <noreply@example.org>"),
])
def test_from_fallbacks(notif_from: str, app: str, expected: str) -> None:
    assert format_from(notif_from, app) == expected


def test_from_keyerror_reaches_the_header(build: Build) -> None:
    built = build("registration", email={"notif_from": "%(brand)s <noreply@example.org>"})
    assert built.message["From"] == "%(brand)s <noreply@example.org>"
    assert built.envelope_from == "noreply@example.org"


@pytest.mark.parametrize("notif_from", ["%(app) <noreply@example.org>", "50% <n@example.org>"])
def test_from_value_error_names_notif_from(build: Build, notif_from: str) -> None:
    with pytest.raises(MessageBuildError) as info:
        build("registration", email={"notif_from": notif_from})
    assert info.value.key == "email.notif_from"
    assert "email.notif_from" in str(info.value)


def test_missing_notif_from(build: Build) -> None:
    with pytest.raises(MessageBuildError, match="notif_from is not set"):
        build("registration", email={"notif_from": None})


def test_non_ascii_display_name_reproduces_synapse(build: Build) -> None:
    built = build("password-reset", email={"notif_from": "Jérôme <noreply@example.org>"})
    raw = built.as_bytes().decode()
    header = next(line for line in raw.splitlines() if line.startswith("From: "))
    assert header.startswith("From: =?utf-8?b?")
    # The whole value, address included, is inside the one encoded word: malformed.
    decoded = email.header.decode_header(header[len("From: "):])
    assert decoded == [("Jérôme <noreply@example.org>".encode(), "utf-8")]
    assert any("RFC 2047" in w for w in built.warnings)


def test_non_ascii_app_name_goes_through_app(build: Build) -> None:
    built = build("password-reset", email={"app_name": "Mätrix"})
    raw = built.as_bytes().decode()
    header = next(line for line in raw.splitlines() if line.startswith("From: "))
    assert email.header.decode_header(header[len("From: "):]) == [
        ("Example Mätrix <noreply@example.org>".encode(), "utf-8")]
    assert built.warnings


def test_non_ascii_display_name_correct_headers(build: Build) -> None:
    built = build("password-reset", email={"notif_from": "Jérôme <noreply@example.org>"},
                  correct_headers=True)
    parsed = email.message_from_bytes(built.as_bytes())
    assert parsed["From"].endswith(" <noreply@example.org>")
    assert parsed["From"].startswith("=?utf-8?")
    assert email.utils.parseaddr(parsed["From"])[1] == "noreply@example.org"
    assert not built.warnings


@pytest.mark.parametrize(("field", "value"), [
    ("to", "jérôme@example.org"), ("notif_from", "Example <nöreply@example.org>")])
def test_non_ascii_address_is_refused(build: Build, field: str, value: str) -> None:
    kwargs = {"to": value} if field == "to" else {"email": {"notif_from": value}}
    with pytest.raises(MessageBuildError, match="SMTPUTF8"):
        build("registration", **kwargs)


def test_invalid_to(build: Build) -> None:
    with pytest.raises(MessageBuildError, match="Invalid 'to' address"):
        build("registration", to="")


def test_from_without_domain_warns(build: Build) -> None:
    built = build("registration", email={"notif_from": "Matrix <noreply>"})
    assert built.envelope_from == "noreply"
    assert any("FQDN" in w for w in built.warnings)


def test_subjects_merge_over_defaults(build: Build) -> None:
    built = build("password-reset",
                  email={"app_name": "Chat", "subjects": {"password_reset": "%(app)s reset"}})
    assert built.subject == "Chat reset"
    assert build("registration").subject == "[example.org] Validate your email"
    assert build("already-in-use").subject == "[example.org] Email already in use"


def test_unknown_subject_key_warns(build: Build) -> None:
    built = build("registration", email={"subjects": {"pasword_reset": "x"}})
    assert any("subjects.pasword_reset" in w for w in built.warnings)


@pytest.mark.parametrize(("subject", "match"), [
    ("%(person)s reset", "placeholder %\\(person\\)s"),
    ("reset 100%", "not a valid %-format"),  # ValueError: incomplete format
    ("%d reset", "not a valid %-format"),
])
def test_wrong_subject_placeholders(build: Build, subject: str, match: str) -> None:
    with pytest.raises(MessageBuildError, match=match) as info:
        build("password-reset", email={"subjects": {"password_reset": subject}})
    assert info.value.key == "email.subjects.password_reset"


def test_notification_subject_with_server_name_fails() -> None:
    problems = subject_problems({"messages_in_room": "[%(server_name)s] %(room)s"})
    assert [p.key for p in problems] == ["email.subjects.messages_in_room"]
    assert subject_problems({"messages_in_room": "%(room)s on %(app)s"}) == []
