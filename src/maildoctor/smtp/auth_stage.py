"""The AUTH stage: what the server offers, what Synapse can use, and whether it works.

Synapse's Twisted authenticates only with a truthy password and an ``AUTH`` line it
can read, picks the first of CRAM-MD5, LOGIN, PLAIN and never falls back. This stage
tries exactly that, with the configured credentials; ``all_mechanisms`` then tries
each other offered mechanism, each on its own fresh connection and all at once, so the
report can say "LOGIN would work if the server stopped offering CRAM-MD5". The mechanism
the main attempt used is not tried again: with a wrong password every try is one more
failed login in the server's log, and fail2ban or a provider's lockout counts them.

The CRAM-MD5 trap (synapse#10280): when Synapse would pick CRAM-MD5 and the server also
offers LOGIN or PLAIN, the one Synapse would pick without CRAM-MD5 is tried *while* the
CRAM-MD5 attempt runs, on its own connection, so a failed CRAM-MD5 costs the server's one
failure delay, not several. This adds no failed login that a follow-up would not make
anyway: with right credentials it succeeds, with wrong ones CRAM-MD5 fails and it must be
tried to tell the trap from a wrong password. When CRAM-MD5 succeeds, it is cancelled.

Credentials are sent only over verified TLS or to a loopback address, unless
``--allow-plaintext-auth`` (:func:`refuse_credentials`, shared with ``maildoctor shell``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from maildoctor.errors import MalformedReply, SMTPFailure
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


ALLOW_FLAG = "--allow-plaintext-auth"
LOCKOUT_WARNING = ("every failed try counts as a failed login at the server "
                   "(fail2ban, provider lockouts)")


def refuse_credentials(*, verified_tls: bool, loopback: bool, tls: bool, allowed: bool) -> str:
    """Why the credentials must not be sent here (``""``: they may).

    Used by the probe and by ``maildoctor shell``, so both refuse with the same words;
    the flag is named as the user types it.
    """
    if verified_tls or loopback or allowed:
        return ""
    if tls:
        return ("credentials not sent over TLS that failed verification to a non-loopback "
                f"address (allow it with {ALLOW_FLAG}; Synapse would not send them: it "
                "stops at the rejected certificate)")
    return ("credentials not sent in clear text to a non-loopback address "
            f"(allow it with {ALLOW_FLAG}; Synapse would send them the same way)")


def failed_logins(attempt: AuthAttempt) -> int:
    """How many times this attempt presented credentials that the server refused.

    Twisted's PLAIN makes two tries (with and without authzid); each refused one is a
    failed login in the server's log.
    """
    if attempt.succeeded:
        return 0
    if attempt.mechanism == "PLAIN":
        return max(1, sum(1 for r in attempt.replies if r.code != 235))
    return 1


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
            follow_up = None
            if choice == "CRAM-MD5" and not self.options.all_mechanisms:
                # What Synapse would pick without CRAM-MD5: LOGIN, else PLAIN. One try:
                # with a wrong password, each try is one more failed login.
                others = tuple(m for m in ("LOGIN", "PLAIN") if m in twisted)[:1]
                if others:
                    follow_up = asyncio.ensure_future(self._try_each(others))
            try:
                outcome = await authenticate(self.conn, choice, str(s.smtp_user),
                                             s.smtp_pass.reveal() if s.smtp_pass else "",
                                             self.options.timeout)
            except BaseException:
                if follow_up is not None:
                    follow_up.cancel()
                raise
            self.facts["auth"] = outcome.attempt
            if follow_up is not None:
                if outcome.attempt.succeeded:
                    follow_up.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await follow_up
                else:
                    self.facts["auth_all"] = (outcome.attempt, *await follow_up)
            facts["replies"] = [str(r) for r in outcome.attempt.replies]
            status = OK if outcome.attempt.succeeded else FAIL
            summary = f"{describe(outcome.attempt)} (the mechanism Synapse uses)"
            if outcome.attempt.dropped:
                self.facts.setdefault("closed_at", "auth")
            elif isinstance(outcome.error, MalformedReply):
                # An answer, just not an SMTP one: not a silence, and not a refusal.
                self.facts.setdefault("malformed_at", "auth")
                self.facts.setdefault("malformed_line", outcome.error.line)
                facts["finding"] = "malformed-reply"
            elif outcome.error is not None:
                self.facts.setdefault("stalled_at", "auth")
                facts["finding"] = "no-reply"
        if self.options.all_mechanisms and not why_not.startswith("smtp_pass") and not unsafe \
                and s.smtp_pass and s.smtp_user is not None:
            done = None if outcome is None else outcome.attempt
            tried = await self._try_all(offered, done)
            self.facts["auth_all"] = tried
            facts["all"] = {a.mechanism: a.succeeded for a in tried}
            failed = sum(failed_logins(a) for a in tried)
            facts["failed_logins"] = failed
            working = [a.mechanism for a in tried if a.succeeded]
            summary += f"; working mechanisms: {', '.join(working) or 'none'}"
            if failed:
                summary += (f"; {failed} failed login{'s' if failed != 1 else ''} in all: "
                            f"{LOCKOUT_WARNING}")
        error = None if outcome is None or outcome.error is None else str(outcome.error)
        self.record("auth", status, summary, facts, error=error)
        if outcome is not None and not outcome.attempt.succeeded:
            raise Stop("auth")

    async def _try_all(self, offered: tuple[str, ...],
                       done: AuthAttempt | None) -> tuple[AuthAttempt, ...]:
        """Each offered mechanism on a fresh connection; ``done`` (the main attempt) is
        reused, not repeated: a repeat would only add a failed login at the server."""
        mechs = tuple(m for m in PROBE_MECHANISMS if m in offered)
        fresh = iter(await self._try_each(tuple(m for m in mechs if done is None
                                                or m != done.mechanism)))
        tried = [done if done is not None and m == done.mechanism else next(fresh, None)
                 for m in mechs]
        return tuple(a for a in tried if a is not None)

    async def _try_each(self, mechs: tuple[str, ...]) -> tuple[AuthAttempt, ...]:
        """Each mechanism on its own fresh connection, all at once: each failed login waits
        out the server's failure delay, so one at a time would add them up."""
        results = await asyncio.gather(*(self._try_one(m) for m in mechs))
        return tuple(a for a in results if a is not None)

    async def _try_one(self, mech: str) -> AuthAttempt | None:
        s = self.settings
        try:
            conn = await self.fresh_session()
        except SMTPFailure as exc:
            self.note(f"{mech} not tried, the session failed: {exc}")
            return None
        try:
            outcome = await authenticate(conn, mech, str(s.smtp_user),
                                         s.smtp_pass.reveal() if s.smtp_pass else "",
                                         self.options.timeout)
            return outcome.attempt
        finally:
            await conn.close()
