"""An upstream that refuses chosen recipients and accepts the others in the same transaction.

The test server (maildoctor.testing) overrides RCPT for every address at once; to show that
one refused recipient neither blocks nor bounces the others, the relay needs an upstream that
answers per address, as a real server does for an unknown mailbox. Plain aiosmtpd with a
small handler, run on its own loop in a thread; it records what it accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP


@dataclass(frozen=True)
class Delivered:
    rcpt_tos: tuple[str, ...]
    data: bytes


class PickySink:
    """``refuse`` maps an address to the reply its RCPT gets (e.g. 550 user unknown)."""

    def __init__(self, refuse: Mapping[str, str], *, answer_quit: bool = True) -> None:
        self.refuse = {k.lower(): v for k, v in refuse.items()}
        self.answer_quit = answer_quit
        """False: QUIT is never answered, as from a host that froze or a network that went
        dark after the last mail (the connection stays open, nothing comes back)."""
        self.delivered: list[Delivered] = []
        self.refusals: Counter[str] = Counter()
        self.mail_reply: str | None = None
        """When set, every MAIL FROM gets this reply (a provider throttling the account)."""
        self.mail_refused_at: list[float] = []
        """time.monotonic() of each MAIL FROM refused with ``mail_reply``."""
        self.host = "127.0.0.1"
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="picky-sink")
        self._sessions: list[SMTP] = []

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        reply = self.mail_reply
        if reply is not None:
            self.mail_refused_at.append(time.monotonic())
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address.lower() in self.refuse:
            self.refusals[address.lower()] += 1
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered.append(Delivered(tuple(envelope.rcpt_tos),
                                        bytes(envelope.original_content or b"")))
        return f"250 2.0.0 Ok: queued as P{len(self.delivered)}"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.answer_quit:
            await asyncio.Event().wait()  # never set: aborted when the sink stops
        return "221 Bye"

    def _session(self) -> SMTP:
        session = SMTP(self, hostname="picky.test")
        self._sessions.append(session)
        return session

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(self._loop.create_server(
            self._session, self.host, 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    def __enter__(self) -> PickySink:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("picky sink did not start")
        return self

    def _abort_all(self) -> None:
        """Close every connection, as a server that goes away does (no silent sockets)."""
        for session in self._sessions:
            transport = session.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        self._loop.stop()

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._abort_all)
        self._thread.join(10)
