"""Human output for ``check``: each finding with its source line, a caret, what Synapse will
do, and the fix.

The output is built once as lines of (text, style) segments. On a terminal, rich prints
them in colour; otherwise (a pipe, CI logs, ``NO_COLOR``, ``--no-color``) they are written
as plain text without importing rich at all: rich costs a third of ``check``'s start-up,
and ``check`` is meant to answer in a fraction of Synapse's own config check.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TextIO

from maildoctor.config.check import CheckResult
from maildoctor.diagnostics import Applicability, Diagnostic, Severity
from maildoctor.errors import ConfigLoadError
from maildoctor.printable import printable
from maildoctor.render.excerpt import caret_span
from maildoctor.secrets import mask_excerpt

STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}
APPLY = {
    Applicability.SAFE: "maildoctor fix applies this",
    Applicability.UNSAFE: "maildoctor fix --unsafe-fixes applies this",
    Applicability.DISPLAY_ONLY: "",
}

Segment = tuple[str, str]  # (text, rich style; "" for none)
Line = list[Segment]


def want_color(stream: TextIO, color: bool | None) -> bool:
    """``--color``/``--no-color`` decide; otherwise colour only on a terminal without
    ``NO_COLOR`` (https://no-color.org), or when ``FORCE_COLOR`` is set."""
    if color is not None:
        return color
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def _excerpt(result: CheckResult, d: Diagnostic) -> Iterator[Line]:
    loc = d.location
    if loc is None:
        return
    line = result.config.source_line(loc.file, loc.line)
    if line is None:
        return
    node = result.config.node(tuple(loc.path.split("."))) if loc.path else None
    shown = mask_excerpt(line.expandtabs(1), loc.path, loc.line,
                         node.key_line if node is not None else None)
    gutter = len(str(loc.line))
    col = min(loc.column, len(shown) + 1)
    width = caret_span(shown, col)
    yield [(f"{' ' * gutter} |", "blue")]
    yield [(f"{loc.line} | ", "blue"), (shown, "")]
    yield [(f"{' ' * gutter} | ", "blue"), (" " * (col - 1) + "^" * width, STYLE[d.severity])]


def diagnostic_lines(result: CheckResult, d: Diagnostic) -> Iterator[Line]:
    yield [(f"{d.severity.value}[{d.code}]", STYLE[d.severity]), (f" {d.message}", "bold"),
           (f"  ({d.name})", "dim")]
    for loc in d.locations:
        yield [(f"  --> {loc}", "blue")]
        if loc is d.location:
            yield from _excerpt(result, d)
    if d.consequence:
        yield [("  = Synapse: ", "bold"), (d.consequence, "")]
    if d.fix:
        note = APPLY[d.fix.applicability]
        yield [("  = fix: ", "bold green"), (d.fix.message, "")] + (
            [(f"  [{note}]", "dim")] if note else [])
    yield []


def summary_lines(result: CheckResult) -> Iterator[Line]:
    files = ", ".join(pf.path for pf in result.config.files) or "no file"
    if not result.diagnostics:
        yield [("ok", "bold green"),
               (f": no email problems found in {files} (Synapse {result.version})", "")]
        return
    errors, warnings = result.count(Severity.ERROR), result.count(Severity.WARNING)
    infos = result.count(Severity.INFO)
    parts = [f"{errors} error{'s' * (errors != 1)}", f"{warnings} warning{'s' * (warnings != 1)}"]
    if infos:
        parts.append(f"{infos} note{'s' * (infos != 1)}")
    yield [(", ".join(parts), "bold red" if errors else "bold yellow"),
           (f" in {files} (checked as Synapse {result.version})", "")]
    fixable = sum(1 for d in result.diagnostics
                  if d.fix and d.fix.applicability is Applicability.SAFE and d.fix.edits)
    unsafe = sum(1 for d in result.diagnostics
                 if d.fix and d.fix.applicability is Applicability.UNSAFE and d.fix.edits)
    if fixable:
        yield [(f"{fixable} can be fixed with `maildoctor fix`.", "dim")]
    if unsafe:
        yield [(f"{unsafe} more with `maildoctor fix --unsafe-fixes` (read each fix first: it "
                "may change more than the finding).", "dim")]


def lines(result: CheckResult) -> Iterator[Line]:
    """Every output line; each segment made printable (a config value or a server's words
    may carry terminal control sequences), before any colour of ours is added."""
    from maildoctor.render.environment import lines as environment_lines

    def raw() -> Iterator[Line]:
        for d in result.diagnostics:
            yield from diagnostic_lines(result, d)
        for text in environment_lines(result.environment, result.version):
            yield [(text, "dim")]
        yield from summary_lines(result)

    for line in raw():
        yield [(printable(text), style) for text, style in line]


def render(result: CheckResult, stream: TextIO, *, color: bool | None = None) -> None:
    if not want_color(stream, color):
        for line in lines(result):
            stream.write("".join(text for text, _style in line) + "\n")
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=stream, highlight=False, soft_wrap=True, force_terminal=True,
                      width=None)
    for line in lines(result):
        console.print(Text.assemble(*[(text, style) if style else text for text, style in line]))


def _source_line(path: str, number: int) -> str:
    """Line ``number`` of ``path``, reading no more than a config may hold (the file may be
    a device, or huge: that may be why it is unusable)."""
    from maildoctor.config.load import MAX_FILE_BYTES

    try:
        if not os.path.isfile(path):
            return ""
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read(MAX_FILE_BYTES).splitlines()
    except OSError:
        return ""
    return lines[number - 1] if number <= len(lines) else ""


def render_load_error(exc: ConfigLoadError, stream: TextIO, *,
                      color: bool | None = None) -> None:
    """``maildoctor: file:line:col: message``, the line (secrets masked) with a caret, and
    the hint."""
    from maildoctor.secrets import mask_line

    paint = want_color(stream, color)
    head = printable(f"maildoctor: {exc}")
    stream.write((f"\x1b[1;31m{head}\x1b[0m" if paint else head) + "\n")
    src = _source_line(exc.file, exc.line) if exc.file and exc.line else ""
    if src and exc.line:
        shown = printable(mask_line(src.expandtabs(1)))
        stream.write(f"  {exc.line} | {shown}\n")
        if exc.column and shown == src.expandtabs(1):
            stream.write(f"  {' ' * len(str(exc.line))} | {' ' * (exc.column - 1)}^\n")
    if exc.hint:
        stream.write(f"  hint: {printable(exc.hint)}\n")
