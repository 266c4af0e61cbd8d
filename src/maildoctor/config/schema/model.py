"""The record types of the versioned schema, kept apart from the data that fills them.

Why a separate module: ``schema.data`` (the keys) and ``schema.aliases`` (what admins write
instead) are plain tables built from these types, and ``schema`` (the queries) imports both.
Putting the types here avoids an import cycle and keeps every module short.

Versions are Synapse release numbers. ``None`` in a version field means *the spec gives
no version*: we say "unknown" rather than invent one, and treat the fact as holding for every
release we reason about (a key with ``added=None`` is assumed present in all versions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, TypeAlias

__all__ = [
    "Change",
    "JsonValue",
    "KeySpec",
    "KeyType",
    "MailKind",
    "Nonexistent",
    "SubjectSpec",
    "Synonym",
    "Version",
    "VersionLike",
    "as_version",
    "parse_version",
]

# The value types a key accepts, in the vocabulary of the linter and the JSON-Schema exporter.
# "duration" is Synapse's duration: an int (milliseconds) or a string with a suffix ("10m").
KeyType = Literal["str", "int", "bool", "duration", "mapping", "list", "null"]

# Which mail a subject or template belongs to (spec 2.1).
MailKind = Literal["validation", "notification", "renewal"]

# A default as YAML would hold it; mappings are read-only views so the tables stay frozen.
JsonValue: TypeAlias = (
    str | int | float | bool | Mapping[str, "JsonValue"] | tuple["JsonValue", ...] | None
)


class Version(NamedTuple):
    """A Synapse release, ordered as tuples are: ``Version(1, 63, 0) < Version(1, 64, 0)``."""

    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


VersionLike = Version | str

_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> Version:
    """Parse ``"1.163"``, ``"1.163.2"`` or ``"v1.163.2"`` (surrounding blanks allowed).

    Pre-releases (``1.99.0rc1``) and anything else are refused rather than guessed at,
    because a wrong version silently changes which keys the linter accepts.
    """
    if not isinstance(text, str):
        raise ValueError(
            f"not a Synapse version: {text!r} is a {type(text).__name__}, expected a string "
            "like '1.163.2'"
        )
    match = _VERSION_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"not a Synapse version: {text!r} (expected MAJOR.MINOR or MAJOR.MINOR.PATCH, "
            "optionally prefixed with 'v', e.g. '1.163' or 'v1.163.2')"
        )
    major, minor, patch = match.groups()
    return Version(int(major), int(minor), int(patch or 0))


def as_version(version: VersionLike) -> Version:
    """Accept a :class:`Version` or a version string; everything else is a ``ValueError``."""
    if isinstance(version, Version):
        return version
    return parse_version(version)


@dataclass(frozen=True, slots=True)
class Change:
    """A behaviour of a key that changed in one release (not its addition or removal)."""

    version: Version
    what: str


@dataclass(frozen=True, slots=True)
class KeySpec:
    """Everything maildoctor knows about one configuration key.

    ``name`` is the key under ``email:`` for email keys, and the dotted path from the top of
    the config for related keys (``templates.custom_template_directory``).

    ``default`` is what Synapse's *code* uses when the key is absent; ``docs_default`` is the
    documentation's claim when it differs. ``synapse_attr`` is the attribute of the config
    section ``section`` that ``python -m synapse.config read <section>.<attr>`` prints.

    ``gone`` marks a key Synapse no longer honours although the spec gives no removal version
    (or a key that no Synapse ever read at that level); ``key_status`` reports it as removed.
    """

    name: str
    types: tuple[KeyType, ...]
    summary: str
    default: JsonValue = field(default=None, hash=False)
    default_note: str | None = None
    docs_default: str | None = None
    synapse_attr: str | None = None
    section: str = "email"
    added: Version | None = None
    deprecated: Version | None = None
    removed: Version | None = None
    gone: bool = False
    secret: bool = False
    legacy: bool = False
    documented: bool = True
    replacement: str | None = None
    read_when: str | None = None
    load_errors: tuple[str, ...] = ()
    history: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def read_path(self) -> str | None:
        """The argument to ``python -m synapse.config read``, when the attribute is known."""
        return None if self.synapse_attr is None else f"{self.section}.{self.synapse_attr}"


@dataclass(frozen=True, slots=True)
class SubjectSpec:
    """One ``email.subjects.*`` key: a ``%``-format string filled from ``placeholders``.

    A placeholder outside ``placeholders`` raises ``KeyError`` at send time, never at load.
    """

    name: str
    default: str
    placeholders: frozenset[str]
    used_for: str
    kind: MailKind
    summary: str
    documented: bool = True
    added: Version | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Synonym:
    """A name admins write that Synapse ignores, and the key they meant."""

    target: str
    reason: str


@dataclass(frozen=True, slots=True)
class Nonexistent:
    """A plausible key that no Synapse has, and what to do instead."""

    alternative: str
    reason: str
