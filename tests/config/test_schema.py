"""The versioned schema against the facts of spec/synapse-email.md (sections 1.2-1.4, 3, 6).

The expected tables below are typed in from the spec, not derived from the module, so a
wrong default or version in the data fails here.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maildoctor.config.schema import (
    EMAIL_KEYS,
    KNOWN_VERSIONS,
    MISPLACED,
    NEWEST,
    NONEXISTENT,
    RELATED_TOP_LEVEL_KEYS,
    SUBJECT_KEYS,
    SYNONYMS,
    KeySpec,
    Version,
    damerau_levenshtein,
    email_keys_for,
    find_key,
    key_status,
    normalise_key,
    parse_version,
    related_keys_for,
    subject_keys_for,
    suggest,
    suggest_subject,
)

V = Version

# name: (default, added, deprecated) -- spec 1.2
CORE_KEYS: dict[str, tuple[object, Version | None, Version | None]] = {
    "smtp_host": ("localhost", V(0, 16, 0), None),
    "smtp_port": (25, V(0, 16, 0), None),
    "smtp_user": (None, V(0, 21, 0), None),
    "smtp_pass": (None, V(0, 21, 0), None),
    "force_tls": (False, V(1, 64, 0), None),
    "require_transport_security": (False, V(0, 21, 0), None),
    "enable_tls": (True, V(1, 41, 0), None),
    "tlsname": (None, V(1, 122, 0), None),
    "notif_from": (None, V(0, 16, 0), None),
    "app_name": ("Matrix", V(0, 16, 0), None),
    "enable_notifs": (False, V(0, 16, 0), None),
    "notif_for_new_users": (True, V(0, 16, 0), None),
    "notif_delay_before_mail": ("10m", V(1, 99, 0), None),
    "client_base_url": (None, V(1, 9, 0), None),
    "riot_base_url": (None, V(0, 19, 0), V(1, 9, 0)),
    "validation_token_lifetime": ("1h", V(1, 0, 0), None),
    "invite_client_location": (None, V(1, 25, 0), None),
    "template_dir": (None, None, V(1, 41, 0)),
}

# legacy filename keys and their default files -- spec 1.2 (17 of them, peers.md section 2)
LEGACY_TEMPLATES = {
    "password_reset_template_html": "password_reset.html",
    "password_reset_template_text": "password_reset.txt",
    "registration_template_html": "registration.html",
    "registration_template_text": "registration.txt",
    "add_threepid_template_html": "add_threepid.html",
    "add_threepid_template_text": "add_threepid.txt",
    "already_in_use_template_html": "already_in_use.html",
    "password_reset_template_failure_html": "password_reset_failure.html",
    "registration_template_failure_html": "registration_failure.html",
    "add_threepid_template_failure_html": "add_threepid_failure.html",
    "password_reset_template_success_html": "password_reset_success.html",
    "registration_template_success_html": "registration_success.html",
    "add_threepid_template_success_html": "add_threepid_success.html",
    "notif_template_html": "notif_mail.html",
    "notif_template_text": "notif_mail.txt",
    "expiry_template_html": "notice_expiry.html",
    "expiry_template_text": "notice_expiry.txt",
}

# spec 1.3: name -> (default, placeholders, documented)
SUBJECTS = {
    "password_reset": ("[%(server_name)s] Password reset", {"server_name", "app"}, True),
    "email_validation": ("[%(server_name)s] Validate your email", {"server_name", "app"}, True),
    "email_already_in_use": (
        "[%(server_name)s] Email already in use", {"server_name", "app"}, False,
    ),
    "message_from_person_in_room": (
        "[%(app)s] You have a message on %(app)s from %(person)s in the %(room)s room...",
        {"person", "room", "app"}, True,
    ),
    "message_from_person": (
        "[%(app)s] You have a message on %(app)s from %(person)s...", {"person", "app"}, True,
    ),
    "messages_from_person": (
        "[%(app)s] You have messages on %(app)s from %(person)s...", {"person", "app"}, True,
    ),
    "messages_in_room": (
        "[%(app)s] You have messages on %(app)s in the %(room)s room...", {"room", "app"}, True,
    ),
    "messages_in_room_and_others": (
        "[%(app)s] You have messages on %(app)s in the %(room)s room and others...",
        {"room", "app"}, True,
    ),
    "messages_from_person_and_others": (
        "[%(app)s] You have messages on %(app)s from %(person)s and others...",
        {"person", "app"}, True,
    ),
    "invite_from_person": (
        "[%(app)s] %(person)s has invited you to chat on %(app)s...", {"person", "app"}, True,
    ),
    "invite_from_person_to_room": (
        "[%(app)s] %(person)s has invited you to join the %(room)s room on %(app)s...",
        {"person", "room", "app"}, True,
    ),
    "invite_from_person_to_space": (
        "[%(app)s] %(person)s has invited you to join the %(space)s space on %(app)s...",
        {"person", "space", "app"}, False,
    ),
}

RELATED = [
    "server_name", "public_baseurl", "enable_registration",
    "enable_registration_without_verification", "registrations_require_3pid",
    "allowed_local_3pids", "enable_3pid_changes", "account_threepid_delegates",
    "account_threepid_delegates.email", "request_token_inhibit_3pid_errors",
    "next_link_domain_whitelist", "templates.custom_template_directory", "rc_3pid_validation",
    "password_config", "matrix_authentication_service", "experimental_features.msc3861",
    "account_validity.renew_at", "trust_identity_server_for_password_resets",
]

# --- keys, defaults, versions ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "facts"), sorted(CORE_KEYS.items()))
def test_core_key_default_and_versions(
    name: str, facts: tuple[object, Version | None, Version | None]
) -> None:
    default, added, deprecated = facts
    spec = EMAIL_KEYS[name]
    assert (spec.name, spec.default, spec.added, spec.deprecated) == (
        name, default, added, deprecated,
    )
    assert spec.removed is None
    assert spec.summary and len(spec.summary.splitlines()) == 1


@pytest.mark.parametrize(("name", "filename"), sorted(LEGACY_TEMPLATES.items()))
def test_legacy_template_keys(name: str, filename: str) -> None:
    spec = EMAIL_KEYS[name]
    assert spec.default == filename
    assert spec.legacy and not spec.documented
    assert spec.replacement == "templates.custom_template_directory"
    assert spec.types == ("str",)


def test_email_keys_are_exactly_the_spec_list() -> None:
    # 36 keys read by the code (peers.md 2) plus the nested, ignored trust_* key.
    expected = set(CORE_KEYS) | set(LEGACY_TEMPLATES) | {
        "subjects", "trust_identity_server_for_password_resets",
    }
    assert set(EMAIL_KEYS) == expected
    assert len(email_keys_for(NEWEST)) == 36
    assert sum(spec.legacy for spec in EMAIL_KEYS.values()) == 17


def test_specific_facts() -> None:
    assert EMAIL_KEYS["smtp_pass"].secret
    assert [k for k, s in EMAIL_KEYS.items() if s.secret] == ["smtp_pass"]
    assert EMAIL_KEYS["client_base_url"].docs_default == '"https://matrix.to"'
    assert EMAIL_KEYS["riot_base_url"].replacement == "client_base_url"
    assert EMAIL_KEYS["template_dir"].replacement == "templates.custom_template_directory"
    assert EMAIL_KEYS["subjects"].added == V(1, 18, 0)
    assert EMAIL_KEYS["smtp_port"].history[0].version == V(1, 64, 0)
    assert EMAIL_KEYS["smtp_host"].history[0].version == V(1, 92, 0)
    assert "465" in (EMAIL_KEYS["smtp_port"].default_note or "")
    assert EMAIL_KEYS["smtp_host"].synapse_attr == "email_smtp_host"
    assert EMAIL_KEYS["smtp_port"].read_path == "email.email_smtp_port"
    assert EMAIL_KEYS["enable_tls"].synapse_attr == "enable_smtp_tls"
    assert EMAIL_KEYS["tlsname"].synapse_attr == "email_tlsname"
    assert any("already_in_use.txt" in n for n in EMAIL_KEYS["already_in_use_template_html"].notes)
    assert "email.force_tls requires email.enable_tls to be true" in (
        EMAIL_KEYS["force_tls"].load_errors
    )
    for name in ("notif_for_new_users", "notif_delay_before_mail", "client_base_url"):
        assert "enable_notifs" in (EMAIL_KEYS[name].read_when or "")
    assert EMAIL_KEYS["smtp_host"].read_when is None


@pytest.mark.parametrize("name", RELATED)
def test_related_top_level_keys_present(name: str) -> None:
    assert RELATED_TOP_LEVEL_KEYS[name].name == name


def test_related_version_facts() -> None:
    assert RELATED_TOP_LEVEL_KEYS["account_threepid_delegates.email"].removed == V(1, 66, 0)
    assert RELATED_TOP_LEVEL_KEYS["public_baseurl"].history[0].version == V(1, 47, 0)
    delegates = "account_threepid_delegates.email"
    assert key_status(delegates, "1.65.9", scope="top") == "known"
    assert key_status(delegates, "1.66", scope="top") == "removed"
    assert key_status(delegates, "1.65.9") == "unknown"  # not an email: key
    assert "account_threepid_delegates.email" not in related_keys_for("1.66.0")
    assert "account_threepid_delegates.email" in related_keys_for("1.65.0")
    assert "trust_identity_server_for_password_resets" not in related_keys_for(NEWEST)
    assert RELATED_TOP_LEVEL_KEYS["rc_3pid_validation"].default == {
        "per_second": 0.003, "burst_count": 5,
    }


# --- subjects ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "facts"), sorted(SUBJECTS.items()))
def test_subject_defaults_and_placeholders(
    name: str, facts: tuple[str, set[str], bool]
) -> None:
    default, placeholders, documented = facts
    spec = SUBJECT_KEYS[name]
    assert (spec.default, set(spec.placeholders), spec.documented) == (
        default, placeholders, documented,
    )
    # The default must format with exactly its placeholders, as Synapse will do it.
    assert "%(" not in spec.default % dict.fromkeys(spec.placeholders, "x")


def test_subject_set_and_versions() -> None:
    assert set(SUBJECT_KEYS) == set(SUBJECTS)
    assert subject_keys_for("1.17.9") == {}
    assert set(subject_keys_for("1.18.0")) == set(SUBJECTS)
    assert key_status("email.subjects.password_reset", "1.17") == "not-yet"
    assert key_status("subjects.password_reset", "1.18") == "known"
    assert key_status("subjects.pasword_reset") == "unknown"
    assert suggest_subject("pasword_reset") == ["password_reset"]
    assert suggest_subject("password_reset") == []
    assert {s.kind for s in SUBJECT_KEYS.values()} == {"validation", "notification"}


# --- versions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.163", V(1, 163, 0)), ("v1.163.2", V(1, 163, 2)), ("1.163.2", V(1, 163, 2)),
     (" 0.16.0 ", V(0, 16, 0))],
)
def test_parse_version(text: str, expected: Version) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "1", "latest", "1.163.2.1", "1.99.0rc1", "v", "1..2", "x1.2"])
def test_parse_version_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a Synapse version"):
        parse_version(text)


def test_version_order_and_constants() -> None:
    assert V(1, 63, 0) < V(1, 64, 0) < V(1, 163, 2)
    assert str(V(1, 9)) == "1.9.0"
    assert NEWEST == V(1, 163, 2)
    assert list(KNOWN_VERSIONS) == sorted(set(KNOWN_VERSIONS))
    assert KNOWN_VERSIONS[-1] == NEWEST
    assert {V(1, 64, 0), V(1, 122, 0), V(1, 47, 0), V(1, 92, 0), V(1, 66, 0)} <= set(
        KNOWN_VERSIONS
    )
    with pytest.raises(ValueError):
        email_keys_for("one point sixty")


@pytest.mark.parametrize(
    ("name", "version", "status"),
    [
        ("tlsname", V(1, 121, 0), "not-yet"),
        ("tlsname", "1.121", "not-yet"),
        ("tlsname", "1.122.0", "known"),
        ("force_tls", "1.63.9", "not-yet"),
        ("force_tls", "1.64", "known"),
        ("riot_base_url", "1.8.0", "known"),
        ("riot_base_url", "1.9.0", "deprecated"),
        ("template_dir", "1.40.0", "known"),
        ("template_dir", NEWEST, "deprecated"),
        ("email.smtp_host", NEWEST, "known"),
        ("smpt_pass", NEWEST, "unknown"),
        ("trust_identity_server_for_password_resets", NEWEST, "removed"),
        ("public_baseurl", NEWEST, "unknown"),  # under email: it is not read
    ],
)
def test_key_status(name: str, version: Version | str, status: str) -> None:
    assert key_status(name, version) == status


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("templates.custom_template_directory", "known"),
        ("public_baseurl", "known"),
        ("trust_identity_server_for_password_resets", "removed"),
        ("smtp_host", "unknown"),  # a top-level smtp_host is not read
    ],
)
def test_key_status_top_level(name: str, status: str) -> None:
    assert key_status(name, NEWEST, scope="top") == status


def test_email_keys_for_versions() -> None:
    old = email_keys_for(V(1, 63, 0))
    assert "force_tls" not in old and "tlsname" not in old and "smtp_host" in old
    assert "force_tls" in email_keys_for("1.64.0")
    assert "tlsname" not in email_keys_for("1.121.9")
    assert "riot_base_url" in email_keys_for(NEWEST)  # deprecated, still read
    assert "trust_identity_server_for_password_resets" not in email_keys_for(NEWEST)
    assert "subjects" not in email_keys_for("1.17.0")


# --- aliases and suggestions ---------------------------------------------------------------


def test_issue_2_synonyms() -> None:
    expected = {
        "smtp_password": "smtp_pass", "smtp_passwd": "smtp_pass", "password": "smtp_pass",
        "pass": "smtp_pass", "smtp_username": "smtp_user", "username": "smtp_user",
        "user": "smtp_user", "host": "smtp_host", "smtp_server": "smtp_host",
        "server": "smtp_host", "port": "smtp_port", "ssl": "force_tls", "use_ssl": "force_tls",
        "use_tls": "enable_tls", "tls": "enable_tls", "starttls": "enable_tls",
        "smtp_tls": "force_tls", "implicit_tls": "force_tls", "smtps": "force_tls",
        "from": "notif_from", "sender": "notif_from", "from_address": "notif_from",
        "smtp_from": "notif_from",
    }
    assert {name: SYNONYMS[name].target for name in expected} == expected
    assert "465" in SYNONYMS["ssl"].reason
    assert "default" in SYNONYMS["starttls"].reason


def test_nonexistent_advice() -> None:
    for name in ("smtp_pass_path", "smtp_pass_file", "password_file"):
        advice = NONEXISTENT[name]
        assert "config directory" in advice.alternative
        assert "whole email:" in advice.alternative
    assert "CRAM-MD5, LOGIN, PLAIN" in NONEXISTENT["auth_mechanism"].reason
    assert "SSL_CERT_FILE" in NONEXISTENT["smtp_ca_file"].alternative
    assert "SSL_CERT_FILE" in NONEXISTENT["tls_ca"].alternative
    verify = NONEXISTENT["tls_verify"].alternative
    assert "tlsname" in verify and verify.index("tlsname") < verify.index("enable_tls: false")
    assert "smtp_timeout" in NONEXISTENT and "smtp_verify_certificate" in NONEXISTENT


def test_alias_tables_are_consistent() -> None:
    assert not set(SYNONYMS) & set(NONEXISTENT)
    assert not set(SYNONYMS) & set(EMAIL_KEYS)
    assert not set(NONEXISTENT) & set(EMAIL_KEYS)
    for table in (SYNONYMS, MISPLACED):
        for name, synonym in table.items():
            assert name == normalise_key(name)
            target = synonym.target
            assert find_key(target) or find_key(target, "top"), name
            assert synonym.reason


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("smpt_pass", NEWEST, ["smtp_pass"]),
        ("smpt_port", NEWEST, ["smtp_port"]),
        ("notif_form", NEWEST, ["notif_from"]),
        ("completely_unknown", NEWEST, []),
        ("SMTP-Host", NEWEST, ["smtp_host"]),
        ("smtp_pass", NEWEST, []),
        ("smtp_pass_path", NEWEST, []),
        ("public_baseurl", NEWEST, []),  # MISPLACED: a move, not a rename
        ("templates_dir", NEWEST, []),  # its synonym target is top-level
        ("riot_base_ur", NEWEST, ["client_base_url"]),
        ("riot_base_ur", "1.8.0", ["riot_base_url"]),
        ("sni", NEWEST, ["tlsname"]),
        ("sni", "1.121.0", []),
        ("implicit_tls", "1.63.0", []),
    ],
)
def test_suggest(name: str, version: Version | str, expected: list[str]) -> None:
    assert suggest(name, version) == expected


def test_misplaced_keys_point_to_top_level() -> None:
    assert MISPLACED["public_baseurl"].target == "public_baseurl"
    assert MISPLACED["custom_template_directory"].target == "templates.custom_template_directory"
    for synonym in MISPLACED.values():
        assert find_key(synonym.target, "top") is not None


def test_suggest_synonyms_first() -> None:
    assert suggest("smtp_password")[0] == "smtp_pass"
    assert suggest("smpt_port")[0] == "smtp_port"
    assert suggest("notif_form")[0] == "notif_from"
    assert suggest("Use_SSL")[0] == "force_tls"


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("smpt", "smtp", 1), ("", "abc", 3), ("abc", "abc", 0), ("form", "from", 1),
     ("kitten", "sitting", 3), ("ca", "abc", 3)],
)
def test_damerau_levenshtein(a: str, b: str, distance: int) -> None:
    assert damerau_levenshtein(a, b) == distance
    assert damerau_levenshtein(b, a) == distance


@given(st.text(max_size=40), st.sampled_from([*KNOWN_VERSIONS, V(0, 1, 0), V(2, 0, 0)]))
def test_suggest_never_raises_and_stays_in_schema(name: str, version: Version) -> None:
    result = suggest(name, version)
    assert len(result) <= 3
    assert len(set(result)) == len(result)
    assert set(result) <= set(email_keys_for(version))
    for target in result:
        assert key_status(target, version) in ("known", "deprecated")


@given(st.sampled_from(sorted(EMAIL_KEYS)), st.integers(0, len("smtp_host") - 1))
def test_one_deleted_character_is_recovered(name: str, position: int) -> None:
    spec: KeySpec = EMAIL_KEYS[name]
    typo = name[:position] + name[position + 1 :]
    if spec.gone or typo in EMAIL_KEYS:
        return
    assert name in suggest(typo) or (spec.replacement and spec.replacement in suggest(typo))
