"""A JSON Schema (draft 2020-12) of Synapse's ``email:`` section, built from the schema tables.

Why our own: Synapse's published schema has no ``additionalProperties: false`` on
``email`` (so ``smpt_pass`` passes it), types ``smtp_port`` as a string, documents fewer
keys than Synapse reads, and lacks the version facts. This one is generated from
:mod:`maildoctor.config.schema` for one Synapse version, so an editor running
yaml-language-server flags the same typos and wrong types ``maildoctor check`` does, as
you type. It cannot replace ``check`` (no file merging, no YAML 1.1 quirks, no DNS or
template checks); it catches what a schema can.

Two shapes: :func:`email_schema` validates the ``email:`` mapping itself;
:func:`whole_file_schema` validates a whole homeserver.yaml, where every other top-level
key stays allowed (``additionalProperties: true``) because this schema only knows email.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maildoctor.config.schema import (
    NEWEST,
    KeySpec,
    SubjectSpec,
    VersionLike,
    email_keys_for,
    subject_keys_for,
)
from maildoctor.config.schema.model import as_version

__all__ = ["DRAFT", "email_schema", "whole_file_schema"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"

_DURATION = {"anyOf": [{"type": "integer", "minimum": 0},
                       {"type": "string", "pattern": r"^\d+(ms|s|m|h|d|w|y)?$"}]}
_SIMPLE = {"str": "string", "int": "integer", "bool": "boolean", "mapping": "object",
           "list": "array", "null": "null"}


def _types(spec: KeySpec) -> dict[str, Any]:
    if "duration" in spec.types:
        return dict(_DURATION)
    names = [_SIMPLE[t] for t in spec.types]
    schema: dict[str, Any] = {"type": names[0] if len(names) == 1 else names}
    if spec.name == "smtp_port":
        schema.update(minimum=1, maximum=65535, examples=[587, 465, 25, 2525])
    return schema


def _is_json_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _description(spec: KeySpec) -> str:
    parts = [spec.summary]
    if spec.default_note:
        parts.append(f"Default: {spec.default_note}.")
    elif spec.default is not None and _is_json_scalar(spec.default):
        parts.append(f"Default: {spec.default!r}.")
    if spec.added is not None:
        parts.append(f"Since Synapse {spec.added}.")
    if spec.deprecated is not None:
        use = f" Use {spec.replacement} instead." if spec.replacement else ""
        parts.append(f"Deprecated since Synapse {spec.deprecated}.{use}")
    elif spec.legacy:
        use = f" Prefer {spec.replacement}." if spec.replacement else ""
        parts.append(f"Legacy, undocumented key.{use}")
    if spec.read_when:
        parts.append(f"Read {spec.read_when}.")
    parts.extend(change_note for change_note in
                 (f"Changed in {c.version}: {c.what}" for c in spec.history))
    parts.extend(spec.notes)
    if spec.load_errors:
        parts.append("Synapse refuses to start with: " + "; ".join(spec.load_errors))
    return " ".join(parts)


def _key_schema(spec: KeySpec) -> dict[str, Any]:
    schema = _types(spec)
    description = _description(spec)
    schema["description"] = description
    if _is_json_scalar(spec.default) and spec.default is not None:
        schema["default"] = spec.default
    if spec.deprecated is not None or spec.legacy:
        schema["deprecated"] = True
    if spec.secret:
        schema["writeOnly"] = True
    return schema


def _subject_pattern(placeholders: frozenset[str]) -> str:
    names = "|".join(sorted(placeholders))
    return rf"^(?:[^%]|%%|%\((?:{names})\)s)*$"


def _subject_schema(spec: SubjectSpec) -> dict[str, Any]:
    available = ", ".join(f"%({p})s" for p in sorted(spec.placeholders))
    description = (f"{spec.summary} Used for: {spec.used_for}. Placeholders: {available} "
                   "(any other one fails at send time; write %% for a literal %).")
    if spec.added is not None:
        description += f" Since Synapse {spec.added}."
    return {"type": "string", "default": spec.default, "description": description,
            "pattern": _subject_pattern(spec.placeholders)}


def _subjects(version: VersionLike, base: Mapping[str, Any]) -> dict[str, Any]:
    subjects = subject_keys_for(version)
    return {**base, "type": "object", "additionalProperties": False,
            "properties": {name: _subject_schema(s) for name, s in subjects.items()}}


# Cross-key rules Synapse enforces at startup (spec 6.1) or that always hang (6.2).
_RULES: list[dict[str, Any]] = [
    {"if": {"minProperties": 1}, "then": {"required": ["notif_from"]},
     "description": "A non-empty email: block turns on email verification, which needs "
                    "notif_from (Synapse refuses to start without it)."},
    {"if": {"required": ["force_tls"], "properties": {"force_tls": {"const": True}}},
     "then": {"properties": {"enable_tls": {"not": {"const": False}}}},
     "description": "force_tls requires enable_tls (Synapse refuses to start)."},
    {"if": {"required": ["require_transport_security"],
            "properties": {"require_transport_security": {"const": True}}},
     "then": {"properties": {"enable_tls": {"not": {"const": False}}}},
     "description": "require_transport_security requires enable_tls (Synapse refuses to "
                    "start)."},
    {"if": {"required": ["smtp_port"], "properties": {"smtp_port": {"const": 465}}},
     "then": {"required": ["force_tls"], "properties": {"force_tls": {"const": True}}},
     "description": "Port 465 speaks implicit TLS: without force_tls every send hangs."},
]


def email_schema(version: VersionLike = NEWEST, *, standalone: bool = True) -> dict[str, Any]:
    """The schema of the ``email:`` mapping as Synapse ``version`` reads it.

    Keys that version does not read are rejected (``additionalProperties: false``), so
    typos like ``smpt_pass`` and keys from other versions are flagged.
    """
    v = as_version(version)
    properties: dict[str, Any] = {}
    for name, spec in email_keys_for(v).items():
        if name == "subjects":
            properties[name] = _subjects(v, {"description": _description(spec)})
        else:
            properties[name] = _key_schema(spec)
    schema: dict[str, Any] = {
        "title": f"Synapse email settings (Synapse {v})",
        "description": "The email: section of homeserver.yaml, as Synapse "
                       f"{v} reads it. Generated by `maildoctor schema`.",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "allOf": _RULES,
    }
    return {"$schema": DRAFT, **schema} if standalone else schema


def whole_file_schema(version: VersionLike = NEWEST) -> dict[str, Any]:
    """A schema for a whole homeserver.yaml: ``email`` checked, every other key allowed."""
    v = as_version(version)
    email = email_schema(v, standalone=False)
    return {
        "$schema": DRAFT,
        "title": f"Synapse homeserver.yaml (email section checked, Synapse {v})",
        "type": "object",
        "additionalProperties": True,
        "properties": {"email": {"anyOf": [{"$ref": "#/$defs/email"}, {"type": "null"}],
                                 "description": email["description"]}},
        "$defs": {"email": email},
    }
