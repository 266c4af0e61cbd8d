"""Wait for a mail by its Message-ID in a mailbox over IMAP (IMAPS by default), in the Inbox
and the Junk/Spam folder, then fetch it and (unless kept) delete it. Every wait is bounded;
imaplib's and ssl's errors become :class:`ImapFailure` here, with the password never in a
message (it is only ever handed to LOGIN)."""

from __future__ import annotations

import imaplib
import re
import ssl
import time
from dataclasses import dataclass

from maildoctor.resolver import printable
from maildoctor.secrets import Secret

JUNK_NAMES = ("junk", "spam", "junk e-mail", "junk email", "bulk mail", "[gmail]/spam")
LIST_LINE = re.compile(rb'\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$')


class ImapFailure(Exception):
    """The mailbox could not be reached, logged into or read."""


@dataclass(frozen=True)
class Found:
    folder: str
    junk: bool
    raw: bytes
    seconds: float  # from the start of the wait until the mail was seen


def _folders(conn: imaplib.IMAP4) -> list[tuple[str, bool]]:
    """(name, is_junk) for the Inbox and every folder that looks like Junk/Spam."""
    status, lines = conn.list()
    out = [("INBOX", False)]
    for line in lines if status == "OK" else []:
        m = LIST_LINE.match(line) if isinstance(line, bytes) else None
        if not m:
            continue
        name = m.group("name").decode("utf-7", "replace").strip().strip('"')
        special = b"\\junk" in m.group("flags").lower()
        if special or name.lower() in JUNK_NAMES:
            out.append((name, True))
    return out


def connect(host: str, port: int, *, user: str, password: Secret, tls: bool = True,
            ca_file: str | None = None, timeout: float = 10.0) -> imaplib.IMAP4:
    try:
        if tls:
            context = ssl.create_default_context(cafile=ca_file) if ca_file \
                else ssl.create_default_context()
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, port, ssl_context=context,
                                                    timeout=timeout)
        else:
            conn = imaplib.IMAP4(host, port, timeout=timeout)
        conn.login(user, password.reveal())
    except imaplib.IMAP4.error as exc:
        raise ImapFailure(f"IMAP login as {printable(user)} refused: "
                          f"{printable(str(exc).replace(password.reveal(), '********'))}") \
            from exc
    except (OSError, ssl.SSLError) as exc:
        raise ImapFailure(f"IMAP {printable(host)}:{port}: {printable(str(exc))}") from exc
    return conn


def wait_for(conn: imaplib.IMAP4, message_id: str, *, timeout: float,
             delete: bool = True, poll: float = 0.5) -> Found | None:
    """The mail with ``message_id`` once it is in the Inbox or Junk, or None at the deadline."""
    started = time.monotonic()
    wanted = message_id.strip().strip("<>")
    try:
        folders = _folders(conn)
        while True:
            for folder, junk in folders:
                status, _ = conn.select(f'"{folder}"')
                if status != "OK":
                    continue
                status, data = conn.search(None, "HEADER", "Message-ID", wanted)
                ids = data[0].split() if status == "OK" and data and data[0] else []
                if ids:
                    status, parts = conn.fetch(ids[-1], "(BODY.PEEK[])")
                    raw = next((p[1] for p in parts if isinstance(p, tuple)), b"")
                    seen = time.monotonic() - started
                    if delete:
                        for i in ids:
                            conn.store(i, "+FLAGS", "\\Deleted")
                        conn.expunge()
                    return Found(folder, junk, raw, seen)
            if time.monotonic() - started > timeout:
                return None
            time.sleep(poll)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise ImapFailure(f"reading the mailbox: {printable(str(exc))}") from exc
