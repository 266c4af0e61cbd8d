"""The whole ``probe`` pipeline as a library call: check the config, probe the server,
predict Synapse, diagnose. The CLI only parses options and renders the result."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from maildoctor.config.check import CheckResult, check, with_environment
from maildoctor.config.environment import Environment
from maildoctor.diagnose import Diagnosis, Evidence, diagnose
from maildoctor.smtp.report import ProbeOptions, ProbeReport
from maildoctor.synapse.model.predict import Outcome, predict


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
    environment: Environment | None = None,
) -> ProbeRun:
    """Probe the SMTP server of the Synapse config at ``paths`` and diagnose it.

    With an ``environment`` (``maildoctor.host.observe()``), the probe verifies certificates
    against the trust store of Synapse's installation, and adds the network (families,
    smtp_host's addresses) and the EHLO name, which the MD6xx rules judge.

    Raises :class:`~maildoctor.errors.ConfigLoadError` for an unusable config.
    """
    import time

    from maildoctor.smtp.stages import run_probe

    started = time.monotonic()
    options = options or ProbeOptions()
    result = check(paths, synapse_version=synapse_version, environment=environment)
    settings = result.settings
    if environment is not None:
        result, options = _observe_host(result, environment, options)
    if settings.email_enabled:
        report = run_probe(settings, options, on_stage=on_stage)
    else:  # Synapse has email off: there is no server to ask
        from maildoctor.smtp.facts import ServerFacts

        report = ProbeReport(stages=[], facts=ServerFacts(), transcript=[])
    if settings.email_enabled and not options.stop_after:
        # After Synapse's part: will receivers take the mail, will its links work.
        report = replace(report, stages=[*report.stages,
                                         *after_the_250(settings, options, report, on_stage,
                                                       result.config.merged)])
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


def after_the_250(settings: Any, options: ProbeOptions, report: ProbeReport,
                  on_stage: Callable[[Any], None] | None = None,
                  config: Any = None) -> list[Any]:
    """The stages past Synapse's part: will receivers accept the mail (sender-dns), and will
    its links work (links). Each is bounded in time and reported like the SMTP stages."""
    from maildoctor.resolver import Resolver
    from maildoctor.senderdns.stage import QUESTION_TIMEOUT, run_sender_dns_stage

    stages = []
    if options.sender_dns:
        resolver = Resolver(options.resolver, timeout=min(options.timeout, QUESTION_TIMEOUT))
        resolved = report.stage("resolve")
        addresses = tuple(resolved.facts.get("addresses", ())) if resolved else ()
        stage = run_sender_dns_stage(settings, resolver=resolver, smtp_addresses=addresses,
                                     sending_ips=options.sending_ips)
        stages.append(stage)
        if on_stage is not None:
            on_stage(stage)
    if options.links and config is not None:
        from maildoctor.links.stage import REQUEST_TIMEOUT, run_links_stage

        server = options.resolver
        stage = run_links_stage(config, resolver=Resolver(server, timeout=2.5) if server else None,
                                ca_file=options.ca_file,
                                timeout=min(options.timeout, REQUEST_TIMEOUT))
        stages.append(stage)
        if on_stage is not None:
            on_stage(stage)
    return stages


def _observe_host(result: CheckResult, environment: Environment,
                  options: ProbeOptions) -> tuple[CheckResult, ProbeOptions]:
    """Add the network and EHLO facts, and use Synapse's trust store for the probe."""
    from maildoctor.host import ehlo, network
    from maildoctor.smtp.stages import port_of

    settings = result.settings
    name = options.ehlo_name or ehlo.ehlo_name()
    observed = replace(environment, ehlo_name=name,
                       ehlo_fully_qualified=ehlo.is_fully_qualified(name))
    if settings.email_enabled:
        port, _ = port_of(settings.smtp_port)
        observed = replace(observed, network=network.observe(settings.smtp_host, port,
                                                             options.timeout,
                                                             options.resolver))
    inst = environment.installation
    if inst is not None and not inst.error and (inst.trust_cafile or inst.trust_capath):
        options = replace(options, trust_cafile=inst.trust_cafile,
                          trust_capath=inst.trust_capath)
    return with_environment(result, observed), replace(options, ehlo_name=name)
