"""Renderers for ``check`` results, chosen by ``--format`` from one map. Each module has
``render(result, stream, *, color=None)`` and ``render_load_error(exc, stream, *,
color=None)`` (a config that cannot be used: exit status 2), so every format carries every
outcome. They are imported only when used."""

from __future__ import annotations

import importlib
from types import ModuleType

FORMATS = {"text": "maildoctor.render.text", "json": "maildoctor.render.json",
           "github": "maildoctor.render.github", "sarif": "maildoctor.render.sarif"}


def renderer(fmt: str) -> ModuleType:
    """The renderer module of ``--format fmt``."""
    return importlib.import_module(FORMATS[fmt])
