"""maildoctor inside Synapse's own log: a Synapse module.

Enable it in ``homeserver.yaml`` (Synapse 1.37 or later, the first with ``modules:``)::

    modules:
      - module: maildoctor.synapse_module.MailDoctor
        config: {}            # or {probe_interval: 6h, timeout: 10, delay: 2}

maildoctor must be installed in Synapse's environment (``pip install maildoctor`` with
Synapse's pip; in the container image, a derived image). What it does:

1. At startup, in Synapse's own start-up call and in milliseconds: it checks the very config
   files this Synapse was started with, as this Synapse version reads them, and logs each
   finding as one line (``ERROR``/``WARNING``, ``INFO`` for notes) under the logger
   ``maildoctor``, with the rule code, the file:line, what Synapse will do and the fix.
   Secrets are masked (the password and its base64 forms never reach the log).
2. Then, in a background thread, so Synapse's start is never delayed, it probes the SMTP
   server from Synapse's own process (its network, its container, its trust store) and logs
   the diagnosis in one line starting ``maildoctor probe:`` (``INFO`` when Synapse would send,
   ``ERROR`` otherwise). Every step of the probe is bounded by ``timeout``. With
   ``probe_interval`` (seconds, or ``30m``/``6h``/``1d``) it probes again at that interval.

How it finds the config files: Synapse's module API gives a module its own ``config`` and an
``api`` object, but not the paths of the files Synapse read. The paths Synapse was started
with are the ``-c``/``--config-path`` arguments of the process (``sys.argv``), which every
way of starting Synapse passes (``python -m synapse.app.homeserver -c ...``, ``synctl``,
Debian's unit, the container image's ``start.py``). ``config_paths`` in the module's config
overrides them. Of Synapse it uses nothing but that contract: the ``(config, api)``
constructor and the optional ``parse_config`` static method; ``api`` is kept but not needed.

It never raises into Synapse: anything unexpected (maildoctor's own dependencies missing
from Synapse's venv included) is logged once as an error, and Synapse carries on.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MailDoctor", "ModuleConfig", "config_paths_from_argv"]

logger = logging.getLogger("maildoctor")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL = 60.0  # a probe logs in at the server: not more than once a minute


@dataclass(frozen=True)
class ModuleConfig:
    """The module's own ``config:`` block."""

    config_paths: tuple[str, ...] = ()  # default: Synapse's -c arguments
    probe: bool = True
    delay: float = 1.0  # seconds after start-up before the first probe
    timeout: float = 10.0  # every single wait of the probe
    probe_interval: float | None = None  # seconds between probes; None: once


def _seconds(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number of seconds or a duration like 30m, 6h")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"{key}: {value!r} is not a duration (e.g. 90, 30m, 6h, 1d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def config_paths_from_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """The ``-c``/``--config-path`` values of a Synapse command line, in order."""
    paths: list[str] = []
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-c", "--config-path"):
            value = next(args, None)
            if value is not None:
                paths.append(value)
        elif arg.startswith("--config-path="):
            paths.append(arg.split("=", 1)[1])
        elif arg.startswith("-c") and not arg.startswith("--") and len(arg) > 2:
            paths.append(arg[2:])
    return tuple(paths)


def _one_line(text: str) -> str:
    """One log line: newlines folded, control characters shown as escapes."""
    folded = " ".join(str(text).split())
    from maildoctor.printable import printable

    return printable(folded)


class MailDoctor:
    """The Synapse module. Synapse calls ``parse_config`` at config load, then the constructor
    once at start-up with the parsed config and its ``ModuleApi``."""

    def __init__(self, config: ModuleConfig | None, api: Any) -> None:
        self._config = config if isinstance(config, ModuleConfig) else ModuleConfig()
        self._api = api
        self._redact: Any = None
        self._paths: tuple[str, ...] = ()
        self._version: str | None = None
        self._stop = threading.Event()
        try:
            self._startup_check()
        except Exception as exc:  # never into Synapse
            logger.error("maildoctor: the startup check failed and was skipped: %s",
                         _one_line(f"{type(exc).__name__}: {exc}"))
            return
        if self._config.probe and self._paths:
            thread = threading.Thread(target=self._probe_loop, name="maildoctor-probe",
                                      daemon=True)
            thread.start()

    @staticmethod
    def parse_config(config: Mapping[str, Any] | None) -> ModuleConfig:
        """Validate the module's ``config:``; an error here is reported by Synapse as a
        config error of ``modules[i].config`` (Synapse does not start)."""
        data = dict(config or {})
        known = {"config_paths", "probe", "delay", "timeout", "probe_interval"}
        unknown = sorted(set(map(str, data)) - known)
        if unknown:
            raise ValueError(f"unknown maildoctor option(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known))}")
        paths = data.get("config_paths") or ()
        if isinstance(paths, str) or not all(isinstance(p, str) for p in paths):
            raise ValueError("config_paths must be a list of file or directory paths")
        interval = data.get("probe_interval")
        seconds = None if interval in (None, 0, "0") else _seconds(interval, "probe_interval")
        if seconds is not None and seconds < MIN_INTERVAL:
            raise ValueError(f"probe_interval must be at least {MIN_INTERVAL:.0f} s: each "
                             "probe logs in at the SMTP server")
        timeout = _seconds(data.get("timeout", 10), "timeout")
        if not 0.1 <= timeout <= 300:
            raise ValueError("timeout must be between 0.1 and 300 seconds")
        return ModuleConfig(config_paths=tuple(paths), probe=bool(data.get("probe", True)),
                            delay=max(0.0, _seconds(data.get("delay", 1), "delay")),
                            timeout=timeout, probe_interval=seconds)

    # -- start-up: the static check --------------------------------------------------------

    def _log(self, level: int, text: str) -> None:
        redact = self._redact
        logger.log(level, "%s", _one_line(redact(text) if redact is not None else text))

    def _startup_check(self) -> None:
        from importlib import metadata

        from maildoctor.config.check import check
        from maildoctor.config.environment import Environment
        from maildoctor.diagnostics import Severity
        from maildoctor.host import checked_as, container
        from maildoctor.secrets import Redactor

        self._paths = self._config.config_paths or config_paths_from_argv(sys.argv)
        if not self._paths:
            logger.warning("maildoctor: no config files to check: Synapse was not started "
                           "with -c, and the module's config_paths is empty")
            return
        try:
            from maildoctor.config.environment import Installation

            installed = metadata.version("matrix-synapse")
            self._version, note = checked_as(Installation(sys.executable, "this process",
                                                          synapse=installed))
        except metadata.PackageNotFoundError:
            installed, note = "unknown", ""
        environment = Environment(container=container.detect(), in_container_known=True)
        result = check(list(self._paths), synapse_version=self._version,
                       environment=environment)
        self._redact = redactor = Redactor()
        email = result.config.merged.get("email")
        if isinstance(email, Mapping):
            for key, value in email.items():
                if "pass" in str(key).lower() and value not in (None, ""):
                    redactor.add(str(value), [email.get("smtp_user")])
        level = {Severity.ERROR: logging.ERROR, Severity.WARNING: logging.WARNING,
                 Severity.INFO: logging.INFO}
        for d in result.diagnostics:
            where = f" at {d.location}" if d.location is not None else ""
            text = f"maildoctor: {d.code} {d.name}: {d.message}{where}"
            if d.consequence:
                text += f" | Synapse: {d.consequence}"
            if d.fix is not None:
                text += f" | fix: {d.fix.message}"
            self._log(level[d.severity], text)
        errors = result.count(Severity.ERROR)
        warnings = result.count(Severity.WARNING)
        self._log(logging.INFO, f"maildoctor: checked {', '.join(self._paths)} as Synapse "
                  f"{result.version} (installed: {installed}): {errors} error(s), "
                  f"{warnings} warning(s){'; ' + note if note else ''}")

    # -- background: the probe -------------------------------------------------------------

    def _probe_loop(self) -> None:
        if self._stop.wait(self._config.delay):
            return
        while True:
            try:
                self._probe_once()
            except Exception as exc:  # never into Synapse, never kill the loop silently
                logger.error("maildoctor probe: could not run: %s",
                             _one_line(f"{type(exc).__name__}: {exc}"))
            interval = self._config.probe_interval
            if interval is None or self._stop.wait(interval):
                return

    def _probe_once(self) -> None:
        from maildoctor.doctor import probe_config
        from maildoctor.host import observe
        from maildoctor.smtp.report import ProbeOptions

        environment = observe(sys.executable)
        run = probe_config(list(self._paths), ProbeOptions(timeout=self._config.timeout),
                           synapse_version=self._version, environment=environment)
        d, s = run.diagnosis, run.check.settings
        target = f"{s.smtp_host}:{s.smtp_port}" if s.email_enabled else "email off"
        if d.ok:
            self._log(logging.INFO, f"maildoctor probe: passed ({target}, "
                      f"{run.seconds:.1f} s): {d.root_cause}")
            return
        text = f"maildoctor probe: failed ({target}, {run.seconds:.1f} s): {d.root_cause}"
        if d.code:
            text += f" [{d.code}]"
        if d.fix:
            text += f" | fix: {d.fix}"
        out = d.synapse
        if out.kind not in ("ok", "untested"):
            said = f" with {out.exception}" if out.exception else ""
            text += f" | Synapse: {out.kind}{said}"
        self._log(logging.ERROR, text)
