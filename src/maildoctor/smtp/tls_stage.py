"""The TLS stage: the handshake Synapse would make, and a certificate report.

Implicit TLS (``force_tls``) right after connecting; otherwise STARTTLS when the
server offers it (Twisted's case-sensitive view) and ``enable_tls`` is set. The
verifying handshake uses the system trust store plus ``ca_file`` and checks
``tls_name`` (an IP literal: IP SAN, no SNI). When it is rejected, a second
connection without verification reads the certificate, so the report can say why,
and the dialogue goes on over it to observe the later stages.
"""

from __future__ import annotations

from typing import Any

from maildoctor.errors import CertificateRejected, SMTPFailure
from maildoctor.smtp import tls as tlsinfo
from maildoctor.smtp.engine import EngineBase, Stop
from maildoctor.smtp.facts import TlsVerify
from maildoctor.smtp.parse import ehlo_lines, twisted_auth_mechanisms, twisted_offers_starttls
from maildoctor.smtp.report import StageStatus
from maildoctor.smtp.wire import Connection

OK, WARN, FAIL, SKIPPED = (StageStatus.OK, StageStatus.WARN, StageStatus.FAIL,
                           StageStatus.SKIPPED)


class TlsStage(EngineBase):
    async def _open(self, transcript_note: str = "") -> Connection:
        assert self.port is not None
        conn = await Connection.open(self.address, self.port, self.options.timeout,
                                     self.transcript)
        if transcript_note:
            self.transcript.note(transcript_note)
        return conn

    async def _handshake(self, conn: Connection, *, verify: bool) -> None:
        ctx = (tlsinfo.verifying_context(
            self.options.ca_file, trust_cafile=self.options.trust_cafile,
            trust_capath=self.options.trust_capath) if verify
               else tlsinfo.inspecting_context())
        await conn.start_tls(ctx, self.tls_name if verify else (
            None if tlsinfo.is_ip(self.tls_name) else self.tls_name or None),
            "tls", self.options.timeout)

    async def _starttls(self, conn: Connection) -> bool:
        """Send STARTTLS; ``True`` on 220. Records the reply."""
        reply = await conn.command("STARTTLS", "starttls", self.options.timeout)
        self.facts["starttls"] = reply
        if conn.pending:
            self.note("the server sent data right after its STARTTLS reply (discarded)")
        return reply.code == 220

    async def _reopen_through_tls(self) -> Connection:
        """A second connection, no verification, to read the certificate and go on."""
        conn = await self._open("second connection, TLS without verification, to read the "
                                "certificate")
        t = self.options.timeout
        if not self.implicit:
            await conn.read_reply("greeting", t)
            await conn.command(f"EHLO {self.ehlo_name}", "ehlo", t)
            await conn.command("STARTTLS", "starttls", t)
        await self._handshake(conn, verify=False)
        return conn

    async def stage_tls(self) -> None:
        s = self.settings
        if not self.implicit:
            lines = self.facts.get("ehlo_lines", ())
            offered = twisted_offers_starttls(lines)
            facts = {"mode": "starttls", "offered": offered}
            other_case = not offered and any(line.upper() == "STARTTLS" for line in lines)
            if other_case:
                facts["offered_in_other_case"] = True  # Twisted matches case-sensitively
            if not s.starttls_enabled:
                self.record("tls", SKIPPED, "enable_tls is false: Synapse sends in clear text"
                            + (" although the server offers STARTTLS" if offered else ""), facts)
                return
            if not offered:
                status = FAIL if s.require_tls else WARN
                summary = ("the server does not offer STARTTLS: Synapse sends in clear text"
                           if not s.require_tls else
                           "no STARTTLS offered, and require_transport_security is set")
                if other_case:
                    summary += " (it offers 'STARTTLS' in another case, which Twisted ignores)"
                self.record("tls", status, summary, facts)
                return
            assert self.conn is not None
            try:
                if not await self._starttls(self.conn):
                    self.record("tls", FAIL, f"STARTTLS refused: {self.facts['starttls']}",
                                {"starttls": str(self.facts["starttls"])})
                    raise Stop("tls")
            except SMTPFailure as exc:
                raise self.fail_wire("tls", exc, "no usable reply to STARTTLS") from exc
        else:
            self.conn = await self._open_or_stop("tls")
        await self._tls_handshake_and_report()

    async def _open_or_stop(self, stage: str) -> Connection:
        try:
            return await self._open()
        except SMTPFailure as exc:
            raise self.fail_wire(stage, exc, "could not connect again") from exc

    async def _tls_handshake_and_report(self) -> None:
        assert self.conn is not None
        mode = "implicit" if self.implicit else "starttls"
        facts: dict[str, Any] = {"mode": mode, "name_checked": self.tls_name,
                                 "sni": None if tlsinfo.is_ip(self.tls_name) else self.tls_name}
        verdict, reason, verify_message = TlsVerify.OK, "", ""
        try:
            await self._handshake(self.conn, verify=True)
            self.verified = True
        except CertificateRejected as exc:
            verdict, reason = tlsinfo.classify_verify_error(exc.verify_code)
            verify_message = exc.verify_message
            facts.update(verify_code=exc.verify_code, verify_message=exc.verify_message)
            await self.close()
            try:
                self.conn = await self._reopen_through_tls()
            except SMTPFailure as again:
                self.facts["tls"] = verdict
                raise self.fail_wire("tls", again, f"certificate rejected ({reason}); the "
                                     "second connection to read it failed", facts) from again
        except SMTPFailure as exc:
            self.facts["tls"] = TlsVerify.HANDSHAKE_FAILED
            await self.close()
            raise self.fail_wire("tls", exc, f"the TLS handshake failed: {exc}", facts) from exc
        self.facts["tls"] = verdict
        obj = self.conn.ssl_object
        der = tlsinfo.peer_certificate(obj)
        version = obj.version() or "" if obj is not None else ""
        summary = f"{version}, certificate verified for {self.tls_name}"
        if der:
            info = tlsinfo.certificate_info(der, tls_version=version, verify_error=verify_message)
            self.facts["certificate"] = info
            chain_sent = tlsinfo.unverified_chain_length(obj)
            reason = tlsinfo.refine_reason(reason, der, info, chain_sent)
            facts.update(subject=info.subject, issuer=info.issuer, names=info.names,
                         not_before=info.not_before, not_after=info.not_after,
                         self_signed=info.self_signed, tls_version=version,
                         chain_sent=chain_sent,
                         name_in_certificate=tlsinfo.name_matches(self.tls_name, info.names),
                         validity=tlsinfo.validity_problem(info) or "valid")
            if verdict is TlsVerify.NAME_MISMATCH:
                summary = (f"name mismatch: checked {self.tls_name!r}, the certificate is for "
                           f"{', '.join(info.names) or info.subject}")
            elif verdict is not TlsVerify.OK:
                summary = f"certificate not accepted ({reason}): {verify_message}"
        facts.update(verified=self.verified, reason=reason or "verified")
        self.record("tls", OK if self.verified else FAIL, summary, facts,
                    error=None if self.verified else verify_message or reason)
        if not self.implicit:
            self.begin()
            await self._ehlo_after_tls()

    async def _ehlo_after_tls(self) -> None:
        assert self.conn is not None
        try:
            reply = await self.conn.command(f"EHLO {self.ehlo_name}", "ehlo",
                                            self.options.timeout)
        except SMTPFailure as exc:
            raise self.fail_wire("ehlo", exc, "no usable reply to EHLO after STARTTLS") from exc
        self.facts["ehlo_tls_lines"] = ehlo_lines(reply.text) if reply.code // 100 == 2 else ()
        self.record("ehlo", OK if reply.code // 100 == 2 else FAIL,
                    f"EHLO after STARTTLS: {reply.code}, AUTH "
                    f"{' '.join(twisted_auth_mechanisms(self.facts['ehlo_tls_lines'])) or 'none'}",
                    {"reply": str(reply), "lines": self.facts["ehlo_tls_lines"], "after_tls": True})

    async def fresh_session(self) -> Connection:
        """A new connection taken as far as Synapse would go before AUTH (for retries).

        It verifies the certificate only if the main connection could, so it reaches the
        same point; its lines go to the side transcript (shown when verbose).
        """
        assert self.port is not None
        t = self.options.timeout
        conn = await Connection.open(self.address, self.port, t, self.side)
        try:
            if self.implicit:
                await self._handshake(conn, verify=self.verified)
            greeting = await conn.read_reply("greeting", t)
            if greeting.code != 220:
                raise SMTPFailure(f"greeting {greeting}", stage="greeting", code=greeting.code)
            await conn.command(f"EHLO {self.ehlo_name}", "ehlo", t)
            if self.starttls_planned:
                if (await conn.command("STARTTLS", "starttls", t)).code != 220:
                    raise SMTPFailure("STARTTLS refused", stage="starttls")
                await self._handshake(conn, verify=self.verified)
                await conn.command(f"EHLO {self.ehlo_name}", "ehlo", t)
        except BaseException:
            await conn.close()
            raise
        return conn
