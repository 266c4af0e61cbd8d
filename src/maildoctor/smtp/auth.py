"""AUTH exchanges, byte-for-byte as Synapse's Twisted client makes them.

The encodings come from ``aiosmtplib.auth`` except the first PLAIN attempt: Twisted
sends ``authzid=user`` (``user\\0user\\0pass``) first and, on any non-235 reply, once
more with an empty authzid (``\\0user\\0pass``), which no library does.
Every payload line is sent with ``secret=True`` so the transcript shows a placeholder.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiosmtplib.auth import (
    auth_crammd5_verify,
    auth_login_encode,
    auth_plain_encode,
    auth_xoauth2_encode,
)
from aiosmtplib.errors import SMTPAuthenticationError

from maildoctor.errors import ConnectionLost, SMTPFailure
from maildoctor.smtp.facts import AuthAttempt, Reply
from maildoctor.smtp.wire import Connection

STAGE = "auth"


def plain_with_authzid(user: str, password: str) -> str:
    """Twisted's first PLAIN response: base64(user NUL user NUL password)."""
    u, p = user.encode("utf-8"), password.encode("utf-8")
    return base64.b64encode(u + b"\0" + u + b"\0" + p).decode("ascii")


@dataclass(frozen=True)
class AuthOutcome:
    attempt: AuthAttempt
    error: SMTPFailure | None = None  # a hang, limit or protocol error that ended it


async def authenticate(conn: Connection, mechanism: str, user: str, password: str,
                       timeout: float) -> AuthOutcome:
    """One AUTH attempt; every reply is kept, a dropped connection is recorded."""
    replies: list[Reply] = []

    async def say(line: str, *, secret: bool = True) -> Reply:
        reply = await conn.command(line, STAGE, timeout, secret=secret)
        replies.append(reply)
        return reply

    exchange = _EXCHANGES.get(mechanism)
    if exchange is None:
        raise ValueError(f"unsupported mechanism {mechanism}")
    try:
        await exchange(say, user, password)
    except ConnectionLost as exc:
        return AuthOutcome(AuthAttempt(mechanism, tuple(replies), dropped=True), exc)
    except SMTPFailure as exc:
        return AuthOutcome(AuthAttempt(mechanism, tuple(replies)), exc)
    return AuthOutcome(AuthAttempt(mechanism, tuple(replies)))


Say = Callable[..., Awaitable[Reply]]


async def _plain(say: Say, user: str, password: str) -> None:
    first = await say(f"AUTH PLAIN {plain_with_authzid(user, password)}")
    if first.code != 235:
        await say(f"AUTH PLAIN {auth_plain_encode(user, password).decode('ascii')}")


async def _login(say: Say, user: str, password: str) -> None:
    name, secret = auth_login_encode(user, password)
    if (await say("AUTH LOGIN", secret=False)).code != 334:
        return
    if (await say(name.decode("ascii"))).code != 334:
        return
    await say(secret.decode("ascii"))


async def _cram_md5(say: Say, user: str, password: str) -> None:
    challenge = await say("AUTH CRAM-MD5", secret=False)
    if challenge.code != 334:
        return
    try:
        response = auth_crammd5_verify(user, password, challenge.text.strip())
    except SMTPAuthenticationError:
        await say("*", secret=False)  # Twisted cancels on a malformed challenge
        return
    await say(response.decode("ascii"))


async def _xoauth2(say: Say, user: str, password: str) -> None:
    reply = await say(f"AUTH XOAUTH2 {auth_xoauth2_encode(user, password).decode('ascii')}")
    if reply.code == 334:  # an error report in JSON; the client must answer empty
        await say("", secret=False)


_EXCHANGES: dict[str, Callable[[Say, str, str], Awaitable[None]]] = {
    "PLAIN": _plain,
    "LOGIN": _login,
    "CRAM-MD5": _cram_md5,
    "XOAUTH2": _xoauth2,
}
