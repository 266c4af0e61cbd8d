"""The settings of a command that talks to the mail server (``send``, ``shell``), refused
with a located message when they cannot be used.

``check`` reports an ``email:`` written as a list or a string (MD107) and a port out of range
(MD202) as findings, because it reads on. A command that must open a connection cannot: it
would crash on them (``'list' object has no attribute 'get'``, ``OverflowError``). So they
stop here as unusable input, exit status 2, like any other config that cannot be used.
"""

from __future__ import annotations

from typing import Any

from maildoctor.config.load import LoadedConfig
from maildoctor.config.settings import EmailSettings, settings_from_config
from maildoctor.errors import ConfigLoadError

__all__ = ["sending_settings"]


def _refuse(config: LoadedConfig, path: tuple[str, ...], message: str) -> ConfigLoadError:
    loc = config.location(path, at="value")
    return ConfigLoadError(message, file=loc.file if loc else None,
                           line=loc.line if loc else None, column=loc.column if loc else None)


def _port_number(value: Any) -> int | None:
    """The TCP port Twisted would connect to, or None when there is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and 1 <= value <= 65535 else None


def sending_settings(config: LoadedConfig) -> EmailSettings:
    """:func:`settings_from_config`, after checking what a connection needs."""
    email = config.merged.get("email")
    if email is not None and not isinstance(email, dict):
        raise _refuse(config, ("email",),
                      f"email: is a {type(email).__name__}, not a mapping of settings "
                      "(Synapse would not start; `maildoctor check` says more)")
    settings = settings_from_config(config.merged)
    if _port_number(settings.smtp_port) is None:
        shown = str(settings.smtp_port)
        shown = shown if len(shown) <= 30 else shown[:27] + "..."
        raise _refuse(config, ("email", "smtp_port"),
                      f"smtp_port {shown} is not a TCP port (1-65535)")
    if not isinstance(settings.smtp_host, str) or not settings.smtp_host.strip():
        raise _refuse(config, ("email", "smtp_host"), "smtp_host is not a host name")
    return settings
