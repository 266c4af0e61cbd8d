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
    store_failures: int = 0
    """Mails answered 452 because the queue could not be written."""
    failures: Counter[str] = field(default_factory=Counter)
    """Failed delivery attempts by reason (``connect``, ``auth``, ``recipient``...)."""
    upstream_failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Failed delivery attempts by (upstream, reason)."""
    delivered: Counter[str] = field(default_factory=Counter)
    """Mails delivered since start, by upstream."""
    refused_connections: int = 0
    """Client connections answered 421: too many at once, or out of file descriptors."""
    refused_recipients: int = 0
    record_retries: int = 0
    """Writes of a parked outcome that the queue refused again (disk still full)."""
    """RCPT TO answered 452 4.5.3: over the recipients-per-message limit."""


@dataclass(frozen=True)
class UpstreamState:
    """One upstream as the metrics show it."""

    name: str
    role: str
    up: bool
    slowed: int


@dataclass(frozen=True)
class Snapshot:
    counts: dict[str, int]
    oldest_age: float | None
    counters: Counters
    upstreams: tuple[UpstreamState, ...] = ()
    parked: int = 0


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
    counters = snapshot.counters
    metric("refused_connections_total", "counter",
           "Connections answered 421 (too many at once, or out of file descriptors).",
           [("", counters.refused_connections)])
    metric("refused_recipients_total", "counter",
           "RCPT TO answered 452 4.5.3 (over the recipients-per-message limit).",
           [("", counters.refused_recipients)])
    metric("store_failures_total", "counter",
           "Mails answered 452 4.3.1 because the queue could not be written (disk full).",
           [("", counters.store_failures)])
    metric("unrecorded_outcomes", "gauge",
           "Delivery outcomes held in memory until the queue's disk has room again.",
           [("", snapshot.parked)])
    metric("record_retries_total", "counter",
           "Attempts to write a parked outcome that failed again (the disk still full).",
           [("", counters.record_retries)])
    ups = snapshot.upstreams
    metric("upstream_up", "gauge",
           "1 unless the last attempts at this upstream failed for a server-side reason.",
           [(_labels(upstream=u.name, role=u.role), 1 if u.up else 0) for u in ups])
    metric("upstream_slowed", "gauge",
           "Throttling level of the upstream (0: full speed; more: slower).",
           [(_labels(upstream=u.name, role=u.role), u.slowed) for u in ups])
    metric("upstream_delivered_total", "counter", "Mails delivered since start, by upstream.",
           [(_labels(upstream=u.name, role=u.role), counters.delivered[u.name]) for u in ups])
    metric("upstream_deliveries_failed_total", "counter",
           "Failed delivery attempts since start, by upstream and reason.",
           [(_labels(upstream=name, reason=reason), count) for (name, reason), count
            in sorted(counters.upstream_failures.items())])
    return "\n".join(out) + "\n"


def _labels(**labels: str) -> str:
    """``{a="x",b="y"}`` with the exposition format's escapes (upstream names come from a
    config file)."""
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


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
