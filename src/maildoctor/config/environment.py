"""Where Synapse runs, as plain data: its installation, its network, its container, its EHLO name.

Synapse's mail depends on more than ``homeserver.yaml``: the Twisted installed beside it, the
address families its host can route, whether ``localhost`` is a container, the name Twisted
announces in EHLO. :mod:`maildoctor.host` observes these (subprocesses, sockets, files); the
rules in :mod:`maildoctor.config.rules.environment` judge them, as pure functions of this
data and the config. The types live here, next to the rules that read them, so that the
``config`` package never depends on ``host`` (``host`` fills them in and may import ``config``).

Every field is an observation; ``None`` means "not observed". Nothing here holds a secret.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Container", "Environment", "Installation", "Network", "TargetAddress", "Unmet"]


@dataclass(frozen=True)
class Unmet:
    """One requirement Synapse declares (``Requires-Dist``) that the installation misses."""

    name: str
    wanted: str  # the requirement as Synapse declares it, e.g. "twisted[tls]>=21.2.0"
    installed: str | None  # the installed version, None when missing


@dataclass(frozen=True)
class Installation:
    """What Synapse's interpreter has installed, asked in a subprocess (never imported).

    ``found_by`` says how the interpreter was chosen (``--synapse-python``, or which usual
    place). ``error`` is set when it could not be asked (then the versions are ``None``).
    ``trust_cafile``/``trust_capath`` are where the OpenSSL under Twisted's TLS (pyOpenSSL's)
    looks for trusted certificates; ``trust_source`` says why those paths.
    """

    python: str
    found_by: str
    python_version: str | None = None
    synapse: str | None = None
    twisted: str | None = None
    pyopenssl: str | None = None
    cryptography: str | None = None
    openssl: str | None = None
    trust_cafile: str | None = None
    trust_capath: str | None = None
    trust_source: str | None = None
    unmet: tuple[Unmet, ...] = ()
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["unmet"] = [asdict(u) for u in self.unmet]
        return out


@dataclass(frozen=True)
class TargetAddress:
    """One address of ``smtp_host``, in the order Twisted's ``HostnameEndpoint`` tries it."""

    address: str
    family: str  # "IPv4" or "IPv6"
    routable: bool  # this host has a route to it (a route lookup; no packet is sent)
    error: str = ""  # why not (e.g. "ENETUNREACH")


@dataclass(frozen=True)
class Network:
    """Which families this host routes, and what ``smtp_host`` gives Twisted to try."""

    host: str
    ipv4: bool  # a route to a public IPv4 address exists (default route or more)
    ipv6: bool
    loopback4: bool  # 127.0.0.1 is usable here
    loopback6: bool  # ::1 is usable here
    targets: tuple[TargetAddress, ...] = ()
    literal: bool = False  # smtp_host is an IP literal (no lookup)
    resolve_error: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["targets"] = [asdict(t) for t in self.targets]
        return out


@dataclass(frozen=True)
class Container:
    """The container maildoctor runs in, and the signs that gave it away."""

    kind: str  # "docker", "podman", "kubernetes", "container" (a cgroup hint only)
    evidence: tuple[str, ...] = ()
    hostname: str = ""
    gateway: str | None = None  # the IPv4 default gateway: usually the host, seen from inside


@dataclass(frozen=True)
class Environment:
    """Everything known about where Synapse runs. Each part is optional."""

    installation: Installation | None = None
    searched: tuple[str, ...] = ()  # usual places looked at when none was given
    checked_as: str | None = None  # the Synapse version the check used, when it came from here
    network: Network | None = None
    container: Container | None = None
    in_container_known: bool = False  # the container question was asked (None: not in one)
    ehlo_name: str | None = None  # what Twisted announces (socket.getfqdn()), probe only
    ehlo_fully_qualified: bool | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "installation": self.installation.to_json() if self.installation else None,
            "searched": list(self.searched),
            "checked_as": self.checked_as,
            "network": self.network.to_json() if self.network else None,
            "container": asdict(self.container) if self.container else None,
            "ehlo_name": self.ehlo_name,
            "ehlo_fully_qualified": self.ehlo_fully_qualified,
            "notes": list(self.notes),
        }
