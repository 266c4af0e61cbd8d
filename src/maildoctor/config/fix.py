"""Apply the fixes ``check`` proposes, changing only the flagged lines.

Each :class:`~maildoctor.diagnostics.Edit` is applied to the file's text at the exact
position the parser recorded for the key or value, so comments, key order, quoting
and indentation everywhere else stay byte for byte as they were. The result is then
parsed again (PyYAML, as Synapse will read it, and ruamel.yaml's round-trip loader) and
compared with what the edits meant to change; a fix whose result differs is not written.

Writes go through :func:`maildoctor.config.safe_write.replace_file` (atomic, owner and
mode kept, symlinks followed, numbered backups, refused when the file changed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import yaml

from maildoctor.config.load import (
    Duplicate,
    LoadedConfig,
    Node,
    ParsedFile,
    PathKey,
    dotted,
    merge_files,
    parse_text,
    read_text,
)
from maildoctor.config.safe_write import FixError, file_digest, replace_file
from maildoctor.diagnostics import Applicability, Diagnostic, Edit, Severity

if TYPE_CHECKING:
    from maildoctor.config.schema import Version

__all__ = ["FileFix", "FixError", "RolledBack", "added_errors", "error_keys", "file_digest",
           "moved_value_paths", "plan", "plan_checked", "planned_config", "replace_file",
           "scalar_text", "write"]

SUPPORTED = {"rename-key", "set-value", "quote-value", "delete-key", "insert-key", "move-key"}


@dataclass
class FileFix:
    """The planned edits of one file. ``digest`` is the SHA-256 of the file's bytes when it
    was read: :func:`write` refuses to replace a file that changed since."""

    path: str
    original: str
    digest: str | None
    lines: list[str]
    applied: list[Diagnostic] = field(default_factory=list)
    skipped: list[tuple[Diagnostic, str]] = field(default_factory=list)

    @property
    def new_text(self) -> str:
        eol = "\r\n" if "\r\n" in self.original else "\n"  # a file edited on Windows stays so
        text = eol.join(self.lines)
        return text + eol if self.original.endswith("\n") or not self.original else text

    @property
    def changed(self) -> bool:
        return self.new_text != self.original


def _split(path: str) -> PathKey:
    return tuple(path.split(".")) if path else ()


def scalar_text(value: Any) -> str:
    """A YAML scalar that PyYAML reads back as exactly ``value`` (strings single-quoted
    unless plain is unambiguous)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text and yaml.safe_load(text) == text and text.strip() == text and "#" not in text \
            and ": " not in text and not text.startswith(("'", '"', "&", "*", "!", "%", "@")):
        return text
    return "'" + text.replace("'", "''") + "'"


class _Editor:
    def __init__(self, config: LoadedConfig, ff: FileFix) -> None:
        self.config = config
        self.ff = ff
        self.pf = next(p for p in config.files if p.path == ff.path)
        self.touched: set[int] = set()

    def node(self, path: PathKey) -> Node:
        node = self.pf.nodes.get(path)
        if node is None:
            raise LookupError(f"{'.'.join(path)} is not in {self.ff.path}")
        return node

    def claim(self, *lines: int) -> None:
        if any(line in self.touched for line in lines):
            raise LookupError("another fix changes the same line; run `maildoctor fix` again")
        self.touched.update(lines)

    def replace(self, line: int, col: int, end_col: int, text: str) -> None:
        src = self.ff.lines[line - 1]
        self.ff.lines[line - 1] = src[: col - 1] + text + src[end_col - 1:]

    def apply(self, edit: Edit) -> None:
        path = _split(edit.path)
        getattr(self, "do_" + edit.action.replace("-", "_"))(path, edit.value)

    def do_rename_key(self, path: PathKey, new: Any) -> None:
        node = self.node(path)
        self.claim(node.key_line)
        src = self.ff.lines[node.key_line - 1]
        start = node.key_column - 1
        quote = src[start] if src[start] in "'\"" else ""
        old = str(path[-1])
        end = start + len(quote) * 2 + len(old)
        if src[start + len(quote): start + len(quote) + len(old)] != old:
            raise LookupError(f"key {old!r} not found where expected")
        self.replace(node.key_line, node.key_column, end + 1, str(new))

    def _value_span(self, node: Node) -> tuple[int, int, int]:
        if node.end_line != node.value_line:
            raise LookupError("the value spans several lines; edit it by hand")
        return node.value_line, node.value_column, node.end_column

    def do_set_value(self, path: PathKey, value: Any) -> None:
        line, col, end = self._value_span(self.node(path))
        self.claim(line)
        self.replace(line, col, end, scalar_text(value))

    def do_quote_value(self, path: PathKey, raw: Any) -> None:
        node = self.node(path)
        line, col, end = self._value_span(node)
        self.claim(line)
        text = str(raw)
        tail = self.ff.lines[line - 1][col - 1:].rstrip()
        if text != node.raw and tail == text:
            # `pass: ab #cd` meant as the password `ab #cd`: what YAML took for a comment
            # is part of the value, so the quotes go round the rest of the line.
            end = col + len(tail)
        self.replace(line, col, end, "'" + text.replace("'", "''") + "'")

    def _entry_lines(self, node: Node) -> tuple[int, int]:
        last = node.end_line if node.end_line > node.value_line else node.value_line
        if node.end_line > node.value_line and node.end_column == 1:
            last = node.end_line - 1  # a block collection ends at the next line's start
        return node.key_line, last

    def do_delete_key(self, path: PathKey, _value: Any) -> None:
        first, last = self._entry_lines(self.node(path))
        self.claim(*range(first, last + 1))
        del self.ff.lines[first - 1: last]
        self._shift(first, -(last - first + 1))

    def _shift(self, from_line: int, delta: int) -> None:
        # Later edits are applied first (bottom-up), so positions above stay valid.
        self.touched = {ln if ln < from_line else ln + delta for ln in self.touched}

    def _child_indent_and_end(self, parent: PathKey) -> tuple[int, int]:
        children = [(p, n) for p, n in self.pf.nodes.items()
                    if len(p) == len(parent) + 1 and p[:-1] == parent]
        if not children:
            raise LookupError(f"{'.'.join(map(str, parent))} has no keys to align with")
        indent = children[0][1].key_column - 1
        end = max(self._entry_lines(n)[1] for _p, n in children)
        return indent, end

    def do_insert_key(self, path: PathKey, value: Any) -> None:
        indent, end = self._child_indent_and_end(path[:-1])
        if path in self.pf.nodes:
            raise LookupError(f"{'.'.join(path)} already exists")
        self.claim(end + 1)
        self.ff.lines.insert(end, " " * indent + f"{path[-1]}: {scalar_text(value)}")
        self._shift(end + 1, 1)

    def do_move_key(self, path: PathKey, target: Any) -> None:
        node = self.node(path)
        parent = _split(str(target)) if target else ()
        if not parent:
            raise LookupError("moving to the top level is left to you")
        if node.raw is None or not node.key_line == node.value_line == node.end_line:
            raise LookupError("only values on the key's own line are moved automatically")
        src = self.ff.lines[node.value_line - 1]
        value_text = src[node.value_column - 1: node.end_column - 1]
        indent, end = self._child_indent_and_end(parent)
        first, _last = self._entry_lines(node)
        if (*parent, path[-1]) in self.pf.nodes:
            raise LookupError(f"{target} already has {path[-1]}")
        self.claim(first, end + 1)
        comment = src[node.end_column - 1:]  # `  # from vault` stays with its line
        new_line = " " * indent + f"{path[-1]}: {value_text}{comment}"
        if first > end:  # the moved line is below the block: delete first, then insert
            del self.ff.lines[first - 1]
            self.ff.lines.insert(end, new_line)
        else:
            self.ff.lines.insert(end, new_line)
            del self.ff.lines[first - 1]


def _expected(data: Any, edits: Iterable[Edit]) -> Any:
    """What PyYAML should read after the edits (to verify them)."""
    import copy

    result = copy.deepcopy(data)
    for e in edits:
        path = _split(e.path)
        parent: Any = result
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        if e.action == "rename-key":
            parent[e.value] = parent.pop(key)
        elif e.action == "set-value":
            parent[key] = e.value
        elif e.action == "quote-value":
            parent[key] = str(e.value)
        elif e.action == "delete-key":
            parent.pop(key)
        elif e.action == "insert-key":
            parent[key] = e.value
        elif e.action == "move-key":
            target: Any = result
            for part in _split(str(e.value)):
                target = target[part]
            target[key] = parent.pop(key)
    return result


def _verify(ff: FileFix, expected: Any) -> str | None:
    try:
        got = yaml.safe_load(ff.new_text)
    except yaml.YAMLError as exc:
        return f"the edited file would not parse ({exc.__class__.__name__})"
    if got != expected:
        return "the edited file would not mean what the fix intends"
    from ruamel.yaml import YAML

    loader = YAML(typ="rt")
    # Duplicate keys are MD001's business; PyYAML (Synapse's parser) accepted them above.
    loader.allow_duplicate_keys = True
    try:
        loader.load(ff.new_text)
    except Exception as exc:  # ruamel raises many types; any of them means "not safe"
        return f"the edited file does not round-trip ({exc.__class__.__name__})"
    return None


def _edit_paths(edit: Edit) -> list[PathKey]:
    """Every key path an edit reads or writes (its own, a rename's or move's target)."""
    path = _split(edit.path)
    paths = [path]
    if edit.action == "rename-key":
        paths.append((*path[:-1], str(edit.value)))
    elif edit.action == "move-key" and edit.value:
        target = _split(str(edit.value))
        paths += [target, (*target, path[-1])]
    return paths


def _blocking_duplicate(pf: ParsedFile, edits: Iterable[Edit]) -> Duplicate | None:
    """A duplicate key on the way to what ``edits`` change: the edit may hit the copy Synapse
    ignores, so it is better to ask for MD001 to be fixed first than to guess."""
    touched = [p for e in edits for p in _edit_paths(e)]
    for dup in pf.duplicates:
        if any(p[: len(dup.path)] == dup.path for p in touched):
            return dup
    return None


def plan(config: LoadedConfig, diagnostics: Sequence[Diagnostic], *,
         unsafe: bool = False) -> list[FileFix]:
    """Work out the edits for each file; nothing is written. ``config.files`` is updated to
    the planned texts (see :func:`planned_config`)."""
    fixes: dict[str, FileFix] = {}
    wanted = [d for d in diagnostics if d.fix and d.fix.edits
              and (d.fix.applicability is Applicability.SAFE
                   or (unsafe and d.fix.applicability is Applicability.UNSAFE))]
    by_file: dict[str, list[Diagnostic]] = {}
    for d in wanted:
        assert d.fix is not None
        files = {e.file for e in d.fix.edits}
        if len(files) != 1 or any(e.action not in SUPPORTED for e in d.fix.edits):
            continue
        by_file.setdefault(files.pop(), []).append(d)
    for path, diags in by_file.items():
        pf = next((p for p in config.files if p.path == path), None)
        if pf is None:
            continue
        digest = file_digest(path)  # before reading: a change in between fails safe
        text = read_text(path)
        if text.splitlines() != pf.lines:
            raise FixError("the file changed since it was read; run again", file=path)
        ff = FileFix(path, text, digest, list(pf.lines))
        data = pf.data
        as_read = pf  # line numbers in messages are those of the file on disk
        # Bottom-up, so each edit's positions are still those the parser recorded.
        order = sorted(diags, key=lambda d: -(d.location.line if d.location else 0))
        for d in order:
            assert d.fix is not None
            before = list(ff.lines)
            editor = _Editor(config, ff)
            try:
                for e in d.fix.edits:
                    editor.apply(e)
                expected = _expected(data, d.fix.edits)
                problem = _verify(ff, expected)
            except (LookupError, KeyError, TypeError, IndexError) as exc:
                problem = str(exc)
            if problem:
                ff.lines = before
                dup = _blocking_duplicate(as_read, d.fix.edits)
                gone = [e.path for e in d.fix.edits
                        if _split(e.path) in as_read.nodes and _split(e.path) not in pf.nodes]
                if gone:
                    problem = f"another fix in this run already changed `{gone[0]}`"
                elif dup is not None:
                    problem = (f"fix MD001 (duplicate key {dotted(dup.path)}, lines "
                               f"{dup.first.key_line} and {dup.later.key_line}) first")
                ff.skipped.append((d, problem))
            else:
                ff.applied.append(d)
                data = expected
                # Re-index positions: parse the edited text for the next edit.
                fresh = parse_text(path, ff.new_text)
                for i, other in enumerate(config.files):
                    if other.path == path:  # the same file may be given twice
                        config.files[i] = fresh
                pf = fresh
        fixes[path] = ff
    return list(fixes.values())


def planned_config(config: LoadedConfig) -> LoadedConfig:
    """The config as Synapse would load it after the planned edits (``plan`` leaves the
    edited texts in ``config.files``), so ``fix --diff`` can say what would be left."""
    return merge_files(config.files, config.skipped)


@dataclass(frozen=True)
class RolledBack:
    """A fix left out because, applied with the others, it gave the config an error it did
    not have (``caused``): fixes are checked together, as Synapse will read them."""

    diagnostic: Diagnostic
    caused: tuple[Diagnostic, ...]

    @property
    def reason(self) -> str:
        first = self.caused[0]
        more = f" and {len(self.caused) - 1} more" if len(self.caused) > 1 else ""
        return (f"rolled back: with the other fixes it would add error {first.code} "
                f"({first.message}){more}, which the config does not have now")


def error_keys(diagnostics: Iterable[Diagnostic]) -> set[tuple[str, str]]:
    return {_key(d) for d in diagnostics if d.severity is Severity.ERROR}


def _key(d: Diagnostic) -> tuple[str, str]:
    """An error's identity across edits: its rule and config path (lines move)."""
    loc = d.location
    return d.code, (loc.path if loc is not None and loc.path else d.message)


def moved_value_paths(diagnostics: Iterable[Diagnostic]) -> set[str]:
    """Where renames and moves put a value the admin wrote (``email.notif_form`` ->
    ``email.notif_from``): an error there after the fix was already in the input, under a
    name Synapse ignored, so it is revealed by the fix, not made by it."""
    out: set[str] = set()
    for d in diagnostics:
        for e in d.fix.edits if d.fix else ():
            if e.action == "rename-key":
                out.add(".".join([*_split(e.path)[:-1], str(e.value)]))
            elif e.action == "move-key" and e.value:
                out.add(f"{e.value}.{_split(e.path)[-1]}")
    return out


def added_errors(before: set[tuple[str, str]], after: Iterable[Diagnostic],
                 applied: Iterable[Diagnostic]) -> list[Diagnostic]:
    """What makes ``after`` worse than the input: the errors it did not have (an error of a
    renamed or moved value only counts when there are more errors than before: see
    :func:`moved_value_paths`)."""
    moved = moved_value_paths(applied)
    errors = [d for d in after if d.severity is Severity.ERROR]
    new = [d for d in errors if _key(d) not in before]
    made = [d for d in new
            if not any(_key(d)[1] == p or _key(d)[1].startswith(p + ".") for p in moved)]
    if made:
        return made
    return new if len({_key(d) for d in errors}) > len(before) else []


def _new_errors(config: LoadedConfig, version: Version, before: set[tuple[str, str]],
                applied: Iterable[Diagnostic]) -> list[Diagnostic]:
    from maildoctor.config.rules import LintContext, run_rules

    after = run_rules(LintContext(planned_config(config), version))
    return added_errors(before, after, applied)


def plan_checked(config: LoadedConfig, diagnostics: Sequence[Diagnostic], version: Version, *,
                 unsafe: bool = False) -> tuple[list[FileFix], list[RolledBack]]:
    """:func:`plan`, then every rule run again on the planned result: a fix that makes the
    config gain an error (say ``require_transport_security: true`` added next to
    ``enable_tls: false``, which stops Synapse) is rolled back and reported, and the others
    are planned again without it. The result never has an error the input did not have."""
    from maildoctor.config.rules import LintContext, run_rules

    before = error_keys(run_rules(LintContext(config, version)))
    candidates = list(diagnostics)
    rolled: list[RolledBack] = []
    while True:
        trial = replace(config, files=list(config.files))
        fixes = plan(trial, candidates, unsafe=unsafe)
        applied = [d for ff in fixes for d in ff.applied]
        new = _new_errors(trial, version, before, applied)
        if not new or not applied:
            config.files[:] = trial.files
            return fixes, rolled
        culprit = _culprit(config, candidates, applied, version, before, unsafe=unsafe)
        candidates = [d for d in candidates if d is not culprit]
        rolled.append(RolledBack(culprit, tuple(new)))


def _culprit(config: LoadedConfig, candidates: list[Diagnostic], applied: list[Diagnostic],
             version: Version, before: set[tuple[str, str]], *, unsafe: bool) -> Diagnostic:
    """The applied fix whose absence removes the new errors: unsafe fixes are tried first,
    then the others, last planned first. Failing that, the last unsafe (or last) fix."""
    def rank(d: Diagnostic) -> int:
        return 0 if d.fix and d.fix.applicability is Applicability.UNSAFE else 1

    order = sorted(reversed(applied), key=rank)
    for suspect in order:
        trial = replace(config, files=list(config.files))
        fixes = plan(trial, [d for d in candidates if d is not suspect], unsafe=unsafe)
        if not _new_errors(trial, version, before, [d for ff in fixes for d in ff.applied]):
            return suspect
    return order[0]


def write(ff: FileFix, *, backup: bool = True) -> str | None:
    """Write one file (see :func:`replace_file`); return the backup's path, if one was made."""
    return replace_file(ff.path, ff.new_text, ff.digest, backup=backup)


