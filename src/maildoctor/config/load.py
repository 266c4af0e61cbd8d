"""Read Synapse's config files exactly as Synapse does, keeping where every key came from.

Synapse (``synapse/config/_base.py``) takes each ``-c`` path in order; a directory gives
its regular files ending in ``.yaml``, sorted, not recursive (``.yml`` and subdirectories
are skipped with a message on stdout). Each file goes through PyYAML's ``safe_load``; a
file that is empty or not a mapping is ignored; the rest are merged with a shallow
``dict.update``, so a later file's ``email:`` replaces an earlier one whole.

We parse with PyYAML too (the library Synapse uses), so YAML 1.1 details match exactly:
``yes``/``on`` are booleans, duplicate keys keep the last value, ``0755`` is octal. We
compose the node tree first to record the position of every key and value, then
construct the values from the same nodes.

Limits (bad input must never hang or crash): files over :data:`MAX_FILE_BYTES` are
refused, nesting deeper than :data:`MAX_DEPTH` is refused, the position index stops
at :data:`MAX_NODES` nodes (aliases are indexed once), and data whose aliases would
expand to more than :data:`MAX_EXPANDED` values (an alias bomb) is refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from maildoctor.diagnostics import Location
from maildoctor.errors import ConfigLoadError
from maildoctor.secrets import MASK, mask_line

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 100
MAX_NODES = 200_000
# Values the data would have with every alias written out. PyYAML shares aliased objects, so
# an alias bomb loads small, but anything that prints or copies it (``str()``, ``repr``, JSON)
# expands it exponentially: refuse it at load time instead.
MAX_EXPANDED = 1_000_000

PathKey = tuple[Any, ...]

_QUOTED = re.compile(r"""(['"])(?:(?!\1).)*\1""")


def dotted(path: PathKey) -> str:
    """``("email", "subjects", "password_reset")`` -> ``email.subjects.password_reset``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass(frozen=True)
class Node:
    """Where one key and its value were written (1-based lines and columns)."""

    file: str
    key_line: int
    key_column: int
    value_line: int
    value_column: int
    tag: str
    style: str | None  # None = plain scalar, "'" or '"' quoted, "|" or ">" block
    raw: str | None  # the scalar's text as parsed (before type resolution); None for collections
    end_line: int = 0  # where the value ends (exclusive column), for edits
    end_column: int = 0

    @property
    def is_scalar(self) -> bool:
        return self.raw is not None


@dataclass(frozen=True)
class Duplicate:
    """A key written twice in one mapping. When both values are mappings, ``first_keys`` and
    ``later_keys`` are their keys: PyYAML keeps only the later mapping, whole."""

    path: PathKey
    first: Node
    later: Node
    first_keys: tuple[Any, ...] | None = None
    later_keys: tuple[Any, ...] | None = None

    @property
    def lost_keys(self) -> list[str]:
        """Keys of the first mapping that the later one does not have (lost without a word)."""
        if self.first_keys is None or self.later_keys is None:
            return []
        return sorted({str(k) for k in self.first_keys} - {str(k) for k in self.later_keys})


@dataclass
class ParsedFile:
    """One file as read: its lines, what YAML made of it, where each key sits, and its
    duplicate keys. (A docstring also spares ``dataclass`` from building one.)"""

    path: str
    lines: list[str]
    data: Any
    nodes: dict[PathKey, Node] = field(default_factory=dict)
    duplicates: list[Duplicate] = field(default_factory=list)
    truncated_index: bool = False

    @property
    def used(self) -> bool:
        """Synapse ignores a file that is empty or not a mapping."""
        return isinstance(self.data, dict)


@dataclass(frozen=True)
class Skipped:
    """A path in a config directory that Synapse does not read, and why."""

    path: str
    reason: str  # "not-yaml-extension" | "subdirectory"


@dataclass(frozen=True)
class Override:
    """A top-level key set in ``earlier`` and replaced whole by ``later``."""

    key: str
    earlier: ParsedFile
    later: ParsedFile


@dataclass
class LoadedConfig:
    """Every file read, in ``-c`` order, and their top-level merge as Synapse makes it
    (``origin``: the file whose value won each key)."""

    files: list[ParsedFile]
    skipped: list[Skipped]
    merged: dict[Any, Any]
    origin: dict[Any, ParsedFile]
    overrides: list[Override]

    def node(self, path: Sequence[Any]) -> Node | None:
        """The position of ``path`` in the file whose top-level key won the merge."""
        path = tuple(path)
        if not path:
            return None
        pf = self.origin.get(path[0])
        if pf is None:
            return None
        return pf.nodes.get(path)

    def location(self, path: Sequence[Any], *, at: str = "key") -> Location | None:
        """``at="key"`` points at the key, ``at="value"`` at its value. Falls back to the
        nearest ancestor that has a position."""
        path = tuple(path)
        for n in range(len(path), 0, -1):
            node = self.node(path[:n])
            if node is not None:
                if at == "value" and n == len(path):
                    return Location(node.file, node.value_line, node.value_column, dotted(path))
                return Location(node.file, node.key_line, node.key_column, dotted(path))
        return None

    def source_line(self, file: str, line: int) -> str | None:
        for pf in self.files:
            if pf.path == file and 1 <= line <= len(pf.lines):
                return pf.lines[line - 1]
        return None

    def iter_nodes(self) -> Iterator[tuple[PathKey, Node]]:
        """Every indexed position in the files that won the merge, per top-level key."""
        for key, pf in self.origin.items():
            for path, node in pf.nodes.items():
                if path and path[0] == key:
                    yield path, node


# --- finding the files ------------------------------------------------------------------


def find_config_files(paths: Sequence[str]) -> tuple[list[str], list[Skipped]]:
    """Expand ``-c`` paths as Synapse does: directories give their ``*.yaml`` files, sorted."""
    if not paths:
        raise ConfigLoadError("no config file given (Synapse: 'Must supply a config file.')")
    files: list[str] = []
    skipped: list[Skipped] = []
    for path in paths:
        if os.path.isdir(path):
            try:
                entries = os.listdir(path)
            except OSError as exc:
                raise ConfigLoadError(f"cannot list directory: {exc.strerror}", file=path) from exc
            found = []
            for entry in entries:
                full = os.path.join(path, entry)
                if not os.path.isfile(full):
                    skipped.append(Skipped(full, "subdirectory"))
                elif not entry.endswith(".yaml"):
                    skipped.append(Skipped(full, "not-yaml-extension"))
                else:
                    found.append(full)
            files.extend(sorted(found))
        else:
            files.append(path)
    if not files:
        # Synapse would go on with no settings and fail on server_name; say why instead.
        raise ConfigLoadError("no config file to read: a directory gives only its *.yaml files",
                              file=paths[0])
    return files, sorted(skipped, key=lambda s: s.path)


# --- parsing one file --------------------------------------------------------------------


def read_text(path: str) -> str:
    """Read a config file as text, refusing what Synapse could not read (or we should not)."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError as exc:
        raise ConfigLoadError("no such file", file=path) from exc
    except OSError as exc:
        raise ConfigLoadError(f"cannot read: {exc.strerror}", file=path) from exc
    if size > MAX_FILE_BYTES:
        raise ConfigLoadError(
            f"file is {size:,} bytes; maildoctor reads config files up to "
            f"{MAX_FILE_BYTES:,} bytes (a homeserver.yaml is rarely over 100 KB)",
            file=path,
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except IsADirectoryError as exc:
        raise ConfigLoadError("is a directory", file=path) from exc
    except OSError as exc:
        raise ConfigLoadError(f"cannot read: {exc.strerror}", file=path) from exc
    if b"\0" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigLoadError("this is a binary file, not YAML", file=path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigLoadError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); Synapse would fail to start "
            "with UnicodeDecodeError. Save the file as UTF-8.",
            file=path, line=line, column=col,
        ) from exc


def _mask_quoted(message: str) -> str:
    """Mask every quoted part of a parser message: PyYAML and Python quote the offending
    text (``invalid literal for int() with base 10: 's3cret'``), which may be a password."""
    return _QUOTED.sub(lambda m: m.group(1) + MASK + m.group(1), message)


def _is_secret_line(text: str, index: int) -> bool:
    lines = text.splitlines()
    return index < len(lines) and mask_line(lines[index]) != lines[index]


def _reader_error(path: str, exc: yaml.reader.ReaderError, text: str) -> ConfigLoadError:
    """A character YAML does not allow (a control character), located by line and column."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    return ConfigLoadError(
        f"YAML does not allow the control character U+{exc.character:04X} "
        "(Synapse would fail to start with a ReaderError)", file=path, line=line, column=column)


def _yaml_error(path: str, exc: yaml.MarkedYAMLError, text: str) -> ConfigLoadError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    col = mark.column + 1 if mark else None
    problem = exc.problem or exc.context or "invalid YAML"
    hint = ""
    if mark is not None:
        src_lines = text.splitlines()
        src = src_lines[mark.line] if mark.line < len(src_lines) else ""
        if "\t" in src[: mark.column + 1] or "tab" in (exc.problem or ""):
            hint = "YAML does not allow tabs for indentation: use spaces."
    if exc.context and exc.problem:
        problem = f"{exc.context}: {exc.problem}"
    if mark is not None and _is_secret_line(text, mark.line):
        problem = _mask_quoted(problem)  # "found undefined alias 's3cret'" names the value
        hint = hint or ("a password starting with @, `, %, *, &, !, [, { or | is YAML syntax, "
                        "not text: put the whole password in single quotes (write a ' inside "
                        "it as '').")
    return ConfigLoadError(f"YAML syntax error: {problem}", file=path, line=line, column=col,
                           hint=hint)


class _Indexer:
    """Walks a composed node tree once, recording positions and duplicate keys."""

    def __init__(self, pf: ParsedFile) -> None:
        self.pf = pf
        self.seen: set[int] = set()
        self.count = 0
        self._keys = yaml.SafeLoader("")  # a constructor for key nodes

    def walk(self, node: yaml.Node, path: PathKey, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ConfigLoadError(
                f"nesting deeper than {MAX_DEPTH} levels",
                file=self.pf.path, line=node.start_mark.line + 1,
                column=node.start_mark.column + 1,
            )
        if id(node) in self.seen:  # an alias: indexed where it was defined
            return
        self.seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_at: dict[Any, Node] = {}
            first_value: dict[Any, yaml.Node] = {}
            for key_node, value_node in node.value:
                self.count += 1
                if self.count > MAX_NODES:
                    self.pf.truncated_index = True
                    return
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.walk(value_node, path, depth + 1)
                    continue
                key = self._key(key_node)
                child = (*path, key)
                entry = self._node(key_node, value_node)
                if key in first_at:
                    self.pf.duplicates.append(Duplicate(
                        child, first_at[key], entry, self._keys_of(first_value[key]),
                        self._keys_of(value_node)))
                first_at.setdefault(key, entry)
                first_value.setdefault(key, value_node)
                self.pf.nodes[child] = entry  # last wins, as in PyYAML
                self.walk(value_node, child, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.count += 1
                if self.count > MAX_NODES:
                    self.pf.truncated_index = True
                    return
                child = (*path, i)
                self.pf.nodes[child] = self._node(item, item)
                self.walk(item, child, depth + 1)

    def _keys_of(self, node: yaml.Node) -> tuple[Any, ...] | None:
        if not isinstance(node, yaml.MappingNode):
            return None
        return tuple(self._key(k) for k, _v in node.value
                     if k.tag != "tag:yaml.org,2002:merge")

    def _key(self, key_node: yaml.Node) -> Any:
        if isinstance(key_node, yaml.ScalarNode):
            try:
                return self._keys.construct_object(key_node)
            except yaml.YAMLError:
                return key_node.value
        return f"<{type(key_node).__name__}>"

    def _node(self, key_node: yaml.Node, value_node: yaml.Node) -> Node:
        scalar = isinstance(value_node, yaml.ScalarNode)
        return Node(
            file=self.pf.path,
            key_line=key_node.start_mark.line + 1,
            key_column=key_node.start_mark.column + 1,
            value_line=value_node.start_mark.line + 1,
            value_column=value_node.start_mark.column + 1,
            tag=value_node.tag,
            style=value_node.style if isinstance(value_node, yaml.ScalarNode) else None,
            raw=value_node.value if scalar else None,
            end_line=value_node.end_mark.line + 1,
            end_column=value_node.end_mark.column + 1,
        )


def expanded_size(data: Any, limit: int = MAX_EXPANDED) -> int:
    """How many values ``data`` holds with shared (aliased) objects counted at every use.

    Linear in the number of distinct objects (memoised by identity); stops counting once
    over ``limit``. A cycle (a recursive alias) counts once.
    """
    memo: dict[int, int] = {}

    def size(obj: Any) -> int:
        if not isinstance(obj, dict | list):
            return 1
        key = id(obj)
        if key in memo:
            return memo[key]
        memo[key] = 1  # in progress: a cycle back to here counts once
        children = [*obj.keys(), *obj.values()] if isinstance(obj, dict) else obj
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        memo[key] = total
        return total

    return size(data)


def parse_text(path: str, text: str) -> ParsedFile:
    """Parse one file's text as ``yaml.safe_load`` would, with positions."""
    pf = ParsedFile(path=path, lines=text.splitlines(), data=None)
    try:
        loader = yaml.SafeLoader(text)  # checks for unprintable characters at once
    except yaml.reader.ReaderError as exc:
        raise _reader_error(path, exc, text) from exc
    try:
        root = loader.get_single_node()
        if root is not None:
            _Indexer(pf).walk(root, (), 0)
            pf.data = loader.construct_document(root)
            if expanded_size(pf.data) > MAX_EXPANDED:
                raise ConfigLoadError(
                    f"YAML aliases expand to over {MAX_EXPANDED:,} values (an 'alias bomb'); "
                    "maildoctor refuses to read it", file=path)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(path, exc, text) from exc
    except yaml.reader.ReaderError as exc:
        raise _reader_error(path, exc, text) from exc
    except yaml.YAMLError as exc:
        raise ConfigLoadError(f"YAML error: {exc}", file=path) from exc
    except RecursionError as exc:
        raise ConfigLoadError(f"nesting too deep to parse (over {MAX_DEPTH} levels)",
                              file=path) from exc
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        # A tagged or implicit value PyYAML cannot build (``2001-13-45``, ``!!int x``,
        # ``!!timestamp x``). No position is known, and the text may quote a password.
        raise ConfigLoadError(f"YAML value error: {_mask_quoted(str(exc))}", file=path) from exc
    finally:
        loader.dispose()
    return pf


def merge_files(parsed: Sequence[ParsedFile], skipped: Sequence[Skipped]) -> LoadedConfig:
    """Merge parsed files as Synapse does: top-level keys, in order, later files win
    (``dict.update``), and every key a later file takes over is an :class:`Override`."""
    merged: dict[Any, Any] = {}
    origin: dict[Any, ParsedFile] = {}
    overrides: list[Override] = []
    for pf in parsed:
        if not pf.used:
            continue
        for key in pf.data:
            if key in origin:
                overrides.append(Override(key, origin[key], pf))
            origin[key] = pf
        merged.update(pf.data)
    return LoadedConfig(list(parsed), list(skipped), merged, origin, overrides)


def load(paths: Sequence[str]) -> LoadedConfig:
    """Load and merge config paths (files or directories) exactly as Synapse does."""
    files, skipped = find_config_files(paths)
    return merge_files([parse_text(path, read_text(path)) for path in files], skipped)
