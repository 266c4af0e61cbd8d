"""The rule registry.

Every rule has a stable code (``MD101``), a kebab-case name (``unknown-email-key``), a
severity, a one-line summary and a longer explanation (its docstring), shown by
``maildoctor rules CODE``. A rule is a function from a :class:`LintContext` to
diagnostics; it never prints.

Code ranges:
  MD0xx  loading: files, directories, merging, duplicate keys
  MD1xx  keys: unknown, misspelt, misplaced, version-specific, deprecated
  MD2xx  values: types YAML or Synapse get wrong, secrets
  MD3xx  transport: TLS mode, ports, authentication settings
  MD4xx  sender and subjects: notif_from, app_name, subject placeholders
  MD5xx  related settings: public_baseurl, registration, templates, MAS
  MD6xx  where Synapse runs: its installation, network, container (read from an Environment)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maildoctor.config.environment import Environment
from maildoctor.config.load import LoadedConfig, PathKey
from maildoctor.config.schema import Version
from maildoctor.config.settings import EmailSettings, settings_from_config
from maildoctor.diagnostics import Diagnostic, Fix, Location, Severity

RuleFunc = Callable[["LintContext"], Iterable[Diagnostic]]


@dataclass(frozen=True)
class Rule:
    """A registered rule: its code (``MD101``), name, default severity, one-line summary,
    documentation, and the function that yields its findings."""

    code: str
    name: str
    severity: Severity
    summary: str
    doc: str
    func: RuleFunc


RULES: dict[str, Rule] = {}

# The modules that define rules, imported by :func:`all_rules`.
RULE_MODULES = ("loading", "keys", "values", "transport", "sender", "related", "releases",
                "environment")


def rule(
    code: str, name: str, severity: Severity, summary: str
) -> Callable[[RuleFunc], RuleFunc]:
    """Register a rule. Its docstring is its documentation."""

    def register(func: RuleFunc) -> RuleFunc:
        if code in RULES:
            raise RuntimeError(f"duplicate rule code {code}")
        if any(r.name == name for r in RULES.values()):
            raise RuntimeError(f"duplicate rule name {name}")
        doc = inspect.cleandoc(func.__doc__ or "")
        RULES[code] = Rule(code, name, severity, summary, doc, func)
        return func

    return register


def all_rules() -> dict[str, Rule]:
    for mod in RULE_MODULES:
        importlib.import_module(f"maildoctor.config.rules.{mod}")
    return dict(sorted(RULES.items()))


def find_rule(code_or_name: str) -> Rule | None:
    rules = all_rules()
    key = code_or_name.strip()
    if key.upper() in rules:
        return rules[key.upper()]
    for r in rules.values():
        if r.name == key.lower():
            return r
    return None


class LintContext:
    """What a rule sees: the loaded config, the Synapse version, where Synapse runs (when
    observed), and helpers to report."""

    def __init__(self, config: LoadedConfig, version: Version,
                 environment: Environment | None = None) -> None:
        self.config = config
        self.version = version
        self.environment = environment
        self.merged: Mapping[Any, Any] = config.merged
        self.settings: EmailSettings = settings_from_config(config.merged)

    # --- the email block ------------------------------------------------------------

    @property
    def email_raw(self) -> Any:
        return self.merged.get("email")

    @property
    def email(self) -> Mapping[Any, Any]:
        block = self.merged.get("email")
        return block if isinstance(block, Mapping) else {}

    @property
    def email_enabled(self) -> bool:
        """Synapse turns email on for any non-empty ``email:`` mapping (``can_verify_email``)."""
        return bool(self.email)

    def has(self, key: str) -> bool:
        return key in self.email

    # --- locations -------------------------------------------------------------------

    def loc(self, path: Sequence[Any], *, at: str = "key") -> tuple[Location, ...]:
        found = self.config.location(tuple(path), at=at)
        return (found,) if found is not None else ()

    def email_loc(self, key: str, *, at: str = "key") -> tuple[Location, ...]:
        return self.loc(("email", key), at=at)

    def file_of(self, path: PathKey) -> str:
        node = self.config.node(path)
        if node is not None:
            return node.file
        pf = self.config.origin.get(path[0]) if path else None
        if pf is not None:
            return pf.path
        return self.config.files[-1].path if self.config.files else ""

    # --- reporting -------------------------------------------------------------------

    def diag(
        self,
        code: str,
        message: str,
        *,
        consequence: str = "",
        fix: Fix | None = None,
        path: Sequence[Any] = (),
        at: str = "key",
        locations: tuple[Location, ...] | None = None,
        severity: Severity | None = None,
        suggests: tuple[str, ...] = (),
    ) -> Diagnostic:
        r = RULES[code]
        locs = locations if locations is not None else (self.loc(path, at=at) if path else ())
        return Diagnostic(
            code=r.code,
            name=r.name,
            severity=severity or r.severity,
            message=message,
            consequence=consequence,
            fix=fix,
            locations=locs,
            suggests=suggests,
        )


def run_rules(ctx: LintContext) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for r in all_rules().values():
        out.extend(r.func(ctx))
    return out
