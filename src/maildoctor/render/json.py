"""Machine output: one JSON document with a format ``version``.

Fix edits carry values for ``maildoctor fix`` (quoting a numeric ``smtp_pass`` carries the
password as written); the JSON shows a mask instead for any edit of a secret-looking key.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from maildoctor.config.check import CheckResult
from maildoctor.diagnostics import Diagnostic, Severity
from maildoctor.render.excerpt import is_secret_key
from maildoctor.secrets import MASK

FORMAT_VERSION = 1
# Edits whose value is the setting's value (the others carry a key name or a path).
VALUE_EDITS = {"set-value", "quote-value", "insert-key"}


def _diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    out = d.to_json()
    fix = out.get("fix")
    if fix:
        for edit in fix["edits"]:
            if (edit["action"] in VALUE_EDITS and edit["value"] is not None
                    and is_secret_key(edit["path"].rsplit(".", 1)[-1])):
                edit["value"] = MASK
    return out


def to_json(result: CheckResult) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "tool": "maildoctor",
        "synapse_version": str(result.version),
        "files": [pf.path for pf in result.config.files],
        "summary": {s.value: result.count(s) for s in Severity},
        "diagnostics": [_diagnostic_json(d) for d in result.diagnostics],
    }


def render(result: CheckResult, stream: TextIO, *, color: bool | None = None) -> None:
    json.dump(to_json(result), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
