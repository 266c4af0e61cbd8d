"""The links Synapse puts in its mails (facts in spec/after-the-250.md), from the config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# (kind, path after public_baseurl, whether Synapse must answer it itself)
SYNAPSE_LINKS = (
    ("password-reset", "_synapse/client/password_reset/email/submit_token"),
    ("registration", "_matrix/client/unstable/registration/email/submit_token"),
    ("add-threepid", "_matrix/client/unstable/add_threepid/email/submit_token"),
    ("unsubscribe", "_synapse/client/unsubscribe"),
)


@dataclass(frozen=True)
class Link:
    kind: str
    url: str
    key: str  # the config key the link comes from
    synapse: bool  # True: Synapse must answer it; False: a web client (any working page)

    @property
    def prefix(self) -> str:
        """The proxy location this link needs (``/_synapse/client`` or ``/_matrix``)."""
        path = self.url.split("://", 1)[-1].partition("/")[2]
        return "/" + "/".join(path.split("/")[:2]) if self.synapse else ""


def public_baseurl(config: Mapping[str, Any]) -> str:
    """Synapse's ``public_baseurl`` with its default (``https://<server_name>/``) and the
    trailing slash it adds."""
    base = config.get("public_baseurl")
    if not isinstance(base, str) or not base.strip():
        name = config.get("server_name")
        base = f"https://{name}/" if isinstance(name, str) and name else ""
    return base if not base or base.endswith("/") else base + "/"


def links_from_config(config: Mapping[str, Any]) -> list[Link]:
    base = public_baseurl(config)
    out = [Link(kind, base + path, "public_baseurl", True) for kind, path in SYNAPSE_LINKS] \
        if base else []
    email = config.get("email")
    email = email if isinstance(email, Mapping) else {}
    for key in ("client_base_url", "invite_client_location"):
        value = email.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            out.append(Link(key.replace("_", "-"), value, f"email.{key}", False))
    return out
