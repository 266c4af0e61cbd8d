"""``check()``: load a config as Synapse does and run every rule on it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from maildoctor.config.environment import Environment
from maildoctor.config.load import LoadedConfig, load
from maildoctor.config.rules import LintContext, all_rules, run_rules
from maildoctor.config.schema import NEWEST, Version, parse_version
from maildoctor.config.settings import EmailSettings
from maildoctor.diagnostics import Diagnostic, Severity, sort_key


@dataclass
class CheckResult:
    """What ``check()`` found: the config read, the findings in order, the Synapse version
    checked against, and what was known of where Synapse runs."""

    config: LoadedConfig
    diagnostics: list[Diagnostic]
    version: Version
    environment: Environment | None = None

    @property
    def settings(self) -> EmailSettings:
        from maildoctor.config.settings import settings_from_config

        return settings_from_config(self.config.merged)

    def count(self, severity: Severity) -> int:
        return sum(1 for d in self.diagnostics if d.severity is severity)

    @property
    def has_errors(self) -> bool:
        return self.count(Severity.ERROR) > 0


def _matches(d: Diagnostic, selectors: Iterable[str]) -> bool:
    for sel in selectors:
        s = sel.strip()
        if not s:
            continue
        if s.lower() == d.name or d.code.startswith(s.upper()) or s.upper() == "ALL":
            return True
    return False


def validate_selectors(selectors: Iterable[str]) -> list[str]:
    """Return the selectors that match no rule (code, code prefix, name, or ALL)."""
    rules = all_rules()
    bad = []
    for sel in selectors:
        s = sel.strip()
        if s.upper() == "ALL":
            continue
        if not any(r.code.startswith(s.upper()) or r.name == s.lower() for r in rules.values()):
            bad.append(sel)
    return bad


def check(
    paths: Sequence[str],
    *,
    synapse_version: str | Version | None = None,
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    environment: Environment | None = None,
) -> CheckResult:
    """Check the config at ``paths`` (files or directories, in ``-c`` order).

    ``environment`` is what is known about where Synapse runs (``maildoctor.host`` observes
    it); the MD6xx rules read it, and say nothing without it.

    Raises :class:`maildoctor.errors.ConfigLoadError` when the files cannot be used at all.
    """
    if synapse_version is None:
        version = NEWEST
    elif isinstance(synapse_version, Version):
        version = synapse_version
    else:
        version = parse_version(synapse_version)
    config = load(paths)
    diagnostics = run_rules(LintContext(config, version, environment))
    if select:
        diagnostics = [d for d in diagnostics if _matches(d, select)]
    if ignore:
        diagnostics = [d for d in diagnostics if not _matches(d, ignore)]
    diagnostics.sort(key=sort_key)
    return CheckResult(config, diagnostics, version, environment)


def with_environment(result: CheckResult, environment: Environment) -> CheckResult:
    """``result`` with the where-Synapse-runs rules (MD6xx) run again on more facts (the
    probe adds the network and the EHLO name); every other finding is kept as it was."""
    ctx = LintContext(result.config, result.version, environment)
    kept = [d for d in result.diagnostics if not d.code.startswith("MD6")]
    found = [d for code, r in all_rules().items() if code.startswith("MD6") for d in r.func(ctx)]
    diagnostics = sorted(kept + found, key=sort_key)
    return CheckResult(result.config, diagnostics, result.version, environment)
