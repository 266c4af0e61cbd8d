"""One SMTP connection: opened and authenticated by aiosmtplib, then driven by our Channel.

Opening follows Synapse's settings (spec/synapse-email.md 2.3) where they are sound, and
fixes what Synapse gets wrong: every step has a timeout, a private CA can be given,
a failing mechanism can fall back to the next, and every failure is an exception that
names its cause. Transactions reuse the connection; RSET is sent only after a transaction
that did not complete, because the end of DATA already clears the server's state
(RFC 5321 4.1.1.4), and with pipelining the RSET rides in the same write as MAIL.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib

from maildoctor import errors
from maildoctor.mailer.channel import Channel
from maildoctor.mailer.failures import Where, at_stage, refusal
from maildoctor.mailer.replies import Reply, address_arg, encode_data
from maildoctor.secrets import Secret

_RSET = b"RSET\r\n"

FALLBACK_CODES = frozenset({504, 534, 535})
"""Replies after which the next mechanism is worth trying (mechanism, policy, credentials)."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed per step; Synapse has none beyond the 30 s TCP connect."""

    connect: float = 10.0
    """TCP connect, and the greeting (with the TLS handshake for implicit TLS)."""
    command: float = 30.0
    """Each reply to EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, RSET, QUIT."""
    data: float = 120.0
    """The final reply after the message body (servers scan the mail before answering)."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect; built by ``Mailer.from_settings``. The password stays a Secret."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = True
    require_tls: bool = False
    tls_name: str | None = None
    user: str | None = None
    password: Secret | None = None
    ca_file: str | None = None
    mechanisms: tuple[str, ...] = ("cram-md5", "login", "plain")
    secure_mechanisms: tuple[str, ...] | None = None
    """If set, the order used on an encrypted connection (``mechanisms`` is used in clear)."""
    fallback: bool = False
    local_hostname: str = "localhost"


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store plus ``ca_file``; hostname checking on, as Twisted does."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


@dataclass
class Outcome:
    """A delivered mail: the final reply and any recipients the server refused."""

    reply: Reply
    refused: dict[str, str] = field(default_factory=dict)


class Session:
    """An open, ready SMTP connection. Create with :meth:`open`."""

    def __init__(self, endpoint: Endpoint, timeouts: Timeouts, where: Where,
                 channel: Channel, encrypted: bool) -> None:
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.where = where
        self.channel = channel
        self.encrypted = encrypted
        self.transactions = 0
        self._needs_reset = False

    @property
    def pipelining(self) -> bool:
        return self.channel.pipelining

    @property
    def is_open(self) -> bool:
        return self.channel.is_open

    @classmethod
    async def open(cls, endpoint: Endpoint, timeouts: Timeouts, where: Where,
                   context: Callable[[], ssl.SSLContext]) -> Session:
        """Connect, greet, upgrade, authenticate; raise a maildoctor error on any failure."""
        ep = endpoint
        with at_stage("connect", where, timeouts.connect):
            sock = await asyncio.to_thread(
                socket.create_connection, (ep.host, ep.port), timeouts.connect)
        sock.setblocking(False)
        # Each pipeline group is one write that must leave at once: never let Nagle hold
        # it back waiting for the ACK of the previous one (what costs Twisted ~40 ms a mail).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = aiosmtplib.SMTP(
            sock=sock, hostname=(ep.tls_name or ep.host) if ep.implicit_tls else None,
            use_tls=ep.implicit_tls, start_tls=False,
            tls_context=context() if ep.implicit_tls else None,
            timeout=timeouts.command, local_hostname=ep.local_hostname)
        try:
            with at_stage("greeting", where, timeouts.connect):
                await client.connect(timeout=timeouts.connect)
            await _hello(client, ep, where, timeouts)
            encrypted = ep.implicit_tls
            if not encrypted and ep.starttls and client.supports_extension("starttls"):
                with at_stage("starttls", where, timeouts.command):
                    await client.starttls(server_hostname=ep.tls_name or ep.host,
                                          tls_context=context(), timeout=timeouts.command)
                encrypted = True
                await _hello(client, ep, where, timeouts)
            if ep.require_tls and not encrypted:
                raise errors.TLSFailure(
                    f"{ep.host}:{ep.port} does not offer STARTTLS (or enable_tls is false) "
                    "and require_transport_security is true", stage="starttls")
            if ep.password:
                order = ep.secure_mechanisms if encrypted and ep.secure_mechanisms else None
                await _authenticate(client, ep, where, timeouts, order or ep.mechanisms, encrypted)
            transport = client.transport
            if not isinstance(transport, asyncio.Transport):
                raise errors.ConnectionLost(
                    f"{ep.host}:{ep.port} closed the connection after the handshake",
                    stage="auth")
            channel = Channel(transport, pipelining=client.supports_extension("pipelining"))
        except BaseException:
            client.close()
            raise
        return cls(ep, timeouts, where, channel, encrypted)

    async def transact(self, sender: str, recipients: list[str], message: bytes) -> Outcome:
        """One mail. Refusals raise Sender/Recipient/DataRejected and keep the connection."""
        commands = self.envelope(sender, recipients)
        replies = await self._envelope(commands)
        refused = await self.check_envelope(commands, replies, sender, recipients)
        final = (await self.exchange([self.body(message)], with_body=True))[0]
        return self.check_final(final, refused)

    def envelope(self, sender: str, recipients: list[str]) -> list[bytes]:
        """MAIL, RCPT..., DATA as wire lines, with RSET first if the last transaction did
        not complete. Raises before anything is sent if an address could inject commands."""
        commands = [b"MAIL FROM:" + _checked(address_arg, sender, errors.SenderRejected)
                    + b"\r\n"]
        commands += [b"RCPT TO:" + _checked(address_arg, r, errors.RecipientRejected)
                     + b"\r\n" for r in recipients]
        commands.append(b"DATA\r\n")
        if self._needs_reset:
            commands.insert(0, _RSET)
        self._needs_reset = True
        return commands

    def body(self, message: bytes) -> bytes:
        """The DATA payload. Its final dot ends the transaction whatever the reply (RFC 5321
        4.1.1.4), so commands written after it need no RSET."""
        self._needs_reset = False
        return encode_data(message)

    async def exchange(self, commands: list[bytes], *, with_body: bool) -> list[Reply]:
        """One pipeline group (or lock-step without PIPELINING); errors become maildoctor's.
        A group that carries a message body gets the (longer) data timeout."""
        stage, timeout = ("message", self.timeouts.data) if with_body else (
            "mail", self.timeouts.command)
        with at_stage(stage, self.where, timeout, self.channel.close):
            return await self.channel.exchange(commands, timeout)

    async def check_envelope(self, commands: list[bytes], replies: list[Reply], sender: str,
                             recipients: list[str]) -> dict[str, Reply]:
        """The recipients refused while DATA got its 354; otherwise raise the refusal that
        stopped the transaction (after closing a DATA the server opened regardless)."""
        if commands[0] == _RSET:
            rset, replies = replies[0], replies[1:]
            if rset.code != 250:
                self.channel.close()
                raise refusal("mail", rset, self.where, sender)
        mail, data = replies[0], replies[1 + len(recipients):]
        refused = {r: rep for r, rep in zip(recipients, replies[1:], strict=False)
                   if rep.code not in (250, 251)}
        if mail.code != 250:
            await self._end_stray_data(data)
            raise refusal("mail", mail, self.where, sender)
        if len(refused) == len(recipients):
            await self._end_stray_data(data)
            first = next(iter(refused))
            raise refusal("rcpt", refused[first], self.where, ", ".join(refused))
        if data[0].code != 354:
            raise refusal("data", data[0], self.where)
        return refused

    def check_final(self, final: Reply, refused: dict[str, Reply]) -> Outcome:
        """The outcome of the reply to the final dot, or DataRejected."""
        if final.code != 250:
            self._needs_reset = True
            raise refusal("message", final, self.where)
        self.transactions += 1
        return Outcome(final, {r: str(rep) for r, rep in refused.items()})

    async def _envelope(self, commands: list[bytes]) -> list[Reply]:
        """MAIL/RCPT/DATA in one write when pipelining, else one by one until a refusal."""
        with at_stage("mail", self.where, self.timeouts.command, self.channel.close):
            if self.pipelining:
                return await self.channel.exchange(commands, self.timeouts.command)
            replies: list[Reply] = []
            accepted = 0
            for command in commands:
                is_data = command == b"DATA\r\n"
                if is_data and accepted == 0:
                    break
                (reply,) = await self.channel.exchange([command], self.timeouts.command)
                replies.append(reply)
                if command.startswith((b"MAIL", b"RSET")) and reply.code != 250:
                    break
                if command.startswith(b"RCPT") and reply.code in (250, 251):
                    accepted += 1
            return replies

    async def _end_stray_data(self, data: list[Reply]) -> None:
        """A server that said 354 despite no recipient gets an empty body, then RSET."""
        if data and data[0].code == 354:
            with at_stage("message", self.where, self.timeouts.data, self.channel.close):
                await self.channel.exchange([b".\r\n"], self.timeouts.data)

    async def close(self) -> None:
        await self.channel.quit(self.timeouts.command)


def _checked(encode: Callable[[str], bytes], address: str,
             kind: type[errors.SMTPFailure]) -> bytes:
    """The encoded address, or ``kind`` without sending anything: an address with a line
    break would let one mail inject SMTP commands into the session."""
    try:
        return encode(address)
    except ValueError as exc:
        raise kind(f"the address {address!r} contains a control character; nothing was sent",
                   stage="mail" if kind is errors.SenderRejected else "rcpt") from exc


async def _hello(client: aiosmtplib.SMTP, ep: Endpoint, where: Where, timeouts: Timeouts) -> None:
    """EHLO, with Twisted's HELO fallback only when neither TLS nor AUTH is needed."""
    helo_allowed = not (ep.require_tls or ep.password)
    detail = "EHLO and HELO" if helo_allowed else "EHLO (HELO cannot carry STARTTLS or AUTH)"
    with at_stage("ehlo", where, timeouts.command, detail=detail):
        try:
            await client.ehlo(timeout=timeouts.command)
        except aiosmtplib.SMTPHeloError:
            if not helo_allowed or not client.is_connected:
                raise
            await client.helo(timeout=timeouts.command)


async def _auth_login_like_twisted(client: aiosmtplib.SMTP, user: str, password: str, *,
                                   timeout: float | None) -> aiosmtplib.SMTPResponse:
    """AUTH LOGIN as Twisted (so Synapse) does it: ``AUTH LOGIN`` alone, then the user name
    and the password each after a 334. aiosmtplib sends the user name with the command (an
    initial response Twisted never sends), which some servers answer differently. A 2xx
    at any step means logged in (a server may accept before asking for the password)."""
    import base64

    step = await client.execute_command(b"AUTH", b"LOGIN", timeout=timeout)
    for secret in (user, password):
        if 200 <= step.code < 300:
            return step
        if step.code != 334:
            raise aiosmtplib.SMTPAuthenticationError(step.code, step.message)
        step = await client.execute_command(base64.b64encode(secret.encode("utf-8")),
                                            timeout=timeout)
    if not 200 <= step.code < 300:
        raise aiosmtplib.SMTPAuthenticationError(step.code, step.message)
    return step


def _bound_login(client: aiosmtplib.SMTP) -> Any:
    async def login(user: str, password: str, *, timeout: float | None) -> Any:
        return await _auth_login_like_twisted(client, user, password, timeout=timeout)
    return login


async def _authenticate(client: aiosmtplib.SMTP, ep: Endpoint, where: Where,
                        timeouts: Timeouts, order: tuple[str, ...], encrypted: bool) -> None:
    """AUTH with the first offered mechanism in ``order``; on 504/534/535 try the next one
    if ``ep.fallback`` (Twisted never does: twisted#5803, spec twisted-smtp.md 5)."""
    server = f"{ep.host}:{ep.port}"
    if not client.supports_extension("auth"):
        raise errors.AuthFailure(
            f"{server} does not offer AUTH{'' if encrypted else ' on this unencrypted connection'}"
            f", so smtp_user {ep.user!r} cannot log in", stage="auth")
    offered = client.server_auth_methods
    usable = [m for m in order if m in offered]
    if not usable:
        raise errors.AuthFailure(
            f"{server} offers only {' '.join(m.upper() for m in offered)}; maildoctor can use "
            f"{', '.join(m.upper() for m in order)}", stage="auth")
    assert ep.password is not None
    user, password = ep.user or "", ep.password.reveal()
    for index, mechanism in enumerate(usable):
        method = (_bound_login(client) if mechanism == "login" else
                  getattr(client, f"auth_{mechanism.replace('-', '')}"))
        try:
            with at_stage("auth", where, timeouts.command, detail=mechanism.upper()):
                await method(user, password, timeout=timeouts.command)
            return
        except errors.AuthFailure as failure:
            last = index == len(usable) - 1
            if last or not ep.fallback or failure.code not in FALLBACK_CODES:
                raise
        if not client.is_connected:
            raise errors.ConnectionLost(
                f"{server} closed the connection after refusing {mechanism.upper()}",
                stage="auth")
