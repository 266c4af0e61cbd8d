"""The versioned schema of Synapse's email configuration, and the questions asked of it.

Synapse reads ``email:`` with ``dict.get`` and ignores every key it does not know, at every
level, without a warning (spec 3). So the list of keys a given Synapse *reads* is the one
thing a linter needs most, and it is not in Synapse's JSON Schema (which documents 17 of the
36 keys the code reads). This module is that list, keyed to Synapse versions, plus the
did-you-mean that turns ``smpt_pass`` into ``smtp_pass``.

Layout (data apart from code, every module short):

- :mod:`.model`: the record types (:class:`Version`, :class:`KeySpec`, ...).
- :mod:`.data`: ``EMAIL_KEYS`` and ``SUBJECT_KEYS``; :mod:`.related`: the
  top-level keys that interact with email; :mod:`.aliases`: ``SYNONYMS``,
  ``MISPLACED`` and ``NONEXISTENT``.
- here: the queries, which are pure functions of (name, version).

Version semantics: a fact with version ``None`` is unknown and assumed to hold in every
release; ``added <= version`` means present; ``removed <= version`` means gone;
``deprecated <= version`` means still read but superseded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from maildoctor.config.schema.aliases import MISPLACED, NONEXISTENT, SYNONYMS
from maildoctor.config.schema.data import EMAIL_KEYS, NEWEST, SUBJECT_KEYS
from maildoctor.config.schema.model import (
    Change,
    KeySpec,
    KeyType,
    Nonexistent,
    SubjectSpec,
    Synonym,
    Version,
    VersionLike,
    as_version,
    parse_version,
)
from maildoctor.config.schema.related import RELATED_TOP_LEVEL_KEYS

__all__ = [
    "EMAIL_KEYS",
    "KNOWN_VERSIONS",
    "MISPLACED",
    "NEWEST",
    "NONEXISTENT",
    "RELATED_TOP_LEVEL_KEYS",
    "SUBJECTS_ADDED",
    "SUBJECT_KEYS",
    "SYNONYMS",
    "Change",
    "KeySpec",
    "KeyStatus",
    "KeyType",
    "Nonexistent",
    "Scope",
    "SubjectSpec",
    "Synonym",
    "Version",
    "VersionLike",
    "damerau_levenshtein",
    "email_keys_for",
    "find_key",
    "key_status",
    "normalise_key",
    "parse_version",
    "related_keys_for",
    "subject_keys_for",
    "suggest",
    "suggest_subject",
]

KeyStatus = Literal["known", "deprecated", "removed", "not-yet", "unknown"]

#: Where a name is looked up: under ``email:``, or a dotted path from the top of the config.
Scope = Literal["email", "top"]

#: The release that introduced ``email.subjects`` (and so every subject key).
SUBJECTS_ADDED = EMAIL_KEYS["subjects"].added or Version(0, 0, 0)

_MAX_SUGGESTIONS = 3


def _versions_in(specs: Iterable[KeySpec]) -> set[Version]:
    found: set[Version] = set()
    for spec in specs:
        found.update(v for v in (spec.added, spec.deprecated, spec.removed) if v is not None)
        found.update(change.version for change in spec.history)
    return found


#: Every release at which some fact in the schema changes, plus ``NEWEST``, ascending.
#: Useful to a linter that wants to say "from 1.64.0 on" or to test each boundary.
KNOWN_VERSIONS: tuple[Version, ...] = tuple(
    sorted(
        _versions_in((*EMAIL_KEYS.values(), *RELATED_TOP_LEVEL_KEYS.values()))
        | {s.added for s in SUBJECT_KEYS.values() if s.added is not None}
        | {NEWEST}
    )
)


def _status_of(spec: KeySpec, version: Version) -> KeyStatus:
    if spec.removed is not None and version >= spec.removed:
        return "removed"
    if spec.added is not None and version < spec.added:
        return "not-yet"
    if spec.gone:
        return "removed"
    if spec.deprecated is not None and version >= spec.deprecated:
        return "deprecated"
    return "known"


def _is_read(spec: KeySpec, version: Version) -> bool:
    return _status_of(spec, version) in ("known", "deprecated")


def email_keys_for(version: VersionLike = NEWEST) -> dict[str, KeySpec]:
    """The keys Synapse ``version`` reads under ``email:`` (deprecated ones included).

    Keys it ignores (not yet added, removed, or never read at that level) are left out.
    """
    v = as_version(version)
    return {name: spec for name, spec in EMAIL_KEYS.items() if _is_read(spec, v)}


def related_keys_for(version: VersionLike = NEWEST) -> dict[str, KeySpec]:
    """The related top-level keys (dotted paths) that Synapse ``version`` honours."""
    v = as_version(version)
    return {name: spec for name, spec in RELATED_TOP_LEVEL_KEYS.items() if _is_read(spec, v)}


def subject_keys_for(version: VersionLike = NEWEST) -> dict[str, SubjectSpec]:
    """The ``email.subjects.*`` keys Synapse ``version`` reads; none before 1.18.0."""
    v = as_version(version)
    if v < SUBJECTS_ADDED:
        return {}
    return {
        name: spec
        for name, spec in SUBJECT_KEYS.items()
        if spec.added is None or v >= spec.added
    }


def find_key(name: str, scope: Scope = "email") -> KeySpec | None:
    """Look a key up by name in one scope; the scopes never fall back on each other.

    ``scope="email"``: a key under ``email:``, bare (``smtp_host``) or prefixed
    (``email.smtp_host``). ``scope="top"``: a related top-level key by dotted path
    (``public_baseurl``, ``templates.custom_template_directory``). Keeping them apart
    matters because ``public_baseurl`` under ``email:`` is an unknown key, and
    ``trust_identity_server_for_password_resets`` behaves differently at each level.
    """
    if scope == "top":
        return RELATED_TOP_LEVEL_KEYS.get(name)
    return EMAIL_KEYS.get(name.removeprefix("email."))


def key_status(name: str, version: VersionLike = NEWEST, *, scope: Scope = "email") -> KeyStatus:
    """Whether Synapse ``version`` knows ``name`` in ``scope`` (see :func:`find_key`).

    - ``known``: read as documented; ``deprecated``: still read but superseded;
    - ``removed``: no longer read (or rejected), including keys marked ``gone`` whose
      removal release is unknown, and ``trust_identity_server_for_password_resets`` under
      ``email:``, which no Synapse reads there;
    - ``not-yet``: added in a later release; ``unknown``: in no Synapse we know of.

    In the email scope, subject keys are accepted as ``subjects.<name>`` or
    ``email.subjects.<name>``.
    """
    v = as_version(version)
    subject = name.removeprefix("email.")
    if scope == "email" and subject.startswith("subjects."):
        spec = SUBJECT_KEYS.get(subject.removeprefix("subjects."))
        if spec is None:
            return "unknown"
        added = max(SUBJECTS_ADDED, spec.added or SUBJECTS_ADDED)
        return "not-yet" if v < added else "known"
    key = find_key(name, scope)
    return "unknown" if key is None else _status_of(key, v)


def normalise_key(name: str) -> str:
    """The form the alias tables use: lower case, ``-`` and blanks turned into ``_``."""
    return "_".join(name.strip().lower().replace("-", " ").split())


def damerau_levenshtein(a: str, b: str) -> int:
    """Edit distance counting an adjacent transposition as one edit (``smpt`` -> ``smtp``).

    This is the optimal-string-alignment variant, which is what typo matching needs: no
    substring is edited twice.
    """
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i, *([0] * len(b))]
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, previous2[j - 2] + 1)
            current[j] = best
        previous2, previous = previous, current
    return previous[-1]


def _max_distance(name: str) -> int:
    """How many edits still count as a typo: short names allow fewer, to avoid noise."""
    if len(name) <= 4:
        return 1
    if len(name) <= 10:
        return 2
    return 3


def _closest(name: str, candidates: Iterable[str]) -> list[str]:
    """Candidates within the typo limit, best first; ties broken alphabetically.

    Only matches at most one edit worse than the best are kept, so an exact match after
    normalising (``SMTP-Host``) does not drag in ``smtp_port`` as well.
    """
    limit = _max_distance(name)
    scored = sorted(
        (distance, candidate)
        for candidate in candidates
        # the distance is at least the difference in length: skip the hopeless cheaply
        if abs(len(candidate) - len(name)) <= limit
        and (distance := damerau_levenshtein(name, candidate)) <= limit
    )
    if not scored:
        return []
    best = scored[0][0]
    return [candidate for distance, candidate in scored if distance <= best + 1]


def _upgrade(candidate: str, version: Version) -> str:
    """A deprecated key's replacement when it is an email key this Synapse reads."""
    spec = EMAIL_KEYS[candidate]
    replacement = spec.replacement
    if replacement and _status_of(spec, version) == "deprecated":
        successor = EMAIL_KEYS.get(replacement)
        if successor is not None and _is_read(successor, version):
            return replacement
    return candidate


def _dedupe(names: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name, None)
    return list(seen)[:_MAX_SUGGESTIONS]


def suggest(name: str, version: VersionLike = NEWEST) -> list[str]:
    """Did-you-mean for an unknown key under ``email:``: at most three keys, best first.

    Every result is a key Synapse ``version`` reads under ``email:``, so a caller may offer
    to rename to it. A name in ``SYNONYMS`` gets its target alone (``smtp_password`` ->
    ``smtp_pass``); any other name gets the keys within a small Damerau-Levenshtein
    distance of it after normalising case and separators (``smpt_pass``, ``SMTP-Host``).
    A deprecated match is replaced by its successor when that exists in ``version``
    (``riot_base_ur`` -> ``client_base_url``).

    No suggestion (``[]``) for names that are already ``email:`` keys (ask
    :func:`key_status`), for ``NONEXISTENT`` names (their advice is not a key), and for
    aliases whose target lives outside ``email:`` (see ``SYNONYMS`` and ``MISPLACED``).
    """
    v = as_version(version)
    if name in EMAIL_KEYS:
        return []
    normal = normalise_key(name)
    if normal in NONEXISTENT or normal in MISPLACED:
        return []
    readable = email_keys_for(v)
    synonym = SYNONYMS.get(normal)
    if synonym is not None:
        # The alias says what was meant; near spellings of other keys would only mislead
        # (``templates_dir`` is not the deprecated ``template_dir``).
        return [synonym.target] if synonym.target in readable else []
    return _dedupe(_upgrade(key, v) for key in _closest(normal, readable))


def suggest_subject(name: str, version: VersionLike = NEWEST) -> list[str]:
    """Did-you-mean for an unknown key under ``email.subjects``: at most three, best first."""
    if name in SUBJECT_KEYS:
        return []
    return _dedupe(_closest(normalise_key(name), subject_keys_for(version)))


def _check_tables(
    keys: Mapping[str, KeySpec], subjects: Mapping[str, SubjectSpec]
) -> None:
    """Import-time sanity: every alias points into the schema, and names are consistent.

    Cheap, and it turns a typo in the data tables into an immediate failure.
    """
    for alias, synonym in (*SYNONYMS.items(), *MISPLACED.items()):
        if find_key(synonym.target) is None and find_key(synonym.target, "top") is None:
            raise AssertionError(f"alias {alias!r} points at unknown key {synonym.target!r}")
    for key_name, spec in (*keys.items(), *RELATED_TOP_LEVEL_KEYS.items()):
        replacement = spec.replacement
        if replacement is not None and not (find_key(replacement) or find_key(replacement, "top")):
            raise AssertionError(f"{key_name!r} is replaced by unknown {spec.replacement!r}")
    for subject_name, subject in subjects.items():
        if subject.name != subject_name:
            raise AssertionError(f"subject {subject_name!r} is filed as {subject.name!r}")


_check_tables(EMAIL_KEYS, SUBJECT_KEYS)
