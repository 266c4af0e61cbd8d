"""The cause table: (stage, failure kind, reply meaning) -> cause, consequence, key, fix.

The probe's diagnosis (``diagnose.py``), ``relay status`` (``relay/explain.py``), ``send``
and ``explain`` read their words from here, so the same failure gets the same words
everywhere. Detection is elsewhere: the probe's facts and the error types' fields
(:mod:`maildoctor.errors`) say *what* happened; :func:`maildoctor.replies.classify` says
which input a server reply blames; this table says what that means and what to change.

A row matches when its stage and blame are equal to the failure's, or are ``None`` (any);
the most specific row wins (stage and blame both given, then blame, then stage). Texts
may use ``{where}`` (host:port), ``{host}``, ``{port}``, ``{reply}``, ``{user}``,
``{sender}``, ``{recipient}``, ``{mechanism}``, ``{timeout}`` and the row's own fields; a
field not given reads as the row's default for it, else "?". Causes found in the config
(with what the server offers) are rows too: the explainers only detect and fill fields.

Server evidence outranks config heuristics: when a reply names its own cause (a catalogue
entry), that cause comes first and a config finding is shown after it, never instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from maildoctor import errors
from maildoctor.replies import Blame

__all__ = ["CAUSES", "NO_START", "Cause", "Kind", "cause_for", "cause_of_failure", "failure_kind"]


class Kind:
    """Failure kinds (strings, so that tables and JSON read plainly)."""

    NXDOMAIN = "nxdomain"
    RESOLVER = "resolver-failed"
    INVALID_HOST = "invalid-host"
    REFUSED = "connection-refused"
    TIMEOUT = "connect-timeout"
    UNREACHABLE = "unreachable"
    UNTRUSTED = "untrusted"
    NAME_MISMATCH = "name-mismatch"
    EXPIRED = "expired"
    HANDSHAKE = "handshake-failed"
    REPLY = "refused"  # the server answered with a 4xx/5xx
    SILENT = "no-answer"  # nothing within the timeout
    PASSWORD_SILENCE = "no-answer-to-password"  # AUTH asked for the password, then silence
    CLOSED = "closed"  # the server closed the connection
    CLOSED_AT_AUTH = "closed-before-credentials"  # closed as soon as AUTH was sent
    BROKEN = "broken-reply"  # endless, huge, malformed or dripping replies
    CONFIG = "config"  # the config cannot send at all
    SPEAKS_TLS = "port-speaks-tls"  # TLS from the first byte, force_tls off
    SPEAKS_PLAIN = "port-speaks-plain"  # a clear-text greeting, force_tls on
    PORT_SILENT = "port-silent"  # accepts TCP, says nothing, not TLS either
    NOT_SMTP = "not-smtp"  # greets with something that is not SMTP
    PORT_CLOSES = "port-closes"  # closes the connection at once
    NO_MECHANISM = "no-usable-mechanism"  # no AUTH, or none both sides know
    TOKEN = "token-unusable"  # the relay's XOAUTH2 token could not be had
    CRAM_TRAP = "cram-md5-trap"  # CRAM-MD5 offered but failing while LOGIN/PLAIN work
    # after the 250 (the probe's sender-dns and links stages)
    SENDER_DOMAIN_MISSING = "sender-domain-missing"  # notif_from's domain does not exist
    WILL_BE_REJECTED = "will-be-rejected"  # SPF/DKIM/DMARC make receivers refuse the mail
    SPAM_LIKELY = "spam-likely"  # weak authentication: the spam folder is likely
    DEAD_LINK = "dead-link"  # a link in the mails does not reach Synapse
    # found in the config, or in the config and what the server offers (probe diagnosis)
    EMAIL_OFF = "email-off"  # no email: block: Synapse sends nothing
    EMAIL_OFF_BY_CONFIG = "email-off-by-config"  # an empty or misspelt email: block
    NO_START = "no-start"  # Synapse refuses to start with this config
    CONFIG_FINDING = "config-finding"  # a check finding (its own words) is the cause
    PASSWORD_MISSING = "password-missing"  # smtp_user without smtp_pass
    PASSWORD_MISSPELT = "password-misspelt"  # smtp_pass written under another name
    PASSWORD_MANGLED = "password-mangled"  # YAML changed the password (unquoted, ...)
    PORT_MISSPELT = "port-misspelt"  # smtp_port written under another name
    PORT_NULL = "port-null"  # smtp_port: null
    NO_STARTTLS = "starttls-not-offered"  # require_transport_security, no STARTTLS
    AUTH_AFTER_STARTTLS = "auth-only-after-starttls"  # AUTH after STARTTLS, enable_tls off
    NO_AUTH_OFFERED = "no-auth-offered"  # smtp_user set, the server offers no AUTH
    AUTH_LINE_MISSED = "auth-line-missed"  # AUTH offered in a form Twisted does not read
    MECHANISMS_UNUSABLE = "mechanisms-unusable"  # only mechanisms Twisted does not know
    AUTH_NOT_SMTP = "auth-answered-not-smtp"  # AUTH answered by a line that is not SMTP
    HANDSHAKE_SILENT = "handshake-silent"  # no answer to the TLS handshake
    # seen only in Synapse's log (``maildoctor explain``; the rows' stage is "log")
    PASSWORD_PLACEHOLDER = "password-placeholder"  # smtp_pass is a placeholder
    PASS_WITHOUT_USER = "password-without-user"  # smtp_pass without smtp_user: Twisted crashes
    LOGIN_REQUIRED = "login-required"  # no smtp_user, the server wants a login
    NON_ASCII = "non-ascii-address"  # Twisted has no SMTPUTF8
    INVALID_RECIPIENT = "invalid-recipient"  # a recipient with no address part
    BAD_PLACEHOLDER = "bad-placeholder"  # a stray % in notif_from or a subject
    SUBJECT_PLACEHOLDER = "subject-placeholder"  # a subject placeholder the mail lacks
    LEGACY_RETRY = "legacy-retry"  # Synapse before 1.92 retried, then failed
    NOTIF_FROM_MISSING = "notif-from-missing"  # email: without notif_from
    NOTIF_FROM_INVALID = "notif-from-invalid"  # notif_from with no address
    TLS_FLAGS = "tls-flags"  # force_tls / require_transport_security with enable_tls off
    REQUIRE_3PID = "require-3pid-without-email"  # registrations_require_3pid, no email
    NUMERIC_SECRET = "numeric-secret"  # YAML read the password as a number
    BAD_DURATION = "bad-duration"  # a duration Synapse cannot parse
    UNKNOWN = "unknown"  # an exception with no row of its own


_HANG = "Synapse waits for an answer that never comes: the request hangs and nothing is logged."
_ERROR = ("Synapse logs \"Error sending email\" and the client gets HTTP 500; notification "
          "mails are lost.")
_TEMP_ERROR = ("Synapse does not retry: it logs \"Error sending email\" and the client gets "
               "HTTP 500 all the same, although a later try would pass.")
_DELIVERED_THEN_REFUSED = (
    "Synapse gets its 250 and logs nothing wrong; the receiving server refuses the mail (a "
    "bounce may reach notif_from's mailbox) and the user never sees it.")
_NO_MAIL = "Synapse sends no mail at all."
NO_START = "Synapse refuses to start (exit 1)."
_SEE_CHECK = "run `maildoctor check` on the config: its finding says what to change"
_NO_LOGIN = ("Twisted cannot log in, so Synapse's send fails (AUTHRequiredError): it logs "
             "\"Error sending email\" and the client gets HTTP 500.")
_CRASH_HANG = ("Twisted crashes (TypeError, logged as 'Unhandled Error') and drops the "
               "connection without telling Synapse: the send never returns.")
_NO_CONNECT = ("Synapse's send fails at once (\"Error sending email\", HTTP 500 to the "
               "client).")


@dataclass(frozen=True)
class Cause:
    id: str
    stage: str | None  # None: any stage
    kind: str
    blame: Blame | None  # None: any (or no) reply meaning
    cause: str
    synapse: str  # what Synapse does, in the words of its behaviour
    fix: str
    key: str | None = None  # the config key to change (dotted), when the fix is there
    relay_fix: str = ""  # when the relay needs other words (its options, not Synapse's)
    defaults: tuple[tuple[str, str], ...] = ()  # (field, text) for fields not given

    def render(self, fields: Mapping[str, object]) -> tuple[str, str, str]:
        """(cause, consequence, fix) with the fields filled in."""
        values = _Fields({**dict(self.defaults), **fields})
        return (self.cause.format_map(values), self.synapse.format_map(values),
                self.fix.format_map(values))


class _Fields(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "?"


C = Cause
R = Kind.REPLY
CAUSES: tuple[Cause, ...] = (
    # -- before any reply ----------------------------------------------------------------
    C("resolve-nxdomain", "resolve", Kind.NXDOMAIN, None,
      "the host name {host!r} does not exist (DNS says NXDOMAIN)", _NO_CONNECT,
      "correct smtp_host (check the spelling against your provider's docs)", "email.smtp_host"),
    C("resolve-tempfail", "resolve", Kind.RESOLVER, None,
      "the host name {host!r} could not be resolved (temporary DNS failure)", _NO_CONNECT,
      "check this machine's DNS resolver (/etc/resolv.conf), then retry", "email.smtp_host"),
    C("resolve-invalid", "resolve", Kind.INVALID_HOST, None,
      "smtp_host {host!r} is not a host name", _NO_CONNECT,
      "set smtp_host to the server's name only", "email.smtp_host"),
    C("connect-refused", "connect", Kind.REFUSED, None,
      "nothing listens on {where} (connection refused)", _NO_CONNECT,
      "check smtp_host and smtp_port against your provider (587 for STARTTLS, 465 with "
      "force_tls), and that the mail server is running", "email.smtp_port"),
    C("connect-timeout", "connect", Kind.TIMEOUT, None,
      "{where} does not answer (connection timed out): a firewall drops the packets",
      "Synapse waits for the connection until Twisted gives up; the client's request fails.",
      "many hosting providers block outbound port 25 (and sometimes 465/587); use your "
      "provider's submission port, or ask them to open it", "email.smtp_port"),
    C("connect-unreachable", "connect", Kind.UNREACHABLE, None,
      "{where} is unreachable from here (no route)", _NO_CONNECT,
      "check this machine's network (IPv6 without a route?)", "email.smtp_host"),
    C("port-speaks-tls", "connect", Kind.SPEAKS_TLS, None,
      "port {port} speaks TLS from the first byte (implicit TLS), but force_tls is off, so "
      "Synapse waits for a plain-text greeting forever", _HANG, "set `force_tls: true`",
      "email.force_tls"),
    C("port-speaks-plain", "connect", Kind.SPEAKS_PLAIN, None,
      "port {port} speaks plain SMTP (STARTTLS), but force_tls is on, so Synapse's TLS "
      "handshake fails and it hangs", _HANG, "remove `force_tls` (Synapse uses STARTTLS "
      "automatically), or use the provider's implicit-TLS port (usually 465)",
      "email.force_tls"),
    C("port-silent", "connect", Kind.PORT_SILENT, None,
      "{where} accepts connections but never says anything (not even to a TLS hello)", _HANG,
      "check the port: this is not a working SMTP server", "email.smtp_port"),
    C("port-not-smtp", "connect", Kind.NOT_SMTP, None,
      "{where} is not an SMTP server (it greets with something else, e.g. POP3, IMAP or HTTP)",
      _ERROR, "point smtp_port at the SMTP submission port (587 or 465)", "email.smtp_port"),
    C("port-closes", "connect", Kind.PORT_CLOSES, None,
      "{where} closes the connection at once", _HANG,
      "the server refuses this client (blocked IP?) or is not SMTP", "email.smtp_host"),
    # -- TLS -------------------------------------------------------------------------------
    C("tls-untrusted", "tls", Kind.UNTRUSTED, None,
      "the server's certificate is {what} ({how})", _HANG,
      "give the server a certificate from a public CA, or make Synapse trust the CA "
      "(SSL_CERT_FILE=/path/ca.pem in Synapse's environment); as a last resort "
      "`enable_tls: false` (only on a trusted network: mail then goes unencrypted)",
      relay_fix="give the server a certificate from a public CA, or make the relay trust "
      "the CA (--ca-file /path/ca.pem)"),
    C("tls-name-mismatch", "tls", Kind.NAME_MISMATCH, None,
      "the server's certificate is for {names}, but Synapse checks it against {name!r} "
      "({how})", _HANG, "set `tlsname: {better}`", "email.tlsname"),
    C("tls-expired", "tls", Kind.EXPIRED, None,
      "the server's certificate has expired or is not yet valid (valid until {until})",
      _HANG, "renew the server's certificate"),
    C("tls-handshake", "tls", Kind.HANDSHAKE, None,
      "the TLS handshake with the server fails ({how}): {detail}", _HANG,
      "check the TLS mode (force_tls) against the port", "email.force_tls",
      defaults=(("detail", "protocol error"),)),
    C("tls-handshake-silent", "tls", Kind.HANDSHAKE_SILENT, None,
      "the TLS handshake with the server fails ({how}): no answer to the TLS handshake "
      "within the timeout: the server {did}, then stayed silent", _HANG,
      "check the TLS mode (force_tls) against the port", "email.force_tls"),
    # -- replies, by the input they blame (whatever the stage they arrive at) ---------------
    C("refused-sender", None, R, Blame.SENDER,
      "the server refuses the sender {sender!r}: {reply}", _ERROR,
      "set notif_from to an address this SMTP account may send from (often exactly "
      "smtp_user)", "email.notif_from"),
    C("refused-recipient", None, R, Blame.RECIPIENT,
      "the server refuses the recipient {recipient!r}: {reply}",
      "Synapse logs \"Error sending email\" for mails to this address; other addresses are "
      "not affected.", "check the recipient address; the server may not relay for it"),
    C("refused-credentials", None, R, Blame.CREDENTIALS,
      "the server refused the login for {user!r} with {mechanism}: {reply}", _ERROR,
      "check smtp_user and smtp_pass; many providers need an app password when two-factor "
      "authentication is on", "email.smtp_pass",
      relay_fix="check smtp_user and smtp_pass; many providers need an app password when "
      "two-factor authentication is on"),
    C("refused-mechanism", None, R, Blame.MECHANISM,
      "the server rejected the {mechanism} mechanism it advertised: {reply}", _ERROR,
      "remove the mechanism from the server's list on this port, or use `maildoctor relay` "
      "(it picks a mechanism that works)"),
    C("refused-tls-first", None, R, Blame.TLS,
      "the server wants TLS before this command: {reply}", _ERROR,
      "keep enable_tls on (STARTTLS), or use port 465 with `force_tls: true`",
      "email.enable_tls"),
    C("refused-client-host", None, R, Blame.CLIENT_HOST,
      "the server refuses this client (its IP address, reverse DNS or EHLO name): {reply}",
      _ERROR, "check the server's logs and whether this IP is allowed to send; Synapse sends this "
      "machine's FQDN as EHLO name, which it cannot change: give the host a fully qualified "
      "name, or allow it on the server"),
    C("refused-greeting", "greeting", R, None,
      "the server greets with {reply} instead of 220: it refuses this client (busy, blocked "
      "IP or rate limit)", _HANG,
      "check the server's logs and whether this IP is allowed to send"),
    C("refused-rate-limit", None, R, Blame.RATE_LIMIT,
      "the server limits the sending rate or volume: {reply}", _TEMP_ERROR,
      "send less, or raise the account's limit; `maildoctor relay` queues and retries, "
      "which Synapse does not"),
    C("refused-greylisted", None, R, Blame.GREYLISTED,
      "the server greylists: {reply} is a temporary refusal that a retry some minutes later "
      "clears", _TEMP_ERROR,
      "put `maildoctor relay` (it queues and retries) between Synapse and the server, or "
      "have the server exempt the Synapse host from greylisting"),
    C("refused-content", None, R, Blame.CONTENT,
      "the server refused the message itself: {reply}", _ERROR,
      "the server's log says why (spam filter, size limit)"),
    C("refused-account", None, R, Blame.ACCOUNT,
      "the provider refuses this account: {reply}", _ERROR,
      "fix the account's state at the provider (see the reply's words)"),
    C("refused-auth-temporary", "auth", R, Blame.SERVER,
      "the server answered AUTH with a temporary failure: {reply}", _TEMP_ERROR,
      "retry later; check the server's authentication backend"),
    C("refused-temporary", None, R, Blame.SERVER,
      "the server failed temporarily: {reply}", _TEMP_ERROR,
      "retry later; check the server's logs"),
    C("refused-starttls", "starttls", R, None,
      "the server answers STARTTLS with {reply}", _HANG,
      "fix TLS on the server; or, on a trusted network only, `enable_tls: false`",
      "email.enable_tls"),
    C("refused-other", None, R, None,
      "the server refused {stage}: {reply}", _ERROR, "check the server's logs"),
    C("auth-no-mechanism", "auth", Kind.NO_MECHANISM, None,
      "the server offers no AUTH mechanism that both sides know", _ERROR,
      "use a mechanism both sides know: give the relay an XOAUTH2 token if the provider "
      "wants OAuth2, or use the provider's submission port that offers AUTH"),
    C("auth-token", "auth", Kind.TOKEN, None,
      "the XOAUTH2 access token could not be had", _ERROR,
      "check the XOAUTH2 token (--xoauth2-token-file / --xoauth2-token-command): it must be "
      "a current access token for smtp_user with the SMTP scope"),
    C("cram-md5-trap", "auth", Kind.CRAM_TRAP, None,
      "the server advertises CRAM-MD5 but cannot complete it with these credentials, while "
      "{worked} {verb}; Synapse always picks CRAM-MD5 first and never falls back",
      "Synapse's login fails every time (AUTHDeclinedError), so no mail is sent.",
      "remove CRAM-MD5 from the server's mechanisms on this port (e.g. Dovecot "
      "auth_mechanisms = plain login), or use `maildoctor relay` (it falls back)"),
    # -- silence and drops -----------------------------------------------------------------
    C("silent-after-password", "auth", Kind.PASSWORD_SILENCE, None,
      "the server asked for the password ({prompt}) and then gave no answer to it within "
      "{timeout} s", "Synapse hangs: its request never returns and nothing is logged.",
      "likely causes, in order: the server's authentication backend (Dovecot auth, LDAP, a "
      "database) does not answer; a fail2ban-like delay that outlasts the timeout; a "
      "firewall or proxy that drops the rest of the dialogue; check the server's "
      "authentication log"),
    C("silent-auth", "auth", Kind.SILENT, None,
      "the server gave no answer to AUTH {mechanism} within {timeout} s",
      "Synapse hangs: its request never returns and nothing is logged.",
      "check the server's authentication backend and its logs"),
    C("closed-auth-before", "auth", Kind.CLOSED_AT_AUTH, None,
      "the server closed the connection as soon as AUTH {mechanism} was sent, before any "
      "credentials", _ERROR, "check the server's logs: it refuses this client or this "
      "mechanism"),
    C("closed-auth", "auth", Kind.CLOSED, None,
      "the server closed the connection after AUTH {mechanism}: it rejected the login",
      _ERROR, "check smtp_user and smtp_pass (an app password?)", "email.smtp_pass"),
    C("silent", None, Kind.SILENT, None,
      "the server stopped answering during {stage}", _HANG,
      "check the server (overloaded? a filter holding the connection?)"),
    C("closed", None, Kind.CLOSED, None,
      "the server closed the connection during {stage}", _ERROR,
      "check the server's logs for why it drops this client"),
    C("broken-reply", None, Kind.BROKEN, None,
      "the server's reply during {stage} is unusable: {detail}", _HANG,
      "this is not a working SMTP server on this port, or something in between (a proxy, a "
      "firewall's SMTP inspection) mangles the dialogue", "email.smtp_port"),
    # -- after the 250: the receiver and the links (senderdns/, links/) ---------------------
    C("sender-domain-missing", "sender-dns", Kind.SENDER_DOMAIN_MISSING, None,
      "Synapse sends the mail, but receivers will reject it: {detail}",
      _DELIVERED_THEN_REFUSED, "{fix}", "email.notif_from"),
    C("sender-will-be-rejected", "sender-dns", Kind.WILL_BE_REJECTED, None,
      "Synapse sends the mail, but receivers will reject it: {detail}",
      _DELIVERED_THEN_REFUSED, "{fix}"),
    C("sender-spam-likely", "sender-dns", Kind.SPAM_LIKELY, None,
      "Synapse will send mail with this config, but receivers may file it as spam: {detail}",
      "Synapse sends and logs success; the mail may land in the spam folder, where users "
      "do not look for a password-reset link.", "{fix}"),
    C("links-dead", "links", Kind.DEAD_LINK, None,
      "Synapse sends the mail, but its links are dead: {detail}",
      "the mail arrives, but the user's click ends at {seen} instead of Synapse: password "
      "resets, registrations, address changes and unsubscribes cannot complete.", "{fix}"),
    # -- found in the config (with what the server offers, when the probe saw it) ---------
    # {message}, {finding_fix} and {consequence} are a check finding's words, {at} where
    # it is.
    C("email-off", "config", Kind.EMAIL_OFF, None,
      "email is not configured: Synapse has email off and sends no mail", _NO_MAIL,
      "add an email: block (`maildoctor init --provider NAME` prints one)"),
    C("email-off-by-config", "config", Kind.EMAIL_OFF_BY_CONFIG, None,
      "{message}: Synapse has email off and sends no mail", _NO_MAIL, "{finding_fix}",
      defaults=(("finding_fix", _SEE_CHECK),)),
    C("no-start", "config", Kind.NO_START, None,
      "Synapse will not start: {detail}", NO_START, "Fix the config error."),
    C("no-start-finding", "config", Kind.CONFIG_FINDING, None,
      "{message}", NO_START, "{finding_fix}", defaults=(("finding_fix", _SEE_CHECK),)),
    C("host-finding", "host", Kind.CONFIG_FINDING, None,
      "{message}", "{consequence}", "{finding_fix}", defaults=(
          ("finding_fix", _SEE_CHECK),
          ("consequence", "Synapse cannot send mail from this machine as it is set up."))),
    C("password-missing", "config", Kind.PASSWORD_MISSING, None,
      "smtp_user is set but smtp_pass is not; {offers}, but with no password Synapse cannot "
      "log in", _NO_LOGIN, "add `smtp_pass:` with the account's password (in quotes), or remove "
      "smtp_user if the server needs no login", "email.smtp_pass"),
    C("password-misspelt", "config", Kind.PASSWORD_MISSPELT, None,
      "smtp_pass is not set: you wrote `{typo}`{at}, which Synapse ignores; {offers}, but "
      "with no password Synapse cannot log in", _NO_LOGIN, "rename `{typo}` to `smtp_pass`"),
    C("password-mangled", "auth", Kind.PASSWORD_MANGLED, None,
      "the server refused the login ({reply}) because the password is not what you meant: "
      "{message}", _ERROR, "{finding_fix}", "email.smtp_pass",
      defaults=(("finding_fix", "quote the password"),)),
    C("port-misspelt", "connect", Kind.PORT_MISSPELT, None,
      "nothing answers on {where}: you wrote `{typo}`{at}, which Synapse ignores, so it uses "
      "port {port}", _NO_CONNECT, "rename `{typo}` to `smtp_port`"),
    C("port-null", "connect", Kind.PORT_NULL, None,
      "smtp_port is null: Synapse does not use its default for an explicit null, so its "
      "connection is refused", _NO_CONNECT, "set smtp_port (587 for STARTTLS, 465 with force_tls), "
      "or delete the line", "email.smtp_port"),
    C("starttls-not-offered", "ehlo", Kind.NO_STARTTLS, None,
      "require_transport_security is on, but the server does not offer STARTTLS on this "
      "port", "Synapse's send fails (TLSRequiredError): it logs \"Error sending email\" and "
      "the client gets HTTP 500.", "use the provider's STARTTLS port (587), or port 465 "
      "with `force_tls: true`; only on a trusted network, turn require_transport_security "
      "off",
      "email.require_transport_security"),
    C("auth-only-after-starttls", "auth", Kind.AUTH_AFTER_STARTTLS, None,
      "smtp_user is set, but {why}: this server offers AUTH only after STARTTLS, which "
      "`enable_tls: false` turns off", _NO_LOGIN, "remove `enable_tls: false`", "email.enable_tls"),
    C("no-auth-offered", "auth", Kind.NO_AUTH_OFFERED, None,
      "smtp_user is set, so Synapse insists on logging in, but {why}", _NO_LOGIN,
      "remove smtp_user and smtp_pass (this server {server_says}), or use the provider's "
      "submission port (587 or 465) that offers AUTH", "email.smtp_user"),
    C("auth-line-missed", "auth", Kind.AUTH_LINE_MISSED, None,
      "smtp_user is set, but {why}", _NO_LOGIN,
      "the server must write its capability as `AUTH LOGIN PLAIN` (upper case, a space, no "
      "`=`); until then use `maildoctor relay`"),
    C("mechanisms-unusable", "auth", Kind.MECHANISMS_UNUSABLE, None,
      "the server offers only {offered}, which Synapse cannot use (Twisted knows only "
      "CRAM-MD5, LOGIN and PLAIN)", _NO_LOGIN, "use an app password with a provider that allows "
      "LOGIN/PLAIN, or put `maildoctor relay` (it speaks XOAUTH2) between Synapse and the "
      "provider"),
    C("auth-answered-not-smtp", "auth", Kind.AUTH_NOT_SMTP, None,
      "the server answered AUTH {mechanism} with a line that is not an SMTP reply ({line!r}): "
      "a proxy, or not the mail server you meant", _ERROR,
      "check smtp_host and smtp_port: something between Synapse and the mail server answers "
      "AUTH in its place", "email.smtp_port"),
    # -- seen in Synapse's log (``maildoctor explain``): no host, port or reply to fill in,
    # so these say what the log allows; a log failure the probe's rows word well without
    # those fields reads the probe's row instead (synapse/logs/causes.py).
    C("log-no-password", "log", Kind.PASSWORD_MISSING, None,
      "smtp_user is set but Synapse has no smtp_pass: missing, empty, or misspelt (e.g. "
      "smpt_pass), which Synapse silently ignores.", _NO_LOGIN,
      "Write the password as `smtp_pass` under email: (`maildoctor check` finds typos).",
      "email.smtp_pass"),
    C("log-no-auth-offered", "log", Kind.NO_AUTH_OFFERED, None,
      "The server did not advertise AUTH: it offers it only after STARTTLS (and enable_tls "
      "is off or STARTTLS is not offered), or not on this port.", _NO_LOGIN,
      "Use the submission port (587 STARTTLS or 465 with force_tls) with enable_tls on; or "
      "remove smtp_user if the server relays without a login."),
    C("log-unsupported-mechanisms", "log", Kind.MECHANISMS_UNUSABLE, None,
      "The server offers only mechanisms Twisted cannot use (e.g. XOAUTH2/OAUTHBEARER), or "
      "writes its AUTH line in a form Twisted misses.", _NO_LOGIN,
      "Enable LOGIN or PLAIN on the server, or relay through one that has them."),
    C("log-wrong-credentials", "log", R, Blame.CREDENTIALS,
      "smtp_user or smtp_pass is wrong for this server.", _ERROR,
      "Check both; many providers need an app password or API key, not the account "
      "password.", "email.smtp_pass"),
    C("log-placeholder", "log", Kind.PASSWORD_PLACEHOLDER, None,
      "smtp_pass still holds a placeholder (changeme, redacted, ...).", _ERROR,
      "Put the real password in smtp_pass.", "email.smtp_pass"),
    C("log-mechanism-refused", "log", R, Blame.MECHANISM,
      "The server advertises CRAM-MD5 but refuses it when used (504), or sent a malformed "
      "challenge (501); Twisted does not fall back.", _ERROR,
      "Stop advertising CRAM-MD5 on the server, or fix its SASL setup."),
    C("log-needs-auth", "log", Kind.LOGIN_REQUIRED, None,
      "No smtp_user is configured, but the server requires a login.", _ERROR,
      "Add smtp_user and smtp_pass.", "email.smtp_user"),
    C("log-sender-not-allowed", "log", R, Blame.SENDER,
      "notif_from's address is not one this account may send as (not verified, not owned "
      "by the login, or not a domain the relay accepts).", _ERROR,
      "Use the account's own address or a verified sender/domain in notif_from.",
      "email.notif_from"),
    C("log-recipient-refused", "log", R, Blame.RECIPIENT,
      "The recipient address was refused (unknown user, greylisting 450, relay denied, or a "
      "sandbox that only allows verified recipients).", _ERROR,
      "Check the address and the server's relay/recipient policy."),
    C("log-size-limit", "log", R, Blame.CONTENT,
      "The server's size limit is below the mail's size.", _ERROR,
      "Raise the limit or shrink custom templates."),
    C("log-bad-host", "log", Kind.NXDOMAIN, None,
      "smtp_host is misspelt, contains host:port or a URL, or is a container name not on "
      "Synapse's Docker network.", _NO_CONNECT, "Fix smtp_host (`maildoctor check`).",
      "email.smtp_host"),
    C("log-smtputf8", "log", Kind.NON_ASCII, None,
      "notif_from or the recipient has a non-ASCII address; Twisted has no SMTPUTF8.", _ERROR,
      "Use an ASCII address in notif_from.", "email.notif_from"),
    C("log-pass-without-user", "log", Kind.PASS_WITHOUT_USER, None,
      "smtp_pass is set without smtp_user: Twisted crashes with a TypeError (logged as "
      "'Unhandled Error') and the send never returns.", _CRASH_HANG,
      "Add smtp_user, or remove smtp_pass.", "email.smtp_user"),
    C("log-bad-to", "log", Kind.INVALID_RECIPIENT, None,
      "The recipient address has no address part.", _ERROR, "Check the address."),
    C("log-stray-percent", "log", Kind.BAD_PLACEHOLDER, None,
      "notif_from or a subject has a lone % or a malformed placeholder.",
      "Every mail of that kind fails.", "Write %% for a literal percent sign; use %(app)s."),
    C("log-subject-key", "log", Kind.SUBJECT_PLACEHOLDER, None,
      "A notification subject uses e.g. %(server_name)s, which notification mails do not "
      "provide.", "Notification mails fail (\"Exception processing notifs\"); users see "
      "nothing.", "Use only that subject's placeholders (`maildoctor check`)."),
    C("log-force-tls-plain-port", "log", Kind.SPEAKS_PLAIN, None,
      "force_tls on a plain/STARTTLS port (25, 587, 2525): the TLS handshake fails and "
      "Twisted never reports it.", _HANG, "Remove force_tls, or use port 465.",
      "email.force_tls"),
    C("log-cert-name", "log", Kind.NAME_MISMATCH, None,
      "The certificate does not cover the name Synapse checks (tlsname, else smtp_host; "
      "often 'localhost' or an IP).", _HANG,
      "Set `tlsname` to a name in the certificate, or fix smtp_host.", "email.tlsname"),
    C("log-auth-4xx-or-drop", "log", Kind.CLOSED, None,
      "AUTH got a 4xx, or the server closed the connection after a failed login (wrong "
      "password on some servers).", _HANG, "Check smtp_user/smtp_pass with `maildoctor probe`."),
    C("log-silent-server", "log", Kind.SILENT, None,
      "The server accepts the TCP connection but never answers, or stalls mid-dialogue; "
      "Synapse has no SMTP timeout.", _HANG, "Check the server and any firewall/proxy."),
    C("log-retry", "log", Kind.LEGACY_RETRY, None,
      "A connection problem, a 4xx reply, or a TLS failure made Twisted retry; the last "
      "exception of the request says which.",
      "Old Synapse reconnected 5 times at once and then failed with a 500.",
      "Read the failure logged after the retries; upgrade Synapse."),
    C("log-no-notif-from", "log", Kind.NOTIF_FROM_MISSING, None,
      "Any non-empty email: block turns on email verification, which needs notif_from (a "
      "later config file may have replaced the whole block).", NO_START,
      "Add `notif_from: \"%(app)s <noreply@example.org>\"` to the email: block.",
      "email.notif_from"),
    C("log-bad-notif-from", "log", Kind.NOTIF_FROM_INVALID, None,
      "notif_from parses to an empty address.", NO_START,
      "Write it as `Name <address@domain>`.", "email.notif_from"),
    C("log-tls-flags", "log", Kind.TLS_FLAGS, None,
      "force_tls or require_transport_security needs enable_tls on.", NO_START,
      "Remove enable_tls: false, or the other flag.", "email.enable_tls"),
    C("log-no-email", "log", Kind.REQUIRE_3PID, None,
      "Registration requires an email address but there is no email: block.", NO_START,
      "Configure email: (`maildoctor init --provider NAME`)."),
    C("log-numeric-secret", "log", Kind.NUMERIC_SECRET, None,
      "YAML read an unquoted numeric password as a number.", NO_START,
      "Quote it: smtp_pass: \"123456\".", "email.smtp_pass"),
    C("log-duration", "log", Kind.BAD_DURATION, None,
      "validation_token_lifetime or notif_delay_before_mail is malformed.", NO_START,
      "Use a number with ms/s/m/h/d/w/y, e.g. 10m."),
    C("log-config", "log", Kind.NO_START, None,
      "Synapse rejected an email: setting; the message says which.", NO_START,
      "Run `maildoctor check` on the config."),
    C("log-unknown", "log", Kind.UNKNOWN, None,
      "An exception maildoctor has no table entry for; see the excerpt.", _ERROR,
      "Run `maildoctor probe` against the config."),
    C("not-configured", None, Kind.CONFIG, None,
      "the config cannot send: {detail}", "Synapse cannot send any mail with this config.",
      "fix the email: block of the config", relay_fix="fix the email: block of the relay's "
      "config"),
)

_BY_ID = {c.id: c for c in CAUSES}
assert len(_BY_ID) == len(CAUSES), "cause ids must be unique"


def cause_for(stage: str, kind: str, blame: Blame | None = None) -> Cause:
    """The most specific row for a failure of ``kind`` at ``stage`` blaming ``blame``."""
    best: tuple[int, Cause] | None = None
    for row in CAUSES:
        if row.kind != kind:
            continue
        if row.stage is not None and row.stage != stage:
            continue
        if row.blame is not None and row.blame != blame:
            continue
        score = (2 if row.blame is not None else 0) + (1 if row.stage is not None else 0)
        if best is None or score > best[0]:
            best = (score, row)
    if best is None:
        raise LookupError(f"no cause row for stage={stage!r} kind={kind!r} blame={blame}")
    return best[1]


def by_id(cause_id: str) -> Cause:
    return _BY_ID[cause_id]


_RESOLVE = {"nxdomain": Kind.NXDOMAIN, "invalid": Kind.INVALID_HOST}
_CONNECT = {"refused": Kind.REFUSED, "timeout": Kind.TIMEOUT}
_VERDICT = {"name-mismatch": Kind.NAME_MISMATCH, "expired": Kind.EXPIRED}


def failure_kind(failure: errors.SMTPFailure,
                 provider: str | None = None) -> tuple[str, str, Blame | None]:
    """(stage, failure kind, blame) of a failure, from its type and fields only."""
    stage = failure.stage or "?"
    meaning = failure.meaning(provider)
    if isinstance(failure, errors.NotConfiguredError):
        return stage, Kind.CONFIG, None
    if isinstance(failure, errors.ResolveError):
        return "resolve", _RESOLVE.get(failure.outcome, Kind.RESOLVER), None
    if isinstance(failure, errors.ConnectFailure):
        return "connect", _CONNECT.get(failure.outcome, Kind.UNREACHABLE), None
    if isinstance(failure, errors.CertificateRejected):
        return "tls", _VERDICT.get(failure.verdict, Kind.UNTRUSTED), None
    if isinstance(failure, errors.TLSFailure) and meaning is None:
        return "tls", Kind.HANDSHAKE, None
    if isinstance(failure, errors.AuthFailure) and meaning is None:
        return "auth", Kind.TOKEN if failure.mechanism == "XOAUTH2" else Kind.NO_MECHANISM, None
    if isinstance(failure, errors.ServerHung):
        return stage, Kind.SILENT, None
    if isinstance(failure, (errors.MalformedReply, errors.ReplyLimitExceeded)):
        return stage, Kind.BROKEN, None
    if meaning is not None and not isinstance(failure, errors.ConnectionLost):
        return stage, Kind.REPLY, meaning.blame
    return stage, Kind.CLOSED, None


def cause_of_failure(failure: errors.SMTPFailure, provider: str | None = None, *,
                     relay: bool = False) -> tuple[Cause, str]:
    """The row for an error raised by the Mailer (or the probe), and the fix to show: the
    catalogue's for a well-known reply, else the row's (its relay wording when ``relay``)."""
    stage, kind, blame = failure_kind(failure, provider)
    row = cause_for(stage, kind, blame)
    fix = (row.relay_fix if relay else "") or row.render({"stage": stage})[2]
    meaning = failure.meaning(provider)
    if meaning is not None and meaning.entry is not None:
        fix = meaning.entry.fix
    return row, fix
