"""One diagnosis from many symptoms.

``check`` finds what is wrong in the config, the probe observes the server, and the
Synapse model predicts what Synapse will do. :func:`diagnose` combines the three into
the *root cause*, the key to change (and its value when it can be known), and what
Synapse will do meanwhile.

Explainers (:data:`EXPLAINERS`) look at the evidence and either name the root cause or
pass. The first that matches wins, so the order is the order of causality: a config
Synapse cannot start with beats everything; a host that does not resolve beats a port
that does not answer; and so on down the dialogue. What a server failure *means* (its
cause, Synapse's consequence, the key and the fix) is read from the cause table
(:mod:`maildoctor.causes`) and, for a server's reply, from what the reply blames
(:func:`maildoctor.replies.classify`), never from the stage alone. Server evidence
outranks a config heuristic; when both exist, both are shown, the server's first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from maildoctor.causes import Kind, cause_for
from maildoctor.config.settings import EmailSettings
from maildoctor.diagnostics import Diagnostic, Location, Severity
from maildoctor.meaning import Meaning, classify
from maildoctor.printable import printable
from maildoctor.replies import Blame, Reply
from maildoctor.smtp.facts import AuthAttempt, Connect, Resolve, ServerFacts, Speaks, TlsVerify
from maildoctor.smtp.parse import (
    offered_mechanisms,
    twisted_auth_mechanisms,
    twisted_offers_starttls,
)
from maildoctor.smtp.twisted_caps import TWISTED_MECHANISMS
from maildoctor.synapse.model.predict import Outcome


@dataclass(frozen=True)
class Diagnosis:
    """The root cause, in plain words, and what to change."""

    ok: bool
    root_cause: str
    fix: str
    synapse: Outcome
    key: str | None = None  # dotted path of the key to change
    value: Any = None  # the value to set, when known
    location: Location | None = None
    evidence: tuple[str, ...] = ()
    code: str = ""  # the check rule behind it, when the cause is in the config
    consequence: str = ""  # what Synapse does, from the cause table
    cause_id: str = ""  # the cause table row (or catalogue entry) behind it
    # config findings (rule codes) that what the probe observed has answered
    settled: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "root_cause": self.root_cause,
            "fix": self.fix,
            "key": self.key,
            "value": self.value,
            "location": self.location.to_json() if self.location else None,
            "evidence": list(self.evidence),
            "code": self.code or None,
            "cause_id": self.cause_id or None,
            "consequence": self.consequence or None,
            "settled_by_probe": list(self.settled),
            "synapse": {
                "outcome": self.synapse.kind,
                "exception": self.synapse.exception or None,
                "message": self.synapse.message or None,
                "http": self.synapse.http,
                "logged": self.synapse.logged,
                "why": self.synapse.why,
            },
        }


@dataclass
class Evidence:
    settings: EmailSettings
    facts: ServerFacts
    outcome: Outcome
    findings: Sequence[Diagnostic] = ()
    stopped_after: str | None = None
    stages: Sequence[Any] = ()  # the probe's StageResults, in order
    config: Any = None  # the LoadedConfig, to point at the key to change
    extra: dict[str, Any] = field(default_factory=dict)

    def finding(self, code: str, *, about: str | None = None) -> Diagnostic | None:
        for d in self.findings:
            if d.code == code and (about is None or about in d.message):
                return d
        return None

    def typo_for(self, key: str) -> Diagnostic | None:
        """The MD101 finding that suggests ``key`` (e.g. the `smpt_pass` line)."""
        for d in self.findings:
            if d.code == "MD101" and key in d.suggests:
                return d
        return None

    @property
    def caps(self) -> tuple[str, ...]:
        """The capabilities that decide AUTH (after STARTTLS when it happened)."""
        return self.facts.ehlo_tls_lines or self.facts.ehlo_lines

    @property
    def offered(self) -> tuple[str, ...]:
        return offered_mechanisms(self.caps)

    @property
    def provider(self) -> str | None:
        """The provider recognised from smtp_host (its provider-only replies apply)."""
        if "provider" not in self.extra:
            from maildoctor.providers import find_provider_for_host

            found = find_provider_for_host(self.settings.smtp_host, self.settings.smtp_port)
            self.extra["provider"] = found.name if found else None
        name = self.extra["provider"]
        return name if isinstance(name, str) else None

    def meaning(self, reply: Reply, stage: str) -> Meaning:
        return classify(reply, stage, provider=self.provider)

    def fields(self, **more: Any) -> dict[str, Any]:
        s = self.settings
        return {"host": s.smtp_host, "port": s.smtp_port,
                "where": f"{s.smtp_host}:{s.smtp_port}", "user": s.smtp_user,
                "sender": s.envelope_from, **more}


def _where(d: Diagnostic | None) -> str:
    if d is None or d.location is None:
        return ""
    return f" (line {d.location.line} of {d.location.file})"


def _key_name(d: Diagnostic) -> str:
    return d.location.path.rsplit(".", 1)[-1] if d.location and d.location.path else "?"


def _mechs(names: Sequence[str]) -> str:
    if not names:
        return "none"
    return " and ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " and " + names[-1]


Explainer = Callable[[Evidence], Diagnosis | None]


def _said(d: Diagnostic) -> dict[str, Any]:
    """A check finding's words as template fields: {message}, and {finding_fix} and
    {consequence} when it has them (else the row's defaults)."""
    return {"message": d.message, **({"finding_fix": d.fix.message} if d.fix else {}),
            **({"consequence": d.consequence} if d.consequence else {})}


def _from_table(ev: Evidence, stage: str, kind: str, blame: Blame | None = None, *,
                key: str | None = None, value: Any = None, finding: Diagnostic | None = None,
                evidence: Sequence[str] = (), **fields: Any) -> Diagnosis:
    """A diagnosis worded by the cause table's row for (stage, kind, blame)."""
    row = cause_for(stage, kind, blame)
    cause, consequence, fix = row.render(ev.fields(stage=stage, **fields))
    return Diagnosis(
        ok=False, root_cause=cause, fix=fix, synapse=ev.outcome,
        key=key if key is not None else row.key, value=value,
        location=finding.location if finding else None, evidence=tuple(evidence),
        code=finding.code if finding else "", consequence=consequence, cause_id=row.id)


def _from_reply(ev: Evidence, stage: str, reply: Reply, *,
                also: Diagnostic | None = None, **fields: Any) -> Diagnosis:
    """A refusal explained by what the reply blames; a well-known reply by its catalogue
    entry. ``also``: a config finding to show after the server's evidence."""
    meaning = ev.meaning(reply, stage)
    found = _from_table(ev, stage, Kind.REPLY, meaning.blame, reply=str(reply),
                        evidence=(str(reply), f"what the reply blames: {meaning.blame} "
                                  f"({meaning.because})"), **fields)
    entry = meaning.entry
    if entry is not None:
        found = replace(found, root_cause=f"{entry.cause} ({reply})", fix=entry.fix,
                        key=entry.key, cause_id=entry.id,
                        evidence=(*found.evidence, f"known {entry.source} reply: {entry.cite}"))
    if also is not None:
        found = replace(
            found, root_cause=f"{found.root_cause}; also, in the config: {also.message}",
            fix=f"{found.fix}; and {also.fix.message if also.fix else 'see ' + also.code}",
            location=found.location or (also.location if found.key in (None, _path(also))
                                        else None),
            code=also.code)
    return found


def _path(d: Diagnostic) -> str | None:
    return d.location.path if d.location else None


def explain_email_off(ev: Evidence) -> Diagnosis | None:
    """No (or an empty, or a misspelt) email: block: Synapse sends nothing at all."""
    if ev.settings.email_enabled:
        return None
    finding = ev.finding("MD108") or ev.finding("MD109")
    if finding is not None:
        return _from_table(ev, "config", Kind.EMAIL_OFF_BY_CONFIG, finding=finding,
                           key=_path(finding), **_said(finding))
    return _from_table(ev, "config", Kind.EMAIL_OFF)


def explain_no_start(ev: Evidence) -> Diagnosis | None:
    """A config Synapse refuses to start with: nothing else matters until it is fixed."""
    if ev.outcome.kind != "no-start":
        return None
    replaced = ev.finding("MD002")
    blocker = replaced if replaced is not None and "notif_from" in replaced.consequence else None
    blocker = blocker or next((d for d in ev.findings if d.severity is Severity.ERROR
                               and d.stops_synapse), None)
    if blocker is not None:
        return _from_table(ev, "config", Kind.CONFIG_FINDING, key=_path(blocker),
                           finding=blocker, **_said(blocker))
    return _from_table(ev, "config", Kind.NO_START, detail=ev.outcome.message)


def explain_missing_password(ev: Evidence) -> Diagnosis | None:
    """The seed case: smtp_user set, no password, so Twisted cannot authenticate."""
    s = ev.settings
    if not s.require_auth or s.will_attempt_auth:
        return None
    offered = ev.offered
    usable = [m for m in TWISTED_MECHANISMS if m in twisted_auth_mechanisms(ev.caps)]
    typo = ev.typo_for("smtp_pass")
    said = (f"the server offers {_mechs(offered)}" if offered
            else "the server offers no AUTH at all")
    if typo is not None:
        return _from_table(ev, "config", Kind.PASSWORD_MISSPELT, key=_path(typo),
                           value="smtp_pass", finding=typo, evidence=(said,),
                           typo=_key_name(typo), at=_where(typo), offers=said)
    if s.smtp_user == "":
        return None  # empty user: handled by the auth explainers / MD205
    return _from_table(ev, "config", Kind.PASSWORD_MISSING, finding=ev.finding("MD307"),
                       offers=said, evidence=(said, f"Synapse can use: {_mechs(usable)}"))


def explain_resolve(ev: Evidence) -> Diagnosis | None:
    f = ev.facts
    if f.resolve in (None, Resolve.OK):
        return None
    kind = {Resolve.INVALID: Kind.INVALID_HOST, Resolve.NXDOMAIN: Kind.NXDOMAIN}.get(
        f.resolve, Kind.RESOLVER)
    d = ev.finding("MD208") if kind == Kind.INVALID_HOST else None
    return _from_table(ev, "resolve", kind, finding=d)


def explain_connect(ev: Evidence) -> Diagnosis | None:
    f = ev.facts
    if f.connect in (None, Connect.OK):
        return None
    typo = ev.typo_for("smtp_port")
    if typo is not None:
        return _from_table(ev, "connect", Kind.PORT_MISSPELT, key=_path(typo),
                           value="smtp_port", finding=typo, typo=_key_name(typo),
                           at=_where(typo))
    if ev.settings.smtp_port is None:
        return _from_table(ev, "connect", Kind.PORT_NULL, finding=ev.finding("MD202"))
    kind = {Connect.REFUSED: Kind.REFUSED, Connect.TIMEOUT: Kind.TIMEOUT}.get(
        f.connect, Kind.UNREACHABLE)
    return _from_table(ev, "connect", kind)


def explain_tls_mode(ev: Evidence) -> Diagnosis | None:
    f, s = ev.facts, ev.settings
    if f.speaks is Speaks.TLS and not s.implicit_tls:
        return _from_table(ev, "connect", Kind.SPEAKS_TLS, value=True,
                           finding=ev.finding("MD303"))
    if f.speaks is Speaks.SMTP and s.implicit_tls:
        return _from_table(ev, "connect", Kind.SPEAKS_PLAIN, value=False,
                           finding=ev.finding("MD304"))
    kind = {Speaks.SILENT: Kind.PORT_SILENT, Speaks.NOT_SMTP: Kind.NOT_SMTP,
            Speaks.CLOSED: Kind.PORT_CLOSES}.get(f.speaks) if f.speaks else None
    return None if kind is None else _from_table(ev, "connect", kind)


def explain_certificate(ev: Evidence) -> Diagnosis | None:
    f, s = ev.facts, ev.settings
    if f.tls in (None, TlsVerify.OK):
        return None
    cert = f.certificate
    names = ", ".join(cert.names) if cert and cert.names else "no names"
    how = "implicit TLS" if s.implicit_tls else "STARTTLS"
    if f.tls is TlsVerify.NAME_MISMATCH:
        better = cert.names[0] if cert and cert.names else None
        return _from_table(ev, "tls", Kind.NAME_MISMATCH, value=better,
                           finding=ev.finding("MD306"), names=names, name=s.tls_name, how=how,
                           better=better or "a name in the certificate",
                           evidence=(f"certificate names: {names}",))
    if f.tls is TlsVerify.UNTRUSTED:
        kind = ("self-signed" if cert and cert.self_signed
                else "issued by a CA this machine does not trust")
        return _from_table(ev, "tls", Kind.UNTRUSTED, what=kind, how=how,
                           evidence=((f"issuer: {cert.issuer}",) if cert else ()))
    if f.tls is TlsVerify.EXPIRED:
        return _from_table(ev, "tls", Kind.EXPIRED, until=cert.not_after if cert else "?")
    if cert and cert.verify_error:
        return _from_table(ev, "tls", Kind.HANDSHAKE, how=how, detail=cert.verify_error)
    if f.stalled_at == "tls":
        did = "accepted STARTTLS" if how == "STARTTLS" else "took the connection"
        return _from_table(ev, "tls", Kind.HANDSHAKE_SILENT, how=how, did=did)
    return _from_table(ev, "tls", Kind.HANDSHAKE, how=how)


def explain_server_refusal(ev: Evidence) -> Diagnosis | None:
    f = ev.facts
    if f.greeting is not None and f.greeting.code != 220:
        return _from_reply(ev, "greeting", f.greeting)
    if f.ehlo is not None and f.ehlo.code // 100 != 2 and (
            f.helo is None or f.helo.code // 100 != 2):
        return _from_reply(ev, "ehlo", f.ehlo)
    if s_requires_tls_without_starttls(ev):
        return _from_table(ev, "ehlo", Kind.NO_STARTTLS, evidence=("STARTTLS not in EHLO",))
    if f.starttls is not None and f.starttls.code != 220:
        return _from_table(ev, "starttls", Kind.REPLY, None, reply=str(f.starttls),
                           evidence=(str(f.starttls),))
    return None


def s_requires_tls_without_starttls(ev: Evidence) -> bool:
    from maildoctor.smtp.parse import twisted_offers_starttls

    s, f = ev.settings, ev.facts
    return (s.require_tls and not s.implicit_tls and bool(f.ehlo_lines)
            and not (s.starttls_enabled and twisted_offers_starttls(f.ehlo_lines)))


def _auth_worked(attempts: Sequence[AuthAttempt]) -> list[str]:
    return [a.mechanism for a in attempts if a.succeeded]


def explain_auth(ev: Evidence) -> Diagnosis | None:
    f, s = ev.facts, ev.settings
    if not s.require_auth and not s.will_attempt_auth:
        return None
    offered = ev.offered
    usable = [m for m in TWISTED_MECHANISMS if m in twisted_auth_mechanisms(ev.caps)]
    if s.require_auth and not usable and (f.ehlo_lines or f.ehlo_tls_lines):
        from maildoctor.smtp import twisted_caps

        why = twisted_caps.why_no_usable_auth(twisted_caps.parse_capabilities(ev.caps))
        tls_would_help = not s.starttls_enabled and (
            "STARTTLS" in twisted_caps.parse_capabilities(f.ehlo_lines))
        if tls_would_help:
            return _from_table(ev, "auth", Kind.AUTH_AFTER_STARTTLS, value=True, why=why)
        if not offered:
            relays = f.mail is not None and f.mail.code == 250
            return _from_table(ev, "auth", Kind.NO_AUTH_OFFERED, why=why, server_says=(
                "accepted MAIL FROM without a login" if relays else "asks for none here"))
        if set(offered) & set(TWISTED_MECHANISMS):
            return _from_table(ev, "auth", Kind.AUTH_LINE_MISSED, why=why,
                               evidence=tuple(f.ehlo_tls_lines or f.ehlo_lines))
        return _from_table(ev, "auth", Kind.MECHANISMS_UNUSABLE, offered=_mechs(offered),
                           evidence=(f"offered: {_mechs(offered)}",))
    attempt = f.auth
    if attempt is None or attempt.succeeded:
        return None
    verdict = attempt.final
    worked = _auth_worked(f.auth_all)
    mechanism = attempt.mechanism
    if f.malformed_at == "auth":
        line = printable(f.malformed_line or "", 80)
        return _from_table(ev, "auth", Kind.AUTH_NOT_SMTP, mechanism=mechanism, line=line,
                           evidence=(f"reply to AUTH {mechanism}: {line!r}",))
    if f.stalled_at == "auth" and not attempt.dropped:
        if verdict is not None and verdict.code == 334:
            return _from_table(ev, "auth", Kind.PASSWORD_SILENCE, prompt=_prompt(verdict),
                               mechanism=mechanism, timeout=ev.extra.get("timeout", "the"),
                               evidence=(f"last reply: {_prompt(verdict)}",))
        return _from_table(ev, "auth", Kind.SILENT, mechanism=mechanism,
                           timeout=ev.extra.get("timeout", "the"))
    if attempt.mechanism == "CRAM-MD5" and worked:
        return _from_table(ev, "auth", Kind.CRAM_TRAP, worked=_mechs(worked),
                           verb="works" if len(worked) == 1 else "work",
                           evidence=(f"{attempt.mechanism}: {verdict}",))
    if attempt.dropped and not attempt.replies:
        return _from_table(ev, "auth", Kind.CLOSED_AT_AUTH, mechanism=mechanism)
    if attempt.dropped or verdict is None:
        return _from_table(ev, "auth", Kind.CLOSED, mechanism=mechanism)
    if verdict.code < 400:  # a challenge left unanswered: the exchange did not finish
        return _from_table(ev, "auth", Kind.SILENT, mechanism=mechanism,
                           timeout=ev.extra.get("timeout", "the"))
    mangled = ev.finding("MD204") or ev.finding("MD203") or ev.finding("MD206")
    meaning = ev.meaning(verdict, "auth")
    if mangled is not None and meaning.entry is None and meaning.blame is Blame.CREDENTIALS:
        # No word from the server beyond "refused": the config finding is the likelier cause.
        return _from_table(ev, "auth", Kind.PASSWORD_MANGLED, finding=mangled,
                           reply=str(verdict), evidence=(str(verdict),), **_said(mangled))
    return _from_reply(ev, "auth", verdict, also=mangled, mechanism=mechanism)


def explain_envelope(ev: Evidence) -> Diagnosis | None:
    """A refusal of MAIL FROM or RCPT TO, read by what it blames: Postfix answers sender
    rules at RCPT (smtpd_delay_reject), so a RCPT refusal may name notif_from."""
    f = ev.facts
    if f.mail is not None and f.mail.code != 250:
        return _from_reply(ev, "mail", f.mail)
    if f.rcpt is not None and f.rcpt.code // 100 != 2:
        return _from_reply(ev, "rcpt", f.rcpt, recipient=ev.extra.get("recipient", "?"))
    own = f.rcpt_self
    if own is not None and own.code // 100 != 2:
        meaning = ev.meaning(own, "rcpt")
        if meaning.blame not in (Blame.RECIPIENT, Blame.UNKNOWN):
            return _from_reply(ev, "rcpt", own, recipient=ev.settings.envelope_from)
    return None


def _prompt(reply: Reply) -> str:
    """A 334 challenge as words ("334 Password:"), decoded when it is base64 text."""
    import base64
    import binascii

    try:
        words = base64.b64decode(reply.text.strip(), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return str(reply)
    shown = "".join(c for c in words if c.isprintable())
    return f"{reply.code} {shown}" if shown else str(reply)


BROKEN_REPLY = {"line-too-long", "reply-too-large", "too-many-lines", "malformed-reply",
                "slow-drip", "invalid-utf8", "no-reply"}


def explain_broken_reply(ev: Evidence) -> Diagnosis | None:
    """The server's replies are unusable (endless, huge, malformed, dripping)."""
    for st in ev.stages:
        if str(st.status) == "fail" and st.facts.get("finding") in BROKEN_REPLY \
                and st.name not in ("auth", "envelope"):
            return _from_table(ev, st.name, Kind.BROKEN, detail=st.error or st.summary,
                               evidence=(st.summary,))
    return None


def explain_dialogue(ev: Evidence) -> Diagnosis | None:
    f = ev.facts
    if f.closed_at in ("auth", "mail", "rcpt") or f.stalled_at in ("auth", "mail", "rcpt"):
        return None  # the AUTH and envelope explainers say it better
    if f.closed_at:
        return _from_table(ev, f.closed_at, Kind.CLOSED)
    if f.stalled_at:
        return _from_table(ev, f.stalled_at, Kind.SILENT)
    return None


def explain_where_synapse_runs(ev: Evidence) -> Diagnosis | None:
    """The machine, not the config (MD6xx findings, from ``maildoctor.host``, and MD110 for
    the release installed): Synapse's installation cannot start or cannot mail; its host
    has no route to smtp_host's family; ``localhost`` in a container is the container
    itself; a bare EHLO name the server refused. The network and EHLO causes count only
    when the probe saw that step fail."""
    blocker = next((d for d in ev.findings if d.code in ("MD110", "MD601", "MD602")
                    and d.severity is Severity.ERROR), None)
    failed = ev.facts.connect not in (None, Connect.OK)
    if blocker is None and failed:
        blocker = ev.finding("MD610") or ev.finding("MD620")
    ehlo = ev.facts.ehlo
    seen = [blocker.consequence] if blocker is not None else []
    if blocker is None and ehlo is not None and ehlo.code // 100 == 5:
        blocker = ev.finding("MD630")
        seen = [f"the server answered EHLO with {ehlo}"]
    if blocker is None:
        return None
    return _from_table(ev, "host", Kind.CONFIG_FINDING, finding=blocker, evidence=tuple(seen),
                       key=_path(blocker), **_said(blocker))


# --- After the 250: Synapse sends, but the mail is refused or its links are dead ----------
# These read the probe's `sender-dns` and `links` stages (their facts are the judged
# verdicts of maildoctor.senderdns and maildoctor.links); they come last, so any failure of
# Synapse's own part is named first.


def _after_stage(ev: Evidence, name: str) -> Any:
    if ev.outcome.kind != "ok":
        return None
    for st in ev.stages:
        if st.name == name and str(st.status) == "fail":
            return st
    return None


def _finding_fix(finding: dict[str, Any]) -> str:
    fix = finding.get("fix") or ""
    if finding.get("record"):
        fix = f"{fix}: {finding['record']}" if fix else finding["record"]
    return str(fix)


def explain_sender_dns(ev: Evidence) -> Diagnosis | None:
    """The sender domain's DNS makes receivers reject the mail (verdict will-fail)."""
    st = _after_stage(ev, "sender-dns")
    if st is None:
        return None
    worst = next((f for f in st.facts.get("findings", ()) if f["level"] == "will-fail"), None)
    if worst is None:
        return None
    kind = (Kind.SENDER_DOMAIN_MISSING if worst["code"] == "sender-domain-missing"
            else Kind.WILL_BE_REJECTED)
    return _from_table(ev, "sender-dns", kind, detail=worst["message"],
                       fix=_finding_fix(worst), evidence=(st.summary,))


def explain_dead_links(ev: Evidence) -> Diagnosis | None:
    """The links in Synapse's mails do not reach Synapse (a proxy rule is missing)."""
    st = _after_stage(ev, "links")
    if st is None:
        return None
    broken = [link for link in st.facts.get("links", ()) if not link.get("works", True)]
    if not broken:
        return None
    first = broken[0]
    return _from_table(ev, "links", Kind.DEAD_LINK, key=first.get("key"),
                       detail=first["problem"], fix=first.get("fix") or "",
                       seen=first["seen"],
                       evidence=tuple(f"{b['url']}: {b['seen']}" for b in broken))


def _ok_with_warnings(ev: Evidence) -> Diagnosis:
    """Synapse sends; an at-risk sender domain (spam folder likely) is said as a warning,
    with its fix, without failing the probe."""
    warned = next((st for st in ev.stages if st.name == "sender-dns"
                   and str(st.status) == "warn"), None)
    worst = next((f for f in warned.facts.get("findings", ()) if f["level"] == "at-risk"),
                 None) if warned is not None else None
    if warned is None or worst is None:
        return Diagnosis(ok=True, root_cause="Synapse will send mail with this config",
                         fix="", synapse=ev.outcome)
    found = _from_table(ev, "sender-dns", Kind.SPAM_LIKELY, detail=worst["message"],
                        fix=_finding_fix(worst), evidence=(warned.summary,))
    return replace(found, ok=True)


EXPLAINERS: tuple[Explainer, ...] = (
    explain_no_start,
    explain_email_off,
    explain_where_synapse_runs,
    explain_resolve,
    explain_connect,
    explain_tls_mode,
    explain_certificate,
    explain_server_refusal,
    explain_broken_reply,
    explain_dialogue,
    explain_missing_password,
    explain_auth,
    explain_envelope,
    explain_sender_dns,
    explain_dead_links,
)


def _located(ev: Evidence, found: Diagnosis) -> Diagnosis:
    """Point at the key to change (or the nearest enclosing one) when no finding did."""
    if found.location is not None or not found.key or ev.config is None:
        return found
    location = ev.config.location(tuple(found.key.split(".")))
    return replace(found, location=location) if location is not None else found


def settled_by_probe(ev: Evidence) -> tuple[str, ...]:
    """Config findings the probe has answered, so that no output repeats them as open
    questions: MD306 (the certificate name is unverified for a local host) once the
    certificate verified, or when the server offers no STARTTLS to a config without
    implicit TLS (no certificate is ever checked)."""
    facts, s = ev.facts, ev.settings
    no_starttls = (not s.implicit_tls and bool(facts.ehlo_lines)
                   and not twisted_offers_starttls(facts.ehlo_lines))
    answered = facts.tls is TlsVerify.OK or no_starttls
    return ("MD306",) if answered and any(d.code == "MD306" for d in ev.findings) else ()


def diagnose(ev: Evidence) -> Diagnosis:
    """The root cause, with the config findings the probe settled."""
    return replace(_diagnose(ev), settled=settled_by_probe(ev))


def _diagnose(ev: Evidence) -> Diagnosis:
    for explainer in EXPLAINERS:
        found = explainer(ev)
        if found is not None:
            return _located(ev, found)
    if ev.outcome.kind == "untested":
        return Diagnosis(ok=True, root_cause=f"every stage up to {ev.stopped_after} passed; "
                         "the later stages were not tested", fix="", synapse=ev.outcome)
    if ev.outcome.kind == "ok":
        return _ok_with_warnings(ev)
    return Diagnosis(ok=False, root_cause=ev.outcome.why or ev.outcome.message,
                     fix="see the stages below", synapse=ev.outcome)
