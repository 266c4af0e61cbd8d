"""The whole ``probe`` pipeline as a library call: check the config, probe the server,
predict Synapse, diagnose. The CLI only parses options and renders the result."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from maildoctor.config.check import CheckResult, check
from maildoctor.diagnose import Diagnosis, Evidence, diagnose
from maildoctor.smtp.report import ProbeOptions, ProbeReport
from maildoctor.synapse.model import Outcome, predict


@dataclass
class ProbeRun:
    check: CheckResult
    report: ProbeReport
    outcome: Outcome
    diagnosis: Diagnosis
    seconds: float


def probe_config(
    paths: Sequence[str],
    options: ProbeOptions | None = None,
    *,
    synapse_version: str | None = None,
    on_stage: Callable[[Any], None] | None = None,
) -> ProbeRun:
    """Probe the SMTP server of the Synapse config at ``paths`` and diagnose it.

    Raises :class:`~maildoctor.errors.ConfigLoadError` for an unusable config.
    """
    import time

    from maildoctor.smtp.stages import run_probe

    started = time.monotonic()
    options = options or ProbeOptions()
    result = check(paths, synapse_version=synapse_version)
    settings = result.settings
    if settings.email_enabled:
        report = run_probe(settings, options, on_stage=on_stage)
    else:  # Synapse has email off: there is no server to ask
        from maildoctor.smtp.facts import ServerFacts

        report = ProbeReport(stages=[], facts=ServerFacts(), transcript=[])
    facts = report.facts
    if not options.all_mechanisms and facts.auth is not None and not facts.auth.succeeded \
            and facts.auth.mechanism == "CRAM-MD5":
        # Synapse's mechanism failed: find out whether another would have worked (the
        # CRAM-MD5 trap), so the diagnosis can say so.
        extra = run_probe(settings, replace(options, all_mechanisms=True, stop_after="auth"))
        report = replace(report, facts=replace(facts, auth_all=extra.facts.auth_all))
    outcome = predict(settings, report.facts, recipient=options.to or "alice@example.org",
                      local_fqdn=socket.getfqdn())
    if options.stop_after and outcome.kind == "ok":
        # Nothing failed before the stop; the stages after it were not looked at.
        outcome = Outcome(kind="untested", http="", stage=options.stop_after,
                          why=f"--stop-after {options.stop_after}: the later stages were not "
                              "tested, so Synapse's outcome is not predicted")
    diagnosis = diagnose(Evidence(settings, report.facts, outcome, result.diagnostics,
                                  stopped_after=options.stop_after, stages=report.stages,
                                  config=result.config,
                                  extra={"timeout": f"{options.timeout:g}",
                                         "recipient": options.to}))
    return ProbeRun(result, report, outcome, diagnosis, time.monotonic() - started)
