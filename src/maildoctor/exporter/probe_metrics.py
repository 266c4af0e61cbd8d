"""The metrics of one ``/probe`` answer, in a registry of their own (blackbox_exporter's way:
a fresh registry per request, so a target's series never leak into another's scrape).

Stages are read from the probe report as they come: a stage added to the probe later (say
``sender-dns``) appears under ``stage="sender-dns"`` with no change here, and a stage whose
facts carry a ``verdict`` (``ok``, ``at-risk``, ``will-fail``...) also gets
``maildoctor_probe_stage_verdict{stage=..., verdict=...} 1``.

Label values that come from outside the code (the SMTP host written in a config, the key
the diagnosis names) are made printable and cut short; no label or value carries a secret:
passwords are never read here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from maildoctor.diagnostics import Severity
from maildoctor.exporter.scheduler import Answer

OUTCOMES = ("ok", "error", "hang", "no-start", "untested")
SENDER_DNS_VERDICTS = ("ok", "at-risk", "will-fail")
MAX_LABEL = 120


def printable(text: object, limit: int = MAX_LABEL) -> str:
    """``text`` with every non-printable character (controls, bidi overrides, line breaks)
    written as an escape, cut to ``limit`` characters."""
    from maildoctor.printable import printable as one_sanitizer

    return one_sanitizer(text, limit, cut="...")


def _timestamp(iso: str) -> float | None:
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


class _Builder:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, labelnames=labels, registry=self.registry)


def probe_registry(answer: Answer, *, waited: float) -> CollectorRegistry:
    """The registry for one scrape of one target."""
    b = _Builder()
    outcome = answer.outcome
    success = b.gauge("maildoctor_probe_success",
                      "1 when mail works with this config: Synapse would send it (and, when "
                      "those stages run, receivers would take it and its links work), as "
                      "maildoctor probe's exit status 0.")
    duration = b.gauge("maildoctor_probe_duration_seconds",
                       "How long the probe took (the one served, when cached).")
    b.gauge("maildoctor_probe_cached",
            "1 when this answer is an earlier probe's, served again within the minimum "
            "interval.").set(1 if answer.cached else 0)
    b.gauge("maildoctor_probe_timed_out",
            "1 when the probe did not finish before the scrape's deadline.").set(
        1 if answer.timed_out else 0)
    if outcome is None:  # timed out, and nothing earlier to serve
        success.set(0)
        duration.set(waited)
        return b.registry
    success.set(1 if outcome.run is not None and outcome.run.diagnosis.ok else 0)
    duration.set(outcome.seconds)
    b.gauge("maildoctor_probe_timestamp_seconds",
            "When the probe served here started (Unix time).").set(outcome.started)
    b.gauge("maildoctor_config_loaded",
            "0 when the target's config files cannot be used at all (maildoctor check "
            "exits 2 on them).").set(0 if outcome.load_error is not None else 1)
    if outcome.internal_error:
        b.gauge("maildoctor_probe_internal_error",
                "1 when the probe failed inside maildoctor (see the exporter's log).").set(1)
    if outcome.run is not None:
        _run_metrics(b, outcome.run)
    return b.registry


def _sender_dns(b: _Builder, verdict: str) -> None:
    gauge = b.gauge("maildoctor_sender_dns_verdict",
                    "1 for what receivers will make of mail from notif_from's domain (SPF, "
                    "DKIM, DMARC): ok, at-risk, will-fail. Absent when the stage did not run.",
                    ("verdict",))
    for known in (*SENDER_DNS_VERDICTS, *(() if verdict in SENDER_DNS_VERDICTS else (verdict,))):
        gauge.labels(verdict=printable(known)).set(1 if known == verdict else 0)


def _run_metrics(b: _Builder, run: Any) -> None:
    report, diagnosis = run.report, run.diagnosis
    stage_ok = b.gauge("maildoctor_probe_stage_success",
                       "1 when the stage passed (ok or warn), 0 when it failed or did not run.",
                       ("stage",))
    stage_seconds = b.gauge("maildoctor_probe_stage_duration_seconds",
                            "How long the stage took.", ("stage",))
    stage_status = b.gauge("maildoctor_probe_stage_status",
                           "The stage's status as a label (ok, warn, fail, skipped), value 1.",
                           ("stage", "status"))
    verdicts = b.gauge("maildoctor_probe_stage_verdict",
                       "1 for the verdict of a stage that gives one (e.g. sender-dns: ok, "
                       "at-risk, will-fail).", ("stage", "verdict"))
    for st in report.stages:
        name = printable(st.name)
        status = str(st.status)
        stage_ok.labels(stage=name).set(1 if status in ("ok", "warn") else 0)
        stage_seconds.labels(stage=name).set(st.seconds)
        stage_status.labels(stage=name, status=printable(status)).set(1)
        verdict = st.facts.get("verdict") if isinstance(st.facts, dict) else None
        if isinstance(verdict, str) and verdict:
            verdicts.labels(stage=name, verdict=printable(verdict)).set(1)
            if st.name == "sender-dns":
                _sender_dns(b, verdict)
    cert = report.facts.certificate
    if cert is not None and cert.not_after:
        expiry = _timestamp(cert.not_after)
        if expiry is not None:
            b.gauge("maildoctor_certificate_expiry_timestamp_seconds",
                    "When the SMTP server's certificate expires (Unix time).").set(expiry)
    kind = str(run.outcome.kind)
    predicted = b.gauge("maildoctor_synapse_outcome",
                        "1 for what Synapse would do when sending (ok, error, hang, "
                        "no-start; untested when the probe stopped early).", ("outcome",))
    for known in (*OUTCOMES, *(() if kind in OUTCOMES else (kind,))):
        predicted.labels(outcome=printable(known)).set(1 if known == kind else 0)
    findings = b.gauge("maildoctor_check_findings",
                       "The config check's findings, by severity.", ("severity",))
    for severity in Severity:
        findings.labels(severity=severity.value).set(run.check.count(severity))
    if not diagnosis.ok:
        b.gauge("maildoctor_root_cause_info",
                "The root cause: the check rule behind it (empty when the cause is the "
                "server) and the config key to change.", ("code", "key")).labels(
            code=printable(diagnosis.code or ""), key=printable(diagnosis.key or "")).set(1)
    settings = run.check.settings
    tls = "implicit" if settings.implicit_tls else ("starttls" if settings.starttls_enabled
                                                    else "off")
    b.gauge("maildoctor_target_info", "The SMTP server the config points at, as Synapse "
            "would use it.", ("host", "port", "tls")).labels(
        host=printable(settings.smtp_host), port=printable(settings.smtp_port),
        tls=tls).set(1)
