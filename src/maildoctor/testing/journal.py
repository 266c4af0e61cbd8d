"""What the test server saw: :class:`Event`, :class:`ReceivedMessage` and the :class:`Journal`.

The server runs in its own thread; tests and the CLI read from another. The journal is the only
state they share, guarded by one condition variable, so a test can *wait* for "the client
disconnected" or "a message arrived" instead of sleeping.

Secrets: AUTH payloads are never recorded (only the mechanism, the user name and the outcome),
and every detail line still goes through a :class:`~maildoctor.secrets.Redactor` that knows the
server's passwords and their base64 forms.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from maildoctor.secrets import Redactor


class EventKind(StrEnum):
    CONNECT = "connect"
    COMMAND = "command"  # a command the client sent (AUTH payloads masked)
    REPLY = "reply"  # what the server answered (first line, plus a line count)
    AUTH = "auth"  # an authentication attempt: mechanism, username, success
    TLS = "tls"  # a completed handshake (STARTTLS or implicit)
    TLS_FAILED = "tls-failed"
    MESSAGE = "message"  # a mail accepted after the final dot
    FAULT = "fault"  # an injected misbehaviour took effect
    ERROR = "error"  # an unexpected exception inside the server
    DISCONNECT = "disconnect"


@dataclass(frozen=True)
class Event:
    session: int  # connection number, from 1
    kind: EventKind
    detail: str
    elapsed: float  # seconds since the server started
    mechanism: str | None = None
    username: str | None = None
    success: bool | None = None

    def __str__(self) -> str:
        return f"[#{self.session} {self.elapsed:8.3f}s] {self.kind.value:<10} {self.detail}"


@dataclass(frozen=True)
class ReceivedMessage:
    """A mail the server accepted (answered 2xx after the final dot)."""

    session: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # exactly as received, dot-unstuffed, CRLF line ends
    authenticated_as: str | None
    tls: bool

    @cached_property
    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


class Journal:
    """Thread-safe record of events and messages, with waiting and an optional live callback."""

    def __init__(
        self,
        redactor: Redactor,
        on_event: Callable[[Event], None] | None = None,
        on_message: Callable[[ReceivedMessage], None] | None = None,
    ) -> None:
        self._redact = redactor
        self._on_event = on_event
        self._on_message = on_message
        self._started = time.monotonic()
        self._cond = threading.Condition()
        self._events: list[Event] = []
        self._messages: list[ReceivedMessage] = []

    def record(self, session: int, kind: EventKind, detail: str, **extra: object) -> Event:
        event = Event(
            session, kind, self._redact(detail), round(time.monotonic() - self._started, 3),
            **extra,  # type: ignore[arg-type]
        )
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a broken log sink (closed stdout) must not break the server
                self._on_event = None
        return event

    def store(self, message: ReceivedMessage) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()
        if self._on_message is not None:
            try:
                self._on_message(message)
            except Exception:  # same policy as on_event: never break the session
                self._on_message = None

    @property
    def events(self) -> list[Event]:
        with self._cond:
            return list(self._events)

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._cond:
            return list(self._messages)

    def wait_for(
        self,
        kind: EventKind | None = None,
        predicate: Callable[[Event], bool] | None = None,
        timeout: float = 5.0,
    ) -> Event:
        """The first event (already seen or still to come) matching ``kind`` and ``predicate``."""

        def find() -> Event | None:
            for event in self._events:
                if (kind is None or event.kind == kind) and (
                    predicate is None or predicate(event)
                ):
                    return event
            return None

        with self._cond:
            found = self._cond.wait_for(find, timeout)
        if found is None:
            raise TimeoutError(f"no {kind or 'matching'} event within {timeout} s")
        return found

    def wait_for_messages(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self._messages) >= count, timeout)
            if not ok:
                raise TimeoutError(f"{len(self._messages)} of {count} messages within {timeout} s")
            return list(self._messages)
