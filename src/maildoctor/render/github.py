"""GitHub Actions workflow annotations (``::error file=...,line=...::message``)."""

from __future__ import annotations

from typing import TextIO

from maildoctor.config.check import CheckResult
from maildoctor.diagnostics import Severity
from maildoctor.errors import ConfigLoadError

LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _escape_data(text: str) -> str:
    """Annotation text: untrusted parts (config values, server words) made printable, line
    breaks kept as GitHub's own escapes."""
    from maildoctor.printable import printable_lines

    return printable_lines(text.replace("%", "%25").replace("\r", "%0D")).replace("\n", "%0A")


def _escape_prop(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(result: CheckResult, stream: TextIO, *, color: bool | None = None) -> None:
    for d in result.diagnostics:
        props = [f"title={_escape_prop(f'{d.code} {d.name}')}"]
        if d.location:
            props = [f"file={_escape_prop(d.location.file)}", f"line={d.location.line}",
                     f"col={d.location.column}", *props]
        body = d.message
        if d.consequence:
            body += f"\nSynapse: {d.consequence}"
        if d.fix:
            body += f"\nFix: {d.fix.message}"
        stream.write(f"::{LEVEL[d.severity]} {','.join(props)}::{_escape_data(body)}\n")


def render_load_error(exc: ConfigLoadError, stream: TextIO, *,
                      color: bool | None = None) -> None:
    """One ``::error`` annotation at the place the file broke (exit status 2)."""
    props = [f"title={_escape_prop('MD000 unusable-config')}"]
    if exc.file:
        where = [f"file={_escape_prop(exc.file)}"]
        if exc.line:
            where.append(f"line={exc.line}")
            if exc.column:
                where.append(f"col={exc.column}")
        props = [*where, *props]
    body = exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")
    stream.write(f"::error {','.join(props)}::{_escape_data(body)}\n")
