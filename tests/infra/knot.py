"""A throwaway authoritative DNS server (Knot, from Debian's packages) on 127.0.0.1, for tests
(pytest plugin).

Why a real server: what the sender-dns checks must survive is what real DNS sends: TXT
records split over several strings, CNAME chains, NXDOMAIN against an empty answer, TCP
after truncation. Knot serves the zones given to :class:`KnotServer` on one free loopback
port (UDP and TCP), from its own directory, removed on stop; :meth:`KnotServer.set_zone`
rewrites a zone and reloads it (used to change a published DKIM key mid-test). Nothing is
asked of the outside world: the server is authoritative only, with no recursion.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from maildoctor.testing.ports import free_port

KNOTD = "/usr/sbin/knotd"
KNOTC = "/usr/sbin/knotc"
START_TIMEOUT = 15.0
SYSTEM_DEPS_HINT = "run `make system-deps` (as root) to install knot"


class KnotStartError(RuntimeError):
    """knotd did not come up; the message carries its log."""


def knot_conf(root: Path, port: int, zones: list[str]) -> str:
    listed = "".join(f"  - domain: {z}\n" for z in zones)
    return f"""\
server:
    rundir: "{root}/run"
    listen: [ 127.0.0.1@{port} ]
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: "{root}/knot.log"
    any: info
database:
    storage: "{root}/db"
control:
    listen: "{root}/run/knot.sock"
template:
  - id: default
    storage: "{root}/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
{listed}"""


def zone_text(origin: str, body: str, serial: int) -> str:
    """A zone file: SOA and NS made here, ``body`` gives the records (relative names). TTL 0:
    tests change records mid-session (a DKIM key), and no resolver may keep the old ones."""
    return (f"$ORIGIN {origin}.\n$TTL 0\n"
            f"@ SOA ns.{origin}. hostmaster.{origin}. {serial} 3600 600 86400 60\n"
            f"@ NS ns.{origin}.\nns A 127.0.0.1\n{body}\n")


class KnotServer:
    """``zones`` maps an origin (``maildoctor.test``) to its records in zone-file syntax."""

    def __init__(self, zones: Mapping[str, str]) -> None:
        self.zones = dict(zones)
        self.host = "127.0.0.1"
        self.port = 0
        self.root = Path()
        self._proc: subprocess.Popen[bytes] | None = None
        self._serial = int(time.time())

    @property
    def resolver(self) -> str:
        """The value for ``--resolver``."""
        return f"{self.host}:{self.port}"

    def __enter__(self) -> KnotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> KnotServer:
        for binary in (KNOTD, KNOTC):
            if not os.access(binary, os.X_OK):
                raise KnotStartError(f"{binary} is missing: {SYSTEM_DEPS_HINT}")
        self.root = Path(tempfile.mkdtemp(prefix="maildoctor-knot-"))
        for sub in ("run", "db", "zones"):
            (self.root / sub).mkdir()
        for origin, body in self.zones.items():
            self._write_zone(origin, body)
        for _attempt in range(3):  # the port may be taken between pick and bind
            self.port = free_port()
            (self.root / "knot.conf").write_text(
                knot_conf(self.root, self.port, list(self.zones)))
            self._proc = subprocess.Popen(
                [KNOTD, "-c", str(self.root / "knot.conf")], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=open(self.root / "stderr.log", "wb"),
                start_new_session=True)
            if self._wait_ready():
                return self
            self._kill()
        log = self.log_text()
        self.stop()
        raise KnotStartError(f"knotd did not start in {START_TIMEOUT:.0f} s:\n{log}")

    def _write_zone(self, origin: str, body: str) -> None:
        self._serial += 1
        (self.root / "zones" / f"{origin}.zone").write_text(
            zone_text(origin, body, self._serial))

    def _ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KNOTC, "-c", str(self.root / "knot.conf"), *args],
                              capture_output=True, text=True, timeout=10, check=False)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                return False
            if all(self._serves(origin) for origin in self.zones):
                return True
            time.sleep(0.05)
        return False

    def _serves(self, origin: str, serial: int | None = None) -> bool:
        import dns.message
        import dns.query
        import dns.rdatatype

        try:
            reply = dns.query.udp(dns.message.make_query(origin, dns.rdatatype.SOA),
                                  self.host, timeout=0.5, port=self.port)
        except (OSError, dns.exception.DNSException):
            return False
        soa = [r for rrset in reply.answer for r in rrset]
        return bool(soa) and (serial is None or soa[0].serial >= serial)

    def set_zone(self, origin: str, body: str) -> None:
        """Replaces a zone's records and waits (bounded) until Knot serves the new serial."""
        self.zones[origin] = body
        self._write_zone(origin, body)
        result = self._ctl("zone-reload", origin)
        if result.returncode != 0:
            raise KnotStartError(f"knotc zone-reload {origin}: {result.stdout}{result.stderr}")
        deadline = time.monotonic() + 10
        while not self._serves(origin, self._serial):
            if time.monotonic() > deadline:
                raise KnotStartError(f"Knot did not load the new {origin}:\n{self.log_text()}")
            time.sleep(0.02)

    def log_text(self) -> str:
        out = []
        for name in ("knot.log", "stderr.log"):
            with contextlib.suppress(OSError):
                out.append((self.root / name).read_text(errors="replace"))
        return "".join(out)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def stop(self) -> None:
        self._kill()
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)


def start_knot(zones: Mapping[str, str]) -> KnotServer:
    """Starts Knot for a fixture; a missing package or a failed start fails the test loudly
    (never a skip: a skipped DNS test would look like a passing one)."""
    try:
        return KnotServer(zones).start()
    except KnotStartError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def knot_factory() -> Iterator[type[KnotServer]]:
    """Start a Knot of your own: ``with knot_factory(zones) as server: ...``."""
    yield KnotServer


@pytest.fixture(scope="session")
def knot() -> Iterator[KnotServer]:
    """Knot serving the sender-domain test zone (tests/senderdns/zones.py), once per session."""
    from tests.senderdns.zones import ZONES

    server = start_knot(ZONES)
    yield server
    server.stop()
