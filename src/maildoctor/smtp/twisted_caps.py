"""How Twisted's SMTP client reads EHLO capabilities and walks an AUTH exchange.

Pure helpers for :mod:`maildoctor.synapse.model.predict` (spec/twisted-smtp.md 2.2, 2.4).
Twisted is stricter and odder than most clients, and Synapse inherits every quirk:

- each capability line is split once on whitespace into keyword and value, and stored
  in a dict, so the *last* line with a keyword wins and the server-name line is stored
  like any other;
- keywords are compared case-sensitively: ``starttls`` and ``auth login`` do not count,
  and the legacy ``AUTH=LOGIN`` line is stored under the keyword ``AUTH=LOGIN``;
- ``AUTH`` with no value counts as no AUTH; mechanism names are upper-cased;
- the client knows CRAM-MD5, LOGIN and PLAIN, always prefers them in that order
  whatever the server's order, and never falls back to the next one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from maildoctor.smtp.facts import Reply

#: Twisted's authenticators, in the fixed order it tries them.
TWISTED_MECHANISMS: tuple[str, ...] = ("CRAM-MD5", "LOGIN", "PLAIN")


def parse_capabilities(lines: Iterable[str]) -> dict[str, str | None]:
    """Capability lines as Twisted stores them: keyword -> value (``None`` when bare)."""
    caps: dict[str, str | None] = {}
    for line in lines:
        parts = line.split(None, 1)
        if not parts:
            continue
        caps[parts[0]] = parts[1] if len(parts) > 1 else None
    return caps


def offers_starttls(caps: dict[str, str | None]) -> bool:
    """``STARTTLS`` exactly, in upper case."""
    return "STARTTLS" in caps


def auth_mechanisms(caps: dict[str, str | None]) -> tuple[str, ...]:
    """The mechanisms of the ``AUTH`` line (upper-cased); empty when Twisted sees no AUTH."""
    value = caps.get("AUTH")
    if not value:
        return ()
    return tuple(m.upper() for m in value.split())


def choose_mechanism(offered: Sequence[str]) -> str | None:
    """The first of CRAM-MD5, LOGIN, PLAIN that the server lists, else ``None``."""
    for mechanism in TWISTED_MECHANISMS:
        if mechanism in offered:
            return mechanism
    return None


def why_no_usable_auth(caps: dict[str, str | None]) -> str:
    """Plain words for "Twisted found no AUTH it can use" (the three causes differ)."""
    if auth_mechanisms(caps):
        listed = " ".join(auth_mechanisms(caps))
        return f"the server offers only mechanisms Twisted does not implement ({listed})"
    if "AUTH" in caps:
        return "the server advertises a bare AUTH with no mechanisms"
    lowered = [k for k in caps if k.lower() == "auth" or k.upper().startswith("AUTH=")]
    if lowered:
        return (
            f"the server writes its AUTH line as {lowered[-1]!r}, which Twisted does not "
            "recognise (it wants an upper-case 'AUTH' followed by a space)"
        )
    return "the server does not advertise AUTH at this point of the dialogue"


@dataclass(frozen=True)
class AuthVerdict:
    """How an AUTH exchange ends for Twisted.

    ``result``: ``ok``; ``declined`` (AUTHDeclinedError); ``server-error``
    (AuthenticationError, the reply to ``AUTH <mech>``); ``malformed`` (a challenge
    that is not valid base64); ``dropped`` (the server closed or said nothing more);
    ``unknown`` (the exchange was not observed far enough).
    ``reply`` is the reply that decided it.
    """

    result: str
    reply: Reply | None = None


def _malformed(challenge: Reply) -> bool:
    try:
        base64.b64decode(challenge.text.encode("ascii", "replace"))
    except binascii.Error:
        return True
    return False


def walk_auth(mechanism: str, replies: Sequence[Reply], dropped: bool) -> AuthVerdict:
    """Follow the server's replies the way Twisted's client would.

    PLAIN: the initial response goes with the command; on any non-235 reply Twisted
    retries once with an empty authzid, and the second reply decides.
    CRAM-MD5 and LOGIN: the reply to ``AUTH <mech>`` must be 334 (else the server
    "declined the AUTH" -> AuthenticationError); after that every 334 is a new
    challenge, 235 is success and anything else is AUTHDeclinedError.
    """
    if mechanism == "PLAIN":
        for reply in replies[:2]:
            if reply.code == 235:
                return AuthVerdict("ok", reply)
        if len(replies) >= 2:
            return AuthVerdict("declined", replies[1])
        return AuthVerdict("dropped" if dropped else "unknown")
    if not replies:
        return AuthVerdict("dropped" if dropped else "unknown")
    if replies[0].code != 334:
        return AuthVerdict("server-error", replies[0])
    challenge, rest = replies[0], list(replies[1:])
    while True:
        if _malformed(challenge):
            # Twisted answers "*" and fails with 501 whatever the server says next.
            if dropped and not rest:
                return AuthVerdict("dropped")
            return AuthVerdict("malformed", rest[0] if rest else None)
        if not rest:
            return AuthVerdict("dropped" if dropped else "unknown")
        reply = rest.pop(0)
        if reply.code == 235:
            return AuthVerdict("ok", reply)
        if reply.code != 334:
            return AuthVerdict("declined", reply)
        challenge = reply
