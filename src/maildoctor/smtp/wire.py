"""The only place that touches sockets: bounded reads, writes, TLS upgrade, connect.

Every OS, ``ssl`` and ``asyncio`` error is converted here, once, into a maildoctor
error (``raise ... from exc``); nothing above this module sees ``OSError``.

Hostile servers end in a named finding with bounded memory and time, as the error types
of :mod:`maildoctor.errors` (the one tree the Mailer raises too): ResolveError (.outcome),
ConnectFailure (.outcome, .errno_name), CertificateRejected (.verify_code), HandshakeFailed,
ReplyLimitExceeded (.finding), MalformedReply (.line), SlowReply, ServerHung, ConnectionLost.

``aiosmtplib`` is not used for this layer: its reader has no per-reply byte or line
budget and no partial-reply report, and it cannot hand a connection over to TLS-mode
sniffing. It does the SASL encodings in :mod:`maildoctor.smtp.auth`.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import socket
import ssl
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from maildoctor.errors import (
    CertificateRejected,
    ConnectFailure,
    ConnectionLost,
    HandshakeFailed,
    MalformedReply,
    ReplyLimitExceeded,
    ResolveError,
    ServerHung,
    SlowReply,
    SMTPFailure,
)
from maildoctor.smtp.facts import Connect, Reply, Resolve
from maildoctor.smtp.parse import MalformedLine, parse_reply_line
from maildoctor.smtp.transcript import Direction, Transcript

LINE_LIMIT = 8 * 1024  # RFC 5321 says 512; real servers stay far below 8 KiB
REPLY_LIMIT = 1024 * 1024
# Twisted counts no lines (a huge EHLO reply works for Synapse); REPLY_LIMIT bounds memory.
LINES_LIMIT = 100_000
TRANSCRIPT_LINES_PER_REPLY = 60
CHUNK = 4096


# The probe's names for the shared error types (one tree, in maildoctor.errors).
LookupFailed = ResolveError
ConnectError = ConnectFailure


@contextmanager
def os_errors(stage: str) -> Iterator[None]:
    """The boundary: OS/ssl/asyncio errors raised inside become maildoctor errors."""
    try:
        yield
    except SMTPFailure:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise CertificateRejected(
            f"certificate verification failed: {exc.verify_message}", stage=stage,
            verify_code=exc.verify_code, verify_message=exc.verify_message or "",
        ) from exc
    except ssl.SSLError as exc:
        reason = exc.reason or exc.__class__.__name__
        raise HandshakeFailed(f"TLS failed: {reason}", stage=stage) from exc
    except TimeoutError as exc:
        raise ServerHung(f"no answer within the timeout ({stage})", stage=stage) from exc
    except (asyncio.IncompleteReadError, ConnectionError, EOFError) as exc:
        raise ConnectionLost(f"the server closed the connection ({stage})", stage=stage) from exc
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, "")
        raise ConnectionLost(f"connection error {name or exc} ({stage})", stage=stage) from exc


T = TypeVar("T")


async def in_thread(func: Callable[[], T], timeout: float) -> T:
    """Run a blocking call (getaddrinfo, getfqdn) with a timeout that really ends the wait:
    its own thread pool is not joined, so a hung resolver cannot hold the run open."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maildoctor-lookup")
    try:
        return await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(executor, func), timeout)
    finally:
        executor.shutdown(wait=False)


async def lookup(host: str, port: int, timeout: float) -> list[str]:
    """getaddrinfo as Twisted's resolver calls it (A and AAAA, in the system's order)."""
    call = functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = await in_thread(call, timeout)
    except TimeoutError as exc:
        raise LookupFailed(f"no answer from the resolver in {timeout:g} s",
                           outcome=Resolve.TEMPFAIL) from exc
    except socket.gaierror as exc:
        nxdomain = exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None))
        # EAI_AGAIN, EAI_FAIL, EAI_SYSTEM: the resolver failed, not the name.
        raise LookupFailed(str(exc.strerror or exc),
                           outcome=Resolve.NXDOMAIN if nxdomain else Resolve.TEMPFAIL) from exc
    except (UnicodeError, ValueError) as exc:
        raise LookupFailed("not a valid host name", outcome=Resolve.INVALID) from exc
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if str(sockaddr[0]) not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


async def open_tcp(address: str, port: int, timeout: float) -> tuple[
        asyncio.StreamReader, asyncio.StreamWriter]:
    """One TCP connection attempt; errors named by errno (refused/timeout/unreachable)."""
    try:
        return await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except TimeoutError as exc:
        raise ConnectError(f"{address} port {port}: no answer in {timeout:g} s (filtered?)",
                           outcome=Connect.TIMEOUT, errno_name="ETIMEDOUT") from exc
    except ConnectionRefusedError as exc:
        raise ConnectError(f"{address} port {port}: connection refused",
                           outcome=Connect.REFUSED, errno_name="ECONNREFUSED") from exc
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, "")
        # ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL (no IPv6 route)... all mean "no way there".
        outcome = Connect.TIMEOUT if exc.errno == errno.ETIMEDOUT else Connect.UNREACHABLE
        raise ConnectError(f"{address} port {port}: {exc.strerror or exc}",
                           outcome=outcome, errno_name=name) from exc


class Connection:
    """One SMTP connection with bounded reads; every line goes to the transcript."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 transcript: Transcript, *, address: str = "", port: int = 0) -> None:
        self.reader = reader
        self.writer = writer
        self.transcript = transcript
        self.address = address
        self.port = port
        self.tls = False
        self.invalid_utf8 = False
        self.timeout = 10.0  # for writes; reads take theirs per call
        self._buf = bytearray()

    @classmethod
    async def open(cls, address: str, port: int, timeout: float,
                   transcript: Transcript) -> Connection:
        reader, writer = await open_tcp(address, port, timeout)
        transcript.note(f"connected to {address} port {port}")
        conn = cls(reader, writer, transcript, address=address, port=port)
        conn.timeout = timeout
        return conn

    # -- raw bytes (TLS-mode sniffing) -------------------------------------------------

    async def read_some(self, timeout: float) -> bytes | None:
        """Whatever arrives within ``timeout``: ``None`` on silence, ``b""`` when closed."""
        if self._buf:
            data, self._buf = bytes(self._buf), bytearray()
            return data
        try:
            return await asyncio.wait_for(self.reader.read(CHUNK), timeout)
        except TimeoutError:
            return None
        except OSError:
            return b""

    def unread(self, data: bytes) -> None:
        """Put bytes back in front of the buffer (the sniffed greeting, for the dialogue)."""
        self._buf[:0] = data

    async def send_raw(self, data: bytes, stage: str) -> None:
        with os_errors(stage):
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeout)

    # -- SMTP lines --------------------------------------------------------------------

    async def send(self, line: str, stage: str, *, secret: bool = False) -> None:
        self.transcript.add(Direction.SENT, line, tls=self.tls, secret=secret)
        await self.send_raw(line.encode("utf-8", "surrogateescape") + b"\r\n", stage)

    async def command(self, line: str, stage: str, timeout: float, *,
                      secret: bool = False) -> Reply:
        await self.send(line, stage, secret=secret)
        return await self.read_reply(stage, timeout)

    async def read_reply(self, stage: str, timeout: float) -> Reply:
        """Read one complete reply within ``timeout`` and the size limits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        texts: list[str] = []
        received = 0
        code = 0
        while True:
            line = await self._read_line(stage, deadline, received)
            received += len(line) + 2
            if received > REPLY_LIMIT:
                raise ReplyLimitExceeded(f"reply larger than {REPLY_LIMIT} bytes ({stage})",
                                         stage=stage, finding="reply-too-large")
            text = self._decode(line)
            if len(texts) < TRANSCRIPT_LINES_PER_REPLY:
                self.transcript.add(Direction.RECEIVED, text, tls=self.tls)
            try:
                parsed = parse_reply_line(text)
            except MalformedLine:
                raise MalformedReply(f"not an SMTP reply line ({stage})", stage=stage,
                                     line=text[:200]) from None
            code = parsed.code
            texts.append(parsed.text)
            if parsed.last:
                if len(texts) > TRANSCRIPT_LINES_PER_REPLY:
                    self.transcript.note(f"({len(texts) - TRANSCRIPT_LINES_PER_REPLY} "
                                         "more reply lines not shown)", tls=self.tls)
                return Reply(code, "\n".join(texts))
            if len(texts) >= LINES_LIMIT:
                raise ReplyLimitExceeded(f"reply longer than {LINES_LIMIT} lines ({stage})",
                                         stage=stage, finding="too-many-lines")

    async def _read_line(self, stage: str, deadline: float, received: int) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end]).rstrip(b"\r")
                del self._buf[: end + 1]
                if len(line) > LINE_LIMIT:
                    raise self._too_long(stage)
                return line
            if len(self._buf) > LINE_LIMIT:
                raise self._too_long(stage)
            remaining = deadline - loop.time()
            try:
                with os_errors(stage):
                    if remaining <= 0:
                        raise TimeoutError
                    chunk = await asyncio.wait_for(self.reader.read(CHUNK), remaining)
            except ServerHung as exc:
                if received or self._buf:
                    raise SlowReply(f"the reply was still incomplete after the timeout "
                                    f"({stage})", stage=stage) from exc
                raise
            if not chunk:
                raise ConnectionLost(f"the server closed the connection ({stage})",
                                     stage=stage, reply=self._decode(bytes(self._buf[:200])))
            self._buf += chunk

    def _too_long(self, stage: str) -> ReplyLimitExceeded:
        self._buf.clear()
        return ReplyLimitExceeded(f"reply line longer than {LINE_LIMIT} bytes ({stage})",
                                  stage=stage, finding="line-too-long")

    def _decode(self, raw: bytes) -> str:
        """One line from the server as text, made printable (:mod:`maildoctor.printable`):
        what a server says reaches terminals, logs and annotations from here."""
        from maildoctor.printable import printable

        try:
            return printable(raw.decode("utf-8"))
        except UnicodeDecodeError:
            if not self.invalid_utf8:
                self.transcript.note("the server sent bytes that are not UTF-8", tls=self.tls)
            self.invalid_utf8 = True
            return printable(raw.decode("utf-8", "replace"))

    @property
    def pending(self) -> int:
        """Bytes received but not yet read (after a STARTTLS 220: an injection attempt)."""
        return len(self._buf)

    # -- TLS ---------------------------------------------------------------------------

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None,
                        stage: str, timeout: float) -> None:
        self._buf.clear()
        with os_errors(stage):
            await asyncio.wait_for(
                self.writer.start_tls(context, server_hostname=server_hostname), timeout)
        self.tls = True
        obj = self.ssl_object
        version = obj.version() if obj is not None else "?"
        self.transcript.note(f"TLS started ({version})", tls=True)

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        obj = self.writer.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    async def close(self) -> None:
        """Close without waiting on a server that may not cooperate."""
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (OSError, TimeoutError, ssl.SSLError):
            pass
