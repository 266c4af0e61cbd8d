"""SARIF 2.1.0 output of ``check``, for GitHub code scanning and other SARIF consumers.

One run: the rule registry as ``tool.driver.rules`` (summary, documentation as help, the
default level), each finding as a result located by file, line and column (and by its dotted
config path as a logical location), the other places a finding points at as related
locations, and the fixes ``maildoctor fix`` would apply on its own (safe ones) as text
replacements. A config that cannot be used at all gives the same document with one result of
the rule ``MD000`` and a failed invocation with a notification, so a CI upload still shows
where the file broke.

Nothing secret is written: messages are those of the text output, and a fix whose text
would carry a secret's value (quoting a numeric password) is left out.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from maildoctor.config.check import CheckResult
from maildoctor.diagnostics import Applicability, Diagnostic, Location, Severity
from maildoctor.errors import ConfigLoadError

SCHEMA_URI = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
              "sarif-schema-2.1.0.json")
SARIF_VERSION = "2.1.0"
SRCROOT = "%SRCROOT%"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
# Not in the rule registry (check's rules run on a loaded config): the config itself could
# not be loaded. Exit status 2.
LOAD_ERROR_ID = "MD000"
LOAD_ERROR_NAME = "unusable-config"
LOAD_ERROR_SUMMARY = "A config file cannot be used at all"
LOAD_ERROR_HELP = (
    "The file is unreadable, not UTF-8, binary, too big, nested too deep, an alias bomb, or "
    "not valid YAML. Synapse refuses to start on such a file; maildoctor checks nothing "
    "else in it. The message says where the file broke and, for YAML errors, how to mend it.")


def _tool_version() -> str:
    """maildoctor's installed version: the ``Version:`` of its metadata (``METADATA`` in a
    ``maildoctor-X.Y.Z.dist-info`` directory, ``PKG-INFO`` in an ``.egg-info`` one), the
    first such directory on ``sys.path`` winning, as with ``importlib.metadata.version``,
    which costs ``check --format sarif`` about 10 ms more (importing it and scanning every
    installed distribution). "0" when running from a source tree."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, _, kind = name.rpartition(".")
            if kind not in ("dist-info", "egg-info") or \
                    stem.partition("-")[0].lower() != "maildoctor":
                continue
            filename = "METADATA" if kind == "dist-info" else "PKG-INFO"
            try:
                with open(os.path.join(entry or ".", name, filename), encoding="utf-8",
                          errors="replace") as fh:
                    head = fh.read(1 << 16).split("\n\n", 1)[0]
            except OSError:
                continue
            for line in head.splitlines():
                if line.lower().startswith("version:"):
                    return line.split(":", 1)[1].strip()
    return "0"  # pragma: no cover - running from a source tree


def _rules() -> list[dict[str, Any]]:
    from maildoctor.config.rules import all_rules

    out = [_descriptor(LOAD_ERROR_ID, LOAD_ERROR_NAME, Severity.ERROR, LOAD_ERROR_SUMMARY,
                       LOAD_ERROR_HELP, registered=False)]
    out += [_descriptor(r.code, r.name, r.severity, r.summary, r.doc)
            for r in all_rules().values()]
    return out


def _descriptor(code: str, name: str, severity: Severity, summary: str, doc: str, *,
                registered: bool = True) -> dict[str, Any]:
    first = doc.split("\n\n", 1)[0].replace("\n", " ") if doc else summary
    help_text = f"{summary}.\n\n{doc}" if doc else f"{summary}."
    where = f"\n\n`maildoctor rules {code}` prints this." if registered else ""
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": first},
        "help": {"text": help_text,
                 "markdown": f"**{code} {name}**: {summary}.\n\n{doc}{where}"},
        "defaultConfiguration": {"level": LEVEL[severity]},
        "properties": {"tags": ["synapse", "email", "configuration"]},
    }


def artifact(file: str) -> dict[str, str]:
    """An artifactLocation: relative to the working directory (``%SRCROOT%``, the checkout
    in CI) when the file is under it, otherwise an absolute ``file:`` URI."""
    path = Path(file)
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        relative = Path(os.path.normpath(absolute)).relative_to(Path.cwd())
    except ValueError:
        return {"uri": Path(os.path.normpath(absolute)).as_uri()}
    return {"uri": quote(relative.as_posix(), safe="/"), "uriBaseId": SRCROOT}


def _location(loc: Location, index: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": artifact(loc.file),
            "region": {"startLine": max(1, loc.line), "startColumn": max(1, loc.column)},
        },
    }
    if loc.path:
        out["logicalLocations"] = [{"fullyQualifiedName": loc.path, "kind": "property"}]
    if index is not None:
        out["id"] = index
    return out


def _message(d: Diagnostic) -> str:
    text = d.message
    if d.consequence:
        text += f"\nSynapse: {d.consequence}"
    if d.fix:
        text += f"\nFix: {d.fix.message}"
    return text


def _fingerprint(d: Diagnostic) -> str:
    """Stable while lines move: the rule, the file and the config path."""
    loc = d.location
    key = f"{d.code}|{loc.file if loc else ''}|{loc.path if loc else ''}|{d.name}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _span(old: str, new: str) -> tuple[int, int, int]:
    """The differing middle of two lines: (start, end in ``old``, end in ``new``)."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old -= 1
        end_new -= 1
    return start, end_old, end_new


def _shown_safely(line: str, upto: int) -> bool:
    """Whether ``line[:upto]`` shows no secret: the line sets no secret-looking key, or the
    text stops before the value (:func:`mask_line` keeps everything before it)."""
    from maildoctor.secrets import mask_line

    masked = mask_line(line)
    if masked == line:
        return True
    same = 0
    while same < min(len(line), len(masked)) and line[same] == masked[same]:
        same += 1
    return upto <= same


def _replacements(old: list[str], new: list[str]) -> list[dict[str, Any]] | None:
    """Replacements turning ``old`` into ``new`` (1-based regions; a region's end column is
    the column after its last character): the changed characters of a changed line, whole
    lines otherwise. ``None`` when the inserted text would show a secret's value."""
    out: list[dict[str, Any]] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:  # lines changed in place
            for k in range(i2 - i1):
                a, b = old[i1 + k], new[j1 + k]
                start, end_a, end_b = _span(a, b)
                if not _shown_safely(b, end_b):
                    return None
                out.append({"deletedRegion": {"startLine": i1 + k + 1, "startColumn": start + 1,
                                              "endLine": i1 + k + 1, "endColumn": end_a + 1},
                            "insertedContent": {"text": b[start:end_b]}})
            continue
        if not all(_shown_safely(line, len(line)) for line in new[j1:j2]):
            return None
        inserted = "\n".join(new[j1:j2])
        if i2 > i1 and j2 > j1:  # lines replaced by others
            region = {"startLine": i1 + 1, "startColumn": 1,
                      "endLine": i2, "endColumn": len(old[i2 - 1]) + 1}
        elif i2 > i1:  # lines deleted, with their line breaks
            if i2 < len(old):
                region = {"startLine": i1 + 1, "startColumn": 1, "endLine": i2 + 1,
                          "endColumn": 1}
            else:
                begin = (i1, len(old[i1 - 1]) + 1) if i1 > 0 else (1, 1)
                region = {"startLine": begin[0], "startColumn": begin[1],
                          "endLine": i2, "endColumn": len(old[i2 - 1]) + 1}
        elif i1 < len(old):  # lines inserted before line i1 + 1
            region = {"startLine": i1 + 1, "startColumn": 1, "endLine": i1 + 1,
                      "endColumn": 1}
            inserted += "\n"
        else:  # lines appended after the last one
            line, column = (len(old), len(old[-1]) + 1) if old else (1, 1)
            region = {"startLine": line, "startColumn": column, "endLine": line,
                      "endColumn": column}
            inserted = "\n" + inserted if old else inserted
        out.append({"deletedRegion": region, "insertedContent": {"text": inserted}})
    return out


def _fixes(result: CheckResult, d: Diagnostic) -> list[dict[str, Any]]:
    """The safe fix of ``d`` as SARIF replacements, computed by ``maildoctor fix``'s own
    planner on a copy of the config; none when it would not apply or would show a secret."""
    if d.fix is None or d.fix.applicability is not Applicability.SAFE or not d.fix.edits:
        return []
    from maildoctor.config.fix import FixError, plan

    config = dataclasses.replace(result.config, files=list(result.config.files))
    try:
        planned = plan(config, [d])
    except (FixError, OSError, ValueError):
        return []
    changes = []
    for ff in planned:
        if not ff.applied or not ff.changed:
            continue
        replacements = _replacements(ff.original.splitlines(), ff.new_text.splitlines())
        if replacements is None:
            return []
        changes.append({"artifactLocation": artifact(ff.path), "replacements": replacements})
    if not changes:
        return []
    return [{"description": {"text": d.fix.message}, "artifactChanges": changes}]


def _result(result: CheckResult, d: Diagnostic, rule_index: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": d.code,
        "level": LEVEL[d.severity],
        "message": {"text": _message(d)},
        "partialFingerprints": {"maildoctorFinding/v1": _fingerprint(d)},
    }
    if d.code in rule_index:
        out["ruleIndex"] = rule_index[d.code]
    if d.locations:
        out["locations"] = [_location(d.locations[0])]
    elif result.config.files:  # code scanning shows only located results: the main file
        out["locations"] = [_location(Location(result.config.files[0].path, 1, 1))]
    if len(d.locations) > 1:
        out["relatedLocations"] = [_location(loc, i)
                                   for i, loc in enumerate(d.locations[1:], start=1)]
    fixes = _fixes(result, d)
    if fixes:
        out["fixes"] = fixes
    return out


def _log(results: list[dict[str, Any]], invocation: dict[str, Any],
         rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": "maildoctor",
                "semanticVersion": _tool_version(),
                "rules": rules,
            }},
            "invocations": [invocation],
            "originalUriBaseIds": {SRCROOT: {"uri": Path.cwd().as_uri().rstrip("/") + "/"}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


def to_sarif(result: CheckResult) -> dict[str, Any]:
    rules = _rules()
    rule_index = {r["id"]: i for i, r in enumerate(rules)}
    results = [_result(result, d, rule_index) for d in result.diagnostics]
    return _log(results, {"executionSuccessful": True}, rules)


def load_error_sarif(exc: ConfigLoadError) -> dict[str, Any]:
    """A config that cannot be loaded: one ``MD000`` result and a failed invocation."""
    rules = _rules()
    text = exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")
    locations = []
    if exc.file:
        loc = Location(exc.file, exc.line or 1, exc.column or 1)
        locations = [_location(loc)]
    result: dict[str, Any] = {
        "ruleId": LOAD_ERROR_ID, "ruleIndex": 0, "level": "error",
        "message": {"text": text}, "locations": locations,
    }
    notification = {"level": "error", "message": {"text": str(exc)}, "locations": locations,
                    "associatedRule": {"id": LOAD_ERROR_ID, "index": 0}}
    invocation = {"executionSuccessful": False, "exitCode": 2,
                  "toolExecutionNotifications": [notification]}
    return _log([result], invocation, rules)


def _dump(doc: dict[str, Any], stream: TextIO) -> None:
    json.dump(doc, stream, indent=2, ensure_ascii=False)
    stream.write("\n")


def render(result: CheckResult, stream: TextIO, *, color: bool | None = None) -> None:
    _dump(to_sarif(result), stream)


def render_load_error(exc: ConfigLoadError, stream: TextIO, *,
                      color: bool | None = None) -> None:
    _dump(load_error_sarif(exc), stream)
