"""The probe: the stages of Synapse's SMTP journey, each observed and recorded.

Order follows the dialogue Synapse would have:

    implicit TLS:  resolve, connect, sniff, tls, greeting, ehlo, auth, envelope
    otherwise:     resolve, connect, sniff, greeting, ehlo, tls (STARTTLS), auth, envelope

The engine observes; :func:`maildoctor.synapse.model.predict.predict` concludes. Stage status
(ok/warn/fail/skipped) is only a display hint. Credentials go only over verified
TLS or to a loopback address unless ``allow_plaintext_auth``. The envelope stage sends
MAIL FROM and RCPT TO (``--to``, else the sender itself), then RSET; DATA is never sent.
"""

from __future__ import annotations

import socket
from typing import Any

from maildoctor.config.settings import EmailSettings
from maildoctor.errors import ConnectionLost, ServerHung, SMTPFailure
from maildoctor.meaning import classify
from maildoctor.replies import Blame
from maildoctor.smtp.auth_stage import AuthStage
from maildoctor.smtp.engine import OnStage, Stop, run_sync
from maildoctor.smtp.facts import Connect, Reply, Resolve, Speaks
from maildoctor.smtp.parse import (
    ehlo_lines,
    envelope_address,
    is_fully_qualified,
    twisted_auth_mechanisms,
    twisted_offers_starttls,
)
from maildoctor.smtp.report import ProbeOptions, ProbeReport, StageStatus
from maildoctor.smtp.resolve import resolve
from maildoctor.smtp.sniff import sniff
from maildoctor.smtp.wire import ConnectError, Connection, in_thread

OK, WARN, FAIL, SKIPPED = (StageStatus.OK, StageStatus.WARN, StageStatus.FAIL,
                           StageStatus.SKIPPED)
# Sniffing: wait this long for a greeting before sending a ClientHello, and no longer
# than the budget in all. A greeting after 1.5 s is still seen as SMTP.
SNIFF_GREET_WAIT = 0.6
SNIFF_BUDGET = 2.5
SNIFF_IMPLICIT_WAIT = 0.05
BLOCKED_PORT_HINT = ("many cloud providers block outbound port 25; use the submission "
                     "port 587 (STARTTLS) or 465 (force_tls) of your mail provider")


def port_of(raw: Any) -> tuple[int | None, str]:
    """The port Twisted would use, or ``None`` and why not."""
    if raw is None:
        return None, "smtp_port is null: Synapse's connection attempt is refused"
    if isinstance(raw, bool):
        return None, f"smtp_port is a boolean ({raw})"
    try:
        port = int(raw)
    except (TypeError, ValueError):
        return None, f"smtp_port {raw!r} is not a number"
    if not 0 < port < 65536:
        return None, f"smtp_port {port} is out of range"
    return port, ""


class Probe(AuthStage):
    async def run(self) -> ProbeReport:
        plan = (["resolve", "connect", "sniff", "tls", "greeting", "ehlo", "auth", "envelope"]
                if self.implicit else
                ["resolve", "connect", "sniff", "greeting", "ehlo", "tls", "auth", "envelope"])
        self.plan = plan
        name = plan[0]
        try:
            for name in plan:
                self.begin(name)
                await getattr(self, f"stage_{name}")()
                if self._stop_here(name):
                    self.skip_rest(plan, f"not run (stop after {self.options.stop_after})")
                    break
        except Stop as stop:
            self.skip_rest(plan, f"not run: the {stop.args[0]} stage failed")
        except SMTPFailure as exc:  # a wire failure the stage did not handle itself
            self.fail_wire(name, exc, str(exc))
            self.skip_rest(plan, f"not run: the {name} stage failed")
        finally:
            # No QUIT to a server that already closed or stopped answering.
            hung = "closed_at" in self.facts or "stalled_at" in self.facts
            await self.close(quit_first=not hung)
        return self.report()

    def _stop_here(self, name: str) -> bool:
        want = self.options.stop_after
        if want is None:
            return False
        if name == "connect":
            return False  # sniffing is part of connecting
        if name == "sniff":
            return want == "connect"
        if want == "ehlo" and not self.implicit:
            # "ehlo" means the last EHLO: after STARTTLS when Synapse upgrades.
            return name == ("tls" if self.starttls_planned else "ehlo")
        return name == want

    # -- resolve / connect / sniff -----------------------------------------------------

    async def stage_resolve(self) -> None:
        s = self.settings
        self.facts["host"] = "" if s.smtp_host is None else str(s.smtp_host)
        self.port, port_problem = port_of(s.smtp_port)
        self.port_problem = port_problem
        self.facts["port"] = self.port
        found = await resolve(s.smtp_host, self.port or 0, self.options.timeout,
                              self.options.resolver)
        self.facts["resolve"] = found.outcome
        self.facts["addresses"] = found.addresses
        facts = {"outcome": found.outcome, "kind": found.kind, "addresses": found.addresses}
        if found.outcome is not Resolve.OK:
            self.record("resolve", FAIL, f"{self.facts['host']!r}: {found.problem}", facts,
                        error=found.problem)
            raise Stop("resolve")
        if port_problem:
            self.note(port_problem)
        summary = ("IP address, no lookup" if found.kind == "ip-literal"
                   else f"{self.facts['host']} -> {', '.join(found.addresses)}")
        self.record("resolve", OK, summary, facts)

    async def stage_connect(self) -> None:
        if self.port is None:
            self.facts["connect"] = Connect.REFUSED
            self.record("connect", FAIL, self.port_problem, {"smtp_port": self.settings.smtp_port},
                        error=self.port_problem)
            raise Stop("connect")
        attempts: list[dict[str, Any]] = []
        last: ConnectError | None = None
        for address in self.facts["addresses"]:
            try:
                self.conn = await Connection.open(address, self.port, self.options.timeout,
                                                  self.side)
            except ConnectError as exc:
                attempts.append({"address": address, "outcome": exc.outcome,
                                 "errno": exc.errno_name})
                last = exc
                continue
            attempts.append({"address": address, "outcome": Connect.OK})
            self.address = address
            self.facts["connect"] = Connect.OK
            status = WARN if len(attempts) > 1 else OK
            self.record("connect", status, f"connected to {address} port {self.port}",
                        {"address": address, "attempts": attempts})
            return
        assert last is not None
        self.facts["connect"] = last.outcome
        facts: dict[str, Any] = {"attempts": attempts}
        if last.outcome in (Connect.TIMEOUT, Connect.UNREACHABLE) and self.port == 25:
            facts["hint"] = BLOCKED_PORT_HINT
        elif last.outcome is Connect.TIMEOUT:
            facts["hint"] = ("no answer at all: a firewall (here, at the provider, or in front "
                             "of the server) drops the packets, or the host is down")
        self.record("connect", FAIL, str(last), facts, error=str(last))
        raise Stop("connect")

    async def stage_sniff(self) -> None:
        assert self.conn is not None
        try:
            # With force_tls, Synapse sends its ClientHello at once: so do we (a plain-text
            # server's greeting still shows up, and answers the question just as well).
            wait = SNIFF_IMPLICIT_WAIT if self.implicit else SNIFF_GREET_WAIT
            found = await sniff(self.conn, greet_wait=wait, budget=SNIFF_BUDGET,
                                server_name=self.tls_name or None)
        except SMTPFailure as exc:
            await self.close()
            raise self.fail_wire("sniff", exc, "the connection failed while listening") from exc
        if found.speaks is Speaks.SMTP and not found.sent_client_hello and not self.implicit:
            # Nothing was sent yet: this connection is exactly what Synapse would have.
            self.conn.unread(found.data)
            self.conn.transcript = self.transcript
            self.transcript.note(f"connected to {self.address} port {self.port}")
        else:
            await self.close()
        self.facts["speaks"] = found.speaks
        if found.speaks is Speaks.NOT_SMTP:
            # What Twisted would choke on: the model quotes it as Synapse's error does.
            self.facts["greeting"] = Reply(0, found.first_line)
        facts = {"speaks": found.speaks, "first_line": found.first_line,
                 "first_byte_after": found.first_byte_after,
                 "sent_client_hello": found.sent_client_hello}
        expected = Speaks.TLS if self.implicit else Speaks.SMTP
        words = {Speaks.SMTP: "SMTP in clear text (a greeting first)",
                 Speaks.TLS: "TLS from the first byte (implicit TLS)",
                 Speaks.SILENT: "nothing (accepted the connection, then silence)",
                 Speaks.NOT_SMTP: f"something that is not SMTP: {found.first_line!r}",
                 Speaks.CLOSED: "nothing: it closed the connection at once"}
        status = OK if found.speaks is expected else FAIL
        mode = "force_tls: true" if self.implicit else "force_tls: false"
        summary = f"the port speaks {words[found.speaks]}"
        if status is FAIL:
            summary += f"; the config says {mode}"
        self.record("sniff", status, summary, facts)

    # -- greeting / EHLO ---------------------------------------------------------------

    async def stage_greeting(self) -> None:
        if not self.implicit:
            if self.facts.get("speaks") is Speaks.TLS:
                self.facts["stalled_at"] = "greeting"
                self.record("greeting", FAIL, "the port speaks TLS first: a client that waits "
                            "for a clear-text greeting waits forever", {"finding": "tls-port"})
                raise Stop("greeting")
            if self.conn is None:
                self.conn = await self._open_or_stop("greeting")
        assert self.conn is not None
        timeout = self.options.timeout
        if self.facts.get("speaks") is Speaks.SILENT:
            # The sniff already listened SNIFF_BUDGET seconds to the same silence.
            timeout = max(0.5, timeout - SNIFF_BUDGET)
        try:
            reply = await self.conn.read_reply("greeting", timeout)
        except SMTPFailure as exc:
            raise self.fail_wire("greeting", exc, "no usable greeting") from exc
        self.facts["greeting"] = reply
        facts = {"reply": str(reply), "code": reply.code, "tls": self.conn.tls}
        if reply.code != 220:
            self.record("greeting", FAIL, f"greeting is not 220: {reply}", facts)
            raise Stop("greeting")
        self.record("greeting", OK, str(reply).split("\n")[0], facts)

    async def stage_ehlo(self) -> None:
        name = self.options.ehlo_name
        if name is None:
            try:
                name = await in_thread(socket.getfqdn, 5.0)
            except TimeoutError:
                name = socket.gethostname()
        self.ehlo_name = name
        assert self.conn is not None
        t = self.options.timeout
        facts: dict[str, Any] = {"name": name, "fully_qualified": is_fully_qualified(name)}
        try:
            reply = await self.conn.command(f"EHLO {name}", "ehlo", t)
            self.facts["ehlo"] = reply
            facts["reply"] = str(reply).split("\n")[0]
            if reply.code // 100 != 2:
                helo = await self.conn.command(f"HELO {name}", "ehlo", t)
                self.facts["helo"] = helo
                facts["helo"] = str(helo)
        except SMTPFailure as exc:
            raise self.fail_wire("ehlo", exc, "no usable reply to EHLO", facts) from exc
        lines = ehlo_lines(reply.text) if reply.code // 100 == 2 else ()
        self.facts["ehlo_lines"] = lines
        facts.update(lines=lines, starttls=twisted_offers_starttls(lines),
                     auth=twisted_auth_mechanisms(lines))
        self.starttls_planned = (not self.implicit and self.settings.starttls_enabled
                                 and twisted_offers_starttls(lines))
        if reply.code // 100 != 2:
            ok = "helo" in self.facts and self.facts["helo"].code // 100 == 2
            self.record("ehlo", WARN if ok else FAIL, f"EHLO refused ({reply.code}); HELO "
                        f"{'accepted' if ok else 'refused too'}", facts)
            if not ok:
                raise Stop("ehlo")
            return
        status = OK if facts["fully_qualified"] else WARN
        summary = f"{len(lines) - 1} capabilities; STARTTLS {'yes' if facts['starttls'] else 'no'}"
        summary += f", AUTH {' '.join(facts['auth']) or 'none'}"
        if status is WARN:
            summary += f"; EHLO name {name!r} is not fully qualified"
        self.record("ehlo", status, summary, facts)

    # -- envelope ----------------------------------------------------------------------

    async def stage_envelope(self) -> None:
        raw = self.settings.envelope_from
        if not raw:
            self.record("envelope", SKIPPED, "no envelope sender (notif_from is missing or "
                        "cannot be formatted)")
            return
        sender = envelope_address(raw, self.ehlo_name)
        recipient = self.options.to
        # Without --to, RCPT TO the sender itself: many servers apply sender rules at RCPT
        # (Postfix's smtpd_delay_reject), which MAIL FROM alone never shows. No DATA.
        rcpt_to = recipient or sender
        facts: dict[str, Any] = {"from": sender, "to": rcpt_to}
        if not (sender + (recipient or "")).isascii():
            self.record("envelope", FAIL, "non-ASCII envelope address: Synapse fails before "
                        "connecting (UnicodeEncodeError)", facts)
            return
        assert self.conn is not None
        t = self.options.timeout
        # Where Synapse would be when the server closes or stalls: a failure at our RSET
        # means the server would fail Synapse's next command (RCPT after MAIL, DATA after
        # RCPT), which is the step the model must hear about.
        step = "mail"
        try:
            mail = await self.conn.command(f"MAIL FROM:<{sender}>", "mail", t)
            self.facts["mail"] = mail
            facts["mail"] = str(mail)
            step = "rcpt"
            rcpt: Reply | None = None
            if mail.code == 250:
                rcpt = await self.conn.command(f"RCPT TO:<{rcpt_to}>", "rcpt", t)
                self.facts["rcpt" if recipient else "rcpt_self"] = rcpt
                facts["rcpt"] = str(rcpt)
                step = "data"
            await self.conn.command("RSET", "rset", t)
        except SMTPFailure as exc:
            if isinstance(exc, ConnectionLost):
                self.facts.setdefault("closed_at", step)
            elif isinstance(exc, ServerHung):
                self.facts.setdefault("stalled_at", step)
            raise self.fail_wire("envelope", exc, "no usable reply in the envelope", facts) \
                from exc
        rcpt_code = rcpt.code if rcpt is not None else 250
        ok = mail.code == 250 and rcpt_code // 100 == 2
        summary = f"MAIL FROM:<{sender}> {mail.code}"
        if rcpt is not None:
            summary += f", RCPT TO:<{rcpt_to}> {rcpt_code}"
            if not recipient:
                summary += " (the sender itself, as no --to was given)"
        status = OK if ok else FAIL
        if not ok and rcpt is not None and not recipient and mail.code == 250 \
                and classify(rcpt, "rcpt").blame in (Blame.RECIPIENT, Blame.UNKNOWN):
            status = WARN  # the sender as a recipient says nothing of real recipients
        self.record("envelope", status, summary, facts)


async def probe(settings: EmailSettings, options: ProbeOptions | None = None, *,
                on_stage: OnStage | None = None) -> ProbeReport:
    """Probe the server in ``settings`` stage by stage (async core)."""
    engine = Probe(settings, options or ProbeOptions(), on_stage)
    return await engine.run()


def run_probe(settings: EmailSettings, options: ProbeOptions | None = None, *,
              on_stage: OnStage | None = None) -> ProbeReport:
    """Synchronous :func:`probe` (runs its own event loop)."""
    report: ProbeReport = run_sync(lambda: probe(settings, options, on_stage=on_stage))
    return report
