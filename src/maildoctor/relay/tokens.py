"""XOAUTH2 access tokens for the upstream, from a file or a command, refreshed when needed.

Microsoft 365 and Google want OAuth2 (SASL XOAUTH2) instead of passwords; their access tokens
live about an hour. The relay does not run an OAuth2 flow itself: something else keeps a
current token (a file a timer rewrites, or a command such as a provider CLI), and the relay
reads it

- from a file: re-read whenever the file changes, and after the upstream refused a token;
- from a command: run again when the token it printed is about to expire (if it said when),
  and after the upstream refused a token.

The output may be the bare token, or JSON in the shape of an OAuth2 token response
(``{"access_token": "...", "expires_in": 3599}``, or ``"expires_at"`` as a Unix time), so a
``curl`` to the provider's token endpoint can be used directly. Tokens are held as
:class:`~maildoctor.secrets.Secret` and never logged.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from maildoctor import errors
from maildoctor.secrets import Secret

REFRESH_MARGIN = 60.0
"""Seconds before the announced expiry at which a command's token is renewed."""


def parse_token(text: str, now: float) -> tuple[str, float | None]:
    """(token, expiry as a Unix time or None) from a file's or a command's output."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise ValueError("the token output starts with '{' but is not JSON") from exc
        if not isinstance(data, dict):
            raise ValueError("the token JSON is not an object")
        token = data.get("access_token") or data.get("token")
        if not isinstance(token, str) or not token.strip():
            raise ValueError("the token JSON has no \"access_token\"")
        expires: float | None = None
        if isinstance(data.get("expires_at"), int | float):
            expires = float(data["expires_at"])
        elif isinstance(data.get("expires_in"), int | float):
            expires = now + float(data["expires_in"])
        return token.strip(), expires
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    if len(lines) != 1 or any(ch.isspace() for ch in lines[0]):
        raise ValueError("expected one token (one line without spaces) or a JSON object")
    return lines[0], None


def _token_error(message: str) -> errors.AuthFailure:
    """A token failure: an AUTH failure of the XOAUTH2 mechanism, with no server reply."""
    return errors.AuthFailure(message, stage="auth", mechanism="XOAUTH2")


class TokenSource:
    """The current XOAUTH2 access token. Give exactly one of ``file`` and ``command``."""

    def __init__(self, *, file: str | None = None, command: str | None = None,
                 command_timeout: float = 30.0) -> None:
        if (file is None) == (command is None):
            raise errors.UsageError("an XOAUTH2 token needs either a file or a command")
        self.file = file
        self.command = command
        self.command_timeout = command_timeout
        self._token: Secret | None = None
        self._expires: float | None = None
        self._file_stamp: tuple[int, int] | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0
        """How many times a token was (re)loaded: tests and logs read it."""

    def __repr__(self) -> str:
        where = f"file={self.file!r}" if self.file else "command=..."
        return f"TokenSource({where})"

    def invalidate(self) -> None:
        """The upstream refused the token: load a fresh one next time."""
        self._token = None

    async def current(self) -> Secret:
        async with self._lock:
            if self._token is None or self._stale():
                await self._load()
            assert self._token is not None
            return self._token

    def _stale(self) -> bool:
        if self.file is not None:
            return self._stamp() != self._file_stamp
        return self._expires is not None and time.time() >= self._expires - REFRESH_MARGIN

    def _stamp(self) -> tuple[int, int] | None:
        assert self.file is not None
        try:
            info = os.stat(self.file)
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size)

    async def _load(self) -> None:
        now = time.time()
        if self.file is not None:
            stamp = self._stamp()
            try:
                with open(self.file, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                raise _token_error(f"cannot read the XOAUTH2 token file {self.file}: "
                                         f"{exc.strerror}") from exc
            source = f"the XOAUTH2 token file {self.file}"
        else:
            text = await self._run()
            stamp = None
            source = "the output of the XOAUTH2 token command"
        try:
            token, expires = parse_token(text, now)
        except ValueError as exc:
            raise _token_error(f"{source} is unusable: {exc}") from exc
        self._token, self._expires, self._file_stamp = Secret(token), expires, stamp
        self.refreshes += 1

    async def _run(self) -> str:
        assert self.command is not None
        try:
            process = await asyncio.create_subprocess_shell(
                self.command, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise _token_error(f"cannot run the XOAUTH2 token command: {exc.strerror}") from exc
        try:
            async with asyncio.timeout(self.command_timeout):
                out, err = await process.communicate()
        except TimeoutError as exc:
            process.kill()
            await process.wait()
            raise _token_error(f"the XOAUTH2 token command did not finish within "
                                     f"{self.command_timeout} s") from exc
        if process.returncode != 0:
            first = err.decode("utf-8", "replace").strip().splitlines()[:1]
            said = f": {first[0][:200]}" if first else ""
            raise _token_error(f"the XOAUTH2 token command failed with exit status "
                                     f"{process.returncode}{said}")
        return out.decode("utf-8", "replace")
