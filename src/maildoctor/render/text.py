"""Human output for ``check``: each finding with its source line, a caret, what Synapse will
do, and the fix. Rich does the colours (``NO_COLOR`` and non-terminals are honoured)."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from maildoctor.config.check import CheckResult
from maildoctor.diagnostics import Applicability, Diagnostic, Severity
from maildoctor.render.excerpt import caret_span, mask_line

STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}
APPLY = {
    Applicability.SAFE: "maildoctor fix applies this",
    Applicability.UNSAFE: "maildoctor fix --unsafe-fixes applies this",
    Applicability.DISPLAY_ONLY: "",
}


def make_console(stream: TextIO, *, color: bool | None = None) -> Console:
    return Console(file=stream, highlight=False, soft_wrap=True,
                   force_terminal=color if color else None,
                   no_color=(color is False) or None, width=None)


def _excerpt(console: Console, result: CheckResult, d: Diagnostic) -> None:
    loc = d.location
    if loc is None:
        return
    line = result.config.source_line(loc.file, loc.line)
    if line is None:
        return
    shown = mask_line(line.expandtabs(1))
    gutter = len(str(loc.line))
    col = min(loc.column, len(shown) + 1)
    width = caret_span(shown, col)
    console.print(Text(f"{' ' * gutter} |", style="blue"))
    console.print(Text(f"{loc.line} | ", style="blue") + Text(shown))
    console.print(Text(f"{' ' * gutter} | ", style="blue")
                  + Text(" " * (col - 1) + "^" * width, style=STYLE[d.severity]))


def render_diagnostic(console: Console, result: CheckResult, d: Diagnostic) -> None:
    head = Text()
    head.append(f"{d.severity.value}[{d.code}]", style=STYLE[d.severity])
    head.append(f" {d.message}", style="bold")
    head.append(f"  ({d.name})", style="dim")
    console.print(head)
    for loc in d.locations:
        console.print(Text(f"  --> {loc}", style="blue"))
        if loc is d.location:
            _excerpt(console, result, d)
    if d.consequence:
        console.print(Text("  = Synapse: ", style="bold") + Text(d.consequence))
    if d.fix:
        note = APPLY[d.fix.applicability]
        console.print(Text("  = fix: ", style="bold green") + Text(d.fix.message)
                      + (Text(f"  [{note}]", style="dim") if note else Text()))
    console.print()


def render(result: CheckResult, stream: TextIO, *, color: bool | None = None) -> None:
    console = make_console(stream, color=color)
    for d in result.diagnostics:
        render_diagnostic(console, result, d)
    files = ", ".join(pf.path for pf in result.config.files) or "no file"
    errors, warnings = result.count(Severity.ERROR), result.count(Severity.WARNING)
    infos = result.count(Severity.INFO)
    if not result.diagnostics:
        console.print(f"[bold green]ok[/]: no email problems found in {escape(files)} "
                      f"(Synapse {result.version})")
        return
    parts = [f"{errors} error{'s' * (errors != 1)}", f"{warnings} warning{'s' * (warnings != 1)}"]
    if infos:
        parts.append(f"{infos} note{'s' * (infos != 1)}")
    style = "bold red" if errors else "bold yellow"
    console.print(f"[{style}]{escape(', '.join(parts))}[/] in {escape(files)} "
                  f"(checked as Synapse {result.version})")
    fixable = sum(1 for d in result.diagnostics
                  if d.fix and d.fix.applicability is Applicability.SAFE and d.fix.edits)
    if fixable:
        console.print(f"{fixable} can be fixed with `maildoctor fix`.", style="dim")
