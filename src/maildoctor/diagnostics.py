"""Diagnostics are data: checks return them, renderers print them.

A :class:`Diagnostic` is located twice: by its dotted path in the merged config
(``email.smtp_pass``) and by ``file:line:column`` in the file that set it.
Lines and columns are 1-based, as editors show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a finding is. ``ERROR`` means email will not work as configured."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Applicability(StrEnum):
    """Whether ``maildoctor fix`` may apply a fix on its own (ruff's terms)."""

    SAFE = "safe"  # applied by `fix`
    UNSAFE = "unsafe"  # applied by `fix --unsafe-fixes` only
    DISPLAY_ONLY = "display-only"  # advice for a human; never applied


@dataclass(frozen=True)
class Location:
    """Where a finding points: a file position and the dotted config path."""

    file: str
    line: int
    column: int
    path: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column, "path": self.path}


@dataclass(frozen=True)
class Edit:
    """One machine-applicable change to a config file, used by ``maildoctor fix``.

    ``action`` is one of:
      - ``rename-key``: rename the key at ``path`` to ``value`` (a key name)
      - ``move-key``: move the key at ``path`` under the mapping at ``value`` (a dotted path)
      - ``set-value``: replace the value at ``path`` with ``value``
      - ``quote-value``: keep the value at ``path`` but write it as a quoted string
      - ``delete-key``: remove the key at ``path``
      - ``insert-key``: add key ``path`` with ``value``
    """

    action: str
    file: str
    path: str
    value: Any = None


@dataclass(frozen=True)
class Fix:
    """How to repair a finding: words for a human, and edits for ``fix`` when possible."""

    message: str
    applicability: Applicability = Applicability.DISPLAY_ONLY
    edits: tuple[Edit, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form; the value of an edit to a secret-looking key is masked."""
        from maildoctor.secrets import MASK, is_secret_key

        def value(e: Edit) -> Any:
            if e.value is not None and e.action in ("set-value", "quote-value", "insert-key") \
                    and is_secret_key(e.path.rsplit(".", 1)[-1]):
                return MASK
            return e.value

        return {
            "message": self.message,
            "applicability": self.applicability.value,
            "edits": [
                {"action": e.action, "file": e.file, "path": e.path, "value": value(e)}
                for e in self.edits
            ],
        }


#: How a finding's consequence begins when Synapse refuses to start with that config: rules
#: write it from here, and :attr:`Diagnostic.stops_synapse` reads it.
NO_START_PREFIX = "Synapse does not start"


@dataclass(frozen=True)
class Diagnostic:
    """One finding.

    ``consequence`` says what Synapse will do, in Synapse's own words where it has any
    (its exact error text), or plainly ("the request hangs, nothing is logged").
    """

    code: str
    name: str
    severity: Severity
    message: str
    consequence: str = ""
    fix: Fix | None = None
    locations: tuple[Location, ...] = field(default_factory=tuple)
    #: The keys a finding suggests instead of the one written (MD101's did-you-mean), so
    #: that the probe and explain ask "is this the misspelt smtp_pass?" without reading words.
    suggests: tuple[str, ...] = ()

    @property
    def stops_synapse(self) -> bool:
        """Synapse refuses to start with this finding's config (said by its consequence)."""
        return self.consequence.startswith(NO_START_PREFIX)

    @property
    def location(self) -> Location | None:
        return self.locations[0] if self.locations else None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "consequence": self.consequence,
            "fix": self.fix.to_json() if self.fix else None,
            "locations": [loc.to_json() for loc in self.locations],
        }


def sort_key(d: Diagnostic) -> tuple[int, str, int, int, str]:
    """Errors first (what breaks mail), then by position."""
    loc = d.location
    if loc is None:
        return (-d.severity.rank, "", 0, 0, d.code)
    return (-d.severity.rank, loc.file, loc.line, loc.column, d.code)
