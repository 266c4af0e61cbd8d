"""SMTP replies: the one reply type and line parser, and the inputs a reply can blame.

A reply is a three-digit code, an optional RFC 3463 enhanced status code
(``class.subject.detail``: ``5.7.1``) at the start of its text, and text lines. The wire
readers (the probe's :mod:`maildoctor.smtp.wire`, the Mailer's pipelining channel) both
split lines with :func:`parse_reply_line` and build :class:`Reply` values; nothing else
parses replies.

:class:`Blame` names the inputs a refusal can blame; :mod:`maildoctor.meaning` decides
which one a reply blames. Pure: no I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Blame", "EnhancedCode", "MalformedLine", "Reply", "ReplyLine", "parse_reply_line"]


class MalformedLine(ValueError):
    """A reply line that does not start with a three-digit code."""


@dataclass(frozen=True)
class ReplyLine:
    code: int
    last: bool  # ``NNN `` or bare ``NNN``; ``NNN-`` continues
    text: str


def parse_reply_line(line: str) -> ReplyLine:
    """Parse one reply line (without CRLF) the way Twisted does: three digits, then
    ``-`` for a continuation or anything else for the last line."""
    head = line[:3]
    if len(head) < 3 or not head.isdigit() or not head.isascii():
        raise MalformedLine(line)
    sep = line[3:4]
    # The one boundary where server reply text enters: made printable here, so no reply
    # can write control sequences to a terminal, a log line or an annotation downstream.
    from maildoctor.printable import printable

    return ReplyLine(int(head), sep != "-", printable(line[4:]))


_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


@dataclass(frozen=True)
class EnhancedCode:
    """RFC 3463 ``class.subject.detail``: class 2/4/5, subject 0-7 (1 addressing, 2 mailbox,
    3 mail system, 4 network, 5 protocol, 6 content, 7 security or policy)."""

    klass: int
    subject: int
    detail: int

    @classmethod
    def find(cls, text: str) -> EnhancedCode | None:
        """The enhanced code at the start of ``text`` (or of its first line), if any."""
        found = _ENHANCED.match(text)
        if found is None:
            return None
        return cls(int(found[1]), int(found[2]), int(found[3]))

    def __str__(self) -> str:
        return f"{self.klass}.{self.subject}.{self.detail}"


@dataclass(frozen=True)
class Reply:
    """One complete (possibly multi-line) reply: ``code`` and the text lines joined by ``\\n``."""

    code: int
    text: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400

    @property
    def transient(self) -> bool:
        """4xx: the server asks us to try again later."""
        return 400 <= self.code < 500

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(self.text.split("\n"))

    @property
    def enhanced(self) -> EnhancedCode | None:
        return EnhancedCode.find(self.text)

    def __str__(self) -> str:
        return f"{self.code} {self.text}".rstrip()


class Blame(StrEnum):
    """The input a refusal names: what the admin must change (or wait for)."""

    SENDER = "sender"  # notif_from / the envelope sender
    RECIPIENT = "recipient"  # the address mail goes to
    CREDENTIALS = "credentials"  # smtp_user / smtp_pass
    MECHANISM = "mechanism"  # the AUTH mechanism itself (not the password)
    TLS = "tls"  # the server wants TLS first, or TLS is broken
    CLIENT_HOST = "client-host"  # this machine: its IP, reverse DNS or EHLO name
    RATE_LIMIT = "rate-limit"  # too many mails or connections: later, or slower
    GREYLISTED = "greylisted"  # a deliberate temporary refusal that a retry clears
    CONTENT = "content"  # the message: size, spam filter, headers
    ACCOUNT = "account"  # the provider account's state (disabled, suspended, SMTP AUTH off)
    SERVER = "server"  # the server's own trouble (temporary local error)
    UNKNOWN = "unknown"
