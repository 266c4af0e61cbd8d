"""The catalogue of well-known replies: data files beside the provider data.

``providers/data/replies/*.yaml`` hold, per mail server or provider, the replies admins
meet every day: the code, the enhanced code, a pattern on the text, a real example of the
text, the input it blames, the cause, the fix, the key to change, and where the text was
seen (``cite``: a URL). Replies change with the servers, not with maildoctor's code, so
they are data an admin can read and correct; this module validates them once and answers
:func:`lookup`. Entries listing ``providers`` apply only when smtp_host is that
provider's (their text alone is too generic, e.g. SES's bare ``535``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from maildoctor.replies import Blame, Reply

__all__ = ["CatalogueError", "Entry", "entries", "lookup"]

_DIR = ("providers", "data", "replies")
_FIELDS = {"id", "code", "enhanced", "match", "example", "blames", "temporary", "cause",
           "fix", "key", "providers", "cite", "stage"}


class CatalogueError(ValueError):
    """A reply catalogue file is malformed (a bug in maildoctor's data)."""


@dataclass(frozen=True)
class Entry:
    id: str
    source: str  # the server or provider that sends it (the file's ``source``)
    codes: tuple[int, ...]
    example: str  # a real reply text, as the cited page shows it
    blames: Blame
    cause: str
    fix: str
    cite: str
    enhanced: str | None = None
    match: re.Pattern[str] | None = None
    temporary: bool | None = None  # None: as the code says (4xx temporary)
    key: str | None = None  # the config key to change, when the fix is in the config
    providers: tuple[str, ...] = ()
    stage: str = ""  # where the reply usually arrives (documentation only)

    def applies(self, reply: Reply, provider: str | None) -> bool:
        if reply.code not in self.codes:
            return False
        if self.providers and provider not in self.providers:
            return False
        if self.enhanced is not None and str(reply.enhanced) != self.enhanced:
            return False
        return self.match is None or self.match.search(reply.text) is not None


def _entry(source: str, raw: Any, where: str) -> Entry:
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: an entry must be a mapping")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise CatalogueError(f"{where}: unknown fields {sorted(unknown)}")
    for name in ("id", "code", "example", "blames", "cause", "fix", "cite"):
        if name not in raw:
            raise CatalogueError(f"{where}: missing {name}")
    codes = raw["code"] if isinstance(raw["code"], list) else [raw["code"]]
    if not all(isinstance(c, int) and 400 <= c < 600 for c in codes):
        raise CatalogueError(f"{where}: code must be a 4xx/5xx number or a list of them")
    try:
        blame = Blame(raw["blames"])
    except ValueError:
        raise CatalogueError(f"{where}: blames {raw['blames']!r} is not one of "
                             f"{[b.value for b in Blame]}") from None
    if not str(raw["cite"]).startswith("https://"):
        raise CatalogueError(f"{where}: cite must be an https:// URL")
    match = re.compile(raw["match"], re.IGNORECASE) if raw.get("match") else None
    return Entry(
        id=str(raw["id"]), source=source, codes=tuple(codes), example=str(raw["example"]),
        blames=blame, cause=str(raw["cause"]).strip(), fix=str(raw["fix"]).strip(),
        cite=str(raw["cite"]), enhanced=raw.get("enhanced"), match=match,
        temporary=raw.get("temporary"), key=raw.get("key"),
        providers=tuple(raw.get("providers") or ()), stage=str(raw.get("stage") or ""))


@functools.cache
def entries() -> tuple[Entry, ...]:
    """Every entry, specific ones (with a text pattern) before provider-wide ones."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    folder = resources.files("maildoctor").joinpath(*_DIR)
    found: list[Entry] = []
    seen: set[str] = set()
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".yaml"):
            continue
        data = yaml.load(item.read_text(encoding="utf-8"), Loader=loader)
        if not isinstance(data, dict) or "source" not in data or "replies" not in data:
            raise CatalogueError(f"{item.name}: needs `source:` and `replies:`")
        for n, raw in enumerate(data["replies"], 1):
            entry = _entry(str(data["source"]), raw, f"{item.name} entry {n}")
            if entry.id in seen:
                raise CatalogueError(f"{item.name}: duplicate id {entry.id}")
            seen.add(entry.id)
            found.append(entry)
    return tuple(sorted(found, key=lambda e: (e.match is None and e.enhanced is None,)))


def lookup(reply: Reply, *, provider: str | None = None) -> Entry | None:
    """The first catalogue entry that ``reply`` matches, or None. The provider's own
    entries come first: they know its words better than a generic server's do."""
    found = [e for e in entries() if e.applies(reply, provider)]
    own = [e for e in found if provider is not None and provider in e.providers]
    best = own or found
    return best[0] if best else None
