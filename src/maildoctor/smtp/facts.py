"""What a probe observed about an SMTP server, as plain data.

:class:`ServerFacts` is the probe's output and the Synapse model's input
(``maildoctor.synapse.model.predict.predict``). It holds observations only, never
conclusions: "the port sent a TLS ServerHello first", "EHLO said these lines",
"AUTH LOGIN with the configured credentials got 535". ``None`` means "not
observed" (the probe stopped earlier or skipped the stage).

EHLO lines are kept raw (without the ``250-``/``250 `` prefix) so the model can
parse them the way Twisted does (case-sensitive keywords, last line wins,
``AUTH=`` ignored), which differs from how a tolerant client would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from maildoctor.replies import Reply

__all__ = ["AuthAttempt", "CertificateInfo", "Connect", "Reply", "Resolve", "ServerFacts",
           "Speaks", "TlsVerify"]


class Resolve(StrEnum):
    OK = "ok"
    NXDOMAIN = "nxdomain"  # the name does not exist (or has no address)
    TEMPFAIL = "tempfail"  # resolver failure; might work later
    INVALID = "invalid"  # not a host name at all (an e-mail address, a URL, host:port, empty)


class Connect(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    TIMEOUT = "timeout"  # no SYN-ACK (filtered / blackholed)
    UNREACHABLE = "unreachable"  # no route / network unreachable


class Speaks(StrEnum):
    """What the port does before the client says anything."""

    SMTP = "smtp"  # a numeric SMTP greeting in clear text
    TLS = "tls"  # TLS from the first byte (answered our ClientHello)
    SILENT = "silent"  # accepted TCP, said nothing, and is not TLS
    NOT_SMTP = "not-smtp"  # said something that is not an SMTP reply (POP3, IMAP, HTTP...)
    CLOSED = "closed"  # closed the connection straight away


class TlsVerify(StrEnum):
    """The result of the TLS handshake Synapse would make (its trust store, its name)."""

    OK = "ok"
    UNTRUSTED = "untrusted"  # unknown CA, self-signed, incomplete chain
    NAME_MISMATCH = "name-mismatch"  # the name checked is not in the certificate
    EXPIRED = "expired"  # or not yet valid
    HANDSHAKE_FAILED = "handshake-failed"  # protocol error, e.g. TLS to a plaintext port


@dataclass(frozen=True)
class AuthAttempt:
    """What happened when authenticating with one mechanism and the configured credentials.

    ``replies`` are the server's replies in order (the first to ``AUTH <mech>``, the last
    the verdict). For PLAIN, Synapse's Twisted sends ``user\\0user\\0pass`` and, on any
    failure, retries once with ``\\0user\\0pass``: both exchanges are in ``replies``.
    ``dropped`` is true when the server closed the connection instead of replying.
    """

    mechanism: str
    replies: tuple[Reply, ...] = ()
    dropped: bool = False

    @property
    def final(self) -> Reply | None:
        return self.replies[-1] if self.replies else None

    @property
    def succeeded(self) -> bool:
        return self.final is not None and self.final.code == 235


@dataclass(frozen=True)
class CertificateInfo:
    subject: str = ""
    issuer: str = ""
    names: tuple[str, ...] = ()  # DNS and IP SANs (or the CN when there are none)
    not_before: str = ""  # ISO 8601
    not_after: str = ""
    self_signed: bool = False
    tls_version: str = ""
    verify_error: str = ""  # OpenSSL's words, when verification failed


@dataclass(frozen=True)
class ServerFacts:
    """Everything observed, in dialogue order. ``None``: not observed."""

    host: str = ""
    port: int | None = None
    addresses: tuple[str, ...] = ()
    resolve: Resolve | None = None
    connect: Connect | None = None
    speaks: Speaks | None = None  # what the port really speaks, whatever the config says
    greeting: Reply | None = None  # in the mode Synapse uses
    tls: TlsVerify | None = None  # the handshake Synapse would make (implicit or STARTTLS)
    certificate: CertificateInfo | None = None
    ehlo: Reply | None = None  # reply to the first EHLO
    ehlo_lines: tuple[str, ...] = ()  # capability lines before TLS (first line = server name)
    helo: Reply | None = None  # reply to HELO, when EHLO was refused and HELO was tried
    starttls: Reply | None = None  # reply to STARTTLS, when sent
    ehlo_tls_lines: tuple[str, ...] = ()  # capability lines after STARTTLS
    auth: AuthAttempt | None = None  # with the mechanism Synapse would pick
    auth_all: tuple[AuthAttempt, ...] = ()  # --all-mechanisms
    mail: Reply | None = None  # reply to MAIL FROM:<envelope_from>
    rcpt: Reply | None = None  # reply to RCPT TO:<--to>, when given
    # Without --to: the reply to RCPT TO:<the envelope sender itself>. Sender rules that
    # Postfix enforces at RCPT (smtpd_delay_reject) show here; a refusal that blames the
    # recipient does not say anything about Synapse's real recipients.
    rcpt_self: Reply | None = None
    # The server closed the connection, or stopped answering, at this stage name
    # ("greeting", "ehlo", "starttls", "tls", "auth", "mail", "rcpt").
    closed_at: str | None = None
    stalled_at: str | None = None
    # The server answered at this stage with a line that is not an SMTP reply (its start).
    malformed_at: str | None = None
    malformed_line: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
