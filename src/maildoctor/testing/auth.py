"""SASL mechanisms for the test server beyond aiosmtpd's built-in LOGIN and PLAIN.

aiosmtpd finds ``auth_<MECH>`` methods on the handler (``__`` stands for ``-``) and calls them
with the SMTP protocol and the AUTH arguments; they talk to the client with
``server.challenge_auth`` and return an ``AuthResult``. The outcome (reply, drop, silence) is
decided in one place, ``server.auth_outcome``, so every mechanism fails the same configured way.

- CRAM-MD5 (RFC 2195) is real: a fresh challenge, and the client's HMAC-MD5 checked against the
  plaintext credential. ``CRAM-MD5-BROKEN`` is advertised as ``CRAM-MD5`` and always refuses the
  response, like Dovecot with hashed passwords (synapse#10280), which is the trap Twisted walks
  into because it prefers CRAM-MD5 and never falls back.
- XOAUTH2 (Google's SASL profile) accepts a bearer token equal to the user's password, and on
  failure sends the JSON error challenge and waits for the client's empty line, as Gmail does.

The pure helpers (:func:`cram_challenge`, :func:`cram_response`, :func:`parse_xoauth2`) take no
sockets and are tested on their own.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import time
from typing import Any, Protocol

from aiosmtpd.smtp import MISSING, AuthResult, LoginPassword

# What Postfix + Dovecot answered in synapse-observed.md when CRAM-MD5 could not be verified.
BROKEN_CRAM_REPLY = "535 5.7.8 Error: authentication failed: (reason unavailable)"
XOAUTH2_ERROR = {"status": "401", "schemes": "Bearer", "scope": "https://mail.example.org/"}


class AuthServer(Protocol):
    """The parts of the SMTP protocol object the mechanisms use."""

    credentials: dict[str, str]
    accept_any_login: bool
    cram_broken: bool
    server_name: str

    async def challenge_auth(self, challenge: str | bytes, encode_to_b64: bool = ...) -> Any: ...
    async def push(self, status: str | bytes) -> None: ...
    def auth_outcome(
        self, mechanism: str, user: str | None, ok: bool, fail_reply: str | None = None
    ) -> AuthResult: ...


def cram_challenge(server_name: str) -> bytes:
    """A unique challenge in the RFC 2195 shape ``<random.timestamp@host>``."""
    return f"<{int.from_bytes(os.urandom(6), 'big')}.{int(time.time())}@{server_name}>".encode()


def cram_response(user: str, password: str, challenge: bytes) -> bytes:
    """What a correct client sends back: ``user SP hex(HMAC-MD5(password, challenge))``."""
    digest = hmac.new(password.encode("utf-8"), challenge, "md5").hexdigest()
    return f"{user} {digest}".encode()


def parse_xoauth2(blob: bytes) -> tuple[str | None, str | None]:
    """(user, bearer token) from ``user=U^Aauth=Bearer T^A^A``; None where missing."""
    user = token = None
    for part in blob.split(b"\x01"):
        text = part.decode("utf-8", "replace")
        if text.startswith("user="):
            user = text[5:]
        elif text.lower().startswith("auth=bearer "):
            token = text[12:].strip()
    return user, token


def password_matches(credentials: dict[str, str], user: str | None, given: bytes) -> bool:
    expected = credentials.get(user or "")
    return expected is not None and hmac.compare_digest(expected.encode("utf-8"), given)


def check_login_password(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    """aiosmtpd ``authenticator`` for the built-in LOGIN and PLAIN.

    aiosmtpd's PLAIN splits ``authzid\\0user\\0pass`` and ignores the authzid, so both forms
    Twisted sends (``user\\0user\\0pass``, then ``\\0user\\0pass``) reach this check.
    """
    assert isinstance(auth_data, LoginPassword)
    user = auth_data.login.decode("utf-8", "replace")
    ok = server.accept_any_login or password_matches(server.credentials, user, auth_data.password)
    result: AuthResult = server.auth_outcome(mechanism, user, ok)
    return result


async def auth_cram_md5(server: AuthServer, args: list[str]) -> AuthResult:
    if len(args) > 1:  # CRAM-MD5 has no initial response
        await server.push("501 5.5.4 Syntax: AUTH CRAM-MD5 takes no initial response")
        return AuthResult(success=False, handled=True)
    challenge = cram_challenge(server.server_name)
    blob = await server.challenge_auth(challenge)
    if blob is MISSING:  # aborted with "*" or not base64: aiosmtpd has already answered
        return AuthResult(success=False, handled=True)
    user, _, digest = bytes(blob).decode("utf-8", "replace").rpartition(" ")
    if server.cram_broken:
        return server.auth_outcome("CRAM-MD5", user or None, False, BROKEN_CRAM_REPLY)
    expected = server.credentials.get(user)
    ok = server.accept_any_login or (expected is not None and hmac.compare_digest(
        cram_response(user, expected, challenge), f"{user} {digest.lower()}".encode()
    ))
    return server.auth_outcome("CRAM-MD5", user or None, ok)


async def auth_xoauth2(server: AuthServer, args: list[str], reply_mode: bool) -> AuthResult:
    if len(args) > 1:
        try:
            blob = base64.b64decode(args[1], validate=True)
        except ValueError:
            await server.push("501 5.5.2 Can't decode base64")
            return AuthResult(success=False, handled=True)
    else:
        answer = await server.challenge_auth(b"")
        if answer is MISSING:
            return AuthResult(success=False, handled=True)
        blob = bytes(answer)
    user, token = parse_xoauth2(blob)
    ok = token is not None and (
        server.accept_any_login or password_matches(server.credentials, user, token.encode())
    )
    if not ok and reply_mode:
        # Gmail's way: a 334 carrying a JSON error, the client answers with an empty line.
        await server.challenge_auth(json.dumps(XOAUTH2_ERROR).encode())
    return server.auth_outcome("XOAUTH2", user, ok)
