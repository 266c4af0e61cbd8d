"""The record types of the provider library, and the one place that validates its data files.

Why data files: provider facts (hosts, ports, what the user name looks like, which reply
means "use an app password") change with the providers, not with maildoctor's code, and
admins can read and correct a YAML file without reading Python. This module turns one
file's mapping into a frozen :class:`Provider` and refuses a malformed file loudly, so a
typo in the data breaks the test suite rather than a user's ``init``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Hint", "Provider", "ProviderDataError", "TlsMode"]

#: How Synapse must talk TLS to the provider: implicit TLS (``force_tls: true``), an
#: opportunistic STARTTLS upgrade that we make mandatory (``require_transport_security``),
#: or no TLS at all (``enable_tls: false``, for loopback and container-network relays).
TlsMode = Literal["force_tls", "starttls", "none"]

_TLS_MODES: tuple[TlsMode, ...] = ("force_tls", "starttls", "none")


class ProviderDataError(ValueError):
    """A provider data file is malformed (a bug in maildoctor's data, not in the user's input)."""


@dataclass(frozen=True, slots=True)
class Hint:
    """Advice for one failure: an SMTP reply ``code`` and optionally a regex on its text."""

    code: int
    hint: str
    match: re.Pattern[str] | None = None

    def applies(self, reply_code: int, reply_text: str) -> bool:
        if reply_code != self.code:
            return False
        return self.match is None or self.match.search(reply_text) is not None


@dataclass(frozen=True, slots=True)
class Provider:
    """One mail provider (or local relay) as Synapse should be configured for it.

    ``host`` may contain ``{region}`` (Amazon SES); :meth:`host_for` fills it in.
    ``user`` is the form of ``smtp_user``: either a fixed string (SendGrid's ``apikey``)
    or ``"{user}"``, meaning the admin's own login, shown as ``user_example`` until given.
    ``auth`` is false for relays that take mail without a login.
    """

    name: str
    title: str
    note: str
    host: str
    port: int
    tls: TlsMode
    auth: bool = True
    user: str = "{user}"
    user_example: str = ""
    user_help: str = ""
    password_help: str = ""
    alternatives: tuple[str, ...] = ()
    auth_notes: tuple[str, ...] = ()
    sender_rules: tuple[str, ...] = ()
    host_patterns: tuple[str, ...] = ()
    match_port: int | None = None
    default_region: str | None = None
    region_pattern: str | None = None
    hints: tuple[Hint, ...] = ()

    @property
    def regional(self) -> bool:
        return "{region}" in self.host

    @property
    def fixed_user(self) -> str | None:
        """The literal ``smtp_user`` every account uses, or None when it is the admin's own."""
        return None if "{user}" in self.user else self.user

    def host_for(self, region: str | None = None) -> str:
        """The SMTP host, with ``{region}`` filled in (default region when none is given)."""
        if not self.regional:
            if region is not None:
                raise ValueError(f"provider {self.name} has no regions")
            return self.host
        chosen = region or self.default_region or ""
        if self.region_pattern and not re.fullmatch(self.region_pattern, chosen):
            raise ValueError(f"{chosen!r} does not look like a region of {self.name} "
                             f"(e.g. {self.default_region})")
        return self.host.replace("{region}", chosen)

    def matches_host(self, host: str, port: int | None = None) -> bool:
        """Whether ``host`` (as written in ``smtp_host``) is one of this provider's hosts.

        Patterns are shell globs, compared case-insensitively. ``match_port`` narrows a
        shared host (Proton Bridge and a local Postfix both live on 127.0.0.1).
        """
        name = host.strip().rstrip(".").lower()
        if not any(fnmatch.fnmatchcase(name, p.lower()) for p in self.host_patterns):
            return False
        return self.match_port is None or port == self.match_port

    def hint_for(self, reply_code: int, reply_text: str) -> str | None:
        """This provider's advice for an SMTP reply, or None.

        The first hint whose code matches and whose pattern (if any) occurs in the text
        wins, so files list specific hints before generic ones for the same code.
        """
        for hint in self.hints:
            if hint.applies(reply_code, reply_text):
                return hint.hint
        return None

    def advice_for_config(self, email: Mapping[str, Any]) -> list[str]:
        """Provider-specific problems in an ``email:`` mapping, for a ``check`` rule.

        Only facts the provider file states: a fixed login (SendGrid's ``apikey``) and
        whether a login is needed at all.
        """
        advice: list[str] = []
        user = email.get("smtp_user")
        fixed = self.fixed_user
        if self.auth and user is None:
            advice.append(f"{self.title} needs a login: set smtp_user ({self.user_help}) "
                          "and smtp_pass.")
        elif fixed is not None and user != fixed:
            advice.append(f"{self.title} needs smtp_user: {fixed!r} ({self.user_help}).")
        return advice

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> Provider:
        """Build a provider from one data file's mapping; raise :class:`ProviderDataError`."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ProviderDataError(f"{source}: unknown fields {sorted(unknown)}")
        try:
            fields: dict[str, Any] = {
                "name": _str(data, "name", source),
                "title": _str(data, "title", source),
                "note": _str(data, "note", source),
                "host": _str(data, "host", source),
                "port": _int(data, "port", source),
                "tls": _tls(data, source),
                "auth": bool(data.get("auth", True)),
                "user": str(data.get("user", "{user}")),
                "match_port": data.get("match_port"),
                "default_region": data.get("default_region"),
                "region_pattern": data.get("region_pattern"),
                "hints": tuple(_hint(h, source) for h in data.get("hints", ())),
            }
            for key in ("user_example", "user_help", "password_help"):
                fields[key] = str(data.get(key, ""))
            for key in ("alternatives", "auth_notes", "sender_rules", "host_patterns"):
                fields[key] = tuple(str(item) for item in data.get(key, ()))
        except (TypeError, re.error) as exc:
            raise ProviderDataError(f"{source}: {exc}") from exc
        provider = cls(**fields)
        if provider.regional and not provider.default_region:
            raise ProviderDataError(f"{source}: a regional host needs default_region")
        return provider


def _str(data: Mapping[str, Any], key: str, source: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ProviderDataError(f"{source}: {key} must be a non-empty string")
    return value


def _int(data: Mapping[str, Any], key: str, source: str) -> int:
    value = data.get(key)
    if type(value) is not int or not 0 < value < 65536:
        raise ProviderDataError(f"{source}: {key} must be a port number")
    return value


def _tls(data: Mapping[str, Any], source: str) -> TlsMode:
    value = data.get("tls")
    for mode in _TLS_MODES:
        if value == mode:
            return mode
    raise ProviderDataError(f"{source}: tls must be one of {', '.join(_TLS_MODES)}")


def _hint(item: Any, source: str) -> Hint:
    if not isinstance(item, Mapping) or type(item.get("code")) is not int:
        raise ProviderDataError(f"{source}: each hint needs an integer code")
    pattern = item.get("match")
    compiled = re.compile(str(pattern), re.IGNORECASE) if pattern else None
    return Hint(code=item["code"], hint=_str(item, "hint", source), match=compiled)
