"""Finding email failures in Synapse's log records, and grouping identical ones.

Detection only: each finding gets a ``kind`` (a key of the explanation table in
:mod:`maildoctor.synapse.logs.explain`); what it means is decided there.

What counts as an email failure (spec synapse-email.md 2.4-2.6, twisted-smtp.md 3A/3B):

- a record whose traceback ends in an SMTP/connection exception, with the mail it
  concerned taken from the message (``Error sending threepid validation email to X``,
  ``Exception processing notifs``, ``Failed handle request via ...``);
- Twisted's ``Unhandled Error`` for the ``smtp_pass``-without-``smtp_user`` TypeError
  (logger ``twisted``, no request context, a few ms after ``Sending email to``): it is
  the hang of the latest open send, with its cause known;
- legacy (Synapse < 1.92) ``SMTP Client retrying server. Retry: N`` lines;
- startup errors about the email config, printed to stderr or logged;
- the silent hang: ``Sending email to X`` in an HTTP request (``POST-12``) and then nothing
  for that request, or only ``Connection from client lost before response was sent``.
  (The email pusher logs nothing after a successful send either, so its hangs cannot be
  seen in a log; its failures can: ``Exception processing notifs``.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from maildoctor.secrets import Redactor
from maildoctor.synapse.logs.records import ExceptionInfo, Record, read_records

__all__ = ["MAX_EXCERPT", "Finding", "Group", "ScanResult", "classify_exception", "scan"]

#: Lines of log kept per group (the first occurrence), and distinct samples kept.
MAX_EXCERPT = 24
_MAX_SAMPLES = 5
_MAX_PENDING = 10_000

_SENDING = re.compile(r"^Sending email to ['\"]?(?P<addr>.+?)['\"]?\s*$")
# Synapse names HTTP request contexts METHOD-N. Only there does a missing follow-up line
# mean a hang: a send from a background process (the email pusher) logs nothing after a
# success either, so it cannot be told from a hang and is never reported as one.
_HTTP_REQUEST = re.compile(r"^[A-Z]+-\d+$")
_CLIENT_LOST = "Connection from client lost before response was sent"
_RETRY = re.compile(r"SMTP Client retrying server\. Retry: (?P<n>\d+)")
# The TypeError Twisted's authenticators raise for a password without a user name
# (twisted-smtp.md 2.4 item 6): LOGIN, then PLAIN and CRAM-MD5.
_NONE_USER_CRASH = ("a bytes-like object is required, not 'NoneType'",
                    "unsupported operand type(s) for +: 'NoneType' and 'bytes'")
_MAIL_CONTEXT = (
    (re.compile(r"Error sending threepid validation email to (?P<addr>\S+)"), "validation"),
    (re.compile(r"Exception processing notifs"), "notification"),
    (re.compile(r"Failed handle request via"), "request"),
    (re.compile(r"Unhandled Error"), "twisted"),
)

# Startup problems: (pattern on one line, kind). Checked on every line, in any position.
_STARTUP = (
    (re.compile(r"enabled on this homeserver due to a partial"), "config-notif-from-missing"),
    (re.compile(r"email\.enable_notifs is True but required keys are missing"),
     "config-notif-from-missing"),
    (re.compile(r"Invalid notif_from address"), "config-notif-from-invalid"),
    (re.compile(r"email\.(force_tls|require_transport_security) requires email\.enable_tls"),
     "config-tls-flags"),
    (re.compile(r"Configuration requires email address at registration, but email validation"),
     "config-require-3pid"),
    (re.compile(r"'int' object has no attribute 'encode'"), "config-numeric-secret"),
    (re.compile(r"Bad duration suffix"), "config-bad-duration"),
    (re.compile(r"Config option email\.\S+ must be|Configured template directory does not exist"
                r"|TemplateNotFound"), "config-email-other"),
)
_CONFIG_HEADER = re.compile(r"^Error in configuration at '(?P<path>email(?:\.[^']*)?)'")


@dataclass(frozen=True)
class Finding:
    """One failure, as detected (already redacted)."""

    kind: str
    line_no: int
    timestamp: str | None
    summary: str
    exception: ExceptionInfo | None = None
    mail: str | None = None
    recipient: str | None = None
    request: str | None = None
    confirmed: bool = False
    excerpt: tuple[str, ...] = ()


@dataclass
class Group:
    """Identical findings folded together: how many, when, and one excerpt."""

    first: Finding
    count: int = 0
    last_timestamp: str | None = None
    last_line: int = 0
    recipients: list[str] = field(default_factory=list)
    mails: list[str] = field(default_factory=list)
    confirmed: int = 0

    def add(self, finding: Finding) -> None:
        self.count += 1
        self.last_timestamp = finding.timestamp or self.last_timestamp
        self.last_line = finding.line_no
        self.confirmed += finding.confirmed
        for value, bucket in ((finding.recipient, self.recipients), (finding.mail, self.mails)):
            if value and value not in bucket and len(bucket) < _MAX_SAMPLES:
                bucket.append(value)


@dataclass
class ScanResult:
    groups: list[Group]
    lines: int
    records: int

    @property
    def failures(self) -> int:
        return sum(g.count for g in self.groups)


def classify_exception(exc: ExceptionInfo) -> str | None:
    """The failure kind for an exception, or None when it is not about sending email."""
    name, text, code = exc.name, exc.reply_text, exc.code
    direct = {"AUTHRequiredError": "auth-required", "AuthenticationError": "auth-mechanism",
              "TLSRequiredError": "tls-required", "SMTPTLSError": "starttls-refused",
              "TLSError": "starttls-refused", "EHLORequiredError": "ehlo-required",
              "SMTPProtocolError": "not-smtp", "DNSLookupError": "dns",
              "ConnectionRefusedError": "refused", "SMTPTimeoutError": "smtp-timeout",
              "ConnectionAborted": "tls-name-mismatch", "UnicodeEncodeError": "non-ascii-address"}
    if name in direct:
        return direct[name]
    if name == "AUTHDeclinedError":
        return "auth-temporary" if code is not None and 400 <= code < 500 else "auth-declined"
    if name == "SMTPDeliveryError":
        return _refusal_kind(exc) or _delivery_kind(code, text)
    if name == "SMTPConnectError":
        return _connect_kind(code, text)
    if name == "TimeoutError" and "User timeout caused connection failure" in text:
        return "tcp-timeout"
    if name in ("ConnectError", "ConnectingCancelledError", "NoRouteError"):
        return "connect-error"
    if name == "TypeError" and any(sig in text for sig in _NONE_USER_CRASH):
        return "pass-without-user"
    if name == "RuntimeError" and "Invalid 'to' address" in text:
        return "invalid-to"
    if name == "ValueError" and re.search(r"format character|incomplete format", text):
        return "bad-format"
    if name == "KeyError":
        return "subject-placeholder"
    return None


def _refusal_kind(exc: ExceptionInfo) -> str | None:
    """What the server's own refusal (Twisted's ``<<<`` trailer, else the reply) blames,
    when it says: Postfix answers sender rules at RCPT, which Twisted reports as "No
    recipients accepted"; greylisting is a 450 at RCPT that a retry clears."""
    from maildoctor.meaning import classify
    from maildoctor.replies import Blame, Reply

    said = [x.strip()[4:] for x in exc.extra if x.strip().startswith("<<< ")]
    reply = said[-1] if said else exc.text
    code = int(reply[:3]) if reply[:3].isdigit() else None
    if code is None or code < 400:
        return None
    stage = "rcpt" if "No recipients accepted" in exc.text else ""
    blame = classify(Reply(code, reply[4:]), stage).blame
    return {Blame.SENDER: "sender-rejected", Blame.GREYLISTED: "greylisted",
            Blame.RECIPIENT: "recipient-rejected"}.get(blame)


def _delivery_kind(code: int | None, text: str) -> str:
    if "No recipients accepted" in text:
        return "recipient-rejected"
    if code == 530 or "STARTTLS" in text.upper():
        return "auth-needed-at-mail"
    if code == 552:
        return "message-too-large"
    if re.search(r"sender|from address|not owned|not verified|identit|relay|send ?as", text, re.I):
        return "sender-rejected"
    return "delivery-refused"


def _connect_kind(code: int | None, text: str) -> str:
    lowered = text.lower()
    for needle, kind in (("certificate verify failed", "tls-verify"),
                         ("wrong version number", "tls-mode"),
                         ("verificationerror", "tls-name-mismatch"),
                         ("dnsmismatch", "tls-name-mismatch"),
                         ("connection was refused", "refused"),
                         ("dns lookup failed", "dns"),
                         ("user timeout", "tcp-timeout"),
                         ("bytes-like object", "pass-without-user"),
                         ("'nonetype' and 'bytes'", "pass-without-user")):
        if needle in lowered:
            return kind
    if code is not None:
        return "greeting-refused"
    return "connection-dropped"


@dataclass
class _Pending:
    record: Record
    recipient: str


class _Scanner:
    """The streaming state: open ``Sending email`` requests and the groups so far."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str, str], Group] = {}
        self.pending: dict[str, _Pending] = {}
        self.records = 0
        self.lines = 0
        self._held: Finding | None = None
        # Requests whose send Twisted crashed (bounded like `pending`).
        self.crashed: dict[str, Group] = {}

    def emit(self, finding: Finding) -> Group:
        exc = finding.exception
        detail = "" if finding.kind in ("hang", "legacy-retry") else (
            exc.first_line if exc else finding.summary)
        detail = re.sub(r"[\w.+-]+@[\w.-]+", "<addr>", detail)
        key = (finding.kind, exc.name if exc else "", detail)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(first=finding)
        group.add(finding)
        return group

    def raw_line(self, number: int, text: str, stamp: str | None) -> None:
        """Startup errors: a specific message wins over the generic ``Error in
        configuration at 'email...'`` header printed just before it."""
        held = self._held
        if text.startswith("    "):  # source code quoted in a traceback frame
            return
        for pattern, kind in _STARTUP:
            if pattern.search(text):
                self._held = None
                excerpt = (held.summary, text) if held else (text,)
                self.emit(Finding(kind, number, stamp, text.strip(), excerpt=excerpt))
                return
        if held is not None:
            self._held = None
            if text.strip():
                summary = f"{held.summary.strip()} {text.strip()}"
                self.emit(Finding(held.kind, held.line_no, held.timestamp, summary,
                                  excerpt=(held.summary, text)))
                return
            self.emit(held)
        header = _CONFIG_HEADER.match(text)
        if header:
            self._held = Finding("config-email-other", number, stamp, text, excerpt=(text,))

    def record(self, rec: Record) -> None:
        self.records += bool(rec.logger)
        key = rec.request or "-"
        sending = _SENDING.match(rec.message) if rec.logger.endswith("send_email") else None
        if sending:
            self._open(key, _Pending(rec, sending.group("addr")))
        elif rec.message.startswith(_CLIENT_LOST) and key in self.pending:
            self._hang(self.pending.pop(key), confirmed=True)
        elif rec.message.startswith(_CLIENT_LOST) and key in self.crashed:
            self.crashed.pop(key).confirmed += 1  # the crash's request did hang
        elif _RETRY.search(rec.message):
            self.emit(Finding("legacy-retry", rec.line_no, rec.timestamp, rec.message,
                              request=rec.request, excerpt=(_header(rec),)))
        elif not self._startup(rec) and not self._failure(rec, key) and rec.request:
            # Anything else logged for a request with an open send: the send returned.
            self.pending.pop(rec.request, None)

    def _startup(self, rec: Record) -> bool:
        for pattern, kind in _STARTUP:
            if pattern.search(rec.message):
                self.emit(Finding(kind, rec.line_no, rec.timestamp, rec.message,
                                  excerpt=_excerpt(rec)))
                return True
        return False

    def _failure(self, rec: Record, key: str) -> bool:
        mail, recipient = None, None
        for pattern, name in _MAIL_CONTEXT:
            match = pattern.search(rec.message)
            if match:
                mail, recipient = name, match.groupdict().get("addr")
                break
        exc = rec.exception if rec.continuation else None
        if exc is None:
            return False
        kind = classify_exception(exc)
        pending = self.pending.get(key)
        crash = kind == "pass-without-user" and mail not in ("validation", "notification")
        if crash:
            if not self._is_twisted_crash(rec):
                return False
            if pending is None and self.pending:
                # Twisted logs the crash outside the request's context: it belongs to the
                # latest open send, which will now never return: that request's hang.
                key = next(reversed(self.pending))
                pending = self.pending[key]
            mail = None
            if pending is not None and not _HTTP_REQUEST.match(pending.record.request or ""):
                mail = "notification"  # the email pusher's send: it stays stuck
        about_email = (exc.qualname.startswith("twisted.mail")
                       or mail in ("validation", "notification")
                       or (pending is not None and mail == "request")
                       or crash)
        if not about_email:
            return False
        if kind in ("subject-placeholder", "bad-format") and mail != "notification":
            kind = "bad-format" if kind == "bad-format" else None
        if kind is None:
            kind = "other" if mail in ("validation", "notification") else None
        if kind is None:
            return False
        self.pending.pop(key, None)
        request = rec.request
        if pending is not None:
            recipient = recipient or pending.recipient
            request = request or pending.record.request
        group = self.emit(Finding(kind, rec.line_no, rec.timestamp, exc.first_line,
                                  exception=exc, mail=mail, recipient=recipient,
                                  request=request, excerpt=_excerpt(rec, pending)))
        if crash and request is not None and len(self.crashed) < _MAX_PENDING:
            self.crashed[request] = group
        return True

    def _is_twisted_crash(self, rec: Record) -> bool:
        """The TypeError texts are plain Python: count one only as Twisted's SMTP crash
        when Twisted reported it (``Unhandled Error``) while a send was open, or its
        frames are in Twisted's mail code."""
        by_twisted = rec.logger == "twisted" or "Unhandled Error" in rec.message
        in_smtp = any("twisted/mail" in line or "smtp.py" in line for line in rec.continuation)
        return by_twisted and (bool(self.pending) or in_smtp)

    def _open(self, key: str, pending: _Pending) -> None:
        self.pending.pop(key, None)
        if len(self.pending) >= _MAX_PENDING:
            # Bounded memory: the oldest open send has waited longest; call it a hang.
            self._unanswered(self.pending.pop(next(iter(self.pending))))
        self.pending[key] = pending

    def _unanswered(self, pending: _Pending) -> None:
        if _HTTP_REQUEST.match(pending.record.request or ""):
            self._hang(pending, confirmed=False)

    def _hang(self, pending: _Pending, *, confirmed: bool) -> None:
        rec = pending.record
        self.emit(Finding("hang", rec.line_no, rec.timestamp, rec.message,
                          recipient=pending.recipient, request=rec.request,
                          confirmed=confirmed, excerpt=(_header(rec),)))

    def finish(self) -> ScanResult:
        if self._held is not None:
            self.emit(self._held)
        for pending in list(self.pending.values()):
            self._unanswered(pending)
        self.pending.clear()
        groups = sorted(self.groups.values(), key=lambda g: g.first.line_no)
        return ScanResult(groups, self.lines, self.records)

def _header(rec: Record) -> str:
    stamp = f"{rec.timestamp} - " if rec.timestamp else ""
    if not rec.logger:
        return ""
    return f"{stamp}{rec.logger} - {rec.level} - {rec.request or '-'} - {rec.message}"


def _excerpt(rec: Record, pending: _Pending | None = None) -> tuple[str, ...]:
    """Header lines plus the continuation, traceback frames folded, capped in length."""
    lines = [_header(pending.record)] if pending else []
    lines.append(_header(rec))
    body: list[str] = []
    frames = 0
    for line in rec.continuation:
        if line.startswith("  ") or line.startswith("--- <exception caught here>"):
            frames += 1
            continue
        if frames:
            body.append(f"  ... ({frames} line{'s' * (frames > 1)} of traceback frames)")
            frames = 0
        body.append(line)
    if len(body) > MAX_EXCERPT - len(lines):
        keep = MAX_EXCERPT - len(lines) - 1
        body = ["  ...", *body[-keep:]]
    return tuple(x for x in (*lines, *body) if x)


def scan(lines: Iterable[str], redactor: Redactor | None = None) -> ScanResult:
    """Scan a whole log (any iterable of lines, read lazily) for email failures."""
    scanner = _Scanner()

    def counted() -> Iterator[str]:
        for line in lines:
            scanner.lines += 1
            yield line

    for rec in read_records(counted(), redactor, on_raw=scanner.raw_line):
        scanner.record(rec)
    return scanner.finish()
