"""maildoctor: makes a Matrix homeserver's email work, and says exactly why when it doesn't.

The library behind the ``maildoctor`` command::

    import maildoctor

    result = maildoctor.check(["homeserver.yaml"])          # findings, as Synapse reads it
    for d in result.diagnostics:
        print(d.code, d.message, d.location)

    run = maildoctor.probe(["homeserver.yaml"])             # probe + Synapse model + diagnosis
    print(run.diagnosis.root_cause, run.outcome.kind)

    settings = result.settings                              # what Synapse derives from email:
    with maildoctor.SyncMailer.from_settings(settings) as mailer:
        mailer.send("noreply@example.org", ["you@example.org"], message_bytes)

Names are imported lazily so that ``import maildoctor`` (and the CLI) start fast.

The package is built in floors (:data:`_FLOORS`, from the ground up): a module imports only
modules of its own floor or of floors below, never one above, so no two packages import
each other (``tests/test_import_graph.py`` holds every import to this, function-level ones
included)::

    cli, __main__                       one module per command
    relay, exporter, synapse_module     the long-running services and Synapse's module
    render                              every output format
    doctor                              the probe pipeline
    diagnose                            facts + findings + model -> one root cause
    mailer                              the sending engine
    synapse                             model/, mail/, logs/, engine/: what Synapse does
    roundtrip                           a sent mail read back (headers, DKIM, links)
    host, links, senderdns              where Synapse runs; its links; its sender domain
    smtp                                the probe's wire, stages and observed facts
    config                              load, settings, schema/, rules/, check, fix
    providers                           the provider library (data)
    testing, resolver                   the test server; bounded DNS
    secrets, printable, errors,         masking, the one sanitizer, exceptions,
    diagnostics, hosts, addresses       Diagnostic, is_loopback, a plain address,
    replies, reply_catalogue, meaning,  a reply and what it blames (catalogue of well-known
    causes                              replies), the one cause table

This module itself (the public API) stands above them all; nothing inside imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Applicability",
    "CheckResult",
    "ConfigLoadError",
    "Diagnosis",
    "Diagnostic",
    "EmailSettings",
    "Location",
    "MaildoctorError",
    "Mailer",
    "Outcome",
    "ProbeOptions",
    "ProbeRun",
    "SMTPFailure",
    "Severity",
    "SyncMailer",
    "build_message",
    "check",
    "predict",
    "probe",
    "settings_from_config",
]

_FLOORS: tuple[tuple[str, ...], ...] = (
    ("secrets", "printable", "addresses", "replies", "reply_catalogue", "meaning", "errors",
     "causes", "diagnostics", "hosts"),
    ("testing", "resolver"),
    ("providers",),
    ("config",),
    ("smtp",),
    ("host", "links", "senderdns"),
    ("roundtrip",),
    ("synapse",),
    ("mailer",),
    ("diagnose",),
    ("doctor",),
    ("render",),
    ("relay", "exporter", "synapse_module"),
    ("cli", "__main__"),
)
"""Top-level modules and packages, from the ground floor up (see the docstring)."""

_WHERE = {
    "Applicability": ("maildoctor.diagnostics", "Applicability"),
    "CheckResult": ("maildoctor.config.check", "CheckResult"),
    "ConfigLoadError": ("maildoctor.errors", "ConfigLoadError"),
    "Diagnosis": ("maildoctor.diagnose", "Diagnosis"),
    "Diagnostic": ("maildoctor.diagnostics", "Diagnostic"),
    "EmailSettings": ("maildoctor.config.settings", "EmailSettings"),
    "Location": ("maildoctor.diagnostics", "Location"),
    "MaildoctorError": ("maildoctor.errors", "MaildoctorError"),
    "Mailer": ("maildoctor.mailer", "Mailer"),
    "Outcome": ("maildoctor.synapse.model.predict", "Outcome"),
    "ProbeOptions": ("maildoctor.smtp.report", "ProbeOptions"),
    "ProbeRun": ("maildoctor.doctor", "ProbeRun"),
    "SMTPFailure": ("maildoctor.errors", "SMTPFailure"),
    "Severity": ("maildoctor.diagnostics", "Severity"),
    "SyncMailer": ("maildoctor.mailer.sync", "SyncMailer"),
    "build_message": ("maildoctor.synapse.mail.message", "build_message"),
    "check": ("maildoctor.config.check", "check"),
    "predict": ("maildoctor.synapse.model.predict", "predict"),
    "probe": ("maildoctor.doctor", "probe_config"),
    "settings_from_config": ("maildoctor.config.settings", "settings_from_config"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'maildoctor' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
