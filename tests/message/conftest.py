"""Builders shared by the message and template tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from maildoctor.config.settings import settings_from_config
from maildoctor.config.templates import TemplateSet
from maildoctor.synapse.mail.message import BuiltMessage, build_message

BASE_CONFIG: dict[str, Any] = {
    "server_name": "example.org",
    "email": {"smtp_host": "127.0.0.1", "notif_from": "Example %(app)s <noreply@example.org>"},
}

Build = Callable[..., BuiltMessage]


@pytest.fixture
def build() -> Build:
    """Build a mail of ``kind`` for a config made of BASE_CONFIG with ``email`` overrides."""

    def _build(kind: str, *, email: Mapping[str, Any] | None = None, to: str = "alice@example.org",
               public_baseurl: str | None = None, **kwargs: Any) -> BuiltMessage:
        config = {**BASE_CONFIG, "email": {**BASE_CONFIG["email"], **(email or {})}}
        subjects = config["email"].get("subjects")
        return build_message(
            kind, settings_from_config(config), to=to, server_name="example.org",
            public_baseurl=public_baseurl, subjects=subjects,
            templates=TemplateSet.from_config(config), msgid_domain="maildoctor.test", **kwargs)

    return _build
