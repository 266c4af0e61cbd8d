"""maildoctor's exceptions: the one error tree of the probe and the Mailer alike.

OS, ssl and socket errors become these at one boundary per engine (the probe's
``smtp/wire.py``, the Mailer's ``mailer/failures.py``), always with ``raise ... from exc``.
Each carries its context as data, so that explanations read fields, never the message:

    MaildoctorError
    ├── ConfigLoadError          a config file is unusable (unreadable, not YAML, too big...)
    ├── UsageError               bad command-line input
    ├── StorageError             the relay's queue could not be written (disk full, I/O error)
    └── SMTPFailure              .stage, .code, .reply (.enhanced, .meaning) say where and what
        ├── NotConfiguredError   the config cannot send at all (e.g. no password with a user)
        ├── ResolveError         the host name does not resolve (.outcome)
        ├── ConnectFailure       refused, timed out or unreachable (.outcome, .errno_name)
        ├── TLSFailure           TLS failed
        │   ├── CertificateRejected  verification failed (.verify_code, .verify_message)
        │   └── HandshakeFailed      not TLS, protocol mismatch, dropped mid-handshake
        ├── GreetingRejected     the server greeted with something other than 220
        ├── AuthFailure          credentials refused, or no usable mechanism (.mechanism)
        ├── SenderRejected       MAIL FROM refused
        ├── RecipientRejected    RCPT TO refused
        ├── DataRejected         DATA or the message refused
        ├── ReplyLimitExceeded   endless or huge reply (.finding)
        ├── MalformedReply       a line without a three-digit code (.line)
        ├── ServerHung           no reply within the timeout (also a TimeoutError)
        │   └── SlowReply        bytes kept coming but the reply never ended in time
        └── ConnectionLost       the server closed the connection mid-dialogue (also a
                                 ConnectionError)

A refusal's meaning (which input the reply blames) is :attr:`SMTPFailure.meaning`, from
:func:`maildoctor.replies.classify`. Messages name the cause in plain words and never
contain a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maildoctor.meaning import Meaning
    from maildoctor.replies import EnhancedCode, Reply


class MaildoctorError(Exception):
    """Base class of every maildoctor error."""


class UsageError(MaildoctorError):
    """Bad command-line input."""


class StorageError(MaildoctorError, OSError):
    """The relay's queue file could not be written durably (disk full, I/O error, read-only).

    Transient by nature: the relay answers ``452 4.3.1`` and tries again later."""


class ConfigLoadError(MaildoctorError):
    """A config file cannot be used at all. ``file``/``line``/``column`` locate it when known."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None,
        column: int | None = None, hint: str = "",
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
                if self.column:
                    where += f":{self.column}"
            where += ": "
        return f"{where}{self.message}"


class SMTPFailure(MaildoctorError):
    """Sending or probing failed at ``stage``; ``code``/``reply`` hold the server's words."""

    default_stage = ""  # the stage this kind of failure happens at, when not given

    def __init__(self, message: str, *, stage: str = "", code: int | None = None,
                 reply: str = "") -> None:
        self.message = message
        self.stage = stage or self.default_stage
        self.code = code
        self.reply = reply
        super().__init__(message)

    @property
    def server_reply(self) -> Reply | None:
        """The server's reply that ended the step, when there was one."""
        from maildoctor.replies import Reply

        return None if self.code is None or self.code <= 0 else Reply(self.code, self.reply)

    @property
    def enhanced(self) -> EnhancedCode | None:
        reply = self.server_reply
        return None if reply is None else reply.enhanced

    def meaning(self, provider: str | None = None) -> Meaning | None:
        """Which input the server's reply blames (None without a reply)."""
        from maildoctor.meaning import classify

        reply = self.server_reply
        return None if reply is None else classify(reply, self.stage, provider=provider)


class NotConfiguredError(SMTPFailure):
    """The config cannot work whatever the server does (e.g. smtp_user without smtp_pass)."""


class ResolveError(SMTPFailure):
    """The SMTP host name does not resolve. ``outcome``: nxdomain, tempfail or invalid."""

    def __init__(self, message: str, *, outcome: str = "nxdomain", stage: str = "resolve") \
            -> None:
        super().__init__(message, stage=stage)
        self.outcome = outcome


class ConnectFailure(SMTPFailure, ConnectionError):
    """TCP connection refused, timed out or unreachable (``outcome``, ``errno_name``)."""

    def __init__(self, message: str, *, outcome: str = "unreachable", errno_name: str = "",
                 stage: str = "connect") -> None:
        super().__init__(message, stage=stage)
        self.outcome = outcome
        self.errno_name = errno_name


class TLSFailure(SMTPFailure):
    """TLS failed (a refused STARTTLS carries the reply)."""


class CertificateRejected(TLSFailure):
    """Certificate verification failed: OpenSSL's ``verify_code`` and words."""

    def __init__(self, message: str, *, stage: str, verify_code: int,
                 verify_message: str) -> None:
        super().__init__(message, stage=stage)
        self.verify_code = verify_code
        self.verify_message = verify_message

    @property
    def verdict(self) -> str:
        """untrusted, name-mismatch or expired, from OpenSSL's verify code."""
        if self.verify_code == 62 or "mismatch" in self.verify_message.lower():
            return "name-mismatch"  # X509_V_ERR_HOSTNAME_MISMATCH
        if self.verify_code in (9, 10):
            return "expired"  # X509_V_ERR_CERT_NOT_YET_VALID / CERT_HAS_EXPIRED
        return "untrusted"


class HandshakeFailed(TLSFailure):
    """The TLS handshake itself failed (no certificate verdict)."""


class GreetingRejected(SMTPFailure):
    """The server's greeting was not 220."""

    default_stage = "greeting"


class AuthFailure(SMTPFailure):
    """Authentication failed or was impossible; ``mechanism`` names the one tried."""

    def __init__(self, message: str, *, stage: str = "auth", code: int | None = None,
                 reply: str = "", mechanism: str = "") -> None:
        super().__init__(message, stage=stage, code=code, reply=reply)
        self.mechanism = mechanism


class SenderRejected(SMTPFailure):
    """MAIL FROM was refused."""

    default_stage = "mail"


class RecipientRejected(SMTPFailure):
    """RCPT TO was refused."""

    default_stage = "rcpt"


class DataRejected(SMTPFailure):
    """DATA, or the message after it, was refused."""

    default_stage = "data"


class ReplyLimitExceeded(SMTPFailure):
    """A reply too long, too large or with too many lines (``finding`` names which)."""

    def __init__(self, message: str, *, stage: str, finding: str) -> None:
        super().__init__(message, stage=stage)
        self.finding = finding


class MalformedReply(SMTPFailure):
    """A line that is not an SMTP reply line (``line``: its start)."""

    def __init__(self, message: str, *, stage: str, line: str) -> None:
        super().__init__(message, stage=stage)
        self.line = line


class ServerHung(SMTPFailure, TimeoutError):
    """The server did not answer within the timeout."""


class SlowReply(ServerHung):
    """Part of a reply arrived, the rest did not within the timeout (slow drip)."""


class ConnectionLost(SMTPFailure, ConnectionError):
    """The server closed the connection in the middle of the dialogue."""
