"""Blocking wrappers for callers without an event loop (the CLI, scripts, tests).

A :class:`SyncMailer` owns a private event loop for its whole life, because pooled
connections belong to the loop that opened them: a fresh ``asyncio.run`` per call would
strand them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

from maildoctor import errors
from maildoctor.config.settings import EmailSettings
from maildoctor.mailer.mailer import Mail, Mailer, SendResult


class SyncMailer:
    """``Mailer`` with blocking methods. Use as ``with``; not thread-safe."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self._runner = asyncio.Runner()

    @classmethod
    def from_settings(cls, settings: EmailSettings, **options: Any) -> SyncMailer:
        """Same options as :meth:`Mailer.from_settings`."""
        return cls(Mailer.from_settings(settings, **options))

    def __repr__(self) -> str:
        return f"Sync{self.mailer!r}"

    def send(self, sender: str, recipients: str | Sequence[str], data: bytes) -> SendResult:
        return self._runner.run(self.mailer.send(sender, recipients, data))

    def send_many(self, mails: Iterable[Mail | tuple[str, Sequence[str] | str, bytes]]
                  ) -> list[SendResult | errors.SMTPFailure]:
        return self._runner.run(self.mailer.send_many(mails))

    def close(self) -> None:
        try:
            self._runner.run(self.mailer.close())
        finally:
            self._runner.close()

    def __enter__(self) -> SyncMailer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
