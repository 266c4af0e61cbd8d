"""What Synapse would do with these settings against this server: a pure function.

:func:`predict` takes the settings Synapse derives from its config
(:class:`~maildoctor.config.settings.EmailSettings`) and what a probe observed
(:class:`~maildoctor.smtp.facts.ServerFacts`), and returns the :class:`Outcome` a
``requestToken`` call would meet: success, an error with the exact exception Synapse
logs, a hang (the request never returns, nothing is logged), or no start at all.
No I/O, no clock: the same inputs always give the same outcome, so every row of the
spec's outcome tables is a unit test (tests/synapse/test_model.py).

The decision is a list of small steps in dialogue order (:data:`STEPS`); each looks
at one stage and either returns an outcome or lets the send go on. Facts left at
``None`` were not observed: the model then assumes that stage went normally. The
rules behind every step (spec/twisted-smtp.md 2, spec/synapse-email.md 2.3-2.6):

- Twisted errors raised through the protocol's ``sendError`` reach Synapse only when
  they are not retryable *and* their code is not 4xx; with Synapse >= 1.92's
  endpoint nothing ever retries, so a 4xx, a non-220 greeting, a dropped connection
  or a failed TLS handshake leaves the send waiting forever.
- MAIL, RCPT and DATA failures go through a different path and always surface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr

from maildoctor.config.settings import EmailSettings
from maildoctor.meaning import classify
from maildoctor.replies import Blame
from maildoctor.smtp import twisted_caps as caps
from maildoctor.smtp.facts import Connect, Reply, Resolve, ServerFacts, Speaks, TlsVerify
from maildoctor.synapse.model.outcome import (
    AUTH_DEPENDS,
    AUTH_REQUIRED_TEXT,
    HANG_WHY,
    HTTP_500,
    HTTP_OK,
    NET_ERRORS,
    NO_RESPONSE,
    SMTP_ERRORS,
    Outcome,
)
from maildoctor.synapse.model.startup import startup_failure

__all__ = ["STEPS", "Outcome", "predict", "startup_failure"]


@dataclass(frozen=True)
class _Send:
    """One send being reasoned about, with the derived facts every step needs."""

    settings: EmailSettings
    facts: ServerFacts
    recipient: str
    fqdn: str

    def error(self, stage: str, exception: str, message: str, why: str) -> Outcome:
        logged = (
            "ERROR synapse.handlers.identity - Error sending threepid validation email to "
            f"{self.recipient}, traceback ending\n{exception}: {message}"
        )
        return Outcome("error", exception, message, HTTP_500, logged, stage, why)

    def hang(self, stage: str, why: str, logged: str = "") -> Outcome:
        logged = logged or f"nothing after `Sending email to {self.recipient}`"
        return Outcome("hang", http=NO_RESPONSE, logged=logged, stage=stage, why=why)

    def reply_error(self, stage: str, exception: str, reply: Reply, why: str) -> Outcome:
        """An error raised through ``sendError``: a 4xx code makes it a hang."""
        if 400 <= reply.code < 500:
            return self.hang(stage, why + f" The reply was {reply.code} (4xx)." + HANG_WHY)
        return self.error(stage, exception, _first_line(reply), why)

    def cut_off(self, stage: str) -> Outcome | None:
        """The server closed or stalled at ``stage``: always a hang for Synapse."""
        if self.facts.closed_at == stage:
            why = f"The server closed the connection at {stage}." + HANG_WHY
            return self.hang(stage, why + (" " + AUTH_DEPENDS if stage == "auth" else ""))
        if self.facts.stalled_at == stage:
            why = f"The server stopped answering at {stage}." + HANG_WHY
            return self.hang(stage, why + (" " + AUTH_DEPENDS if stage == "auth" else ""))
        return None

    # --- derived ---------------------------------------------------------------------

    @property
    def helo_path(self) -> bool:
        """EHLO refused. Twisted then fails, loops on HELO, or after an accepted HELO goes
        straight to MAIL with neither STARTTLS nor AUTH (see :func:`_ehlo`)."""
        ehlo = self.facts.ehlo
        return ehlo is not None and not 200 <= ehlo.code < 300

    @property
    def caps_before(self) -> dict[str, str | None]:
        return caps.parse_capabilities(self.facts.ehlo_lines)

    @property
    def upgrades(self) -> bool:
        """STARTTLS will be sent: no implicit TLS, a TLS context, ``STARTTLS`` offered."""
        s = self.settings
        has_context = s.tls_name is not None
        return not s.implicit_tls and has_context and caps.offers_starttls(self.caps_before)

    @property
    def auth_caps(self) -> dict[str, str | None]:
        """AUTH is decided on the post-STARTTLS capabilities (pre-TLS ones if unobserved)."""
        if self.upgrades and self.facts.ehlo_tls_lines:
            return caps.parse_capabilities(self.facts.ehlo_tls_lines)
        return self.caps_before


def _first_line(reply: Reply) -> str:
    return f"{reply.code:03d} {reply.text}".split("\n", 1)[0]


Step = Callable[[_Send], Outcome | None]


def _startup(send: _Send) -> Outcome | None:
    crash = startup_failure(send.settings)
    if crash is not None or send.settings.email_enabled:
        return crash
    return Outcome(
        kind="error", message="Email-based password resets have been disabled on this server",
        http='400 M_UNKNOWN "Email-based password resets have been disabled on this server"',
        logged="WARNING User password resets have been disabled due to lack of email config",
        stage="config",
        why="There is no email: block (or it is empty): Synapse has email off, sends no mail "
            "and refuses email requests.")


def _envelope(send: _Send) -> Outcome | None:
    """From/To handling before any connection (spec synapse-email.md 2.2)."""
    s = send.settings
    if s.from_string is None:  # notif_from % {"app": ...} raised ValueError
        message = _format_error(str(s.notif_from), s.app_name)
        why = "notif_from is formatted with % at send time; a stray % raises ValueError."
        return send.error("config", "ValueError", message, why)
    raw_to = parseaddr(send.recipient)[1]
    if raw_to == "":
        return send.error("config", "RuntimeError", "Invalid 'to' address",
                          "parseaddr finds no address in the recipient.")
    for label, address in (("To", raw_to), ("From", s.envelope_from or "")):
        try:
            address.encode("ascii")
        except UnicodeEncodeError as exc:
            why = (f"Twisted encodes the envelope {label} address as ASCII while building its "
                   "factory (no SMTPUTF8), before connecting.")
            return send.error("config", "UnicodeEncodeError", str(exc), why)
    return None


def _format_error(template: str, app_name: object) -> str:
    """The ValueError text of ``template % {"app": app_name}`` (string formatting only)."""
    try:
        template % {"app": app_name}
    except ValueError as exc:
        return str(exc)
    return "notif_from cannot be formatted"


def _destination(send: _Send) -> Outcome | None:
    """Host and port as HostnameEndpoint sees them, then name resolution and TCP."""
    s, f = send.settings, send.facts
    host = str(s.smtp_host)
    if not isinstance(s.smtp_host, str):
        name = "None" if s.smtp_host is None else type(s.smtp_host).__name__  # CPython's words
        why = (f"smtp_host is {name}, not a string; HostnameEndpoint fails while normalising "
               "the name, before any connection.")
        return send.error("resolve", "TypeError",
                          f"normalize() argument 2 must be str, not {name}", why)
    if s.smtp_port is None:
        why = "smtp_port: null is passed as no port, so the endpoint connects to port 0."
        return send.error("connect", NET_ERRORS + "ConnectionRefusedError",
                          "Connection was refused by other side: 111: Connection refused.", why)
    if isinstance(s.smtp_port, bool) or not isinstance(s.smtp_port, int | str):
        why = (f"smtp_port is a {type(s.smtp_port).__name__}; the lookup fails inside Twisted's "
               "resolver and the failure is lost, so the send never finishes (observed).")
        return send.hang("resolve", why)
    if isinstance(s.smtp_port, str) and not (s.smtp_port.isascii() and s.smtp_port.isdigit()):
        why = (f"The port {s.smtp_port!r} is not a number, so getaddrinfo fails and Twisted "
               "blames the host name.")
        return send.error("resolve", NET_ERRORS + "DNSLookupError",
                          f"DNS lookup failed: no results for hostname lookup: {host}.", why)
    if f.resolve in (Resolve.NXDOMAIN, Resolve.TEMPFAIL, Resolve.INVALID):
        why = f"The host name {host!r} does not resolve ({f.resolve.value})."
        return send.error("resolve", NET_ERRORS + "DNSLookupError",
                          f"DNS lookup failed: no results for hostname lookup: {host}.", why)
    table = {
        Connect.REFUSED: ("ConnectionRefusedError",
                          "Connection was refused by other side: 111: Connection refused.",
                          f"Nothing listens on {host} port {s.smtp_port} (TCP reset)."),
        Connect.TIMEOUT: ("TimeoutError", "User timeout caused connection failure.",
                          "No answer to the TCP connection; Synapse gives up after 30 s."),
        Connect.UNREACHABLE: ("NoRouteError", "No route to host: 101: Network is unreachable.",
                              "No route to the server (EHOSTUNREACH would give ConnectError)."),
    }
    if f.connect in table:
        name, message, why = table[f.connect]
        return send.error("connect", NET_ERRORS + name, message, why)
    return None


def _first_bytes(send: _Send) -> Outcome | None:
    """What the port speaks versus what Synapse expects (implicit TLS or plaintext)."""
    speaks = send.facts.speaks
    if send.settings.implicit_tls:
        if speaks in (Speaks.SMTP, Speaks.NOT_SMTP, Speaks.SILENT, Speaks.CLOSED):
            words = {Speaks.SMTP: "speaks plaintext SMTP", Speaks.NOT_SMTP: "is not SMTP",
                     Speaks.SILENT: "stays silent", Speaks.CLOSED: "closes at once"}
            why = (f"force_tls starts a TLS handshake but the port {words[speaks]}; the "
                   "handshake fails or never ends and the connection drops." + HANG_WHY)
            return send.hang("tls", why)
        return None
    if speaks == Speaks.TLS:
        why = ("The port expects TLS first (implicit TLS, usually 465) while force_tls is off; "
               "Twisted waits for a 220 greeting that never comes, with no timeout.")
        return send.hang("greeting", why)
    if speaks in (Speaks.SILENT, Speaks.CLOSED):
        word = "never sends a greeting" if speaks == Speaks.SILENT else "closes at once"
        return send.hang("greeting", f"The server {word}." + HANG_WHY)
    if speaks == Speaks.NOT_SMTP:
        banner = send.facts.greeting.text if send.facts.greeting else "(its first line)"
        message = f"Invalid response from SMTP server: {banner.encode('utf-8')!r}"
        why = "The port answers with something that is not an SMTP reply (POP3, IMAP, HTTP...)."
        return send.error("greeting", SMTP_ERRORS + "SMTPProtocolError", message, why)
    return None


def _implicit_tls(send: _Send) -> Outcome | None:
    if not send.settings.implicit_tls:
        return None
    cut = send.cut_off("tls")
    if cut:
        return cut
    verify = send.facts.tls
    if verify is not None and verify != TlsVerify.OK:
        why = (f"The implicit-TLS handshake fails ({verify.value}) for the name "
               f"{send.settings.tls_name!r}; the TLS layer just closes." + HANG_WHY)
        return send.hang("tls", why)
    return None


def _greeting(send: _Send) -> Outcome | None:
    cut = send.cut_off("greeting")
    if cut:
        return cut
    greeting = send.facts.greeting
    if greeting is not None and greeting.code != 220:
        why = (f"The greeting is {_first_line(greeting)!r}, not 220: Twisted raises "
               "SMTPConnectError, which is marked retryable." + HANG_WHY)
        return send.hang("greeting", why)
    return None


def _ehlo(send: _Send) -> Outcome | None:
    """EHLO, and the HELO fallback Twisted allows only without auth or required TLS."""
    cut = send.cut_off("ehlo")
    if cut or not send.helo_path:
        return cut
    s = send.settings
    fallback = not s.require_auth and (s.implicit_tls or not s.require_tls)
    if not fallback:
        why = ("EHLO was refused and HELO fallback is off because a user is set or TLS is "
               "required; the text mentions authentication in both cases.")
        return send.error("ehlo", SMTP_ERRORS + "EHLORequiredError",
                          "502 Server does not support ESMTP Authentication", why)
    helo = send.facts.helo
    if helo is not None and not 200 <= helo.code < 300:
        why = ("EHLO and HELO are both refused; Twisted resends HELO in a tight loop until the "
               "server disconnects, and then never reports it.")
        return send.hang("ehlo", why)
    return None


def _starttls(send: _Send) -> Outcome | None:
    """Opportunistic STARTTLS (spec twisted-smtp.md 2.3)."""
    s, f = send.settings, send.facts
    if s.implicit_tls or send.helo_path:
        return None
    if send.upgrades:
        cut = send.cut_off("starttls")
        if cut:
            return cut
        reply = f.starttls
        if reply is not None and reply.code != 220:
            why = (f"STARTTLS was answered {_first_line(reply)!r}; Twisted does not fall back "
                   "to plaintext (twisted#10334).")
            return send.reply_error("starttls", SMTP_ERRORS + "SMTPTLSError",
                                    Reply(reply.code, "Could not complete the SSL/TLS handshake"),
                                    why)
        cut = send.cut_off("tls")
        if cut:
            return cut
        if f.tls is not None and f.tls != TlsVerify.OK:
            why = (f"The server offers STARTTLS and enable_tls is on, so Twisted upgrades; the "
                   f"certificate check for {s.tls_name!r} fails ({f.tls.value}) and the TLS "
                   "layer just closes." + HANG_WHY)
            return send.hang("tls", why)
        return None
    if s.require_tls:
        why = ("require_transport_security is on but Twisted sees no upper-case STARTTLS in "
               "the EHLO reply" + ("." if s.starttls_enabled else " (enable_tls is off)."))
        return send.error("starttls", SMTP_ERRORS + "TLSRequiredError",
                          "502 Server does not support secure communication via TLS / SSL", why)
    return None


def _auth(send: _Send) -> Outcome | None:
    """AUTH decision and exchange (spec twisted-smtp.md 2.4)."""
    s = send.settings
    if send.helo_path:
        return None
    if s.smtp_pass and send.facts.ehlo is None and not send.facts.ehlo_lines:
        return None  # EHLO not observed (the probe stopped earlier): assume AUTH is offered
    offered = caps.auth_mechanisms(send.auth_caps)
    mechanism = caps.choose_mechanism(offered) if s.smtp_pass else None
    if mechanism is None:
        if not s.require_auth:
            return None
        return send.error("auth", SMTP_ERRORS + "AUTHRequiredError", AUTH_REQUIRED_TEXT,
                          _why_auth_required(send))
    if s.smtp_user is None:
        text = ("a bytes-like object is required, not 'NoneType'" if mechanism == "LOGIN"
                else "unsupported operand type(s) for +: 'NoneType' and 'bytes'")
        why = (f"smtp_pass is set without smtp_user: Twisted still tries {mechanism} and crashes "
               "on the missing user name, logs an Unhandled Error and drops the connection.")
        logged = (f"`Sending email to {send.recipient}`, then an \"Unhandled Error\" from the "
                  f"twisted logger ending TypeError: {text}; nothing else")
        hang = send.hang("auth", why, logged)
        return Outcome("hang", "TypeError", text, hang.http, hang.logged, "auth", why)
    cut = send.cut_off("auth")
    if cut:
        return cut
    return _auth_verdict(send, mechanism)


def _why_auth_required(send: _Send) -> str:
    s = send.settings
    if not s.smtp_pass:
        missing = "is not set" if s.smtp_pass is None else "is empty"
        return ("Twisted only tries AUTH with a password; smtp_pass " + missing + " (a "
                "misspelt key such as smpt_pass is ignored), so it lists every scheme it knows.")
    reason = caps.why_no_usable_auth(send.auth_caps)
    after_tls = caps.auth_mechanisms(caps.parse_capabilities(send.facts.ehlo_tls_lines))
    if not send.upgrades and after_tls:
        reason += " (it offers AUTH only after STARTTLS, which Synapse does not send here)"
    elif send.upgrades and caps.auth_mechanisms(send.caps_before):
        reason += (" after STARTTLS (it listed AUTH before TLS, but Twisted decides on the "
                   "capabilities it gets after the upgrade)")
    return f"smtp_user is set, so AUTH is required, but {reason}."


def _auth_verdict(send: _Send, mechanism: str) -> Outcome | None:
    f = send.facts
    attempts = ((f.auth,) if f.auth else ()) + f.auth_all
    attempt = next((a for a in attempts if a.mechanism.upper() == mechanism), None)
    if attempt is None:
        return None  # not observed: assume the credentials work
    verdict = caps.walk_auth(mechanism, attempt.replies, attempt.dropped)
    depends = AUTH_DEPENDS
    cram = (" Twisted picked CRAM-MD5 because the server lists it and never falls back to "
            "LOGIN or PLAIN (synapse#10280)." if mechanism == "CRAM-MD5" else "")
    if verdict.result == "dropped":
        why = (f"The server dropped the connection during AUTH {mechanism} instead of "
               "replying." + HANG_WHY + " " + depends)
        return send.hang("auth", why)
    if verdict.result == "malformed":
        message = ("501 Login failed because the SMTP Server returned a malformed "
                   "Authentication Challenge")
        return send.error("auth", SMTP_ERRORS + "AuthenticationError", message,
                          f"The {mechanism} challenge is not valid base64.")
    if verdict.reply is None or verdict.result in ("ok", "unknown"):
        return None
    if verdict.result == "server-error":
        why = f"The server refused AUTH {mechanism} itself, before any credentials.{cram}"
        return send.reply_error("auth", SMTP_ERRORS + "AuthenticationError", verdict.reply, why)
    why = (f"The server declined the credentials sent with AUTH {mechanism}"
           + (" (both PLAIN forms were tried)." if mechanism == "PLAIN" else ".")
           + cram + " " + depends)
    return send.reply_error("auth", SMTP_ERRORS + "AUTHDeclinedError", verdict.reply, why)


def _mail(send: _Send) -> Outcome | None:
    cut = send.cut_off("mail")
    mail = send.facts.mail
    if cut or mail is None or mail.code == 250:
        return cut
    why = ("The server refused the sender at MAIL FROM; transaction errors always reach "
           "Synapse, 4xx included.")
    return send.error("mail", SMTP_ERRORS + "SMTPDeliveryError", _first_line(mail), why)


def _rcpt(send: _Send) -> Outcome | None:
    cut = send.cut_off("rcpt")
    rcpt = send.facts.rcpt
    own = send.facts.rcpt_self
    if rcpt is None and own is not None and not 200 <= own.code < 300 \
            and classify(own, "rcpt").blame not in (Blame.RECIPIENT, Blame.UNKNOWN):
        rcpt = own  # refused for a reason that holds for every recipient (e.g. the sender)
    if cut or rcpt is None or 200 <= rcpt.code < 300:
        return cut
    why = (f"The server refused RCPT TO ({_first_line(rcpt)}); Twisted reports it as "
           "'No recipients accepted'.")
    return send.error("rcpt", SMTP_ERRORS + "SMTPDeliveryError",
                      f"{rcpt.code:03d} No recipients accepted", why)


def _data(send: _Send) -> Outcome | None:
    return send.cut_off("data")


#: The decision, in dialogue order. Each step returns an outcome or None (go on).
STEPS: tuple[Step, ...] = (
    _startup, _envelope, _destination, _first_bytes, _implicit_tls, _greeting,
    _ehlo, _starttls, _auth, _mail, _rcpt, _data,
)


def _success_why(send: _Send) -> str:
    s = send.settings
    if send.helo_path:
        return "EHLO was refused; Twisted falls back to HELO and sends without TLS or AUTH."
    tls = ("over implicit TLS" if s.implicit_tls else "after STARTTLS" if send.upgrades
           else "in plaintext")
    auth = "authenticated" if s.smtp_pass and caps.choose_mechanism(
        caps.auth_mechanisms(send.auth_caps)) else "without authentication"
    sender = s.envelope_from or ""
    note = "" if "@" in sender else (
        f" The sender has no domain, so Twisted sends MAIL FROM:<{sender}@{send.fqdn}>.")
    return f"Synapse sends the mail {tls}, {auth}.{note}"


def predict(
    settings: EmailSettings,
    facts: ServerFacts,
    *,
    recipient: str = "alice@example.org",
    local_fqdn: str | None = None,
) -> Outcome:
    """What Synapse (>= 1.92, endpoint mode) does when it mails ``recipient``."""
    send = _Send(settings, facts, recipient, local_fqdn or "<this host's FQDN>")
    for step in STEPS:
        outcome = step(send)
        if outcome is not None:
            return outcome
    return Outcome("ok", http=HTTP_OK, logged=f"`Sending email to {recipient}` only",
                   stage="data", why=_success_why(send))
