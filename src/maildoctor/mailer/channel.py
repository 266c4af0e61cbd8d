"""The mail-transaction channel: our own minimal SMTP writer/reader over an open transport.

aiosmtplib opens the connection (TCP, TLS, EHLO, STARTTLS, AUTH). It cannot pipeline: its
protocol expects exactly one reply per write, and discards bytes that arrive while no
command is waiting. So once the session is ready, :class:`Channel` takes over the same
transport (``transport.set_protocol``) and speaks MAIL/RCPT/DATA/RSET/QUIT itself.

With PIPELINING (RFC 2920) ``exchange`` writes a whole group of commands in one write and
then takes the replies from a FIFO, one per command, in order; without it, it writes one
command and waits for its reply before the next. Either way a reply is always matched to
the command at the same position, which is what makes the pipelined path safe.

Errors here are plain builtins (``TimeoutError``, ``ConnectionResetError``,
:class:`~maildoctor.mailer.replies.MalformedReply`); ``failures.translate`` turns them into
maildoctor's errors at the one boundary.
"""

from __future__ import annotations

import asyncio
from collections import deque

from maildoctor.mailer.replies import MalformedReply, Reply, ReplyParser


class Channel(asyncio.Protocol):
    """Owns a connected transport after the handshake; matches replies to commands in order."""

    def __init__(self, transport: asyncio.Transport, *, pipelining: bool) -> None:
        self.pipelining = pipelining
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        self._parser = ReplyParser()
        self._replies: deque[Reply] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._wanted = 0
        """Replies the waiting ``_round`` needs: partial arrivals do not wake it."""
        self._error: BaseException | None = None
        self.writes = 0
        """How many separate writes were made: tests and the benchmark read it."""
        transport.set_protocol(self)

    # --- asyncio.Protocol ------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        try:
            self._replies.extend(self._parser.feed(data))
        except MalformedReply as exc:
            self._fail(exc)
            self._transport.close()
            return
        if len(self._replies) >= self._wanted:
            self._wake()

    def eof_received(self) -> bool:
        self._fail(ConnectionResetError("the server closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        lost = ConnectionResetError("the connection was lost")
        if exc is not None:
            lost.__cause__ = exc
        self._fail(lost)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- API -------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._error is None and not self._transport.is_closing()

    async def exchange(self, commands: list[bytes], timeout: float | None) -> list[Reply]:
        """Send ``commands`` (each a full line or the DATA payload) and return one reply each.

        Pipelined: one write, then the replies. Not pipelined: lock-step.
        """
        if not self.pipelining:
            replies: list[Reply] = []
            for command in commands:
                replies.extend(await self._round([command], timeout))
            return replies
        return await self._round(commands, timeout)

    async def _round(self, commands: list[bytes], timeout: float | None) -> list[Reply]:
        self._raise_if_failed()
        if self._replies:
            # Bytes the server sent on its own (e.g. a 421 before closing): never pair them
            # with the next command.
            unsolicited = self._replies.popleft()
            raise ConnectionResetError(f"the server spoke out of turn: {unsolicited}")
        self._transport.write(b"".join(commands) if len(commands) > 1 else commands[0])
        self.writes += 1
        wanted = self._wanted = len(commands)
        if len(self._replies) < wanted:
            async with asyncio.timeout(timeout):
                while len(self._replies) < wanted:
                    self._raise_if_failed()
                    self._waiter = self._loop.create_future()
                    await self._waiter
        self._wanted = 0
        return [self._replies.popleft() for _ in commands]

    def salvage(self) -> list[Reply]:
        """After a failed ``exchange``: the replies that did arrive for it, in order.

        A group's first reply may settle a mail (the final dot of the previous one) even if
        the server hangs up before answering the rest; dropping it would send that mail
        again. Call only once the channel is closed (``exchange`` failing closes it).
        """
        arrived = list(self._replies)
        self._replies.clear()
        return arrived

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise ConnectionResetError(str(self._error)) from self._error

    async def quit(self, timeout: float | None) -> None:
        """Say QUIT politely and close; errors are ignored, the mail is already delivered."""
        try:
            if self.is_open:
                await self._round([b"QUIT\r\n"], timeout)
        except (OSError, TimeoutError, MalformedReply):
            pass
        finally:
            self.close()

    def close(self) -> None:
        self._transport.close()
        self._fail(ConnectionResetError("the connection was closed"))
