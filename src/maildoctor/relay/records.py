"""What the relay's queue holds, as values: a message as accepted, a queued row, an
upstream's last outcome. The SQL lives in ``queue.py``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NewMessage:
    """A message as the listener accepted it."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    message_id: str | None = None
    client: str | None = None


@dataclass(frozen=True)
class QueuedMessage:
    """One row of the queue. ``data`` is loaded only for delivery."""

    id: int
    state: str
    received_at: float
    expires_at: float
    next_attempt: float
    attempts: int
    sender: str
    recipients: tuple[str, ...]
    message_id: str | None
    size: int
    client: str | None
    upstream: str | None
    last_error: str | None
    last_reason: str | None
    refused: dict[str, str] = field(default_factory=dict)
    parent: int | None = None
    finished_at: float | None = None
    data: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "state": self.state, "received_at": self.received_at,
            "next_attempt": self.next_attempt if self.state == "queued" else None,
            "attempts": self.attempts, "sender": self.sender,
            "recipients": list(self.recipients), "message_id": self.message_id,
            "size": self.size, "upstream": self.upstream, "last_error": self.last_error,
            "reason": self.last_reason, "refused": self.refused, "parent": self.parent,
            "finished_at": self.finished_at,
        }


@dataclass(frozen=True)
class UpstreamError:
    """What went wrong at one upstream, as ``relay status`` shows it."""

    upstream: str
    error: str
    reason: str
    fix: str


@dataclass(frozen=True)
class UpstreamStatus:
    """The last outcome the relay saw for one upstream server."""

    upstream: str
    last_error: str | None
    last_reason: str | None
    last_fix: str | None
    error_at: float | None
    ok_at: float | None
    role: str | None = None
    """``primary`` or ``fallback`` as the relay last started; None for older files."""
    delivered: int = 0
    """Delivered messages this upstream took, among those still kept (``--keep``)."""

    @property
    def failing(self) -> bool:
        """True when the last thing that happened there was an error."""
        return self.error_at is not None and (self.ok_at is None or self.error_at > self.ok_at)

    def to_json(self) -> dict[str, Any]:
        return {"upstream": self.upstream, "role": self.role, "failing": self.failing,
                "delivered": self.delivered,
                "last_error": self.last_error, "reason": self.last_reason,
                "fix": self.last_fix, "error_at": self.error_at, "ok_at": self.ok_at}


def message_from_row(row: Sequence[Any], data: bytes | None = None) -> QueuedMessage:
    """A row of ``SELECT {queue._COLUMNS}`` (and the body, when loaded)."""
    return QueuedMessage(
        id=row[0], state=row[1], received_at=row[2], expires_at=row[3], next_attempt=row[4],
        attempts=row[5], sender=row[6], recipients=tuple(json.loads(row[7])),
        message_id=row[8], size=row[9], client=row[10], upstream=row[11], last_error=row[12],
        last_reason=row[13], refused=json.loads(row[14]) if row[14] else {}, parent=row[15],
        finished_at=row[16], data=data)
