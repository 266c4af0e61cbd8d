"""The Prometheus endpoint: text exposition format over a tiny HTTP server on loopback.

No client library: five metrics do not need one, and the format is a few lines of text
(https://prometheus.io/docs/instrumenting/exposition_formats/). Gauges that describe the queue
are read from the database at scrape time, so they are right even after a restart; counters of
failures live in memory and restart at zero, as Prometheus expects of a counter.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Counters:
    """What happened since the relay started."""

    accepted: int = 0
    rejected_clients: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    """Failed delivery attempts by reason (``connect``, ``auth``, ``recipient``...)."""


@dataclass(frozen=True)
class Snapshot:
    counts: dict[str, int]
    oldest_age: float | None
    counters: Counters


def render(snapshot: Snapshot) -> str:
    """The exposition text for one scrape."""
    c = snapshot.counts
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP maildoctor_relay_{name} {help_text}")
        out.append(f"# TYPE maildoctor_relay_{name} {kind}")
        out.extend(f"maildoctor_relay_{name}{labels} {_number(value)}"
                   for labels, value in samples)

    metric("queued", "gauge", "Messages waiting for delivery.", [("", c.get("queued", 0))])
    metric("delivered_total", "counter", "Messages delivered upstream (kept in the queue file).",
           [("", c.get("delivered", 0))])
    metric("dead_total", "counter", "Messages given up on (dead-lettered).",
           [("", c.get("dead", 0))])
    failures = snapshot.counters.failures
    metric("deliveries_failed_total", "counter",
           "Failed delivery attempts since start, by reason.",
           [(f'{{reason="{reason}"}}', failures[reason]) for reason in sorted(failures)])
    metric("oldest_queued_age_seconds", "gauge",
           "Age of the oldest message still queued (0 when the queue is empty).",
           [("", snapshot.oldest_age or 0.0)])
    metric("accepted_total", "counter", "Messages accepted from clients since start.",
           [("", snapshot.counters.accepted)])
    metric("rejected_clients_total", "counter",
           "Connections refused because the client is not in the allow-list, since start.",
           [("", snapshot.counters.rejected_clients)])
    return "\n".join(out) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


async def serve(host: str, port: int, snapshot: Callable[[], Awaitable[Snapshot]]
                ) -> asyncio.Server:
    """Answer ``GET /metrics`` (and ``GET /``) with :func:`render`; anything else 404/405."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5.0):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            parts = request.decode("latin-1").split()
            if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
                status, body, ctype = "405 Method Not Allowed", "only GET\n", "text/plain"
            elif parts[1].split("?")[0] not in ("/metrics", "/"):
                status, body, ctype = "404 Not Found", "try /metrics\n", "text/plain"
            else:
                status, body, ctype = "200 OK", render(await snapshot()), CONTENT_TYPE
            payload = body.encode("utf-8")
            head = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode("ascii") + (b"" if parts[:1] == ["HEAD"] else payload))
            await writer.drain()
        except (OSError, TimeoutError, UnicodeError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
