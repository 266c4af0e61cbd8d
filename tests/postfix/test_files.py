"""The throwaway Postfix's config files, checked as text: no processes, no root needed."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from tests.postfix.files import (
    PASSWORD,
    TREE,
    USER,
    dovecot_conf,
    main_cf,
    master_cf,
    users_file,
)

ROOT = Path("/tmp/maildoctor-postfix-x")


def _params(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines()
             if "=" in line and not line.startswith(("#", " ")))
    return {k.strip(): v.strip() for k, v in pairs}


def _services(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line and not line[0].isspace()]


def test_main_cf_keeps_everything_inside_root_and_loopback() -> None:
    params = _params(main_cf(ROOT))
    assert params["inet_interfaces"] == "127.0.0.1"
    assert params["maillog_file"] == f"{ROOT}/postfix.log"
    assert str(ROOT) in params["maillog_file_prefixes"].replace(",", " ").split()
    for transport in ("default_transport", "relay_transport", "local_transport"):
        assert params[transport] == "virtual"  # never smtp: nothing leaves the machine
    assert params["smtpd_relay_restrictions"] == "permit_sasl_authenticated, reject"
    assert params["smtpd_sasl_type"] == "dovecot"


def test_master_cf_binds_only_our_two_ports_and_chroots_nothing() -> None:
    services = _services(master_cf("127.0.0.1", 40001, 40002))
    inet = [s[0] for s in services if s[1] == "inet"]
    assert inet == ["127.0.0.1:40001", "127.0.0.1:40002"]
    assert all(s[4] == "n" for s in services), "chrooted services need a chroot tree"
    names = {s[0] for s in services}
    assert {"postlog", "virtual", "cleanup", "qmgr", "tlsmgr"} <= names


def test_master_cf_port_options() -> None:
    text = master_cf("127.0.0.1", 40001, 40002)
    submission, smtps = text.split("127.0.0.1:40001")[1].split("127.0.0.1:40002")
    assert "smtpd_tls_security_level=encrypt" in submission
    assert "smtpd_tls_auth_only=yes" in submission
    assert "smtpd_tls_wrappermode=yes" in smtps
    assert "smtpd_tls_wrappermode" not in submission
    for block in (submission, smtps):
        assert "smtpd_sasl_auth_enable=yes" in block


@pytest.mark.parametrize(("trap", "mechanisms"), [
    (False, "plain login"), (True, "plain login cram-md5"),
])
def test_dovecot_mechanisms(trap: bool, mechanisms: str) -> None:
    text = dovecot_conf(ROOT, trap)
    assert re.search(rf"^auth_mechanisms = {mechanisms}$", text, re.M)
    assert f"unix_listener {ROOT}/queue/private/auth" in text
    assert ("scheme=PLAIN" in text) is not trap


def test_plain_users_file_holds_the_password() -> None:
    assert users_file(cram_md5_trap=False) == f"{USER}:{{PLAIN}}{PASSWORD}\n"


def test_trap_users_file_holds_a_salted_hash_of_the_password() -> None:
    user, _, stored = users_file(cram_md5_trap=True).strip().partition(":")
    assert user == USER
    assert stored.startswith("{SSHA512}") and PASSWORD not in stored
    raw = base64.b64decode(stored.removeprefix("{SSHA512}"))
    digest, salt = raw[:64], raw[64:]
    assert hashlib.sha512(PASSWORD.encode() + salt).digest() == digest
    assert users_file(cram_md5_trap=True) != users_file(cram_md5_trap=True)  # fresh salt


@pytest.mark.postfix
def test_queue_tree_matches_postfix_files() -> None:
    """Our queue layout must be what Postfix's own installer would create (postfix-files)."""
    postfix_files = Path("/etc/postfix/postfix-files")
    if not postfix_files.exists():
        pytest.fail("/etc/postfix/postfix-files missing: run `make system-deps`")
    expected = {}
    for line in postfix_files.read_text().splitlines():
        fields = line.split(":")
        if line.startswith("$queue_directory/") and fields[1] == "d":
            owner = "postfix" if fields[2] == "$mail_owner" else fields[2]
            group = "postdrop" if fields[3] == "$setgid_group" else None
            expected[fields[0].replace("$queue_directory", "queue")] = (
                owner, group, int(fields[4], 8))
    ours = {path: (owner, group, mode) for path, owner, group, mode in TREE
            if path.startswith("queue/")}
    assert set(ours) == set(expected)
    for path, (owner, group, mode) in expected.items():
        assert ours[path][0] == owner and ours[path][2] == mode, path
        if group:
            assert ours[path][1] == group, path
