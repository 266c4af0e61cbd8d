"""What a port speaks before the client says anything (Synapse never looks; we do).

1. Wait a short time for a greeting. Bytes arrive: SMTP if they parse as a reply
   line, else NOT_SMTP (POP3 ``+OK``, IMAP ``* OK``, SSH, HTTP...). Closed: CLOSED.
2. Silence: send a real ClientHello. A TLS record back: TLS (an implicit-TLS port,
   Synapse hangs on it with ``force_tls: false``).
3. Still silent: SILENT. Plain text back instead: a *slow* SMTP greeter (its greeting
   was merely late), not TLS.

The whole sniff is bounded by ``budget`` seconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from maildoctor.smtp.facts import Speaks
from maildoctor.smtp.parse import MalformedLine, parse_reply_line
from maildoctor.smtp.tls import client_hello, looks_like_tls
from maildoctor.smtp.transcript import Direction
from maildoctor.smtp.wire import Connection


@dataclass(frozen=True)
class SniffResult:
    speaks: Speaks
    first_line: str = ""  # the banner as received (cut), when there was text
    first_byte_after: float | None = None  # seconds from connect to the first byte
    sent_client_hello: bool = False
    data: bytes = b""  # what was read, so an untouched SMTP connection can be reused


def classify_text(data: bytes) -> tuple[Speaks, str]:
    line = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")[:200]
    try:
        parse_reply_line(line)
    except MalformedLine:
        return Speaks.NOT_SMTP, line
    return Speaks.SMTP, line


async def sniff(conn: Connection, *, greet_wait: float, budget: float,
                server_name: str | None) -> SniffResult:
    loop = asyncio.get_running_loop()
    start = loop.time()
    data = await conn.read_some(greet_wait)
    hello = False
    if data is None:
        hello = True
        await conn.send_raw(client_hello(server_name), "sniff")
        conn.transcript.note("silent so far: sent a TLS ClientHello")
        data = await conn.read_some(max(0.05, budget - (loop.time() - start)))
        if data is None:
            return SniffResult(Speaks.SILENT, sent_client_hello=True)
        if not data:
            conn.transcript.note("closed after the ClientHello")
            return SniffResult(Speaks.SILENT, sent_client_hello=True)
    elapsed = round(loop.time() - start, 3)
    if not data:
        return SniffResult(Speaks.CLOSED, first_byte_after=elapsed, sent_client_hello=hello)
    if looks_like_tls(data):
        conn.transcript.note(f"TLS record received ({len(data)} bytes)")
        return SniffResult(Speaks.TLS, first_byte_after=elapsed, sent_client_hello=hello)
    # The rest of the first line may come later (a slow drip): wait a little, not long.
    line_deadline = min(start + budget, loop.time() + 0.5)
    while b"\n" not in data and len(data) < 512 and loop.time() < line_deadline:
        more = await conn.read_some(max(0.01, line_deadline - loop.time()))
        if not more:
            break
        data += more
    speaks, line = classify_text(data)
    conn.transcript.add(Direction.RECEIVED, line)
    return SniffResult(speaks, first_line=line, first_byte_after=elapsed, sent_client_hello=hello,
                       data=data)
