"""Explaining logged email failures, narrowed by the config when it is given.

A log alone leaves several root causes open (AUTHRequiredError has three; a hang has
nine). The config can settle some of it, but only two kinds of config fact may do so:

- a fact that rules a cause **out** (``smtp_port`` is 587, so it is not "port 465 without
  force_tls"; ``enable_tls`` is off, so no certificate is involved): that cause is dropped;
- a finding that makes a cause **certain** (MD303 port 465 without force_tls for a hang,
  MD101 ``smpt_pass`` for AUTHRequiredError): the other causes are dropped.

A speculative finding (MD306: the certificate *would* be checked against an IP, which
matters only if the server offers STARTTLS) only moves its cause to the front. Whatever
is not certain keeps its ``next: maildoctor probe`` hint. Each step says what it relied
on, and a cause tied to a finding takes that finding's fix and file:line, so the advice
is the same as ``maildoctor check`` and ``maildoctor probe`` give.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from maildoctor.synapse.logs.causes import (
    CAUSES,
    EFFECT_BY_MAIL,
    MAIL_LABELS,
    Cause,
    Explanation,
)
from maildoctor.synapse.logs.scan import Group

__all__ = ["ConfigFacts", "ConfigFinding", "Explained", "explain_group"]


@dataclass(frozen=True)
class ConfigFinding:
    """One ``maildoctor check`` finding, as far as explaining a log needs it."""

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    fix: str | None = None
    suggests: tuple[str, ...] = ()  # the keys it suggests instead (MD101's did-you-mean)

    @property
    def where(self) -> str:
        """``line 8 of FILE``: the wording ``maildoctor probe`` uses."""
        return f"line {self.line} of {self.file}" if self.file and self.line else ""

    def cite(self) -> str:
        where = f" ({self.where})" if self.where else ""
        return f"{self.code}{where}: {self.message}"

    def fix_text(self) -> str | None:
        if not self.fix:
            return None
        return f"{self.fix.rstrip('.')} ({self.where})." if self.where else self.fix


@dataclass(frozen=True)
class ConfigFacts:
    """What the config tells us: the check findings and the derived settings."""

    findings: tuple[ConfigFinding, ...] = ()
    has_password: bool = False
    has_user: bool = False
    port: int | None = None
    force_tls: bool = False
    enable_tls: bool = True
    provider_hint: Callable[[int, str], str | None] | None = None
    provider_name: str | None = None

    def get(self, code: str, suggesting: str | None = None) -> ConfigFinding | None:
        """The first finding ``code``; with ``suggesting``, one that suggests that key."""
        for finding in self.findings:
            if finding.code == code and (suggesting is None or suggesting in finding.suggests):
                return finding
        return None

    @classmethod
    def from_check(cls, result: Any, redact: Callable[[str], str] = str) -> ConfigFacts:
        """Build from a :class:`maildoctor.config.check.CheckResult` (duck-typed); every
        finding text passes through ``redact`` (the config's password must not leak)."""
        from maildoctor.config.settings import truthy
        from maildoctor.providers import find_provider_for_host

        findings: list[ConfigFinding] = []
        for diag in result.diagnostics:
            loc = diag.location
            findings.append(ConfigFinding(
                diag.code, redact(diag.message), loc.file if loc else None,
                loc.line if loc else None,
                redact(diag.fix.message) if diag.fix is not None else None,
                tuple(diag.suggests)))
        s = result.settings
        port = s.smtp_port if type(s.smtp_port) is int else None
        if isinstance(s.smtp_port, str) and s.smtp_port.strip().isdigit():
            port = int(s.smtp_port)
        provider = find_provider_for_host(s.smtp_host, port)
        return cls(findings=tuple(findings), has_password=bool(s.smtp_pass),
                   has_user=s.smtp_user is not None, port=port,
                   force_tls=truthy(s.force_tls), enable_tls=truthy(s.enable_tls),
                   provider_hint=provider.hint_for if provider else None,
                   provider_name=provider.name if provider else None)


@dataclass(frozen=True)
class Explained:
    group: Group
    explanation: Explanation
    causes: tuple[Cause, ...]
    narrowed_by: tuple[str, ...] = ()  # why the causes not listed were ruled out
    ranked_by: tuple[str, ...] = ()  # why the first causes are the likelier ones
    hint: str | None = None

    @property
    def narrowed(self) -> bool:
        return len(self.causes) < len(self.explanation.causes)

    @property
    def certain(self) -> bool:
        """The config left exactly one cause (only certain facts ever drop causes)."""
        return self.narrowed and len(self.causes) == 1

    @property
    def suggest_probe(self) -> bool:
        """Whether a live test would tell the remaining causes apart."""
        return self.explanation.probe and len(self.causes) > 1

    @property
    def effect(self) -> str:
        """The effect for the mail contexts seen: a notification has no client to fail."""
        base = self.explanation.effect
        for prefix, by_mail in EFFECT_BY_MAIL.items():
            if not base.startswith(prefix):
                continue
            rest = base[len(prefix):]
            mails = self.group.mails or [""]
            texts = {mail: by_mail.get(mail, prefix) for mail in mails}
            if len(set(texts.values())) == 1:
                return next(iter(texts.values())) + rest
            parts = [f"{MAIL_LABELS.get(mail, 'Other mails')}: {text}"
                     for mail, text in texts.items()]
            return " ".join(parts) + rest
        return base

    def to_json(self) -> dict[str, Any]:
        g, first = self.group, self.group.first
        exc = first.exception
        return {
            "kind": first.kind, "title": self.explanation.title,
            "effect": self.effect,
            "exception": exc.qualname if exc else None,
            "message": first.summary, "count": g.count,
            "first": {"time": first.timestamp, "line": first.line_no},
            "last": {"time": g.last_timestamp, "line": g.last_line},
            "request": first.request,
            "mails": g.mails, "recipients": g.recipients, "confirmed_hangs": g.confirmed,
            "causes": [{"id": c.id, "text": c.text, "fix": c.fix} for c in self.causes],
            "narrowed": self.narrowed, "certain": self.certain,
            "narrowed_by": list(self.narrowed_by), "ranked_by": list(self.ranked_by),
            "provider_hint": self.hint, "excerpt": list(first.excerpt),
            "next": "maildoctor probe" if self.suggest_probe else None,
        }


@dataclass
class _Verdict:
    """What the config says about one failure's causes."""

    possible: set[str] | None = None  # None: nothing ruled out
    likely: list[str] = field(default_factory=list)  # listed first, in this order
    ruled_out: list[str] = field(default_factory=list)  # reasons for `possible`
    ranked: list[str] = field(default_factory=list)  # reasons for `likely`

    def drop(self, cause: str, why: str) -> None:
        assert self.possible is not None
        if cause in self.possible:
            self.possible.discard(cause)
            if why not in self.ruled_out:
                self.ruled_out.append(why)

    def prefer(self, cause: str, finding: ConfigFinding | None, note: str = "") -> None:
        if finding is not None and (self.possible is None or cause in self.possible):
            self.likely.append(cause)
            self.ranked.append(finding.cite() + note)


def _only(cause: str, why: str) -> _Verdict:
    return _Verdict({cause}, ruled_out=[why])


def _auth_required(f: ConfigFacts) -> _Verdict | None:
    if not f.has_password:
        finding = f.get("MD101", "smtp_pass") or f.get("MD307")
        return _only("no-password", finding.cite() if finding else "smtp_pass is not set")
    verdict = _only("no-auth-offered", "smtp_pass is set, so the password is not missing")
    assert verdict.possible is not None
    verdict.possible.add("unsupported-mechanisms")
    if not f.enable_tls and not f.force_tls:
        verdict.likely.append("no-auth-offered")
        verdict.ranked.append("enable_tls is off: a server that offers AUTH only after "
                              "STARTTLS never shows it to Synapse")
    return verdict


def _auth_declined(f: ConfigFacts) -> _Verdict | None:
    for code, cause in (("MD206", "placeholder"), ("MD204", "wrong-credentials")):
        finding = f.get(code)
        if finding is not None:
            return _only(cause, finding.cite())
    if f.has_password:
        verdict = _only("wrong-credentials", "smtp_pass is set and is not a placeholder")
        assert verdict.possible is not None
        verdict.possible.add("cram-md5-backend")
        return verdict
    return None


def _at_mail(f: ConfigFacts) -> _Verdict | None:
    verdict = _Verdict({"needs-auth", "needs-starttls"})
    if f.has_user:
        verdict.drop("needs-auth", "smtp_user is set, so Synapse logs in before MAIL")
    if f.enable_tls or f.force_tls:
        verdict.drop("needs-starttls", "TLS is on (enable_tls or force_tls)")
    return verdict if verdict.possible else None


_TLS_CAUSES = ("cert-untrusted", "cert-name", "tls-4xx")


def _hang(f: ConfigFacts) -> _Verdict | None:
    implicit = f.get("MD303")
    if implicit is not None or (f.port == 465 and not f.force_tls):
        return _only("implicit-tls-port", implicit.cite() if implicit else
                     "smtp_port is 465 and force_tls is off")
    plain = f.get("MD304")
    if plain is not None or (f.force_tls and f.port in (25, 587, 2525)):
        return _only("force-tls-plain-port", plain.cite() if plain else
                     f"force_tls is on with port {f.port}")
    verdict = _Verdict({c.id for c in CAUSES["hang"].causes})
    if f.force_tls:
        verdict.drop("implicit-tls-port", "force_tls is on")
    elif f.port is not None:
        verdict.drop("implicit-tls-port", f"smtp_port is {f.port}, not 465")
    if not f.force_tls:
        verdict.drop("force-tls-plain-port", "force_tls is off")
    if f.has_user or not f.has_password:
        verdict.drop("pass-without-user", "smtp_user is set" if f.has_user else
                     "smtp_pass is not set")
    if not f.has_password:
        verdict.drop("auth-4xx-or-drop", "smtp_pass is not set, so Synapse never logs in")
    if not f.enable_tls and not f.force_tls:
        for cause in _TLS_CAUSES:
            verdict.drop(cause, "enable_tls is off and force_tls is off (no TLS involved)")
    verdict.prefer("pass-without-user", f.get("MD308"),
                   "; yet the log shows no 'Unhandled Error' from Twisted")
    verdict.prefer("cert-name", f.get("MD306"),
                   " (this matters only if the server offers STARTTLS or uses TLS)")
    return verdict


def _refused(f: ConfigFacts) -> _Verdict | None:
    for code, about in (("MD101", "smtp_port"), ("MD310", None), ("MD202", None)):
        finding = f.get(code, about)
        if finding is not None:
            return _only("nothing-listening", finding.cite())
    return None


_NARROW: dict[str, Callable[[ConfigFacts], _Verdict | None]] = {
    "auth-required": _auth_required, "auth-declined": _auth_declined,
    "auth-needed-at-mail": _at_mail, "hang": _hang, "refused": _refused,
}

#: Causes a check finding speaks for: (code, key the finding must name, or None). When
#: one is present its fix, with file:line, replaces the cause's generic fix.
_CAUSE_FINDINGS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "no-password": (("MD101", "smtp_pass"), ("MD307", None)),
    "implicit-tls-port": (("MD303", None),),
    "force-tls-plain-port": (("MD304", None),),
    "pass-without-user": (("MD308", None),),
    "cert-name": (("MD306", None),),
    "placeholder": (("MD206", None),),
    "wrong-credentials": (("MD204", None),),
    "nothing-listening": (("MD101", "smtp_port"), ("MD202", None), ("MD310", None),
                          ("MD101", "smtp_host")),
    "bad-host": (("MD208", None), ("MD101", "smtp_host")),
    "numeric-secret": (("MD203", None),),
    "duration": (("MD207", None),),
}


def _config_fix(cause: Cause, facts: ConfigFacts) -> Cause:
    for code, about in _CAUSE_FINDINGS.get(cause.id, ()):
        finding = facts.get(code, about)
        fix = finding.fix_text() if finding is not None else None
        if fix:
            return replace(cause, fix=fix)
    return cause


def _apply(causes: Sequence[Cause], verdict: _Verdict) -> list[Cause] | None:
    """Drop the ruled-out causes and put the likely ones first; None if the verdict
    would drop them all (the log and the config disagree: trust neither)."""
    kept = [c for c in causes if verdict.possible is None or c.id in verdict.possible]
    if not kept:
        return None
    first = [c for cause_id in verdict.likely for c in kept if c.id == cause_id]
    return first + [c for c in kept if c not in first]


def explain_group(group: Group, facts: ConfigFacts | None = None) -> Explained:
    """Candidate causes for one group, narrowed and ranked by ``facts`` when given."""
    explanation = CAUSES.get(group.first.kind, CAUSES["other"])
    causes = list(explanation.causes)
    narrowed_by: tuple[str, ...] = ()
    ranked_by: tuple[str, ...] = ()
    hint: str | None = None
    if facts is not None:
        narrow = _NARROW.get(group.first.kind)
        verdict = narrow(facts) if narrow else None
        applied = _apply(causes, verdict) if verdict is not None else None
        if verdict is not None and applied is not None:
            causes, narrowed_by = applied, tuple(verdict.ruled_out)
            if len(causes) > 1:
                ranked_by = tuple(verdict.ranked)
        causes = [_config_fix(c, facts) for c in causes]
        exc = group.first.exception
        if facts.provider_hint is not None and exc is not None and exc.code is not None:
            text = exc.reply_text
            if text[:3] == f"{exc.code:03d}":  # Twisted's message starts with the code
                text = text[4:]
            hint = facts.provider_hint(exc.code, text)
    return Explained(group, explanation, tuple(causes), narrowed_by, ranked_by, hint)
