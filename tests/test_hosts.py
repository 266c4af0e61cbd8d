"""hosts.is_loopback, the one answer to "is this host this machine" for the config rules,
the probe, the shell, the relay's and the test server's listen checks."""

from __future__ import annotations

import pytest

from maildoctor.hosts import is_loopback


@pytest.mark.parametrize("host", [
    "localhost", "LOCALHOST", "localhost.", " localhost ", "localhost.localdomain",
    "ip6-localhost", "ip6-loopback", "mail.localhost", "127.0.0.1", "127.1.2.3", "::1",
    "[::1]", "::1%lo", "0:0:0:0:0:0:0:1",
])
def test_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", [
    "", "example.org", "localhost.example.org", "mylocalhost", "10.0.0.1", "0.0.0.0", "::",
    "fe80::1%lo", "128.0.0.1", "[2001:db8::1]", None, 25, ["localhost"],
])
def test_not_loopback(host: object) -> None:
    assert not is_loopback(host)
