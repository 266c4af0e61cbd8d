"""The SMTP probe: observe, stage by stage, what Synapse's mail client would meet.

    resolve -> connect -> sniff -> tls / greeting -> ehlo -> (STARTTLS) -> auth -> envelope

Modules, in the order data flows: ``resolve`` (host checks, getaddrinfo), ``wire``
(the one socket boundary: bounded reads, TLS upgrade, error conversion), ``sniff``
(what the port speaks), ``tls`` (contexts, verify codes, certificate report),
``parse`` (pure reply/EHLO/mechanism rules), ``auth`` (Twisted-exact SASL),
``engine``/``tls_stage``/``auth_stage``/``stages`` (the stages), ``report`` (options
and results), ``transcript`` (redacted dialogue), ``interactive`` (``maildoctor shell``),
``facts`` (ServerFacts, the Synapse model's input).

The public names below are imported lazily, so importing ``maildoctor.smtp.facts``
(as the model does) does not load the network code.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Direction",
    "ProbeOptions",
    "ProbeReport",
    "StageResult",
    "StageStatus",
    "TranscriptLine",
    "probe",
    "run_probe",
]

_WHERE = {
    "Direction": "transcript",
    "ProbeOptions": "report",
    "ProbeReport": "report",
    "StageResult": "report",
    "StageStatus": "report",
    "TranscriptLine": "transcript",
    "probe": "stages",
    "run_probe": "stages",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'maildoctor.smtp' has no attribute {name!r}")
    return getattr(importlib.import_module(f"maildoctor.smtp.{module}"), name)
