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

__all__ = ["ConfigAdvice", "Provider", "ProviderDataError", "SenderCheck", "SenderDns",
           "TlsMode"]

#: How Synapse must talk TLS to the provider: implicit TLS (``force_tls: true``), an
#: opportunistic STARTTLS upgrade that we make mandatory (``require_transport_security``),
#: or no TLS at all (``enable_tls: false``, for loopback and container-network relays).
TlsMode = Literal["force_tls", "starttls", "none"]

_TLS_MODES: tuple[TlsMode, ...] = ("force_tls", "starttls", "none")

#: The part of a provider's sender rule that a config alone can check: notif_from's address
#: must be the login address itself (Gmail, Zoho: ``account``), or share the login's domain
#: or a parent/subdomain of it (Mailgun's sending domain: ``domain``). Rules that depend on
#: what was verified in the provider's console (SES, SendGrid) are not checkable here.
SenderCheck = Literal["account", "domain"]

_SENDER_CHECKS: tuple[SenderCheck, ...] = ("account", "domain")


class ProviderDataError(ValueError):
    """A provider data file is malformed (a bug in maildoctor's data, not in the user's input)."""


@dataclass(frozen=True, slots=True)
class SenderDns:
    """What the provider tells its customers to publish in DNS, so receivers accept the mail.

    ``spf_include`` is the ``include:`` domain for the customer's SPF record (None when the
    provider publishes SPF for its own bounce domain only); ``dkim_selectors`` are the
    selector names under ``_domainkey.<your domain>`` the provider documents (empty when the
    selector is chosen per account: ``dkim_note`` says where to find it);
    ``envelope_rewritten`` is true when the provider puts its own bounce domain in MAIL FROM
    unless a custom return-path domain is set up, so SPF cannot align with notif_from's
    domain. ``sources`` are the provider documents these facts were checked against.
    """

    spf_include: str | None = None
    dkim_selectors: tuple[str, ...] = ()
    dkim_note: str = ""
    envelope_rewritten: bool = False
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConfigAdvice:
    """One way an ``email:`` mapping breaks a provider's rules (see ``advice_for_config``).

    ``key`` is the ``email:`` key to point at (``""``: the block itself, for a missing
    key); ``value`` is the value that key must have when the provider fixes it (SendGrid's
    ``apikey``), else None; ``blocking`` says whether the provider refuses the mail (an
    error) rather than rewrites or may accept it (a warning).
    """

    key: str
    message: str
    consequence: str
    fix: str
    blocking: bool
    value: str | None = None


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
    sender_check: SenderCheck | None = None
    login_optional_on: tuple[str, ...] = ()
    host_patterns: tuple[str, ...] = ()
    match_port: int | None = None
    default_region: str | None = None
    region_pattern: str | None = None
    sender_dns: SenderDns | None = None

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
        """The fix the reply catalogue gives for an SMTP reply from this provider, or None.

        The catalogue (``providers/data/replies``) is the one place replies are explained;
        this provider's name lets its provider-only entries (a bare ``535``) apply.
        """
        from maildoctor.replies import Reply
        from maildoctor.reply_catalogue import lookup

        entry = lookup(Reply(reply_code, reply_text), provider=self.name)
        return None if entry is None else entry.fix

    def advice_for_config(self, email: Mapping[str, Any],
                          sender: str | None = None) -> list[ConfigAdvice]:
        """Provider-specific problems in an ``email:`` mapping, for a ``check`` rule.

        Only facts the provider file states: a fixed login (SendGrid's ``apikey``), whether
        a login is needed at all, and the checkable part of its sender rule
        (``sender_check``), applied to ``sender``: the envelope address Synapse derives
        from notif_from (``EmailSettings.envelope_from``).
        """
        advice: list[ConfigAdvice] = []
        user = email.get("smtp_user")
        fixed = self.fixed_user
        if self.auth and user is None and not self._login_optional(email.get("smtp_host")):
            advice.append(ConfigAdvice(
                "", f"{self.title} needs a login, but smtp_user is not set",
                "Synapse sends without logging in, and the provider refuses the mail "
                "(typically 530 Authentication required).",
                f"Add smtp_user: {self.user_help or 'the login'}; and smtp_pass: "
                f"{self.password_help or 'the password'}.", blocking=True))
        elif fixed is not None and user != fixed:
            advice.append(ConfigAdvice(
                "smtp_user", f"{self.title} needs `smtp_user: {fixed}`, not {_shown(user)}",
                f"smtp_user must be {self.user_help or fixed}; the provider refuses any other "
                "login and Synapse fails with `twisted.mail._except.AUTHDeclinedError: 535 ...`.",
                f"Set `smtp_user: {fixed}`.", blocking=True, value=fixed))
        problem = self._sender_problem(user, sender)
        if problem:
            rules = " ".join(r for r in self.sender_rules if r.startswith("notif_from"))
            advice.append(ConfigAdvice("notif_from", problem, rules, self._sender_fix(user),
                                       blocking=False))
        return advice

    def _login_optional(self, host: object) -> bool:
        """Whether ``host`` is one where the provider may accept mail without a login
        (Microsoft 365 connectors, Google's relay with an IP allow-list)."""
        if not isinstance(host, str):
            return False
        name = host.strip().rstrip(".").lower()
        return any(fnmatch.fnmatchcase(name, p.lower()) for p in self.login_optional_on)

    def _sender_problem(self, user: object, sender: str | None) -> str | None:
        if self.sender_check is None or not isinstance(user, str) or "@" not in user:
            return None
        if not sender or "@" not in sender:
            return None  # no address (MD402/MD404 report that)
        login, address = user.strip().lower(), sender.strip().lower()
        if self.sender_check == "account":
            if address == login:
                return None
            return (f"{self.title} sends as the account itself: notif_from's address "
                    f"{sender!r} is not smtp_user {user!r}")
        own, theirs = login.rpartition("@")[2], address.rpartition("@")[2]
        aligned = own.endswith("." + theirs) and "." in theirs
        if own == theirs or aligned or theirs.endswith("." + own):
            return None
        return (f"{self.title} sends for the login's domain: notif_from's address {sender!r} "
                f"is not in {own!r}")

    def _sender_fix(self, user: object) -> str:
        if self.sender_check == "account":
            return (f'Set notif_from to "%(app)s <{user}>", or to an alias the account may '
                    "send as.")
        domain = str(user).rpartition("@")[2]
        return f"Use an address in {domain} (the login's sending domain) in notif_from."

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
                "sender_check": _sender_check(data, source),
                "sender_dns": _sender_dns(data.get("sender_dns"), source),
            }
            for key in ("user_example", "user_help", "password_help"):
                fields[key] = str(data.get(key, ""))
            for key in ("alternatives", "auth_notes", "sender_rules", "host_patterns",
                        "login_optional_on"):
                fields[key] = tuple(str(item) for item in data.get(key, ()))
        except (TypeError, re.error) as exc:
            raise ProviderDataError(f"{source}: {exc}") from exc
        provider = cls(**fields)
        if provider.regional and not provider.default_region:
            raise ProviderDataError(f"{source}: a regional host needs default_region")
        return provider


def _shown(user: object) -> str:
    """``smtp_user`` for a message: an address is shown, anything else is not, since a key
    pasted into the wrong field (SendGrid's ``SG.…`` key as the login) is a secret."""
    if isinstance(user, str) and "@" in user and " " not in user.strip():
        return repr(user)
    return "the value given"


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


def _sender_check(data: Mapping[str, Any], source: str) -> SenderCheck | None:
    value = data.get("sender_check")
    if value is None:
        return None
    for check in _SENDER_CHECKS:
        if value == check:
            return check
    raise ProviderDataError(f"{source}: sender_check must be one of {', '.join(_SENDER_CHECKS)}")


def _sender_dns(item: Any, source: str) -> SenderDns | None:
    if item is None:
        return None
    known = set(SenderDns.__dataclass_fields__)
    if not isinstance(item, Mapping) or set(item) - known:
        raise ProviderDataError(f"{source}: sender_dns takes only {sorted(known)}")
    include = item.get("spf_include")
    if include is not None and (not isinstance(include, str) or " " in include):
        raise ProviderDataError(f"{source}: sender_dns.spf_include must be one domain")
    if not item.get("sources"):
        raise ProviderDataError(f"{source}: sender_dns needs sources (the provider's docs)")
    return SenderDns(
        spf_include=include,
        dkim_selectors=tuple(str(s) for s in item.get("dkim_selectors", ())),
        dkim_note=str(item.get("dkim_note", "")),
        envelope_rewritten=bool(item.get("envelope_rewritten", False)),
        sources=tuple(str(s) for s in item["sources"]),
    )
