"""The AUTH stage: what the server offers, what Synapse can use, and whether it works.

Synapse's Twisted authenticates only with a truthy password and an ``AUTH`` line it
can read, picks the first of CRAM-MD5, LOGIN, PLAIN and never falls back. This stage
tries exactly that, with the configured credentials; ``all_mechanisms`` then tries
each offered mechanism on a fresh connection, so the report can say "LOGIN would work
if the server stopped offering CRAM-MD5".

Credentials are sent only over verified TLS or to a loopback address, unless
``allow_plaintext_auth`` (Synapse itself would send them the same way).
"""

from __future__ import annotations

from typing import Any

from maildoctor.errors import SMTPFailure
from maildoctor.smtp.auth import AuthOutcome, authenticate
from maildoctor.smtp.engine import Stop
from maildoctor.smtp.facts import AuthAttempt
from maildoctor.smtp.parse import (
    PROBE_MECHANISMS,
    offered_mechanisms,
    synapse_mechanism,
    twisted_auth_mechanisms,
)
from maildoctor.smtp.tls_stage import FAIL, OK, SKIPPED, TlsStage


def describe(attempt: AuthAttempt) -> str:
    final = attempt.final
    if attempt.dropped:
        return f"{attempt.mechanism}: connection dropped"
    return f"{attempt.mechanism}: {str(final).splitlines()[0] if final else 'no reply'}"


def refuse_credentials(*, verified_tls: bool, loopback: bool, tls: bool, allowed: bool) -> str:
    """Why the probe must not send the credentials here (``""``: it may)."""
    if verified_tls or loopback or allowed:
        return ""
    kind = "TLS that failed verification" if tls else "clear text"
    return (f"credentials not sent over {kind} to a non-loopback address "
            "(allow it with allow_plaintext_auth; Synapse would send them the same way)")


class AuthStage(TlsStage):
    def _why_not(self, twisted: tuple[str, ...], offered: tuple[str, ...],
                 choice: str | None) -> str:
        """Why Synapse would not authenticate (or we must not); ``""`` when it would."""
        s = self.settings
        if not twisted:
            if offered:
                return ("the server offers AUTH only in a form Synapse ignores (lower case or "
                        f"'AUTH='): {' '.join(offered)}")
            return "the server offers no AUTH"
        if not s.smtp_pass:
            return "smtp_pass is missing or empty: Synapse does not try AUTH"
        if s.smtp_user is None:
            return "smtp_pass without smtp_user: Synapse's Twisted crashes (TypeError) here"
        if choice is None:
            return f"none of CRAM-MD5, LOGIN, PLAIN is offered ({' '.join(twisted)})"
        return ""

    def _unsafe(self) -> str:
        return refuse_credentials(verified_tls=self.verified, loopback=self.loopback,
                                  tls=bool(self.conn and self.conn.tls),
                                  allowed=self.options.allow_plaintext_auth)

    async def stage_auth(self) -> None:
        s = self.settings
        lines = self.facts.get("ehlo_tls_lines") or self.facts.get("ehlo_lines", ())
        twisted = twisted_auth_mechanisms(lines)
        offered = offered_mechanisms(lines)
        choice = synapse_mechanism(twisted)
        facts: dict[str, Any] = {
            "offered": offered, "synapse_sees": twisted, "synapse_would_use": choice,
            "required": s.require_auth, "password_set": bool(s.smtp_pass),
            "user_set": s.smtp_user is not None,
            "hidden_from_synapse": [m for m in offered if m not in twisted],
        }
        why_not = self._why_not(twisted, offered, choice)
        unsafe = "" if why_not else self._unsafe()
        if self.options.allow_plaintext_auth and not (self.conn and self.conn.tls):
            self.note("credentials went in clear text, as Synapse would send them")
        outcome: AuthOutcome | None = None
        if why_not or unsafe:
            status = SKIPPED if (unsafe or not s.require_auth) else FAIL
            if why_not and s.require_auth:
                status = FAIL
            summary = why_not or unsafe
        else:
            assert self.conn is not None and choice is not None
            outcome = await authenticate(self.conn, choice, str(s.smtp_user),
                                         s.smtp_pass.reveal() if s.smtp_pass else "",
                                         self.options.timeout)
            self.facts["auth"] = outcome.attempt
            facts["replies"] = [str(r) for r in outcome.attempt.replies]
            status = OK if outcome.attempt.succeeded else FAIL
            summary = f"{describe(outcome.attempt)} (the mechanism Synapse uses)"
            if outcome.attempt.dropped:
                self.facts.setdefault("closed_at", "auth")
            elif outcome.error is not None:
                self.facts.setdefault("stalled_at", "auth")
                facts["finding"] = "no-reply"
        if self.options.all_mechanisms and not why_not.startswith("smtp_pass") and not unsafe \
                and s.smtp_pass and s.smtp_user is not None:
            tried = await self._try_all(offered)
            self.facts["auth_all"] = tried
            facts["all"] = {a.mechanism: a.succeeded for a in tried}
            working = [a.mechanism for a in tried if a.succeeded]
            summary += f"; working mechanisms: {', '.join(working) or 'none'}"
        error = None if outcome is None or outcome.error is None else str(outcome.error)
        self.record("auth", status, summary, facts, error=error)
        if outcome is not None and not outcome.attempt.succeeded:
            raise Stop("auth")

    async def _try_all(self, offered: tuple[str, ...]) -> tuple[AuthAttempt, ...]:
        s = self.settings
        tried: list[AuthAttempt] = []
        for mech in (m for m in PROBE_MECHANISMS if m in offered):
            try:
                conn = await self.fresh_session()
            except SMTPFailure as exc:
                self.note(f"--all-mechanisms: {mech} not tried, the session failed: {exc}")
                continue
            try:
                outcome = await authenticate(conn, mech, str(s.smtp_user),
                                             s.smtp_pass.reveal() if s.smtp_pass else "",
                                             self.options.timeout)
                tried.append(outcome.attempt)
            finally:
                await conn.close()
        return tuple(tried)
