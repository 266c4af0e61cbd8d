"""Explaining logged email failures, narrowed by the config when it is given.

A log alone leaves several root causes open (AUTHRequiredError has three; a hang has
nine). The config often settles it: ``check()`` findings (MD101 smtp_pass typo, MD303
port 465 without force_tls, ...) and the derived settings pick the cause, and the
provider library (recognised from ``smtp_host``) adds its own hint for the server's reply.
Each narrowing says what it relied on, so the user can judge it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from maildoctor.synapse.logs_causes import CAUSES, Cause, Explanation
from maildoctor.synapse.logs_scan import Group

__all__ = ["ConfigFacts", "Explained", "explain_group"]


@dataclass(frozen=True)
class ConfigFacts:
    """What the config tells us: finding codes (with messages) and the derived settings."""

    findings: dict[str, str] = field(default_factory=dict)
    has_password: bool = False
    has_user: bool = False
    port: int | None = None
    force_tls: bool = False
    enable_tls: bool = True
    provider_hint: Callable[[int, str], str | None] | None = None
    provider_name: str | None = None

    @classmethod
    def from_check(cls, result: Any) -> ConfigFacts:
        """Build from a :class:`maildoctor.config.check.CheckResult` (duck-typed)."""
        from maildoctor.providers import find_provider_for_host
        from maildoctor.synapse.settings import truthy

        findings: dict[str, str] = {}
        for diag in result.diagnostics:
            findings.setdefault(diag.code, diag.message)
        s = result.settings
        port = s.smtp_port if type(s.smtp_port) is int else None
        if isinstance(s.smtp_port, str) and s.smtp_port.strip().isdigit():
            port = int(s.smtp_port)
        provider = find_provider_for_host(s.smtp_host, port)
        return cls(findings=findings, has_password=bool(s.smtp_pass),
                   has_user=s.smtp_user is not None, port=port,
                   force_tls=truthy(s.force_tls), enable_tls=truthy(s.enable_tls),
                   provider_hint=provider.hint_for if provider else None,
                   provider_name=provider.name if provider else None)


@dataclass(frozen=True)
class Explained:
    group: Group
    explanation: Explanation
    causes: tuple[Cause, ...]
    narrowed_by: tuple[str, ...] = ()
    hint: str | None = None

    @property
    def narrowed(self) -> bool:
        return len(self.causes) < len(self.explanation.causes)

    def to_json(self) -> dict[str, Any]:
        g, first = self.group, self.group.first
        exc = first.exception
        return {
            "kind": first.kind, "title": self.explanation.title,
            "effect": self.explanation.effect,
            "exception": exc.qualname if exc else None,
            "message": first.summary, "count": g.count,
            "first": {"time": first.timestamp, "line": first.line_no},
            "last": {"time": g.last_timestamp, "line": g.last_line},
            "mails": g.mails, "recipients": g.recipients, "confirmed_hangs": g.confirmed,
            "causes": [{"id": c.id, "text": c.text, "fix": c.fix} for c in self.causes],
            "narrowed": self.narrowed, "narrowed_by": list(self.narrowed_by),
            "provider_hint": self.hint, "excerpt": list(first.excerpt),
            "next": "maildoctor probe" if self.suggest_probe else None,
        }

    @property
    def suggest_probe(self) -> bool:
        """Whether a live test would tell the remaining causes apart."""
        return self.explanation.probe and len(self.causes) > 1


_Narrowing = tuple[Sequence[str], str]


def _auth_required(f: ConfigFacts) -> _Narrowing | None:
    if not f.has_password:
        why = f.findings.get("MD101") or f.findings.get("MD307") or "smtp_pass is not set"
        return ["no-password"], why
    if not f.enable_tls and not f.force_tls:
        return ["no-auth-offered"], ("enable_tls is off, so AUTH offered only after STARTTLS "
                                     "is never seen")
    return (["no-auth-offered", "unsupported-mechanisms"],
            "smtp_pass is set, so it is not a missing password")


def _auth_declined(f: ConfigFacts) -> _Narrowing | None:
    if "MD206" in f.findings:
        return ["placeholder"], f.findings["MD206"]
    if "MD204" in f.findings:
        return ["wrong-credentials"], f.findings["MD204"]
    if f.has_password:
        return (["wrong-credentials", "cram-md5-backend"],
                "smtp_pass is set and is not a placeholder")
    return None


def _at_mail(f: ConfigFacts) -> _Narrowing | None:
    if not f.has_user:
        return ["needs-auth"], "no smtp_user is configured"
    if not f.enable_tls:
        return ["needs-starttls"], "enable_tls is off"
    return None


_HANG_BY_FINDING = (("MD303", "implicit-tls-port"), ("MD304", "force-tls-plain-port"),
                    ("MD308", "pass-without-user"), ("MD306", "cert-name"))
_TLS_CAUSES = frozenset({"cert-untrusted", "cert-name", "tls-4xx"})


def _hang(f: ConfigFacts) -> _Narrowing | None:
    for code, cause in _HANG_BY_FINDING:
        if code in f.findings:
            return [cause], f"{code}: {f.findings[code]}"
    if f.port == 465 and not f.force_tls:
        return ["implicit-tls-port"], "smtp_port is 465 and force_tls is off"
    if f.force_tls and f.port in (25, 587, 2525):
        return ["force-tls-plain-port"], f"force_tls is on with port {f.port}"
    keep = [c.id for c in CAUSES["hang"].causes if c.id not in
            ("implicit-tls-port", "force-tls-plain-port", "pass-without-user")]
    if not f.enable_tls and not f.force_tls:
        keep = [c for c in keep if c not in _TLS_CAUSES]
        return keep, "the port/TLS settings agree and enable_tls is off (no TLS involved)"
    return keep, "the port and TLS settings agree with each other"


def _refused(f: ConfigFacts) -> _Narrowing | None:
    for code in ("MD101", "MD310", "MD202"):
        if code in f.findings:
            return ["nothing-listening"], f"{code}: {f.findings[code]}"
    return None


_NARROW: dict[str, Callable[[ConfigFacts], _Narrowing | None]] = {
    "auth-required": _auth_required, "auth-declined": _auth_declined,
    "auth-needed-at-mail": _at_mail, "hang": _hang, "refused": _refused,
}


def explain_group(group: Group, facts: ConfigFacts | None = None) -> Explained:
    """Candidate causes for one group, narrowed by ``facts`` when given."""
    explanation = CAUSES.get(group.first.kind, CAUSES["other"])
    causes = explanation.causes
    narrowed_by: tuple[str, ...] = ()
    hint: str | None = None
    if facts is not None:
        narrow = _NARROW.get(group.first.kind)
        picked = narrow(facts) if narrow else None
        if picked is not None:
            ids, why = picked
            chosen = tuple(c for c in causes if c.id in ids)
            if chosen:
                causes, narrowed_by = chosen, (why,)
        exc = group.first.exception
        if facts.provider_hint is not None and exc is not None and exc.code is not None:
            hint = facts.provider_hint(exc.code, exc.reply_text)
    return Explained(group, explanation, causes, narrowed_by, hint)
