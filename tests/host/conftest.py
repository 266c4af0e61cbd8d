"""The interpreters the host tests ask: the test Synapse's venv, and the same Synapse with an
older Twisted in front of it (``make synapse-old-twisted``). Missing ones fail, never skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _python(var: str, target: str) -> str:
    python = os.environ.get(var)
    if not python or not Path(python).exists():
        pytest.fail(f"{var} is not set to an existing python: run the tests through "
                    f"`make test`, or `make {target}` and export {var}", pytrace=False)
    return python


@pytest.fixture(scope="session")
def synapse_python() -> str:
    return _python("MAILDOCTOR_SYNAPSE_PYTHON", "synapse")


@pytest.fixture(scope="session")
def old_twisted_python() -> str:
    return _python("MAILDOCTOR_OLD_TWISTED_PYTHON", "synapse-old-twisted")
