"""The floors run one way: no package of maildoctor imports one that imports it back.

Every import of every module is read from its source (``ast``: module-level, function-level
and ``TYPE_CHECKING`` imports alike, relative ones resolved), so an import hidden in a
function to dodge an import cycle is still seen. Two checks:

- no cycle between the top-level modules and packages of ``maildoctor``, nor between the
  sibling subpackages of any package (``synapse/``'s wings, ``config/``'s ``schema`` and
  ``rules``);
- each top-level module or package imports only its own floor or floors below, in the order
  declared by ``maildoctor._FLOORS`` (and documented in the package docstring and README).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import maildoctor

PACKAGE_DIR = Path(maildoctor.__file__).parent


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module doing the import
    imported: str  # dotted module (or package) imported
    where: str  # file:line, for the message


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _is_module(dotted: str, root: Path) -> bool:
    rel = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file()


@cache
def read_imports(root: Path = PACKAGE_DIR) -> tuple[Import, ...]:
    """Every import between modules of the package at ``root``."""
    top = root.name
    found: list[Import] = []
    for path in sorted(root.rglob("*.py")):
        module, is_package = _module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                # `from maildoctor.x import y` imports maildoctor.x.y when y is a module,
                # else a name defined in maildoctor.x
                for alias in node.names:
                    candidate = f"{source}.{alias.name}"
                    if candidate.startswith(top + ".") and _is_module(candidate, root):
                        targets.append(candidate)
                    elif source not in targets:
                        targets.append(source)
            where = f"{path.relative_to(root.parent)}:{getattr(node, 'lineno', 0)}"
            for target in targets:
                if target == top or target.startswith(top + "."):
                    found.append(Import(module, target, where))
    return tuple(found)


def sibling_edges(imports: tuple[Import, ...], root: Path = PACKAGE_DIR) -> dict[
        str, dict[tuple[str, str], list[Import]]]:
    """For each package, the imports between its children (subpackages, and at the top
    level modules too), keyed by (importer child, imported child)."""
    by_parent: dict[str, dict[tuple[str, str], list[Import]]] = defaultdict(
        lambda: defaultdict(list))
    top = root.name
    for imp in imports:
        a, b = imp.importer.split("."), imp.imported.split(".")
        # the deepest common package, then the child of it on each side
        common = 0
        while common < min(len(a), len(b)) - 1 and a[common] == b[common]:
            common += 1
        if common >= len(a) or common >= len(b) or a[common] == b[common]:
            continue
        parent = ".".join(a[:common])
        child_a, child_b = ".".join(a[: common + 1]), ".".join(b[: common + 1])
        if parent != top and not (_is_package(child_a, root) and _is_package(child_b, root)):
            continue  # below the top level, only subpackages are units
        by_parent[parent][(child_a, child_b)].append(imp)
    return by_parent


def _is_package(dotted: str, root: Path) -> bool:
    return (root / Path(*dotted.split(".")[1:]) / "__init__.py").is_file()


def cycles(edges: dict[tuple[str, str], list[Import]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _explain(component: list[str], edges: dict[tuple[str, str], list[Import]]) -> str:
    lines = [" <-> ".join(component)]
    for (a, b), imps in sorted(edges.items()):
        if a in component and b in component:
            lines += [f"  {i.where}: {i.importer} imports {i.imported}" for i in imps[:3]]
    return "\n".join(lines)


def import_cycles(root: Path = PACKAGE_DIR) -> list[str]:
    problems = []
    for _parent, edges in sorted(sibling_edges(read_imports(root), root).items()):
        problems += [_explain(c, edges) for c in cycles(edges)]
    return problems


def floor_violations(root: Path = PACKAGE_DIR,
                     floors: tuple[tuple[str, ...], ...] | None = None) -> list[str]:
    floors = maildoctor._FLOORS if floors is None else floors
    top = root.name
    floor_of = {name: level for level, names in enumerate(floors) for name in names}
    problems = []
    present = {p.stem if p.suffix == ".py" else p.name for p in root.iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    for name in sorted(present - set(floor_of)):
        problems.append(f"{top}.{name} has no floor: add it to {top}._FLOORS (and the README)")
    for imp in read_imports(root):
        a, b = imp.importer.split("."), imp.imported.split(".")
        if len(b) == 1:
            if len(a) > 1:
                problems.append(f"{imp.where}: {imp.importer} imports the public API "
                                f"({top} itself); import the module that defines the name")
            continue
        if len(a) == 1 or a[1] == b[1]:
            continue
        if a[1] in floor_of and b[1] in floor_of and floor_of[b[1]] > floor_of[a[1]]:
            problems.append(f"{imp.where}: {imp.importer} imports {imp.imported}, a floor "
                            "above it (see maildoctor._FLOORS)")
    return problems


def test_no_package_imports_one_that_imports_it_back() -> None:
    problems = import_cycles()
    assert not problems, "import cycles:\n" + "\n".join(problems)


def test_imports_go_down_the_declared_floors() -> None:
    problems = floor_violations()
    assert not problems, "\n".join(problems)


def test_every_floor_is_present() -> None:
    names = [name for floor in maildoctor._FLOORS for name in floor]
    assert len(names) == len(set(names))
    for name in names:
        assert _is_module(f"maildoctor.{name}", PACKAGE_DIR), name


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    """The checker itself: a cycle hidden in a function, with relative imports, is caught."""
    pkg = _write(tmp_path, {
        "__init__.py": "",
        "low/__init__.py": "",
        "low/a.py": "def f():\n    from ..high import b\n",
        "high/__init__.py": "",
        "high/b.py": "from pkg.low import a\n",
        "other.py": "from pkg import low\n",
    })
    found = import_cycles(pkg)
    assert len(found) == 1 and found[0].startswith("pkg.high <-> pkg.low")
    assert "pkg/low/a.py:2" in found[0]


def test_a_cycle_between_wings_is_found(tmp_path: Path) -> None:
    pkg = _write(tmp_path, {
        "__init__.py": "",
        "house/__init__.py": "",
        "house/left/__init__.py": "",
        "house/left/x.py": "from pkg.house.right.y import Y\n",
        "house/right/__init__.py": "",
        "house/right/y.py": "import pkg.house.left.x\nY = 1\n",
    })
    assert [c.splitlines()[0] for c in import_cycles(pkg)] == [
        "pkg.house.left <-> pkg.house.right"]


def test_an_import_up_the_floors_is_found(tmp_path: Path) -> None:
    pkg = _write(tmp_path, {
        "__init__.py": "",
        "ground.py": "from pkg import top\n",
        "top.py": "",
        "loose.py": "",
    })
    problems = floor_violations(pkg, (("ground",), ("top",)))
    assert any("pkg.ground imports pkg.top, a floor above" in p for p in problems)
    assert any("pkg.loose has no floor" in p for p in problems)
