"""The after-the-250 packages import one way: resolver/ depends on nothing of maildoctor;
senderdns/, links/ and roundtrip/ may use config/, smtp/, providers/, synapse/ and each other
in that order, never the CLI, the renderers, the diagnosis or the probe pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "maildoctor"
FORBIDDEN = {"cli", "render", "diagnose", "doctor", "exporter", "synapse_module"}
ALLOWED = {
    "resolver": {"resolver"},
    "senderdns": {"senderdns", "resolver", "providers", "smtp", "synapse", "config"},
    "links": {"links", "resolver", "smtp", "config"},
    "roundtrip": {"roundtrip", "links", "resolver", "secrets"},
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "maildoctor" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_run_one_way(package: str) -> None:
    for path in sorted((SRC / package).glob("*.py")):
        used = _imports(path)
        assert not used & FORBIDDEN, f"{path.name} imports {used & FORBIDDEN}"
        assert used <= ALLOWED[package], f"{path.name} imports {used - ALLOWED[package]}"
