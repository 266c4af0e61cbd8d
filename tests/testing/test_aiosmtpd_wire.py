"""What unmodified aiosmtpd sends after a failed AUTH LOGIN: the fact behind ``auth_failure``.

spec/synapse-observed.md saw Synapse hang on a wrong password against aiosmtpd, while Twisted
alone got a clean ``AUTHDeclinedError 535`` (spec/twisted-smtp.md A5). The wire settles it: with
aiosmtpd's own callback, or an authenticator returning ``AuthResult(success=False,
handled=False)``, the server answers ``535 5.7.8 Authentication credentials invalid`` and keeps
the connection open. An authenticator returning plain ``AuthResult(success=False)`` (``handled``
defaults to True) makes aiosmtpd send *nothing at all*: Twisted then waits forever. The test
server reproduces these as ``auth_failure="reply"`` and ``"silent"`` (plus ``"drop"``).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from aiosmtpd import __version__ as aiosmtpd_version
from aiosmtpd.smtp import SMTP, AuthResult

QUIET = 0.3


async def _login_with_wrong_password(**smtp_kwargs: Any) -> tuple[bytes, bytes]:
    """(what follows the password line within QUIET s, the reply to a later NOOP)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(object(), hostname="mail.test", auth_require_tls=False, **smtp_kwargs),
        "127.0.0.1", 0,
    )
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async def reply() -> bytes:
            lines = [await reader.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(await reader.readline())
            return b"".join(lines)

        await reply()
        for line in (b"EHLO client.test", b"AUTH LOGIN", base64.b64encode(b"synapse")):
            writer.write(line + b"\r\n")
            await reply()
        writer.write(base64.b64encode(b"wrong") + b"\r\n")
        try:
            after_password = await asyncio.wait_for(reply(), QUIET)
        except TimeoutError:
            after_password = b""
        writer.write(b"NOOP\r\n")
        noop = await asyncio.wait_for(reply(), 5)
        return after_password, noop
    finally:
        writer.close()
        server.close()


def test_this_is_the_aiosmtpd_version_the_spec_observed():
    assert aiosmtpd_version == "1.4.6"


@pytest.mark.parametrize("smtp_kwargs", [
    {"auth_callback": lambda mechanism, login, password: False},
    {"authenticator": lambda *args: AuthResult(success=False, handled=False)},
], ids=["auth_callback", "authenticator-handled-false"])
def test_aiosmtpd_answers_535_and_keeps_the_connection(smtp_kwargs):
    after_password, noop = asyncio.run(_login_with_wrong_password(**smtp_kwargs))
    assert after_password == b"535 5.7.8 Authentication credentials invalid\r\n"
    assert noop == b"250 OK\r\n"


def test_aiosmtpd_sends_nothing_when_the_authenticator_omits_handled():
    after_password, noop = asyncio.run(_login_with_wrong_password(
        authenticator=lambda *args: AuthResult(success=False)
    ))
    assert after_password == b""
    assert noop == b"250 OK\r\n"  # still open: the client simply never hears back
