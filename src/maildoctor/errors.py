"""maildoctor's exceptions. OS, ssl and socket errors become these at one boundary,
always with ``raise ... from exc``.

    MaildoctorError
    ├── ConfigLoadError          a config file is unusable (unreadable, not YAML, too big...)
    ├── UsageError               bad command-line input
    ├── StorageError             the relay's queue could not be written (disk full, I/O error)
    └── SMTPFailure              sending or probing failed; .stage and .reply say where and what
        ├── NotConfiguredError   the config cannot send at all (e.g. no password with a user)
        ├── ResolveError         the host name does not resolve
        ├── ConnectFailure       refused, timed out or unreachable
        ├── TLSFailure           handshake or certificate verification failed
        ├── GreetingRejected     the server greeted with something other than 220
        ├── AuthFailure          credentials refused, or no usable mechanism
        ├── SenderRejected       MAIL FROM refused
        ├── RecipientRejected    RCPT TO refused
        ├── DataRejected         DATA or the message refused
        ├── ServerHung           no reply within the timeout (also a TimeoutError)
        └── ConnectionLost       the server closed the connection mid-dialogue

Messages name the cause in plain words and never contain a secret.
"""

from __future__ import annotations


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

    def __init__(self, message: str, *, stage: str = "", code: int | None = None,
                 reply: str = "") -> None:
        self.message = message
        self.stage = stage
        self.code = code
        self.reply = reply
        super().__init__(message)


class NotConfiguredError(SMTPFailure):
    """The config cannot work whatever the server does (e.g. smtp_user without smtp_pass)."""


class ResolveError(SMTPFailure):
    """The SMTP host name does not resolve."""


class ConnectFailure(SMTPFailure, ConnectionError):
    """TCP connection refused, timed out or unreachable."""


class TLSFailure(SMTPFailure):
    """TLS handshake or certificate verification failed."""


class GreetingRejected(SMTPFailure):
    """The server's greeting was not 220."""


class AuthFailure(SMTPFailure):
    """Authentication failed or was impossible."""


class SenderRejected(SMTPFailure):
    """MAIL FROM was refused."""


class RecipientRejected(SMTPFailure):
    """RCPT TO was refused."""


class DataRejected(SMTPFailure):
    """DATA, or the message after it, was refused."""


class ServerHung(SMTPFailure, TimeoutError):
    """The server did not answer within the timeout."""


class ConnectionLost(SMTPFailure, ConnectionError):
    """The server closed the connection in the middle of the dialogue."""
