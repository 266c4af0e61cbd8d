"""Run every case in ``tests/corpus`` and compare the findings with the ones it declares.

Single-file cases are ``<CODE>-<slug>.yaml`` (or ``clean-*.yaml``) with header comments::

    # covers: MD101            (or ``# negative: MD101``: the rule must stay silent)
    # synapse-version: 1.121   (optional; default: the newest known)
    # environment: {"container": {"kind": "docker"}}   (optional, one line of JSON: where
                               Synapse runs, as ``maildoctor.host`` would observe it; the
                               MD6xx rules read it)
    # expect: MD101@13 MD306@9 (CODE@LINE, or ``none``)

Multi-file cases are directories ``<CODE>-<slug>/`` with a ``<CODE>-<slug>.expect`` file
beside them (outside the config directory, so Synapse would never read it)::

    # covers: MD002
    # args: .                  (``.`` = the directory itself, as ``-c DIR``; else file names
                                 inside it, in ``-c`` order)
    MD002@20-secret.yaml:2     (one finding per line, or ``none``)

The comparison is exact: the same multiset of (code, file, line), where the line is that of
the finding's first location. Every test runs with the corpus directory as the working
directory, so relative template directories (``_templates``) resolve the same everywhere.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from maildoctor.config.check import check
from maildoctor.config.environment import (
    Container,
    Environment,
    Installation,
    Network,
    TargetAddress,
    Unmet,
)
from maildoctor.diagnostics import Diagnostic

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
HEADER = re.compile(
    r"^#\s*(covers|negative|expect|synapse-version|args|environment):\s*(.*?)\s*$")
EXPECTED = re.compile(r"^(MD\d{3})@(?:(.+):)?(\d+)$")

Finding = tuple[str, str, int]  # (code, file relative to the case, line)


@dataclass(frozen=True)
class Case:
    """One corpus case: what to pass to ``check`` and what must come out."""

    name: str
    paths: tuple[str, ...]  # relative to CORPUS (the working directory)
    base: str  # locations are made relative to this directory (relative to CORPUS)
    covers: tuple[str, ...]
    negative: tuple[str, ...]
    expected: tuple[Finding, ...]
    synapse_version: str | None
    environment: Environment | None = None


def environment_from_json(text: str | None) -> Environment | None:
    """The ``# environment:`` header: the same shape as the ``environment`` of the JSON
    output (``installation``, ``network``, ``container``, ``ehlo_name``...), parts optional."""
    if text is None:
        return None
    data = json.loads(text)
    inst = data.get("installation")
    net = data.get("network")
    box = data.get("container")
    return Environment(
        installation=None if inst is None else Installation(
            **{**inst, "unmet": tuple(Unmet(**u) for u in inst.get("unmet", ()))}),
        network=None if net is None else Network(
            **{**net, "targets": tuple(TargetAddress(**t) for t in net.get("targets", ()))}),
        container=None if box is None else Container(
            **{**box, "evidence": tuple(box.get("evidence", ()))}),
        in_container_known=data.get("in_container_known", True),
        ehlo_name=data.get("ehlo_name"),
        ehlo_fully_qualified=data.get("ehlo_fully_qualified"),
    )


def _parse_expectations(tokens: list[str], default_file: str) -> tuple[Finding, ...]:
    out: list[Finding] = []
    for token in tokens:
        if token == "none":
            continue
        m = EXPECTED.match(token)
        if m is None:
            raise ValueError(f"bad expectation {token!r}")
        out.append((m.group(1), m.group(2) or default_file, int(m.group(3))))
    return tuple(out)


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def _headers(lines: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in lines:
        m = HEADER.match(line)
        if m:
            found.setdefault(m.group(1), []).extend(m.group(2).split())
    return found


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CORPUS.glob("*.yaml")):
        head = _headers(path.read_text(encoding="utf-8").splitlines())
        if "expect" not in head:
            raise ValueError(f"{path.name}: no '# expect:' header")
        cases.append(Case(
            name=path.stem, paths=(path.name,), base=".",
            covers=tuple(head.get("covers", ())), negative=tuple(head.get("negative", ())),
            expected=_parse_expectations(head["expect"], path.name),
            synapse_version=_first(head.get("synapse-version")),
            environment=environment_from_json(
                " ".join(head["environment"]) if "environment" in head else None),
        ))
    for expect in sorted(CORPUS.glob("*.expect")):
        case_dir = CORPUS / expect.stem
        if not case_dir.is_dir():
            raise ValueError(f"{expect.name}: no directory {case_dir.name}/ beside it")
        lines = expect.read_text(encoding="utf-8").splitlines()
        head = _headers(lines)
        args = head.get("args") or ["."]
        paths = tuple(case_dir.name if a == "." else f"{case_dir.name}/{a}" for a in args)
        body = [tok for line in lines if not line.startswith("#") for tok in line.split()]
        cases.append(Case(
            name=expect.stem, paths=paths, base=case_dir.name,
            covers=tuple(head.get("covers", ())), negative=tuple(head.get("negative", ())),
            expected=_parse_expectations(body, ""),
            synapse_version=_first(head.get("synapse-version")),
        ))
    return cases


CASES = load_cases()


def _rel(file: str, base: str) -> str:
    p = Path(file)
    if p.is_absolute():
        p = p.relative_to(CORPUS)
    return str(p.relative_to(base)) if base != "." else str(p)


def findings(diagnostics: list[Diagnostic], base: str) -> Counter[Finding]:
    out: Counter[Finding] = Counter()
    for d in diagnostics:
        loc = d.location
        assert loc is not None, f"{d.code} has no location"
        out[(d.code, _rel(loc.file, base), loc.line)] += 1
    return out


@pytest.fixture(autouse=True)
def _in_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)


def run_case(case: Case) -> list[Diagnostic]:
    return check(list(case.paths), synapse_version=case.synapse_version,
                 environment=case.environment).diagnostics


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_findings_are_exactly_the_expected_ones(case: Case) -> None:
    got = findings(run_case(case), case.base)
    assert got == Counter(case.expected), (
        f"{case.name}: missing {sorted((Counter(case.expected) - got).elements())}, "
        f"unexpected {sorted((got - Counter(case.expected)).elements())}"
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_header_is_consistent(case: Case) -> None:
    """A case says what it is about, and its expectations agree with that."""
    assert case.covers or case.negative, f"{case.name}: no '# covers:' or '# negative:'"
    codes = {code for code, _file, _line in case.expected}
    for code in case.covers:
        assert code in codes, f"{case.name} covers {code} but does not expect it"
    for code in case.negative:
        if code == "ALL":
            assert not codes
        else:
            assert code not in codes, f"{case.name} is a negative case for {code}"
    prefix = case.name.split("-", 1)[0]
    if prefix.startswith("MD"):
        assert prefix in case.covers + case.negative


def test_seed_case_says_what_synapse_does() -> None:
    """The bundled example's failure: named key, did-you-mean, Synapse's exact words."""
    (diag,) = run_case(next(c for c in CASES if c.name == "MD101-seed-smpt-pass"))
    assert diag.code == "MD101"
    assert diag.location is not None and diag.location.path == "email.smpt_pass"
    assert "smpt_pass" in diag.message
    assert "did you mean `smtp_pass`" in diag.message
    assert ("AUTHRequiredError: 502 Server does not support Client Authentication schemes "
            "[CRAM-MD5, LOGIN, PLAIN]") in diag.consequence
    assert diag.fix is not None and "smtp_pass" in diag.fix.message
    assert diag.fix.edits and diag.fix.edits[0].action == "rename-key"
    assert "s3cret" not in repr(diag)


def test_bundled_examples() -> None:
    """examples/broken yields the seed finding at its line; examples/clean is silent."""
    root = CORPUS.parent.parent / "examples"
    broken = check([str(root / "broken" / "homeserver.yaml")]).diagnostics
    md101 = [d for d in broken if d.code == "MD101"]
    assert len(md101) == 1 and md101[0].location is not None
    lines = (root / "broken" / "homeserver.yaml").read_text().splitlines()
    assert lines[md101[0].location.line - 1].lstrip().startswith("smpt_pass:")
    assert check([str(root / "clean" / "homeserver.yaml")]).diagnostics == []


def test_template_directory_case_does_not_depend_on_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relative ``_templates`` resolves against the working directory, as in Synapse:
    from elsewhere the same config is missing its directory (MD505)."""
    monkeypatch.chdir(tmp_path)
    diags = check([str(CORPUS / "MD505-relative-dir-exists.yaml")]).diagnostics
    assert [d.code for d in diags] == ["MD505"]
    (tmp_path / "_templates").mkdir()
    assert check([str(CORPUS / "MD505-relative-dir-exists.yaml")]).diagnostics == []
