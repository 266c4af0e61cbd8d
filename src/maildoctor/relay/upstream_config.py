"""Refuse, before anything listens, an upstream config the relay could never deliver with.

Synapse reads ``email:`` with ``dict.get`` and no type checks, and maildoctor's
``settings_from_config`` reproduces that faithfully: an ``email:`` that is a list, a string or
null reads as "no settings", which means ``localhost:25``. For ``check`` that is the truth to
report; for ``relay run`` it would mean answering ``250`` to Synapse and then failing every
delivery for days (an ``smtp_port`` of 70000 crashed each attempt with OverflowError). So
``relay run`` checks the shapes here and exits 2 with the place to fix.
"""

from __future__ import annotations

from maildoctor.config.load import LoadedConfig
from maildoctor.errors import ConfigLoadError

_SCALAR_KEYS = ("smtp_host", "smtp_user", "smtp_pass", "tlsname", "notif_from")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _fail(loaded: LoadedConfig, path: tuple[str, ...], message: str, hint: str, *,
          at: str = "value") -> ConfigLoadError:
    location = loaded.location(path, at=at)
    if location is None:
        first = next((f.path for f in loaded.files), None)
        return ConfigLoadError(message, file=first, hint=hint)
    return ConfigLoadError(message, file=location.file, line=location.line,
                           column=location.column, hint=hint)


def check_upstream(loaded: LoadedConfig, what: str = "the relay's config") -> None:
    """Raise :class:`ConfigLoadError` (located) unless ``loaded`` describes a usable
    upstream."""
    hint = ("the relay's config is a Synapse-style file whose email: block names the "
            "upstream server, e.g. `maildoctor init --provider NAME` prints one")
    if "email" not in loaded.merged:
        files = ", ".join(f.path for f in loaded.files) or "(no file)"
        empty = not any(f.used for f in loaded.files)
        raise ConfigLoadError(
            f"{what} ({files}) {'is empty' if empty else 'has no email: block'}: the relay "
            "would not know where to deliver", hint=hint)
    email = loaded.merged["email"]
    if not isinstance(email, dict):
        raise _fail(loaded, ("email",), f"email: is {_kind(email)}, not a mapping of "
                    "settings (smtp_host, smtp_port, ...)", hint)
    if not email:
        raise _fail(loaded, ("email",), "email: is empty: the relay would not know where to "
                    "deliver", hint)
    for key in _SCALAR_KEYS:
        if key in email and isinstance(email[key], list | dict):
            raise _fail(loaded, ("email", key), f"email.{key} is {_kind(email[key])}; "
                        "it must be a single value", "write one value on the key's line")
    host = email.get("smtp_host", "localhost")
    if not isinstance(host, str) or not host.strip():
        raise _fail(loaded, ("email", "smtp_host"), f"email.smtp_host is {_kind(host)}"
                    f"{' (empty)' if host == '' else ''}; it must be the upstream server's "
                    "host name", "for example smtp_host: smtp.example.org")
    if "smtp_port" in email:
        port = email["smtp_port"]
        if isinstance(port, bool) or not isinstance(port, int):
            raise _fail(loaded, ("email", "smtp_port"), f"email.smtp_port is {_kind(port)} "
                        f"({port!r}), not a port number",
                        "write the number without quotes, e.g. smtp_port: 587")
        if not 1 <= port <= 65535:
            raise _fail(loaded, ("email", "smtp_port"), f"email.smtp_port {port} is out of "
                        "range (1 to 65535)", "587 for STARTTLS, 465 with force_tls: true")
