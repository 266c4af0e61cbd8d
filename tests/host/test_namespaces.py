"""The network and the container, for real: maildoctor runs inside namespaces the test makes.

- ``unshare -n``: a network namespace with only a loopback device, given one family (the
  other's loopback address removed) and a default route of that family through ``lo``, so
  the host "routes" IPv6 only, or IPv4 only. No packet ever leaves the namespace.
- ``unshare -m``: a mount namespace where ``/etc/hosts`` is replaced (a name with only an A
  record) and ``/run`` is a fresh tmpfs holding Podman's marker ``/run/.containerenv``.

Namespaces need root (CI runs as root); elsewhere the tests skip, and fail under ``CI``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

MAILDOCTOR = [sys.executable, "-m", "maildoctor"]


def _why_not() -> str:
    missing = [tool for tool in ("unshare", "ip", "mount") if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (scripts/install-system-deps.sh)"
    if os.geteuid() != 0:
        return "needs root"
    trial = subprocess.run(["unshare", "-n", "-m", "true"], capture_output=True, text=True,
                           timeout=30, check=False)
    if trial.returncode != 0:
        return f"cannot create namespaces here: {trial.stderr.strip()} (needs CAP_SYS_ADMIN)"
    return ""


@pytest.fixture(autouse=True, scope="module")
def _need_namespaces() -> None:
    why = _why_not()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"namespace tests {why}", pytrace=False)
        pytest.skip(why)


def _config(tmp_path: Path, host: str, port: int = 2525) -> str:
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump({
        "server_name": "example.org", "public_baseurl": "https://matrix.example.org/",
        "email": {"smtp_host": host, "smtp_port": port,
                  "notif_from": "Example <noreply@example.org>"}}))
    return str(path)


def _inside(script: str, *command: str, flags: str = "-n -m", timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
    """Run ``command`` after ``script`` (sh) in fresh namespaces."""
    quoted = " ".join("'" + c.replace("'", "'\\''") + "'" for c in command)
    return subprocess.run(["unshare", *flags.split(), "--propagation", "private", "sh", "-ec",
                           f"{script}\nexec {quoted}"], capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, "PYTHONPATH":
                          os.pathsep.join(sys.path)})


IPV6_ONLY = """
ip link set lo up
ip addr del 127.0.0.1/8 dev lo
ip -6 route add default dev lo
"""
IPV4_ONLY = """
ip link set lo up
ip -6 addr del ::1/128 dev lo
ip route add default dev lo
"""


def _hosts(tmp_path: Path, line: str) -> str:
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{line}\n")
    return f"mount --bind {hosts} /etc/hosts\n"


def _probe(tmp_path: Path, script: str, host: str) -> tuple[int, dict[str, Any]]:
    run = _inside(script, *MAILDOCTOR, "probe", "--format", "json", "--timeout", "3",
                  "--synapse-python", "none", _config(tmp_path, host))
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, json.loads(run.stdout)


def test_an_ipv6_only_host_names_the_missing_ipv4_route(tmp_path: Path) -> None:
    status, doc = _probe(tmp_path, IPV6_ONLY + _hosts(tmp_path, "127.0.0.2 relay.test"),
                         "relay.test")
    assert status == 1
    net = doc["environment"]["network"]
    assert (net["ipv4"], net["ipv6"], net["loopback4"], net["loopback6"]) == (
        False, True, False, True)
    assert [(t["address"], t["family"], t["routable"]) for t in net["targets"]] == [
        ("127.0.0.2", "IPv4", False)]
    cause = doc["diagnosis"]["root_cause"]
    assert doc["diagnosis"]["code"] == "MD610"
    assert "only IPv4 addresses (127.0.0.2)" in cause and "no IPv4 route" in cause
    assert "routes IPv6" in cause
    assert "NAT64" in doc["diagnosis"]["fix"]


def test_an_ipv4_only_host_and_an_ipv6_literal(tmp_path: Path) -> None:
    status, doc = _probe(tmp_path, IPV4_ONLY, "::1")
    assert status == 1
    net = doc["environment"]["network"]
    assert (net["ipv4"], net["ipv6"], net["literal"]) == (True, False, True)
    assert doc["diagnosis"]["code"] == "MD610"
    assert "no IPv6 route" in doc["diagnosis"]["root_cause"]


def test_both_families_in_hostname_endpoint_order(tmp_path: Path) -> None:
    """A name with both an AAAA and an A record, on a host that routes IPv4 only: the IPv6
    address is listed (Twisted tries it) but unroutable, and MD610 stays silent."""
    script = IPV4_ONLY + _hosts(tmp_path, "::1 relay.test\n127.0.0.1 relay.test")
    _status, doc = _probe(tmp_path, script, "relay.test")
    targets = doc["environment"]["network"]["targets"]
    assert sorted((t["family"], t["routable"]) for t in targets) == [
        ("IPv4", True), ("IPv6", False)]
    assert "MD610" not in {f["code"] for f in doc["findings"]}
    assert doc["diagnosis"]["code"] != "MD610"  # refused on 127.0.0.1: nothing listens


CONTAINER = "mount -t tmpfs tmpfs /run\ntouch /run/.containerenv\n"


def test_localhost_in_a_container_is_the_container(tmp_path: Path) -> None:
    check = _inside(CONTAINER, *MAILDOCTOR, "check", "--format", "json", "--synapse-python",
                    "none", _config(tmp_path, "localhost", 25), flags="-m")
    doc = json.loads(check.stdout)
    assert doc["environment"]["container"]["kind"] == "podman"
    assert "/run/.containerenv exists" in doc["environment"]["container"]["evidence"]
    (md620,) = [d for d in doc["diagnostics"] if d["code"] == "MD620"]
    assert "host.containers.internal" in md620["fix"]["message"]
    # The probe: nothing listens on the namespace's loopback, and that is the cause named.
    status, probed = _probe(tmp_path, "ip link set lo up\n" + CONTAINER, "localhost")
    assert status == 1
    assert probed["diagnosis"]["code"] == "MD620"
    assert "container itself" in probed["diagnosis"]["root_cause"]

