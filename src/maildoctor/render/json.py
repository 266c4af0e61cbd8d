"""Machine output: one JSON document with a format ``version``.

Fix edits carry values for ``maildoctor fix``; ``Diagnostic.to_json`` masks the value of an
edit to a secret-looking key, so every JSON output (check, probe) is safe to paste.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from maildoctor.config.check import CheckResult
from maildoctor.diagnostics import Severity
from maildoctor.errors import ConfigLoadError

FORMAT_VERSION = 1


def to_json(result: CheckResult) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "tool": "maildoctor",
        "synapse_version": str(result.version),
        "files": [pf.path for pf in result.config.files],
        "summary": {s.value: result.count(s) for s in Severity},
        "diagnostics": [d.to_json() for d in result.diagnostics],
        "environment": result.environment.to_json() if result.environment else None,
    }


def render(result: CheckResult, stream: TextIO, *, color: bool | None = None) -> None:
    json.dump(to_json(result), stream, indent=2, ensure_ascii=False)
    stream.write("\n")


def load_error_json(exc: ConfigLoadError) -> dict[str, Any]:
    """The document for a config that cannot be used at all (exit status 2): the same
    top-level keys as a result, no diagnostics, and ``load_error`` saying where and why."""
    return {
        "version": FORMAT_VERSION,
        "tool": "maildoctor",
        "files": [exc.file] if exc.file else [],
        "summary": {s.value: 0 for s in Severity},
        "diagnostics": [],
        "load_error": {"message": exc.message, "file": exc.file, "line": exc.line,
                       "column": exc.column, "hint": exc.hint or None},
    }


def render_load_error(exc: ConfigLoadError, stream: TextIO, *,
                      color: bool | None = None) -> None:
    json.dump(load_error_json(exc), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
