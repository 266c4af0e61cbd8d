"""Machine output for ``probe --format json``: the target, the diagnosis, the stages, every
config finding (those the probe settled are marked, as the text output leaves them out),
the environment, and with ``verbose`` the transcript (secrets already hidden)."""

from __future__ import annotations

import json
from typing import Any, TextIO

from maildoctor.doctor import ProbeRun

VERSION = 1


def probe_json(run: ProbeRun, *, verbose: bool = False) -> dict[str, Any]:
    result, report, diagnosis = run.check, run.report, run.diagnosis
    settings = result.settings
    settled = set(diagnosis.settled)
    out: dict[str, Any] = {
        "version": VERSION,
        "target": {"host": str(settings.smtp_host), "port": settings.smtp_port,
                   "tls": "implicit" if settings.implicit_tls else
                          ("starttls" if settings.starttls_enabled else "off"),
                   "tls_name": settings.tls_name},
        "diagnosis": diagnosis.to_json(),
        "stages": [s.as_dict() for s in report.stages],
        "findings": [{**d.to_json(), "settled_by_probe": d.code in settled}
                     for d in result.diagnostics],
        "environment": result.environment.to_json() if result.environment else None,
    }
    if verbose:
        out["transcript"] = [line.as_dict() for line in report.transcript]
    return out


def render(run: ProbeRun, stream: TextIO, *, verbose: bool = False) -> None:
    json.dump(probe_json(run, verbose=verbose), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
