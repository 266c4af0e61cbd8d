"""Every output format, apart from the checks that produce what is shown.

``check`` results: :data:`FORMATS` maps each ``--format`` to its module, which has
``render(result, stream, *, color=None)`` and ``render_load_error(exc, stream, *,
color=None)`` (a config that cannot be used: exit status 2), so every format carries every
outcome; each is imported only when chosen.
``probe`` results: :mod:`.probe_text` (the terminal, with live progress) and
:mod:`.probe_json` (``--format json``); both show the config findings the probe settled
(``Diagnosis.settled``) the same way.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FORMATS = {"text": "maildoctor.render.text", "json": "maildoctor.render.json",
           "github": "maildoctor.render.github", "sarif": "maildoctor.render.sarif"}


def renderer(fmt: str) -> ModuleType:
    """The renderer module of ``--format fmt``."""
    return importlib.import_module(FORMATS[fmt])
