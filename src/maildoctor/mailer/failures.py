"""The one boundary where OS, ssl, asyncio and aiosmtplib errors become maildoctor's.

Everything below the Mailer raises whatever its library raises; ``Session`` wraps each step
in :func:`at_stage`, which calls :func:`translate` and re-raises with ``raise ... from exc``.
Reply-level refusals (a 550 to RCPT) are not exceptions in the libraries we drive, so
:func:`refusal` builds those from the reply. Every text goes through the Redactor, so a
server that echoes a password back cannot leak it into an exception.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aiosmtplib

from maildoctor import errors
from maildoctor.mailer.replies import MalformedReply, Reply
from maildoctor.secrets import Redactor


@dataclass(frozen=True)
class Where:
    """What a message needs to name the place: the server and the settings involved."""

    host: str
    port: int
    tls_name: str | None
    user: str | None
    redact: Redactor


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((e for e in _chain(exc) if isinstance(e, kind)), None)


def translate(exc: BaseException, stage: str, where: Where,
              timeout: float | None = None, detail: str = "") -> errors.SMTPFailure:
    """The maildoctor error for ``exc`` raised while doing ``stage`` against ``where``.

    ``detail`` names the sub-step (the AUTH mechanism) when the stage alone is too vague.
    """
    server = f"{where.host}:{where.port}"
    from maildoctor.printable import printable_lines

    built = _translate(exc, stage, where, server, timeout, detail)
    # The one boundary for aiosmtplib's errors: the server's words made printable here.
    built.message = printable_lines(where.redact(built.message))
    built.reply = printable_lines(where.redact(built.reply))
    built.args = (built.message,)
    return built


def _translate(exc: BaseException, stage: str, where: Where, server: str,
               timeout: float | None, detail: str) -> errors.SMTPFailure:
    verify = _first(exc, ssl.SSLCertVerificationError)
    if isinstance(verify, ssl.SSLCertVerificationError):
        return errors.CertificateRejected(
            f"the certificate of {server} failed verification for the name "
            f"{where.tls_name!r}: {verify.verify_message or verify.reason}", stage=stage,
            verify_code=verify.verify_code, verify_message=verify.verify_message or "")
    tls = _first(exc, ssl.SSLError)
    if isinstance(tls, ssl.SSLError):
        hint = ""
        if stage == "greeting":
            hint = "; force_tls needs a port that starts with TLS (465), not a STARTTLS one"
        return errors.HandshakeFailed(
            f"the TLS handshake with {server} failed ({tls.reason or tls}){hint}", stage=stage)
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code < 0:
        said = exc.message.strip().removeprefix("Malformed SMTP response line: ")
        if stage == "greeting":
            return errors.GreetingRejected(
                f"{server} does not speak SMTP: it greeted with {said[:80]!r} "
                "(is smtp_port the right port?)", stage=stage, reply=said)
        kind = errors.GreetingRejected if stage == "ehlo" else errors.ConnectionLost
        return kind(f"{server} sent an unusable reply during {stage} ({said[:80]!r})",
                    stage=stage, reply=said)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return errors.GreetingRejected(
            f"{server} greeted with {exc.code} instead of 220 ({exc.code} {exc.message})",
            stage=stage, code=exc.code, reply=exc.message)
    if isinstance(exc, aiosmtplib.SMTPHeloError):
        return errors.GreetingRejected(
            f"{server} refused {detail or 'EHLO'} ({exc.code} {exc.message})",
            stage=stage, code=exc.code, reply=exc.message)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return auth_refused(detail or "AUTH", exc.code, exc.message, where)
    gai = _first(exc, socket.gaierror)
    if isinstance(gai, socket.gaierror):
        nxdomain = gai.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None))
        return errors.ResolveError(
            f"the host name {where.host!r} does not resolve ({gai.strerror})", stage=stage,
            outcome="nxdomain" if nxdomain else "tempfail")
    if stage == "connect":
        if _first(exc, ConnectionRefusedError) is not None:
            return errors.ConnectFailure(
                f"the connection to {server} was refused: nothing listens on that port",
                stage=stage, outcome="refused", errno_name="ECONNREFUSED")
        if _first(exc, TimeoutError) is not None:
            return errors.ConnectFailure(
                f"connecting to {server} timed out after {timeout} s", stage=stage,
                outcome="timeout", errno_name="ETIMEDOUT")
        os_error = _first(exc, OSError)
        detail = getattr(os_error, "strerror", None) or str(exc)
        number = getattr(os_error, "errno", None) or 0
        return errors.ConnectFailure(f"could not connect to {server}: {detail}", stage=stage,
                                     outcome="unreachable",
                                     errno_name=errno.errorcode.get(number, ""))
    if _first(exc, TimeoutError) is not None:
        hint = ""
        if stage == "greeting":
            hint = " (a port that expects TLS first, such as 465, needs force_tls: true)"
        return errors.ServerHung(
            f"{server} did not answer within {timeout} s during {stage}{hint}", stage=stage)
    malformed = _first(exc, MalformedReply)
    if malformed is not None:
        return errors.ConnectionLost(
            f"{server} sent something that is not SMTP during {stage} ({malformed})",
            stage=stage)
    if isinstance(exc, aiosmtplib.SMTPResponseException) and stage == "starttls":
        return errors.TLSFailure(
            f"{server} refused STARTTLS ({exc.code} {exc.message})",
            stage=stage, code=exc.code, reply=exc.message)
    if _first(exc, ConnectionError) is not None or _first(exc, OSError) is not None:
        return errors.ConnectionLost(
            f"{server} closed the connection during {stage}", stage=stage)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return errors.ConnectionLost(
            f"{server} answered {exc.code} {exc.message} during {stage}",
            stage=stage, code=exc.code, reply=exc.message)
    return errors.SMTPFailure(f"sending through {server} failed during {stage}: {exc}",
                              stage=stage)


def auth_refused(mechanism: str, code: int, text: str, where: Where) -> errors.AuthFailure:
    """AuthFailure for a refused AUTH exchange; 504 means the mechanism, not the password."""
    reply = f"{code} {text}"
    if code == 504:
        message = f"the server rejected the {mechanism} mechanism it advertised ({reply})"
    elif 400 <= code < 500:
        message = f"the server could not check the credentials right now ({mechanism}: {reply})"
    else:
        message = (f"the server refused the credentials for smtp_user {where.user!r} "
                   f"with {mechanism} ({reply})")
    if mechanism == "CRAM-MD5" and code in (504, 535):
        message += ("; servers that keep hashed passwords advertise CRAM-MD5 yet cannot "
                    "complete it (synapse#10280): fallback=True tries the next mechanism")
    return errors.AuthFailure(where.redact(message), stage="auth", code=code,
                              reply=where.redact(text), mechanism=mechanism)


_REFUSALS: dict[str, tuple[type[errors.SMTPFailure], str]] = {
    "mail": (errors.SenderRejected, "the server refused the sender {arg}"),
    "rcpt": (errors.RecipientRejected, "the server refused the recipient {arg}"),
    "data": (errors.DataRejected, "the server refused to start the message data"),
    "message": (errors.DataRejected, "the server refused the message"),
}


def refusal(stage: str, reply: Reply, where: Where, arg: str = "") -> errors.SMTPFailure:
    """The error for a negative reply to MAIL, RCPT, DATA or the message itself."""
    cls, template = _REFUSALS[stage]
    message = template.format(arg=f"<{arg}>") + f" ({reply})"
    return cls(where.redact(message), stage=stage, code=reply.code,
               reply=where.redact(reply.text))


@contextmanager
def at_stage(stage: str, where: Where, timeout: float | None = None,
             on_error: Callable[[], None] | None = None, detail: str = "") -> Iterator[None]:
    """Run a step; convert any library error into maildoctor's, chained to the original."""
    try:
        yield
    except errors.SMTPFailure:
        raise
    except (OSError, TimeoutError, aiosmtplib.SMTPException, MalformedReply) as exc:
        if on_error is not None:
            on_error()
        raise translate(exc, stage, where, timeout, detail) from exc
