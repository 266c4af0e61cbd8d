"""Pure SMTP parsing: reply lines, EHLO capabilities, the mechanism Synapse picks.

No I/O here, so every rule is tested without sockets (tests/smtp/test_parse.py).
Two views of EHLO are kept on purpose:

- the **Twisted view** (what Synapse acts on, spec twisted-smtp.md 2.2): each line is
  split once on whitespace into keyword and value, keywords are case-sensitive, a later
  line overwrites an earlier one, ``AUTH=LOGIN`` is a different keyword from ``AUTH``;
- the **tolerant view** (what the server means): any ``AUTH``/``auth``/``AUTH=`` line.

The difference between the two is itself a finding ("the server offers LOGIN only in
the legacy ``AUTH=`` form, which Synapse ignores").
"""

from __future__ import annotations

from maildoctor.replies import MalformedLine as MalformedLine  # one parser, re-exported
from maildoctor.replies import ReplyLine as ReplyLine
from maildoctor.replies import parse_reply_line as parse_reply_line
from maildoctor.smtp import twisted_caps

# What ``--all-mechanisms`` knows how to try.
PROBE_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2")


def ehlo_lines(text: str) -> tuple[str, ...]:
    """The lines of an EHLO reply's text (prefixes already stripped), first = server name."""
    return tuple(text.split("\n")) if text else ()


def twisted_capabilities(lines: tuple[str, ...]) -> dict[str, str | None]:
    """EHLO lines as Twisted stores them (see :mod:`maildoctor.smtp.twisted_caps`)."""
    return twisted_caps.parse_capabilities(lines)


def twisted_auth_mechanisms(lines: tuple[str, ...]) -> tuple[str, ...]:
    """Mechanisms Twisted sees: only an exact ``AUTH`` keyword with a value, upper-cased."""
    return twisted_caps.auth_mechanisms(twisted_caps.parse_capabilities(lines))


def twisted_offers_starttls(lines: tuple[str, ...]) -> bool:
    return twisted_caps.offers_starttls(twisted_caps.parse_capabilities(lines))


def offered_mechanisms(lines: tuple[str, ...]) -> tuple[str, ...]:
    """Every mechanism the server means to offer, in any spelling (``auth``, ``AUTH=``)."""
    seen: list[str] = []
    for line in lines[1:]:
        word, _, rest = line.partition(" ")
        key = word.upper()
        if key.startswith("AUTH="):
            rest = f"{word[5:]} {rest}"
        elif key != "AUTH":
            continue
        for mech in rest.upper().split():
            if mech not in seen:
                seen.append(mech)
    return tuple(seen)


def synapse_mechanism(twisted_offered: tuple[str, ...]) -> str | None:
    """The mechanism Synapse's Twisted uses: the first of CRAM-MD5, LOGIN, PLAIN offered.

    The server's order is irrelevant and there is no fallback to the next one.
    """
    return twisted_caps.choose_mechanism(twisted_offered)


def is_fully_qualified(name: str) -> bool:
    """Whether an EHLO name looks like a FQDN (many servers reject bare host names)."""
    name = name.rstrip(".")
    if not name or "." not in name or name.startswith("localhost"):
        return False
    return all(label and label[0] != "-" for label in name.split("."))


def envelope_address(address: str, fqdn: str) -> str:
    """The MAIL FROM address Twisted sends: ``@<fqdn>`` appended when there is no ``@``."""
    return address if "@" in address else f"{address}@{fqdn}"
