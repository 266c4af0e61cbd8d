"""Synapse's installation: which interpreter runs it, and what that interpreter has installed.

The interpreter is the one given (``--synapse-python``), else the interpreter of a Synapse
running here (a process whose command line runs ``synapse.app.*`` or ``synapse_homeserver``,
its ``/proc/PID/exe``), else the first usual place that holds a ``matrix-synapse``
distribution:

- ``/opt/venvs/matrix-synapse/bin/python``: Debian's and Ubuntu's ``matrix-synapse-py3``
  package (a dh-virtualenv venv);
- ``/usr/local/bin/python``: the official container image (Synapse in the image's Python);
- the interpreter named in the ``#!`` line of ``synapse_homeserver`` on ``PATH`` (a pip
  venv that is activated, or pipx);
- ``~/synapse/env/bin/python``: the venv of Synapse's own pip instructions;
- ``/usr/bin/python3``: distributions that package Synapse system-wide (Arch, Fedora...).

A place counts only when a ``matrix_synapse-*.dist-info`` (or ``.egg-info``) directory sits
in its site-packages, which is a directory listing, not an import. Then the interpreter is
asked (:mod:`maildoctor.host._ask_interpreter`, run as a script in a subprocess with a
timeout): never is Synapse or its Twisted imported into maildoctor's process.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from maildoctor.config.environment import Installation

__all__ = ["GIVEN", "USUAL_PLACES", "Place", "ask", "find", "has_synapse", "usual_places"]

GIVEN = "given with --synapse-python"
ASK_TIMEOUT = 15.0  # a cold interpreter on a busy host; the script itself takes ~0.1 s
_SCRIPT = os.path.join(os.path.dirname(__file__), "_ask_interpreter.py")
_MAX_REPLY = 1 << 20


@dataclass(frozen=True)
class Place:
    """A usual place for Synapse's interpreter, and what to call it in a report."""

    python: str
    label: str


USUAL_PLACES: tuple[Place, ...] = (
    Place("/opt/venvs/matrix-synapse/bin/python", "Debian package venv (matrix-synapse-py3)"),
    Place("/usr/local/bin/python", "the container image's Python"),
    Place("~/synapse/env/bin/python", "the pip venv of Synapse's install instructions"),
    Place("/usr/bin/python3", "the system Python"),
)


def _shebang_python(script: str) -> str | None:
    """The interpreter of a console script, from its ``#!`` line."""
    try:
        with open(script, "rb") as fh:
            first = fh.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if not words:
        return None
    if os.path.basename(words[0]) == "env" and len(words) > 1:  # "#!/usr/bin/env python3"
        return _which(words[1])
    return words[0]


_SYNAPSE_COMMANDS = ("synapse.app.", "synapse_homeserver", "synapse/app/")


def running_synapses(proc: str = "/proc") -> list[Place]:
    """The interpreters of the Synapse processes running here (readable ones), by pid."""
    found: list[Place] = []
    try:
        pids = sorted(int(p) for p in os.listdir(proc) if p.isdigit())
    except OSError:
        return found
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/cmdline", "rb") as fh:
                argv = fh.read(8192).split(b"\0")
            exe = os.readlink(f"{proc}/{pid}/exe")
        except OSError:
            continue  # gone, or another user's
        words = [a.decode("utf-8", "replace") for a in argv[:4]]
        if "python" not in os.path.basename(exe) or not any(
                c in w for w in words[1:] for c in _SYNAPSE_COMMANDS):
            continue
        python = _invoked_as(words[0], f"{proc}/{pid}/cwd") or exe
        if not any(p.python == python for p in found):
            found.append(Place(python, f"the running Synapse (pid {pid})"))
    return found


def _invoked_as(argv0: str, cwd_link: str) -> str | None:
    """The interpreter path as the process was started (``/proc/PID/exe`` resolves a venv's
    ``bin/python`` symlink to the base interpreter, which would lose the venv)."""
    if not argv0 or "python" not in os.path.basename(argv0):
        return None
    if os.path.isabs(argv0):
        return argv0 if os.path.exists(argv0) else None
    try:
        candidate = os.path.join(os.readlink(cwd_link), argv0)
    except OSError:
        return None
    return candidate if "/" in argv0 and os.path.exists(candidate) else None


def usual_places(path_env: str | None = None) -> list[Place]:
    """The places to look, in order: running Synapses first, then the usual places
    (``synapse_homeserver`` on ``PATH`` third among those)."""
    places = list(USUAL_PLACES)
    script = _which("synapse_homeserver", path_env)
    if script is not None:
        python = _shebang_python(script)
        if python:
            places.insert(2, Place(python, f"the interpreter of {script}"))
    return [*running_synapses(), *places]


def _which(command: str, path_env: str | None = None) -> str | None:
    """``shutil.which`` for a plain command name on POSIX (shutil costs ``check`` 4 ms)."""
    search = os.environ.get("PATH", os.defpath) if path_env is None else path_env
    for directory in search.split(os.pathsep):
        candidate = os.path.join(directory or os.curdir, command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def has_synapse(python: str) -> bool:
    """Whether ``python``'s site-packages hold a matrix-synapse distribution (no import)."""
    interpreter = os.path.expanduser(python)
    if not os.path.exists(interpreter):
        return False
    root = os.path.dirname(os.path.dirname(interpreter))  # <prefix>/bin/python -> <prefix>
    patterns = ("lib/python3*/site-packages/matrix_synapse-*", "lib/python3/dist-packages/"
                "matrix_synapse-*", "lib/python3*/dist-packages/matrix_synapse-*",
                "lib64/python3*/site-packages/matrix_synapse-*")
    return any(glob.glob(os.path.join(glob.escape(root), p)) for p in patterns)


def find(given: str | None, places: Sequence[Place] | None = None
         ) -> tuple[Place | None, tuple[str, ...]]:
    """The interpreter to ask, and the places looked at (empty when ``given``)."""
    if given is not None:
        return Place(given, GIVEN), ()
    looked: list[str] = []
    for place in usual_places() if places is None else places:
        looked.append(place.python)
        if has_synapse(place.python):
            return Place(os.path.expanduser(place.python), place.label), tuple(looked)
    return None, tuple(looked)


def printable(text: str) -> str:
    """Another process's words, with control characters shown as escapes."""
    from maildoctor.printable import printable as one_sanitizer

    return one_sanitizer(text)


def _str(value: Any) -> str | None:
    return printable(value) if isinstance(value, str) else None


def _parse(place: Place, report: dict[str, Any]) -> Installation:
    versions = report.get("versions") or {}
    trust = report.get("twisted_trust") or {}
    python_ssl = report.get("python_ssl") or {}
    requires = [str(r) for r in report.get("requires") or []]
    installed = {str(k): _str(v) for k, v in (report.get("installed") or {}).items()}
    markers = {str(k): str(v) for k, v in (report.get("markers") or {}).items()}
    synapse = _str(versions.get("matrix-synapse"))
    twisted_openssl = _str(trust.get("openssl"))
    return Installation(
        python=place.python, found_by=place.label,
        python_version=_str(report.get("python")),
        synapse=synapse, twisted=_str(versions.get("twisted")),
        pyopenssl=_str(versions.get("pyopenssl")),
        cryptography=_str(versions.get("cryptography")),
        openssl=twisted_openssl or _str(python_ssl.get("openssl")),
        trust_cafile=_str(trust.get("cafile")) if twisted_openssl else
        _str(python_ssl.get("cafile")),
        trust_capath=_str(trust.get("capath")) if twisted_openssl else
        _str(python_ssl.get("capath")),
        trust_source=_str(trust.get("source")) if twisted_openssl else "Python's ssl defaults",
        unmet=_unmet(requires, installed, markers) if synapse else (),
        error="" if synapse else "matrix-synapse is not installed for this interpreter",
    )


def _unmet(requires: Any, installed: Any, markers: Any) -> Any:
    # packaging (the requirement parser) is imported only when an installation was found
    from maildoctor.host.requirements import unmet_requirements

    return unmet_requirements(requires, installed, markers)


def ask(place: Place, timeout: float = ASK_TIMEOUT) -> Installation:
    """Run the query script under ``place.python``; an :class:`Installation` either way."""
    run = os.path.expanduser(place.python)
    python = printable(run)  # for messages; ``run`` is what is executed
    if not os.path.exists(run):
        return Installation(python, place.label, error=f"{python} does not exist")
    import json
    import subprocess

    try:
        proc = subprocess.run([run, "-I", str(_SCRIPT)], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Installation(python, place.label,
                            error=f"{python} did not answer within {timeout:g} s")
    except OSError as exc:
        return Installation(python, place.label,
                            error=f"{python} cannot be run: {exc.strerror or exc}")
    if proc.returncode != 0 or len(proc.stdout) > _MAX_REPLY:
        last = printable(proc.stderr.decode("utf-8", "replace").strip()).split("\\n")[-1:]
        return Installation(python, place.label, error=f"{python} is not a Python 3 that "
                            f"maildoctor can ask (exit {proc.returncode}) {last[0][:200]}".strip())
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        return Installation(python, place.label, error=f"{python} gave an unreadable answer")
    if not isinstance(report, dict):
        return Installation(python, place.label, error=f"{python} gave an unreadable answer")
    return _parse(Place(python, place.label), report)
