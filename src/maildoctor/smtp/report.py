"""The probe's input options and its output report: plain data, no I/O.

A :class:`StageResult` is what the live progress display shows as each stage ends;
its ``facts`` are JSON-able and already redacted. :class:`ProbeReport` adds the
:class:`~maildoctor.smtp.facts.ServerFacts` (the Synapse model's input) and the
redacted transcript.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from maildoctor.smtp.facts import ServerFacts
from maildoctor.smtp.transcript import TranscriptLine

# Stage names, and the points ``--stop-after`` accepts (swaks' --quit-after, in order).
STAGE_NAMES = ("resolve", "connect", "sniff", "tls", "greeting", "ehlo", "auth", "envelope")
STOP_POINTS = ("resolve", "connect", "tls", "ehlo", "auth", "envelope")


class StageStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class ProbeOptions:
    """How to probe. ``timeout`` bounds every single wait (connect, each reply, each
    handshake); the number of waits per stage is fixed, so the whole run is bounded."""

    timeout: float = 10.0
    ca_file: str | None = None  # an extra trusted CA, as SSL_CERT_FILE would add for Synapse
    to: str | None = None  # recipient for RCPT TO; no RCPT without it
    all_mechanisms: bool = False  # also try every offered mechanism on fresh connections
    stop_after: str | None = None  # one of STOP_POINTS
    # Send credentials without verified TLS to a non-loopback host (Synapse would too).
    allow_plaintext_auth: bool = False
    verbose: bool = False  # also record the side connections (sniffing, re-tries)
    ehlo_name: str | None = None  # default: socket.getfqdn(), what Twisted sends
    # Every DNS question of the probe goes to this server (ip, port) instead of the system's
    # resolver: the resolve stage and the after-the-250 stages (--resolver).
    resolver: tuple[str, int] | None = None
    sender_dns: bool = True  # the sender-dns stage (SPF, DKIM, DMARC of notif_from's domain)
    links: bool = True  # the links stage (public_baseurl through the reverse proxy)
    sending_ips: tuple[str, ...] = ()  # the public address(es) the mail leaves from
    # The trust store of Synapse's installation (its pyOpenSSL's default paths), used
    # instead of this Python's when known; ca_file is added to either.
    trust_cafile: str | None = None
    trust_capath: str | None = None

    def __post_init__(self) -> None:
        if self.stop_after is not None and self.stop_after not in STOP_POINTS:
            raise ValueError(f"stop_after must be one of {', '.join(STOP_POINTS)}")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


@dataclass(frozen=True)
class StageResult:
    name: str
    status: StageStatus
    seconds: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": str(self.status), "seconds": self.seconds,
                "facts": self.facts, "summary": self.summary, "error": self.error}


@dataclass(frozen=True)
class ProbeReport:
    stages: list[StageResult]
    facts: ServerFacts
    transcript: list[TranscriptLine]

    def stage(self, name: str) -> StageResult | None:
        """The last result recorded under ``name``."""
        for result in reversed(self.stages):
            if result.name == name:
                return result
        return None
