"""SMTP replies and message bodies as bytes, with no I/O.

The pipelining channel (``channel.py``) must match several replies that may arrive in one
TCP segment, or one reply split over several, to the commands sent before them, in order.
aiosmtplib's reader hands out one reply per read and drops bytes that arrive while nobody
is reading, so it cannot do this; these helpers can, and are tested without sockets.
"""

from __future__ import annotations

import re

from maildoctor.replies import MalformedLine, Reply, parse_reply_line

__all__ = ["MalformedReply", "Reply", "ReplyParser", "address_arg", "encode_data"]

MAX_LINE = 4096
"""Longest reply line accepted; RFC 5321 asks for 512, real servers send longer texts."""


# One reply type and one line parser for the whole package (maildoctor.replies); a line
# that is not a reply raises MalformedLine, which the Mailer's boundary translates.
MalformedReply = MalformedLine


class ReplyParser:
    """Turns a byte stream into complete replies, keeping any partial one for later."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._code: int | None = None
        self._lines: list[str] = []

    def feed(self, data: bytes) -> list[Reply]:
        """Add bytes; return every reply they complete, in arrival order."""
        self._buffer.extend(data)
        replies: list[Reply] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    raise MalformedReply("a reply line longer than 4096 bytes")
                return replies
            line = bytes(self._buffer[: end + 1]).rstrip(b"\r\n")
            del self._buffer[: end + 1]
            reply = self._line(line)
            if reply is not None:
                replies.append(reply)

    def _line(self, line: bytes) -> Reply | None:
        if line[3:4] not in (b"", b" ", b"-"):
            raise MalformedReply(f"not an SMTP reply line: {line[:40]!r}")
        try:
            parsed = parse_reply_line(line.decode("utf-8", "replace"))
        except MalformedLine:
            raise MalformedReply(f"not an SMTP reply line: {line[:40]!r}") from None
        code = parsed.code
        if self._code is not None and code != self._code:
            raise MalformedReply(f"reply code changed inside a multi-line reply: {line[:40]!r}")
        self._code = code
        self._lines.append(parsed.text)
        if not parsed.last:
            return None
        reply = Reply(code, "\n".join(self._lines))
        self._code, self._lines = None, []
        return reply


_BARE_LINE_END = re.compile(rb"\r\n|\r|\n")


def encode_data(message: bytes) -> bytes:
    """The bytes to send after ``354``: CRLF line ends, dot-stuffed, ending in ``CRLF.CRLF``.

    Done once per mail, on bytes, with C-speed ``count``/``replace``: a mail from Python's
    ``email`` package (``as_string()``, what Synapse sends) has bare LF line ends, so that
    case is one ``replace``; only a mix of line ends needs the regex. Once every line ends in
    CRLF, a line-leading dot is exactly ``CRLF .`` (or a dot at the very start).
    """
    if b"\r" not in message:
        body = message.replace(b"\n", b"\r\n")
    elif message.count(b"\r\n") == message.count(b"\n") == message.count(b"\r"):
        body = message
    else:
        body = _BARE_LINE_END.sub(b"\r\n", message)
    if b"\n." in body:
        body = body.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


_FORBIDDEN_IN_ADDRESS = re.compile(r"[\x00-\x1f<>]")


def address_arg(address: str) -> bytes:
    """``<address>`` for MAIL FROM / RCPT TO; refuses control characters (command injection)."""
    if _FORBIDDEN_IN_ADDRESS.search(address):
        raise ValueError(f"an envelope address contains a forbidden character: {address!r}")
    return b"<" + address.encode("utf-8") + b">"
