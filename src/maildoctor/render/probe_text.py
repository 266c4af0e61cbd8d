"""Human output for ``probe``: the diagnosis first, then the stages with timings, then
(with -v) the transcript. On a terminal, stages appear live as they finish."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text as RichText

from maildoctor.diagnostics import Severity
from maildoctor.printable import printable_lines


class Text(RichText):
    """rich's Text with its words made printable: what the probe shows comes from servers
    and configs, and may carry terminal control sequences (never markup: Text is literal)."""

    def __init__(self, text: str = "", *args: Any, **kwargs: Any) -> None:
        super().__init__(printable_lines(text), *args, **kwargs)

MARK = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red"),
        "skipped": ("-", "dim")}
OUTCOME = {"ok": ("sends the mail", "green"), "error": ("fails", "red"),
           "hang": ("hangs", "red"), "no-start": ("does not start", "red"),
           "untested": ("not predicted (the probe stopped early)", "yellow")}


def make_console(color: bool | None) -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=True,
                   force_terminal=color if color else None, no_color=(color is False) or None)


class LiveStages:
    """What the terminal shows while the probe runs: a line per finished stage, and a spinner
    naming the stage being waited on, with its elapsed time against the timeout. Rendered by
    rich's Live as a transient display: at the end it is cleared, so the stage table printed
    after the diagnosis is the only one left on screen."""

    def __init__(self, timeout: float | None) -> None:
        from rich.spinner import Spinner

        self.timeout = timeout
        self.done: list[RichText] = []
        self.current = ""
        self.started = time.monotonic()
        self.spinner = Spinner("dots")

    def starting(self, name: str) -> None:
        """The engine begins stage ``name`` (see ``EngineBase.begin``)."""
        self.current, self.started = name, time.monotonic()

    def __call__(self, stage: Any) -> None:
        mark, style = MARK.get(str(stage.status), ("?", ""))
        self.done.append(Text(f"  {mark} {stage.name:<9} ", style=style)
                         + Text(f"{stage.seconds:6.2f}s  ", style="dim")
                         + Text(stage.summary or ""))
        if stage.name == self.current:
            self.current = ""

    def waiting_text(self) -> Text:
        if not self.current:
            return Text("probing...")
        elapsed = time.monotonic() - self.started
        bound = f" of {self.timeout:g}s" if self.timeout else ""
        return Text(f"probing: waiting on {self.current} ({elapsed:.1f}s{bound})")

    def __rich__(self) -> Any:
        from rich.console import Group

        self.spinner.update(text=self.waiting_text())
        return Group(*self.done, self.spinner)


@contextmanager
def progress(console: Console | None,
             timeout: float | None = None) -> Iterator[Callable[[Any], None] | None]:
    """Live progress while the probe runs (terminals only); see :class:`LiveStages`."""
    if console is None or not console.is_terminal:
        yield None
        return
    from rich.live import Live

    live = LiveStages(timeout)
    with Live(live, console=console, transient=True, refresh_per_second=8):
        yield live


def render(console: Console, result: Any, report: Any, diagnosis: Any, *,
           verbose: bool = False) -> None:
    s = result.settings
    mode = "implicit TLS" if s.implicit_tls else ("STARTTLS when offered" if s.starttls_enabled
                                                  else "no TLS")
    files = ", ".join(pf.path for pf in result.config.files)
    target = (f"{s.smtp_host}:{s.smtp_port} ({mode}) as Synapse would use it"
              if s.email_enabled else "email is off")
    console.print(Text(f"maildoctor probe: {target}, from {files}", style="bold"))
    console.print()
    head_style = "bold green" if diagnosis.ok else "bold red"
    console.print(Text("✓ " if diagnosis.ok else "✗ ", style=head_style)
                  + Text(diagnosis.root_cause, style="bold"))
    if diagnosis.location is not None:
        console.print(Text(f"  at {diagnosis.location}", style="blue"))
    if diagnosis.fix:
        console.print(Text("  Fix: ", style="bold green") + Text(diagnosis.fix))
    for seen in diagnosis.evidence:
        console.print(Text(f"  seen: {seen}", style="dim"))
    out = diagnosis.synapse
    verb, style = OUTCOME.get(out.kind, (out.kind, "bold"))
    line = Text("  Synapse: ", style="bold") + Text(verb, style=style)
    message = " ".join(out.message.split())
    if out.exception:
        line += Text(f" with {out.exception}: {message}")
    elif message and out.kind != "ok":
        line += Text(f": {message}")
    elif out.kind == "hang":
        line += Text(": the request never returns, and the log shows nothing after "
                     "'Sending email to ...'")
    console.print(line)
    if out.kind not in ("ok", "untested"):
        console.print(Text(f"           the client sees: {out.http}", style="dim"))
    if out.why and out.kind not in ("ok", "untested"):
        console.print(Text(f"           why: {out.why}", style="dim"))
    if diagnosis.consequence and out.kind not in ("ok", "untested"):
        console.print(Text(f"           so: {diagnosis.consequence}", style="dim"))
    console.print()
    if report.stages:
        _stage_table(console, report)
    _after_the_250(console, report)
    from maildoctor.render.environment import lines, network_lines

    environment = getattr(result, "environment", None)
    for text in (*lines(environment, result.version), *network_lines(environment)):
        console.print(Text(text, style="dim"))
    _other_findings(console, result, diagnosis)
    if verbose and report.transcript:
        console.print()
        console.print(Text("Transcript (secrets hidden):", style="bold"))
        for tl in report.transcript:
            arrow = {"sent": ">>>", "received": "<<<"}.get(str(tl.direction), "===")
            tls = "~" if tl.tls else " "
            console.print(Text(f"  {tls}{arrow} ", style="dim") + Text(tl.text))


def _stage_table(console: Console, report: Any) -> None:
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("stage")
    table.add_column("", justify="left")
    table.add_column("time", justify="right")
    table.add_column("result")
    for st in report.stages:
        mark, mstyle = MARK.get(str(st.status), ("?", ""))
        detail = st.summary or ""
        if st.error and st.error not in detail:
            detail = f"{detail}: {st.error}" if detail else st.error
        table.add_row(Text(st.name), Text(mark, style=mstyle), f"{st.seconds:.2f}s",
                      Text(detail))
    console.print(table)


LEVEL_STYLE = {"will-fail": ("✗", "red"), "at-risk": ("!", "yellow"), "info": ("·", "dim")}


def _after_the_250(console: Console, report: Any) -> None:
    """What receivers will make of the mail (sender-dns) and whether its links work."""
    from maildoctor.resolver import printable

    sender = report.stage("sender-dns")
    findings = sender.facts.get("findings", []) if sender is not None else []
    links = report.stage("links")
    broken = [k for k in links.facts.get("links", []) if not k.get("works", True)] \
        if links is not None else []
    if not findings and not broken:
        return
    console.print()
    console.print(Text("After the 250 (what receivers and users will see):", style="bold"))
    for f in findings:
        mark, style = LEVEL_STYLE.get(f["level"], ("?", ""))
        console.print(Text(f"  {mark} {f['level']}[{f['code']}] ", style=style)
                      + Text(printable(f["message"], 500)))
        if f.get("fix") and f["level"] != "info":
            console.print(Text("      Fix: ", style="bold green") + Text(printable(f["fix"])))
        if f.get("record"):
            console.print(Text("      publish: ", style="bold")
                          + Text(printable(f["record"], 600)))
    for link in broken:
        console.print(Text("  ✗ dead link ", style="red") + Text(printable(link["url"]))
                      + Text(f": {printable(link['seen'])}", style="dim"))
        if link.get("fix"):
            console.print(Text("      Fix: ", style="bold green")
                          + Text(printable(link["fix"], 600)))


def _other_findings(console: Console, result: Any, diagnosis: Any) -> None:
    others = [d for d in result.diagnostics if d.severity is not Severity.INFO
              and d.code != diagnosis.code and d.code not in diagnosis.settled]
    if not others:
        return
    console.print()
    console.print(Text("Also in the config (maildoctor check explains each):", style="bold"))
    for d in others:
        where = f"{d.location.file}:{d.location.line}" if d.location else ""
        console.print(Text(f"  {d.severity.value}[{d.code}] ", style="yellow")
                      + Text(f"{d.message}  ") + Text(where, style="dim"))
