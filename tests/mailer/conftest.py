"""A small aiosmtpd server on 127.0.0.1 with the knobs the Mailer tests need.

It runs on its own event loop in a thread, so the code under test (which has its own loop)
talks to it over real sockets. It records what a test needs to check at the server:
connections made, mails received, and, for each MAIL command, whether the following
commands were already buffered when MAIL was handled (only possible if the client
pipelined them: a lock-step client waits for the MAIL reply before sending RCPT).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER = "synapse@example.org"
PASSWORD = "s3cret-Pa55word"
TLS_NAME = "mail.test"


@dataclass
class Options:
    tls: str = "plain"  # plain | starttls | implicit
    trusted: bool = True
    mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN")
    credentials: dict[str, str] = field(default_factory=lambda: {USER: PASSWORD})
    cram_always_fails: bool = False
    pipelining: bool = False
    replies: dict[str, list[str]] = field(default_factory=dict)
    """stage -> replies used once each, in order, before normal behaviour (mail/rcpt/data/auth)."""
    stall_mail: bool = False
    drop_on_mail: bool = False
    drop_at_mail_number: int | None = None
    """Close the connection, unanswered, at the Nth MAIL command (1-based, server-wide)."""
    refuse_ehlo: bool = False
    refuse_rcpt: dict[str, list[str]] = field(default_factory=dict)
    """address -> replies to its RCPT commands, used once each, in order."""
    refuse_body: dict[bytes, list[str]] = field(default_factory=dict)
    """marker -> replies to the final dots of the mails containing it, once each, in order."""
    drop_body_once: bytes | None = None
    """The first mail whose content contains this: close the connection, no final reply."""
    max_connections: int | None = None
    """Connections beyond this many at once are greeted with 421 and closed."""
    stall_body: bytes | None = None
    """Mails whose content contains this never get their final reply (until the stop)."""


@dataclass
class Record:
    connections: int = 0
    mails: list[Envelope] = field(default_factory=list)
    pipelined: list[bool] = field(default_factory=list)
    auth_mechanisms: list[str] = field(default_factory=list)
    data_pipelined: list[bool] = field(default_factory=list)
    """Per final dot: were the next commands already buffered before it was answered?"""
    refused_connections: int = 0
    chunks: list[bytes] = field(default_factory=list)
    """Every read the server made, as received (one entry per segment read)."""


def _pop(replies: list[str] | None) -> str | None:
    return replies.pop(0) if replies else None


class Handler:
    def __init__(self, options: Options, record: Record, release: asyncio.Event) -> None:
        self.o = options
        self.r = record
        self.release = release

    def _override(self, stage: str) -> str | None:
        queue = self.o.replies.get(stage)
        return queue.pop(0) if queue else None

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.o.refuse_ehlo:
            return ["502 5.5.1 EHLO not implemented"]
        if not self.o.mechanisms:
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        if self.o.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        self.r.pipelined.append(bool(server._reader._buffer))
        if self.o.drop_on_mail or self.o.drop_at_mail_number == len(self.r.pipelined):
            server.transport.close()
            return "250 OK"
        if self.o.stall_mail:
            await self.release.wait()
        override = self._override("mail")
        if override:
            return override
        envelope.mail_from = address
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        override = self._override("rcpt") or _pop(self.o.refuse_rcpt.get(address))
        if override:
            return override
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.r.data_pipelined.append(bool(server._reader._buffer))
        content = envelope.original_content or b""
        if self.o.drop_body_once and self.o.drop_body_once in content:
            self.o.drop_body_once = None
            server.transport.close()
            return "421 4.3.0 closing"  # never reaches the client: the transport is closed
        if self.o.stall_body and self.o.stall_body in content:
            await self.release.wait()
        override = self._override("data") or next(
            (_pop(replies) for marker, replies in self.o.refuse_body.items()
             if marker in content and replies), None)
        if override:
            return override
        self.r.mails.append(envelope)
        return f"250 2.0.0 Ok: queued as Q{len(self.r.mails)}"

    async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
        self.r.auth_mechanisms.append("CRAM-MD5")
        challenge = b"<1896.697170952@mail.test>"
        answer = await server.challenge_auth(challenge)
        if not isinstance(answer, bytes):
            return AuthResult(success=False, handled=True)
        user, _, digest = answer.decode().rpartition(" ")
        password = self.o.credentials.get(user)
        if self.o.cram_always_fails or password is None:
            return AuthResult(success=False, handled=False)
        good = hmac.new(password.encode(), challenge, "md5").hexdigest()
        return AuthResult(success=hmac.compare_digest(good, digest), handled=False)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return AuthResult(success=False, handled=False)


def make_authenticator(options: Options, record: Record) -> Any:
    def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        record.auth_mechanisms.append(mechanism)
        override = options.replies.get("auth")
        if override:
            return AuthResult(success=False, handled=False, message=override.pop(0))
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        return AuthResult(success=options.credentials.get(user) == password, handled=False)
    return authenticator


@dataclass
class Certs:
    """A trusted CA (its file is given to the client) and a leaf from each CA; made once,
    because key generation is the slow part of these tests."""

    trusted: trustme.LeafCert
    untrusted: trustme.LeafCert
    ca_file: str


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    ca, other = trustme.CA(), trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return Certs(ca.issue_cert(TLS_NAME, "127.0.0.1"), other.issue_cert(TLS_NAME, "127.0.0.1"),
                 str(path))


class MailServer:
    """``with MailServer(options, certs) as s``: ``s.port``, ``s.record``."""

    def __init__(self, options: Options, certs: Certs) -> None:
        self.options = options
        self.record = Record()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._context: ssl.SSLContext | None = None
        if options.tls != "plain":
            self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            leaf = certs.trusted if options.trusted else certs.untrusted
            leaf.configure_cert(self._context)

    def __enter__(self) -> MailServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        self._release = asyncio.Event()
        handler = Handler(self.options, self.record, self._release)
        exclude = [m for m in ("LOGIN", "PLAIN") if m not in self.options.mechanisms]
        if "CRAM-MD5" not in self.options.mechanisms:
            exclude.append("CRAM-MD5")
        if "XOAUTH2" not in self.options.mechanisms:
            exclude.append("XOAUTH2")
        record, options, context = self.record, self.options, self._context
        self._transports: list[asyncio.BaseTransport] = []
        transports = self._transports
        open_now: set[SMTP] = set()

        class CountingSMTP(SMTP):  # type: ignore[misc]
            refused = False

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                limit = options.max_connections
                if limit is not None and len(open_now) >= limit:
                    self.refused = True
                    record.refused_connections += 1
                    assert isinstance(transport, asyncio.WriteTransport)
                    transport.write(b"421 4.7.0 too many connections from you\r\n")
                    transport.close()
                    return
                open_now.add(self)
                record.connections += 1
                transports.append(transport)
                super().connection_made(transport)

            def connection_lost(self, exc: Exception | None) -> None:
                if self.refused:
                    return
                open_now.discard(self)
                super().connection_lost(exc)

            def data_received(self, data: bytes) -> None:
                record.chunks.append(data)
                super().data_received(data)

        def factory() -> SMTP:
            return CountingSMTP(
                handler, hostname=TLS_NAME,
                tls_context=context if options.tls == "starttls" else None,
                auth_require_tls=False, auth_exclude_mechanism=exclude,
                authenticator=make_authenticator(options, record))

        self._server = await self._loop.create_server(
            factory, "127.0.0.1", 0, ssl=context if options.tls == "implicit" else None)
        self.port = self._server.sockets[0].getsockname()[1]

    def drop_connections(self) -> None:
        """Close every connection from the server side (an MTA's idle timeout)."""
        async def drop() -> None:
            for transport in self._transports:
                transport.close()
        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(timeout=10)

    async def _stop(self) -> None:
        self._release.set()
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
def serve(certs: Certs) -> Iterator[Any]:
    """``serve(Options(...))`` starts a server that is stopped after the test."""
    servers: list[MailServer] = []

    def start(options: Options | None = None) -> MailServer:
        server = MailServer(options or Options(), certs)
        servers.append(server.__enter__())
        return server

    yield start
    for server in servers:
        server.__exit__()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that completes the TCP handshake (kernel backlog) and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()




class RawServer:
    """Accepts connections and sends fixed bytes (a greeting that is not 220, say)."""

    def __init__(self, greeting: bytes) -> None:
        self.greeting = greeting
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(self.greeting)
                conn.settimeout(5)
                try:
                    while conn.recv(4096):
                        pass
                except OSError:
                    pass

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        self._thread.join(timeout=10)


@pytest.fixture
def raw_server() -> Iterator[Any]:
    servers: list[RawServer] = []

    def start(greeting: bytes) -> RawServer:
        servers.append(RawServer(greeting))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def secret_forms() -> list[str]:
    """The password and the base64 forms an AUTH exchange would carry."""
    pw = PASSWORD.encode()
    user = USER.encode()
    blobs = [pw, b"\0" + user + b"\0" + pw, user + b"\0" + user + b"\0" + pw]
    return [PASSWORD] + [base64.b64encode(b).decode() for b in blobs]
