"""Which of Synapse's declared requirements an installation misses: a pure function.

Synapse declares its dependencies in its distribution's metadata (``Requires-Dist``) and
checks them when it starts (``synapse.util.check_dependencies``): an unmet one stops it with
"Missing dependencies" before it serves anything. maildoctor evaluates the same lines
against the versions the interpreter reported, with the interpreter's own PEP 508 marker
values (its Python version, platform), using ``packaging``, the library pip uses.
Requirements of optional extras (``extra == 'postgres'``) are left out, as Synapse's
startup check leaves them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from packaging.markers import UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from maildoctor.config.environment import Unmet

__all__ = ["unmet_requirements"]


def unmet_requirements(requires: Sequence[str], installed: Mapping[str, str | None],
                       markers: Mapping[str, str]) -> tuple[Unmet, ...]:
    """The base requirements among ``requires`` that ``installed`` does not satisfy."""
    versions = {canonicalize_name(name): v for name, v in installed.items()}
    environment = {**markers, "extra": ""}
    out: list[Unmet] = []
    for line in requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue  # a line pip could not read either: not ours to judge
        if req.marker is not None:
            try:
                if not req.marker.evaluate(environment):
                    continue
            except (UndefinedComparison, UndefinedEnvironmentName):
                continue
        have = versions.get(canonicalize_name(req.name))
        if have is None:
            out.append(Unmet(req.name, line.split(";")[0].strip(), None))
            continue
        try:
            ok = req.specifier.contains(Version(have), prereleases=True)
        except InvalidVersion:
            continue
        if not ok:
            out.append(Unmet(req.name, line.split(";")[0].strip(), have))
    return tuple(out)
