"""What the test server should do: :class:`ServerOptions` and the :class:`Fault` catalogue.

Options are plain frozen data so that a scenario (``maildoctor.testing.scenarios``) is a value
that tests, benchmarks, ``make demo`` and the ``testserver`` command share. Everything is
validated here, once, so a typo in a scenario fails at construction and not mid-session.

Reply overrides are keyed by stage. A reply may span several lines (separate them with ``\\n``);
the continuation markers (``250-``) are fixed up automatically. In ``mail`` and ``rcpt`` replies
``{address}`` is replaced by the address the client sent, as Postfix quotes it.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from maildoctor.testing.certs import CERT_KINDS, CertKind

TLSMode = Literal["plain", "starttls", "implicit"]
AuthFailure = Literal["reply", "drop", "silent", "reply-close"]

TLS_MODES: tuple[TLSMode, ...] = ("plain", "starttls", "implicit")
AUTH_FAILURES: tuple[AuthFailure, ...] = ("reply", "drop", "silent", "reply-close")
MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "CRAM-MD5-BROKEN")
STAGES = (
    "greeting", "ehlo", "helo", "starttls", "auth", "auth_failed", "mail", "rcpt", "data", "dot",
)

DEFAULT_USER = "synapse@example.org"
DEFAULT_PASSWORD = "s3cret"  # a documented test credential, not a secret

_REPLY_LINE = re.compile(r"^[0-9]{3}([ -].*)?$")


class Fault(enum.Enum):
    """A way the server misbehaves. Several may be combined (e.g. SLOW_DRIP + DROP_AFTER_MAIL).

    "Drop after X" means X is answered normally and the connection is closed, without a reply,
    when the client's next command arrives (reading it first makes the client see a clean EOF
    rather than a reset). DROP_AFTER_DATA closes after the final dot without answering it.
    """

    SILENT = "silent"  # accept TCP (and TLS, in implicit mode), never send a byte
    DROP_AFTER_GREETING = "drop-after-greeting"
    DROP_AFTER_EHLO = "drop-after-ehlo"  # also after HELO
    DROP_AFTER_MAIL = "drop-after-mail"
    DROP_AFTER_DATA = "drop-after-data"  # the message is read, the dot never answered
    STALL_AFTER_EHLO = "stall-after-ehlo"  # answer EHLO, then read everything, answer nothing
    ENDLESS_REPLY = "endless-reply"  # a greeting line that never ends (no CRLF, ever)
    HUGE_REPLY = "huge-reply"  # an EHLO reply with thousands of lines
    SLOW_DRIP = "slow-drip"  # every reply sent one byte per ``drip_interval``
    INVALID_UTF8 = "invalid-utf8"  # a 220 greeting with bytes that are not UTF-8
    NOT_SMTP = "not-smtp"  # a POP3 server: "+OK Dovecot ready."

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Accept ``drop-after-ehlo``, ``DROP_AFTER_EHLO`` or ``drop_after_ehlo``."""
        wanted = text.strip().lower().replace("_", "-")
        for fault in cls:
            if fault.value == wanted:
                return fault
        names = ", ".join(f.value for f in cls)
        raise ValueError(f"unknown fault {text!r}; expected one of: {names}")


# Faults that replace the whole SMTP dialogue, so at most one of them makes sense.
EXCLUSIVE_FAULTS = frozenset({Fault.SILENT, Fault.ENDLESS_REPLY, Fault.NOT_SMTP})


def reply_lines(text: str) -> list[str]:
    """Split a reply override into wire lines with correct ``NNN-``/``NNN `` markers."""
    lines = [line.rstrip("\r") for line in text.strip("\n").split("\n")]
    fixed = []
    for index, line in enumerate(lines):
        marker = " " if index == len(lines) - 1 else "-"
        rest = line[4:] if len(line) > 3 else ""
        fixed.append(f"{line[:3]}{marker}{rest}".rstrip() if rest else line[:3])
    return fixed


def reply_code(text: str) -> int:
    return int(text.strip()[:3])


@dataclass(frozen=True)
class ServerOptions:
    """Everything the test server can be told. Defaults: a plain, well-behaved submission
    server offering ``AUTH LOGIN PLAIN`` and accepting ``synapse@example.org`` / ``s3cret``."""

    host: str = "127.0.0.1"
    port: int = 0
    tls: TLSMode = "plain"
    cert: CertKind = "trusted"
    cert_names: tuple[str, ...] = ("localhost", "127.0.0.1", "mail.test")
    # Advertised in this order. CRAM-MD5-BROKEN is advertised as CRAM-MD5 and always fails.
    mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN")
    credentials: Mapping[str, str] = field(
        default_factory=lambda: {DEFAULT_USER: DEFAULT_PASSWORD}, repr=False
    )
    accept_any_login: bool = False  # any user and password (CRAM-MD5-BROKEN still fails)
    auth_required: bool = False  # 530 at MAIL without a successful AUTH
    auth_after_starttls_only: bool = False
    advertise_auth: bool = True
    # When False, STARTTLS still works if sent but is missing from the EHLO reply.
    advertise_starttls: bool = True
    starttls_required: bool = False  # 530 "Must issue a STARTTLS command first"
    replies: Mapping[str, str] = field(default_factory=dict)
    greeting_delay: float = 0.0
    faults: tuple[Fault, ...] = ()
    # After failed credentials: "reply" = 535 and stay open (aiosmtpd's and Postfix's way);
    # "drop" = close without a reply; "silent" = send nothing, stay open (what an aiosmtpd
    # authenticator returning AuthResult(success=False) does); "reply-close" = 535, then close.
    auth_failure: AuthFailure = "reply"
    max_message_size: int | None = None  # None: no limit and no SIZE in EHLO
    server_name: str = "mail.test"  # in the greeting and the first EHLO line
    idle_timeout: float = 300.0  # close a connection idle this long (as aiosmtpd does)
    tls_handshake_timeout: float = 60.0  # implicit TLS: give up on a client that sends no hello
    drip_interval: float = 0.1  # SLOW_DRIP: seconds per byte
    huge_reply_lines: int = 5000  # HUGE_REPLY: extra EHLO lines
    allow_remote: bool = False  # listen on a non-loopback address

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # normalise in place; the dataclass is frozen
        set_(self, "faults", tuple(f if isinstance(f, Fault) else Fault.parse(f)
                                   for f in self.faults))
        set_(self, "mechanisms", tuple(m.upper() for m in self.mechanisms))
        set_(self, "cert_names", tuple(self.cert_names))
        set_(self, "credentials", dict(self.credentials))
        set_(self, "replies", {k.lower(): v for k, v in self.replies.items()})
        _validate(self)

    def replace(self, **changes: object) -> ServerOptions:
        """A copy with some fields changed (``dataclasses.replace`` by another name)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def has(self, fault: Fault) -> bool:
        return fault in self.faults

    def reply(self, stage: str) -> list[str] | None:
        """The override for ``stage`` as wire lines, or None to behave normally."""
        text = self.replies.get(stage)
        return reply_lines(text) if text else None

    @property
    def advertised_mechanisms(self) -> tuple[str, ...]:
        return tuple("CRAM-MD5" if m == "CRAM-MD5-BROKEN" else m for m in self.mechanisms)


def _validate(opts: ServerOptions) -> None:
    def bad(message: str) -> ValueError:
        return ValueError(f"ServerOptions: {message}")

    if opts.tls not in TLS_MODES:
        raise bad(f"tls={opts.tls!r}; expected one of {TLS_MODES}")
    if opts.cert not in CERT_KINDS:
        raise bad(f"cert={opts.cert!r}; expected one of {CERT_KINDS}")
    if opts.tls != "plain" and not opts.cert_names:
        raise bad("a TLS server needs at least one certificate name")
    if opts.auth_failure not in AUTH_FAILURES:
        raise bad(f"auth_failure={opts.auth_failure!r}; expected one of {AUTH_FAILURES}")
    for mech in opts.mechanisms:
        if mech not in MECHANISMS:
            raise bad(f"unknown mechanism {mech!r}; expected some of {MECHANISMS}")
    if len(set(opts.advertised_mechanisms)) != len(opts.mechanisms):
        raise bad("a mechanism is listed twice (CRAM-MD5 and CRAM-MD5-BROKEN cannot be combined)")
    for stage, text in opts.replies.items():
        if stage not in STAGES:
            raise bad(f"unknown reply stage {stage!r}; expected one of {STAGES}")
        for line in text.strip("\n").split("\n"):
            if not _REPLY_LINE.match(line.rstrip("\r")):
                raise bad(f"reply for {stage!r} must start with a 3-digit code: {line!r}")
    if len(EXCLUSIVE_FAULTS.intersection(opts.faults)) > 1:
        raise bad("SILENT, ENDLESS_REPLY and NOT_SMTP each replace the whole dialogue; pick one")
    if not 0 <= opts.port <= 65535:
        raise bad(f"port {opts.port} out of range")
    for name in ("greeting_delay", "drip_interval"):
        if getattr(opts, name) < 0:
            raise bad(f"{name} must not be negative")
    for name in ("idle_timeout", "tls_handshake_timeout"):
        if getattr(opts, name) <= 0:
            raise bad(f"{name} must be positive")
    if opts.max_message_size is not None and opts.max_message_size <= 0:
        raise bad("max_message_size must be positive (or None for no limit)")
