"""The targets an exporter may probe: names chosen by the operator, each with its config paths.

A scrape only ever names a target; the paths behind it come from the command line
(``--target NAME=CONFIG``) or a targets file the operator wrote, never from a request. Names
are short and plain (letters, digits, ``_ . -``) so that a request trying to name a file
(``/etc/passwd``, ``../x``) or a host (``smtp.example.org:25``, ``[::1]``) cannot even look
like one::

    # targets.yaml: name -> config path, or a list of paths in Synapse's -c order
    # (relative paths are relative to this file)
    alpha: /etc/matrix-synapse/homeserver.yaml
    beta:
      - /srv/beta/homeserver.yaml
      - /srv/beta/conf.d
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from maildoctor.errors import UsageError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_TARGETS_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class Target:
    name: str
    paths: tuple[str, ...]


def valid_name(name: str) -> bool:
    return NAME.fullmatch(name) is not None and ".." not in name


def _check_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not valid_name(name):
        raise UsageError(f"{where}: target name {name!r} is not a plain name (1-64 letters, "
                         "digits, '_', '.' or '-', starting with a letter or digit)")
    return name


def parse_target_options(values: Iterable[str]) -> dict[str, Target]:
    """``NAME=CONFIG`` options; a name given twice collects its paths in order."""
    paths: dict[str, list[str]] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not path:
            raise UsageError(f"--target {value!r}: expected NAME=CONFIG")
        paths.setdefault(_check_name(name, "--target"), []).append(path)
    return {name: Target(name, tuple(p)) for name, p in paths.items()}


def load_targets_file(path: str) -> dict[str, Target]:
    """Read a targets file (see the module docstring). Raises :class:`UsageError` with the
    file's name on anything unusable."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_TARGETS_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the targets file ({exc.strerror})") from exc
    if len(data) > MAX_TARGETS_FILE_BYTES:
        raise UsageError(f"{path}: the targets file is larger than 1 MiB")
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: the targets file is not UTF-8") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise UsageError(f"{where}: YAML syntax error: {problem}") from exc
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise UsageError(f"{path}: expected a mapping of target name -> config path(s)")
    base = Path(path).resolve().parent
    out: dict[str, Target] = {}
    for name, value in doc.items():
        _check_name(name, path)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or \
                not all(isinstance(p, str) and p for p in items):
            raise UsageError(f"{path}: target {name!r}: expected a config path or a list of "
                             "config paths")
        out[name] = Target(name, tuple(str(base / p) for p in items))
    return out


def merge_targets(*groups: Mapping[str, Target]) -> dict[str, Target]:
    """Targets from several sources; a name defined twice is an error."""
    out: dict[str, Target] = {}
    for group in groups:
        for name, target in group.items():
            if name in out:
                raise UsageError(f"target {name!r} is defined twice")
            out[name] = target
    return out
