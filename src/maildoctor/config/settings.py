"""The SMTP settings Synapse derives from a merged config, computed the way Synapse does.

Synapse reads ``email:`` with plain ``dict.get`` and no type checks, so these fields
keep the raw YAML values (a quoted ``"false"`` stays a truthy string). Consumers
decide truthiness as Synapse would, with :func:`truthy`.

Facts (spec/synapse-email.md 1.2, 2.3):
- ``smtp_port`` defaults to 465 when ``force_tls`` is truthy, else 25, only when the key
  is absent; an explicit ``null`` stays ``None``.
- Authentication is required whenever ``smtp_user`` is not ``None`` (even ``""``).
- Twisted attempts AUTH only when the password is truthy.
- The TLS name is ``None`` when ``enable_tls`` is falsy, else ``tlsname or smtp_host``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from maildoctor.secrets import Secret

DEFAULT_APP_NAME = "Matrix"


def truthy(value: Any) -> bool:
    """Python truthiness, which is what Synapse applies to every boolean option."""
    return bool(value)


@dataclass(frozen=True)
class EmailSettings:
    """What Synapse's ``_sendmail`` will use. Raw values; see the module docstring."""

    smtp_host: Any
    smtp_port: Any
    smtp_user: Any
    smtp_pass: Secret | None
    smtp_pass_raw_type: str  # "str", "int", "float", "bool", "NoneType", ... (YAML's choice)
    force_tls: Any
    enable_tls: Any
    require_transport_security: Any
    tlsname_key: Any  # the `tlsname` key as written (None when absent)
    notif_from: Any
    app_name: Any
    email_enabled: bool = True  # Synapse turns email on for any non-empty email: mapping

    # --- what Synapse/Twisted derive -------------------------------------------------

    @property
    def implicit_tls(self) -> bool:
        return truthy(self.force_tls)

    @property
    def starttls_enabled(self) -> bool:
        """Twisted has a TLS context (so upgrades when STARTTLS is offered)."""
        return truthy(self.enable_tls)

    @property
    def require_tls(self) -> bool:
        return truthy(self.require_transport_security)

    @property
    def tls_name(self) -> str | None:
        """Name used for SNI and certificate checks; ``None`` when TLS is off."""
        if not truthy(self.enable_tls):
            return None
        name = self.tlsname_key or self.smtp_host
        return None if name is None else str(name)

    @property
    def require_auth(self) -> bool:
        return self.smtp_user is not None

    @property
    def will_attempt_auth(self) -> bool:
        """Twisted tries AUTH only with a truthy password (and the server offering AUTH)."""
        return bool(self.smtp_pass)

    @property
    def from_string(self) -> str | None:
        """``notif_from % {"app": app_name}`` with Synapse's fallbacks.

        KeyError/TypeError fall back to the raw string; ValueError propagates in Synapse,
        which this returns as ``None`` (the caller reports it).
        """
        if self.notif_from is None:
            return None
        raw = str(self.notif_from)
        try:
            return raw % {"app": self.app_name}
        except (KeyError, TypeError):
            return raw
        except ValueError:
            return None

    @property
    def envelope_from(self) -> str | None:
        """The address part of the formatted From (``parseaddr(from)[1]``), as Synapse uses it.

        Twisted appends ``@<this host's FQDN>`` when it has no ``@``; that is left to callers.
        """
        s = self.from_string
        if s is None:
            return None
        return parseaddr(s)[1]


def email_block(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """``config.get("email")`` with Synapse's ``None -> {}``; non-mappings become ``{}`` here
    (Synapse crashes on them; the linter reports that)."""
    block = config.get("email")
    if isinstance(block, Mapping):
        return block
    return {}


def settings_from_config(config: Mapping[str, Any]) -> EmailSettings:
    """Derive :class:`EmailSettings` from a merged config mapping, as Synapse does."""
    email = email_block(config)
    force_tls = email.get("force_tls", False)
    if "smtp_port" in email:
        port = email.get("smtp_port")
    else:
        port = 465 if truthy(force_tls) else 25
    raw_pass = email.get("smtp_pass")
    secret = None if raw_pass is None else Secret(str(raw_pass))
    return EmailSettings(
        smtp_host=email.get("smtp_host", "localhost"),
        smtp_port=port,
        smtp_user=email.get("smtp_user"),
        smtp_pass=secret,
        smtp_pass_raw_type=type(raw_pass).__name__,
        force_tls=force_tls,
        enable_tls=email.get("enable_tls", True),
        require_transport_security=email.get("require_transport_security", False),
        tlsname_key=email.get("tlsname"),
        notif_from=email.get("notif_from"),
        app_name=email.get("app_name", DEFAULT_APP_NAME),
        email_enabled=bool(email),
    )
