"""What old Synapse releases did at startup, and silently, with a config: facts with sources.

``--synapse-version`` (or the version of the installation maildoctor found) makes ``check``
reason as that release. The key tables (:mod:`.data`) say which keys a release reads;
this table adds the *startup checks* and *silent behaviours* that existed in some releases
only, back to 1.0, and :data:`KEY_SOURCES` says where the version of each key's arrival was
read. Data only; every fact names its source (a changelog entry, an issue, a pull request,
or the spec file recorded from Synapse's source). Facts that could not be sourced are left
out, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from maildoctor.config.schema.model import Version

__all__ = ["KEY_SOURCES", "RELEASE_FACTS", "ReleaseFact"]

V = Version
_CHANGES_2020 = "Synapse docs/changelogs/CHANGES-2020.md"


@dataclass(frozen=True)
class ReleaseFact:
    """A behaviour of the releases ``since <= version < until``.

    ``kind`` is ``startup`` (Synapse refuses to start: ``said`` is its message) or
    ``silent`` (accepted, and it goes wrong later). ``needs`` are the ``email:`` keys whose
    absence triggers it, ``needs_top`` the same for top-level keys (an empty value counts
    as absent), ``when`` the ``email:`` key that must be truthy for it to apply.
    """

    key: str
    since: Version
    until: Version
    kind: str
    when: str
    needs: tuple[str, ...]
    said: str
    fix: str
    source: str
    needs_top: tuple[str, ...] = ()


RELEASE_FACTS: tuple[ReleaseFact, ...] = (
    ReleaseFact(
        key="notif-required-keys",
        since=V(1, 0, 0),  # and earlier: the check dates from the 0.x series (#4195, 0.33.8)
        until=V(1, 12, 0),
        kind="startup",
        when="enable_notifs",
        needs=("smtp_host", "smtp_port", "notif_from", "notif_template_html",
               "notif_template_text"),
        said="RuntimeError: email.enable_notifs is True but required keys are missing: {keys}",
        fix="add the missing keys (notif_template_html: notif_mail.html and "
            "notif_template_text: notif_mail.txt name the bundled templates), or upgrade "
            "to Synapse 1.12.0 or later, which gives them defaults",
        source="https://github.com/matrix-org/synapse/issues/6551 (reported on 1.6.1, and on "
               "1.9.0), https://github.com/matrix-org/synapse/issues/6960; fixed by "
               "https://github.com/matrix-org/synapse/pull/6962, listed in Synapse "
               f"1.12.0rc1 (2020-03-19) in {_CHANGES_2020}",
    ),
    ReleaseFact(
        key="notif-public-baseurl-runtime",
        since=V(1, 0, 0),
        until=V(1, 12, 0),
        kind="startup",
        when="enable_notifs",
        needs=(),
        needs_top=("public_baseurl",),
        said="RuntimeError: email.enable_notifs is True but no public_baseurl is set",
        fix="set public_baseurl (the URL clients use, e.g. https://matrix.example.org/)",
        source="https://github.com/matrix-org/synapse/issues/3935 (the error as reported); "
               "made a ConfigError by https://github.com/matrix-org/synapse/pull/6962 in "
               f"1.12.0rc1 ({_CHANGES_2020})",
    ),
    ReleaseFact(
        key="notif-public-baseurl",
        since=V(1, 12, 0),
        until=V(1, 47, 0),
        kind="startup",
        when="enable_notifs",
        needs=(),
        needs_top=("public_baseurl",),
        said="Error in configuration: email.enable_notifs is True but required keys are "
             "missing: public_baseurl",
        fix="set public_baseurl (the URL clients use, e.g. https://matrix.example.org/)",
        source="spec/synapse-email.md section 5 (#3935: a startup error before 1.47); the "
               "ConfigError form from https://github.com/matrix-org/synapse/pull/6962",
    ),
)

#: Where the release that introduced (or changed) a key was read.
KEY_SOURCES: MappingProxyType[str, str] = MappingProxyType({
    "enable_tls": "Synapse 1.41.0, commit 74d7336686e7 'a setting to disable TLS for sending "
                  "email', cited in https://github.com/matrix-org/synapse/issues/10709",
    "force_tls": "Synapse 1.64.0; requested in https://github.com/matrix-org/synapse/issues/8046 "
                 "(spec/synapse-email.md section 5)",
    "tlsname": "Synapse 1.122.0, https://github.com/element-hq/synapse/pull/17849",
    "smtp_host": "HostnameEndpoint from Synapse 1.92.0, "
                 "https://github.com/matrix-org/synapse/pull/16155",
    "notif_template_html": f"optional (default notif_mail.html) from 1.12.0: {_CHANGES_2020}, "
                           "#6962",
    "notif_template_text": f"optional (default notif_mail.txt) from 1.12.0: {_CHANGES_2020}, "
                           "#6962",
})
