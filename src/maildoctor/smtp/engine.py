"""The probe's bookkeeping: stage results, facts, failures, stopping, and the run loop.

Stage logic lives in :mod:`maildoctor.smtp.stages` (a subclass); this module holds
what every stage shares: recording a :class:`StageResult` (redacted, then passed to
``on_stage``), turning a wire failure into facts (``closed_at``/``stalled_at``, a
named finding), and skipping the rest after a failure or ``stop_after``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from maildoctor.config.settings import EmailSettings
from maildoctor.errors import (
    ConnectionLost,
    MalformedReply,
    ReplyLimitExceeded,
    ServerHung,
    SlowReply,
    SMTPFailure,
    TLSFailure,
)
from maildoctor.hosts import is_loopback
from maildoctor.secrets import Redactor
from maildoctor.smtp.facts import ServerFacts
from maildoctor.smtp.report import ProbeOptions, ProbeReport, StageResult, StageStatus
from maildoctor.smtp.transcript import Transcript, shorten
from maildoctor.smtp.wire import Connection

OnStage = Callable[[StageResult], None]


class Stop(Exception):
    """Ends the run early: a stage failed in a way that makes later stages meaningless."""


def finding_of(exc: SMTPFailure) -> str:
    """A stable name for a wire failure, for stage facts and tests."""
    if isinstance(exc, ReplyLimitExceeded):
        return exc.finding
    if isinstance(exc, MalformedReply):
        return "malformed-reply"
    if isinstance(exc, SlowReply):
        return "slow-drip"
    if isinstance(exc, ServerHung):
        return "no-reply"
    if isinstance(exc, ConnectionLost):
        return "closed"
    if isinstance(exc, TLSFailure):
        return "tls-failed"
    return "failed"


class EngineBase:
    def __init__(self, settings: EmailSettings, options: ProbeOptions,
                 on_stage: OnStage | None) -> None:
        self.settings = settings
        self.options = options
        self.on_stage = on_stage
        self.redact = Redactor()
        user = None if settings.smtp_user is None else str(settings.smtp_user)
        self.redact.add(settings.smtp_pass, users=[user])
        self.transcript = Transcript(self.redact)
        # Side connections (sniffing, --all-mechanisms) are shown only when verbose.
        self.side = self.transcript if options.verbose else Transcript(self.redact, enabled=False)
        self.facts: dict[str, Any] = {}
        self.notes: list[str] = []
        self.stages: list[StageResult] = []
        self.conn: Connection | None = None
        self._t0 = 0.0
        self._utf8_noted = False
        # Filled in by the stages as the dialogue goes.
        self.implicit = settings.implicit_tls
        host = settings.smtp_host
        self.tls_name: str = settings.tls_name or ("" if host is None else str(host))
        self.port: int | None = None
        self.address = ""
        self.ehlo_name = options.ehlo_name or ""
        self.verified = False  # the TLS in use passed verification
        self.starttls_planned = False

    # -- recording ---------------------------------------------------------------------

    def begin(self, name: str = "") -> None:
        """A stage starts: its clock, and the live display told what is being waited on."""
        self._t0 = time.monotonic()
        starting = getattr(self.on_stage, "starting", None)
        if name and callable(starting):
            starting(name)

    def record(self, name: str, status: StageStatus, summary: str,
               facts: dict[str, Any] | None = None, error: str | None = None) -> StageResult:
        if self.conn is not None and self.conn.invalid_utf8 and not self._utf8_noted:
            self._utf8_noted = True
            self.note(f"invalid-utf8: the server sent bytes that are not UTF-8 ({name})")
            facts = {"finding": "invalid-utf8", **(facts or {})}
        result = StageResult(
            name=name, status=status, seconds=round(time.monotonic() - self._t0, 3),
            facts=self._clean(facts or {}), summary=shorten(self.redact(summary), 300),
            error=None if error is None else shorten(self.redact(error), 300),
        )
        self.stages.append(result)
        if self.on_stage is not None:
            self.on_stage(result)
        return result

    def _clean(self, value: Any) -> Any:
        """JSON-able and redacted: enums to strings, tuples to lists, text redacted."""
        if isinstance(value, dict):
            return {str(k): self._clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean(v) for v in value]
        if isinstance(value, str):
            return self.redact(str(value))  # str(): plain text, also for StrEnum members
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return self.redact(str(value))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(self.redact(text))

    def fail_wire(self, name: str, exc: SMTPFailure, summary: str,
                  facts: dict[str, Any] | None = None) -> Stop:
        """Record a stage ended by a wire failure; the caller raises the returned Stop."""
        finding = finding_of(exc)
        if isinstance(exc, ConnectionLost):
            self.facts.setdefault("closed_at", name)
        elif isinstance(exc, ServerHung):
            self.facts.setdefault("stalled_at", name)
        elif isinstance(exc, ReplyLimitExceeded):
            # Twisted drops the connection at a 16 KB line and waits for a reply that does
            # not end: either way Synapse is left waiting, as for a stalled server.
            self.facts.setdefault("stalled_at", name)
        data = {"finding": finding, **(facts or {})}
        if exc.reply:
            data["partial"] = exc.reply
        if isinstance(exc, MalformedReply):
            data["line"] = exc.line
        self.record(name, StageStatus.FAIL, summary, data, error=str(exc))
        return Stop(name)

    def skip_rest(self, plan: list[str], reason: str) -> None:
        done = {s.name for s in self.stages}
        for name in plan:
            if name not in done:
                self.begin()
                self.record(name, StageStatus.SKIPPED, reason)

    # -- helpers shared by stages ------------------------------------------------------

    @property
    def loopback(self) -> bool:
        return is_loopback(self.conn.address if self.conn else "")

    async def close(self, *, quit_first: bool = False) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if quit_first:
            try:
                await conn.command("QUIT", "quit", min(2.0, self.options.timeout))
            except SMTPFailure:
                pass
        await conn.close()

    def report(self) -> ProbeReport:
        if self.notes:
            self.facts["notes"] = tuple(self.notes)
        facts = self._scrub(ServerFacts(**self.facts))
        return ProbeReport(stages=list(self.stages), facts=facts,
                           transcript=list(self.transcript.lines))

    def _scrub(self, value: Any) -> Any:
        """Redact every text inside the facts (a server may echo a password back)."""
        if isinstance(value, Enum):
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, tuple):
            return tuple(self._scrub(v) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {f.name: self._scrub(getattr(value, f.name))
                       for f in dataclasses.fields(value)}
            return dataclasses.replace(value, **changes)
        return value


def run_sync(coro_factory: Callable[[], Any]) -> Any:
    """``asyncio.run`` for the sync wrappers (not callable from inside a running loop)."""
    return asyncio.run(coro_factory())
