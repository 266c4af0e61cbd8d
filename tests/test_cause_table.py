"""The cause table is the only place causes are written (issue 9).

The probe's explainers (``diagnose.py``) and the log explainer's candidates
(``synapse/logs/causes.py``) detect and fill fields; their words are rows of
:mod:`maildoctor.causes`. These tests keep it so: every kind has a row, every row is read by
someone, every log candidate is a row rendered, and neither module holds cause prose of its
own (a long string literal that is not a docstring).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import maildoctor
from maildoctor.causes import CAUSES, Kind, cause_for
from maildoctor.synapse.logs import causes as log_causes

SRC = Path(maildoctor.__file__).parent
#: Longer than this, a string literal is prose: it belongs in the cause table.
LONGEST_FRAGMENT = 60
#: Modules that look rows up by kind; a row whose kind none of them names is dead.
READERS = ("diagnose.py", "causes.py", "synapse/logs/causes.py", "relay", "cli/send.py")

KINDS = {name: value for name, value in vars(Kind).items() if name.isupper()}


def _kinds_named(path: Path) -> set[str]:
    """The Kind attributes a module's code names (``Kind.REFUSED`` ...), outside the table's
    own rows."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rows = [node for node in ast.walk(tree) if isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name) and node.target.id == "CAUSES"
            and path == SRC / "causes.py"]
    skip = {id(n) for row in rows for n in ast.walk(row)}
    named = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
             and isinstance(node.value, ast.Name) and node.value.id == "Kind"
             and id(node) not in skip}
    return named


def _readers() -> set[str]:
    named: set[str] = set()
    for reader in READERS:
        path = SRC / reader
        for file in (sorted(path.rglob("*.py")) if path.is_dir() else [path]):
            named |= _kinds_named(file)
    return named


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _literal(node: ast.AST) -> str | None:
    """The written words of a string literal or an f-string (its constant parts)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values
                       if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return None


def _prose(tree: ast.AST, within: ast.AST | None = None) -> list[tuple[int, str]]:
    """Long string literals under ``within`` (default: the whole module), docstrings aside."""
    docs = _docstrings(tree)
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []
    for node in ast.walk(within or tree):
        if id(node) in docs or id(node) in parts:
            continue
        text = _literal(node)
        if text is not None and len(text) > LONGEST_FRAGMENT:
            found.append((getattr(node, "lineno", 0), text))
    return found


def test_every_kind_has_a_row() -> None:
    rowless = sorted(name for name, value in KINDS.items()
                     if not any(row.kind == value for row in CAUSES))
    assert not rowless, f"kinds with no row in the cause table: {rowless}"


@pytest.mark.parametrize("row", CAUSES, ids=lambda r: r.id)
def test_every_row_is_reachable_and_read(row: maildoctor.causes.Cause) -> None:
    """cause_for finds the row for its own (stage, kind, blame), and some reader of the
    table names its kind; a "log" row is read by a log candidate."""
    assert cause_for(row.stage or "data", row.kind, row.blame) is row
    names = {value: name for name, value in KINDS.items()}
    assert names.get(row.kind) in _readers(), f"no module looks up kind {row.kind!r}"
    if row.stage == "log":
        read = {getattr(c, "row", None) for e in log_causes.CAUSES.values() for c in e.causes}
        assert row.id in read, f"log row {row.id} is read by no log candidate"


def test_log_candidates_are_table_rows() -> None:
    """Each candidate cause of a logged failure is a row of the cause table, rendered."""
    by_id = {row.id: row for row in CAUSES}
    for kind, explanation in log_causes.CAUSES.items():
        for cand in explanation.causes:
            row = by_id.get(getattr(cand, "row", ""))
            assert row is not None, f"{kind}/{cand.id} writes its own words"
            cause = row.cause.split("{", 1)[0].strip().lower()
            assert cand.text.lower().startswith(cause), (kind, cand.id, row.id)


@pytest.mark.parametrize("module", ["diagnose.py"])
def test_no_cause_prose_outside_the_table(module: str) -> None:
    """diagnose.py detects and fills fields: no sentence of its own (docstrings aside)."""
    tree = ast.parse((SRC / module).read_text(encoding="utf-8"))
    prose = _prose(tree)
    assert not prose, f"{module} writes cause prose; move it to a row of causes.py: {prose}"


def test_no_candidate_prose_in_the_log_table() -> None:
    """synapse/logs/causes.py keeps its titles and effects (what the log shows), but its
    candidates carry only field values, never a cause or fix of their own."""
    tree = ast.parse((SRC / "synapse/logs/causes.py").read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id in ("C", "Cause")]
    assert calls
    prose = [found for call in calls for found in _prose(tree, call)]
    assert not prose, f"log candidates write their own words: {prose}"


def test_no_text_matching_on_exception_messages() -> None:
    """An exception is told by its type and fields, never by the words of str(exc)."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        handlers = [n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler) and n.name]
        for handler in handlers:
            for node in ast.walk(handler):
                if (isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn))
                                                          for op in node.ops)
                        and any(_is_str_of(c, handler.name) for c in node.comparators)):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, f"text matched on an exception's message: {offenders}"


def _is_str_of(node: ast.AST, name: str | None) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("str", "repr") and len(node.args) == 1
            and isinstance(node.args[0], ast.Name) and node.args[0].id == name)
