"""Email templates found and rendered the way Synapse finds and renders them.

On the config floor because Synapse loads and compiles its templates while it reads its
config (``EmailConfig.read_config``): a missing file or a syntax error is a startup error,
which ``check`` reports (MD505, MD506, MD511). Mails are built from them in
:mod:`maildoctor.synapse.mail`.

Facts this module reproduces (spec/synapse-email.md 1.1, 1.2, 1.4, 2.1, 4.3):

- Synapse looks a template name up in ``templates.custom_template_directory``, then in
  ``email.template_dir`` (made absolute against the working directory), then in its own
  built-in directory. We stand in for that last directory with our own templates
  (``maildoctor/config/builtin_templates``), written from the variable lists, not copied.
- Which files are loaded depends on the config: the 15 verification/reset templates when
  ``email:`` is non-empty, the notification pair when ``enable_notifs`` is truthy, the expiry
  pair when ``account_validity.renew_at`` is present.
- Undocumented legacy keys under ``email:`` choose the file names. Synapse reads the text
  "already in use" template from the key ``already_in_use_template_html`` (a Synapse bug),
  so setting that key makes the plain-text part the rendered HTML file.
- The Jinja environment escapes ``.html`` and not ``.txt`` (``select_autoescape``), is lenient
  about undefined variables (they render as empty text), has ``server_name`` as a global and
  the filters ``format_ts`` and ``mxc_to_http``.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import jinja2

from maildoctor.diagnostics import Severity

BUILTIN_DIR = Path(__file__).with_name("builtin_templates")

# Groups of templates Synapse loads at startup, and what switches each on.
VERIFICATION, NOTIF, EXPIRY = "verification", "notif", "expiry"


@dataclass(frozen=True)
class Role:
    """One template Synapse loads: its legacy filename key and default file name."""

    name: str
    key: str | None  # the email.* key that overrides the file name; None: not configurable
    default: str
    group: str


ROLES: tuple[Role, ...] = (
    Role("password_reset_html", "password_reset_template_html", "password_reset.html",
         VERIFICATION),
    Role("password_reset_text", "password_reset_template_text", "password_reset.txt",
         VERIFICATION),
    Role("registration_html", "registration_template_html", "registration.html", VERIFICATION),
    Role("registration_text", "registration_template_text", "registration.txt", VERIFICATION),
    Role("add_threepid_html", "add_threepid_template_html", "add_threepid.html", VERIFICATION),
    Role("add_threepid_text", "add_threepid_template_text", "add_threepid.txt", VERIFICATION),
    Role("already_in_use_html", "already_in_use_template_html", "already_in_use.html",
         VERIFICATION),
    # Synapse's bug: the text template's file name comes from the *html* key.
    Role("already_in_use_text", "already_in_use_template_html", "already_in_use.txt",
         VERIFICATION),
    Role("password_reset_confirmation_html", None, "password_reset_confirmation.html",
         VERIFICATION),
    Role("password_reset_failure_html", "password_reset_template_failure_html",
         "password_reset_failure.html", VERIFICATION),
    Role("registration_failure_html", "registration_template_failure_html",
         "registration_failure.html", VERIFICATION),
    Role("add_threepid_failure_html", "add_threepid_template_failure_html",
         "add_threepid_failure.html", VERIFICATION),
    Role("password_reset_success_html", "password_reset_template_success_html",
         "password_reset_success.html", VERIFICATION),
    Role("registration_success_html", "registration_template_success_html",
         "registration_success.html", VERIFICATION),
    Role("add_threepid_success_html", "add_threepid_template_success_html",
         "add_threepid_success.html", VERIFICATION),
    Role("notif_html", "notif_template_html", "notif_mail.html", NOTIF),
    Role("notif_text", "notif_template_text", "notif_mail.txt", NOTIF),
    Role("expiry_html", "expiry_template_html", "notice_expiry.html", EXPIRY),
    Role("expiry_text", "expiry_template_text", "notice_expiry.txt", EXPIRY),
)
ROLES_BY_NAME: dict[str, Role] = {r.name: r for r in ROLES}

# File names Synapse ships in synapse/res/templates that email templates commonly
# extend or include. A custom template referring to one of these works in Synapse even
# though maildoctor does not ship a file of that name.
SYNAPSE_BUILTIN_NAMES = frozenset({
    "_base.html", "mail.css", "mail-Element.css", "mail-Vector.css", "mail-expiry.css",
    "notif.html", "notif.txt", "room.html", "room.txt", "style.css", "sso.css",
    "sso_footer.html", "fragments/room.html", "fragments/room.txt", "fragments/header.html",
    *(r.default for r in ROLES),
})


def format_ts(value_ms: float, format: str) -> str:
    """Synapse's ``format_ts`` filter: milliseconds since the epoch, in local time."""
    return time.strftime(format, time.localtime(value_ms / 1000))


def make_mxc_to_http(public_baseurl: str | None) -> Callable[..., str]:
    """Synapse's ``mxc_to_http`` filter: an ``mxc://`` URI to a thumbnail URL.

    Anything that is not ``mxc://`` becomes the empty string; a ``#fragment`` is kept at the
    end; the query carries ``width``, ``height`` and ``method`` in that order.
    """

    def mxc_to_http(value: str, width: int, height: int, resize_method: str = "crop") -> str:
        if not public_baseurl:
            raise RuntimeError("public_baseurl is needed to turn mxc:// URIs into links")
        if not str(value).startswith("mxc://"):
            return ""
        media, sep, fragment = str(value)[len("mxc://"):].partition("#")
        query = urllib.parse.urlencode(
            {"width": width, "height": height, "method": resize_method}
        )
        return f"{public_baseurl}_matrix/media/v1/thumbnail/{media}?{query}{sep}{fragment}"

    return mxc_to_http


@dataclass(frozen=True)
class UndefinedUse:
    """One use of an undefined value: a top-level variable (``name``) or an attribute."""

    message: str
    top_level: bool
    name: str | None


class RecordingUndefined(jinja2.ChainableUndefined):
    """An undefined value that renders like Synapse's (empty) but remembers each use.

    ``found`` is replaced per environment (see :func:`recording_environment`), so one
    render lists every undefined variable, not just the first as ``StrictUndefined`` would.
    """

    found: ClassVar[list[UndefinedUse]] = []

    def _record(self) -> None:
        top_level = self._undefined_obj is jinja2.utils.missing
        use = UndefinedUse(self._undefined_message, top_level, self._undefined_name)
        if use not in self.found:
            self.found.append(use)

    def __str__(self) -> str:
        self._record()
        return ""

    def __iter__(self) -> Any:
        self._record()
        return iter(())

    def __bool__(self) -> bool:
        self._record()
        return False

    def __len__(self) -> int:
        self._record()
        return 0


def make_environment(
    directories: Iterable[Path], *, public_baseurl: str | None, server_name: str | None,
    undefined: type[jinja2.Undefined] = jinja2.Undefined,
) -> jinja2.Environment:
    """A Jinja environment configured like Synapse's (``synapse/util/templates.py`` facts)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in directories]),
        autoescape=jinja2.select_autoescape(),
        undefined=undefined,
    )
    env.filters["format_ts"] = format_ts
    env.filters["mxc_to_http"] = make_mxc_to_http(public_baseurl)
    env.globals["server_name"] = server_name
    return env


def default_public_baseurl(config: Mapping[str, Any]) -> str:
    """``public_baseurl``, or ``https://<server_name>/``, always ending in ``/``."""
    value = config.get("public_baseurl")
    if not isinstance(value, str) or not value:
        value = f"https://{config.get('server_name')}/"
    return value if value.endswith("/") else value + "/"


def groups_loaded(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Which template groups Synapse loads at startup for this config."""
    email = config.get("email")
    email = email if isinstance(email, Mapping) else {}
    groups = []
    if email != {}:
        groups.append(VERIFICATION)
    if email.get("enable_notifs"):
        groups.append(NOTIF)
    validity = config.get("account_validity")
    if isinstance(validity, Mapping) and "renew_at" in validity:
        groups.append(EXPIRY)
    return tuple(groups)


@dataclass(frozen=True)
class TemplateSet:
    """The templates Synapse would use for a config, and where it would look for them.

    ``directories`` are the configured ones in Synapse's order (custom directory first);
    maildoctor's own templates come last, where Synapse has its built-in ones.
    ``problems`` are config errors that stop Synapse from starting (a directory that does not
    exist or is not a string); ``warnings`` are legal but surprising settings.
    """

    directories: tuple[tuple[Path, str], ...]  # (directory, config key that set it)
    file_names: Mapping[str, str]  # role name -> file name
    public_baseurl: str
    server_name: str | None
    email_config: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, cwd: Path | None = None) -> TemplateSet:
        """Work out the search path and file names from a merged Synapse config."""
        cwd = cwd or Path.cwd()
        email = config.get("email")
        email = email if isinstance(email, Mapping) else {}
        warnings: list[str] = []
        problems: list[str] = []
        directories: list[tuple[Path, str]] = []

        templates_block = config.get("templates")
        custom = templates_block.get("custom_template_directory") if isinstance(
            templates_block, Mapping) else None
        candidates = [(custom, "templates.custom_template_directory"),
                      (email.get("template_dir"), "email.template_dir")]
        for value, key in candidates:
            if value is None:
                continue
            if not isinstance(value, str):
                problems.append(f"{key} must be a string, not {type(value).__name__}; "
                                f"Synapse refuses to start")
                continue
            path = Path(os.path.abspath(cwd / value))
            if key == "email.template_dir":
                warnings.append("email.template_dir is deprecated; Synapse prefers "
                                "templates.custom_template_directory")
            if not path.is_dir():
                problems.append(f"{key}: directory {path} does not exist; Synapse refuses to "
                                f"start with 'Configured template directory does not exist'")
                continue
            directories.append((path, key))

        names: dict[str, str] = {}
        for role in ROLES:
            value = email.get(role.key, role.default) if role.key else role.default
            names[role.name] = str(value)
        if "already_in_use_template_html" in email:
            warnings.append(
                "email.already_in_use_template_html is also used for the plain-text 'already "
                "in use' mail (a Synapse bug): its text part will be "
                f"{names['already_in_use_text']} rendered as text")
        if "already_in_use_template_text" in email:
            warnings.append("email.already_in_use_template_text is ignored by Synapse (it reads "
                            "email.already_in_use_template_html instead)")
        return cls(
            directories=tuple(directories), file_names=names,
            public_baseurl=default_public_baseurl(config),
            server_name=None if config.get("server_name") is None else str(
                config.get("server_name")),
            email_config=email, warnings=tuple(warnings), problems=tuple(problems),
        )

    @classmethod
    def builtin(cls, *, server_name: str, public_baseurl: str | None = None) -> TemplateSet:
        """Only maildoctor's own templates, as for a config with no custom directories."""
        return cls.from_config({"server_name": server_name, "public_baseurl": public_baseurl})

    @property
    def search_path(self) -> tuple[Path, ...]:
        return (*(d for d, _ in self.directories), BUILTIN_DIR)

    def environment(
        self, undefined: type[jinja2.Undefined] = jinja2.Undefined
    ) -> jinja2.Environment:
        return make_environment(self.search_path, public_baseurl=self.public_baseurl,
                                server_name=self.server_name, undefined=undefined)

    def locate(self, name: str) -> tuple[Path, str] | None:
        """The file Synapse would load for ``name`` and the key of its directory
        (``"built-in"`` for the last one), or ``None`` when no directory has it."""
        for directory, key in (*self.directories, (BUILTIN_DIR, "built-in")):
            candidate = directory / name
            if candidate.is_file():
                return candidate, key
        return None

    def file_name(self, role: str) -> str:
        return self.file_names[role]

    def template(self, role: str) -> jinja2.Template:
        """The template for ``role`` in Synapse's (lenient) environment."""
        return self.environment().get_template(self.file_names[role])

    def render(self, role: str, variables: Mapping[str, Any]) -> str:
        return self.template(role).render(**variables)


def recording_environment(
    templates: TemplateSet,
) -> tuple[jinja2.Environment, list[UndefinedUse]]:
    """An environment whose undefined values are recorded in the returned list."""
    found: list[UndefinedUse] = []
    undefined = type("Recording", (RecordingUndefined,), {"found": found})
    return templates.environment(undefined=undefined), found


@dataclass(frozen=True)
class TemplateFinding:
    """One result about one template. ``file``/``line`` locate it when known."""

    severity: Severity
    message: str
    name: str = ""  # template file name as Synapse looks it up
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or self.name
        if where and self.line:
            where = f"{where}:{self.line}"
        return f"{self.severity.value}: {where + ': ' if where else ''}{self.message}"


def describe_render_error(exc: Exception, name: str, path: Path | None) -> TemplateFinding:
    where = str(path) if path else None
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateFinding(
            Severity.ERROR, f"syntax error: {exc.message} (Synapse fails with "
            "TemplateSyntaxError: at startup, or when rendering for an included file)", name,
            exc.filename or where, exc.lineno)
    if isinstance(exc, jinja2.TemplateNotFound):
        if exc.name in SYNAPSE_BUILTIN_NAMES:
            return TemplateFinding(
                Severity.INFO, f"uses {exc.name}, which Synapse ships but maildoctor does not;"
                " that part was not checked", name, where)
        return TemplateFinding(
            Severity.ERROR, f"includes or extends {exc.name}, which is in no template "
            "directory; Synapse fails with TemplateNotFound when it renders this template",
            name, where)
    return TemplateFinding(
        Severity.ERROR, f"rendering fails ({type(exc).__name__}: {exc}); Synapse fails the "
        "same way when it renders this template", name, where)


def startup_syntax_errors(config: Mapping[str, Any], *,
                          cwd: Path | None = None) -> list[TemplateFinding]:
    """The syntax errors in the custom templates Synapse compiles at startup (each one stops
    it with TemplateSyntaxError): only compiling, no rendering, so ``check`` can afford it."""
    templates = TemplateSet.from_config(config, cwd=cwd)
    env = templates.environment()
    out: list[TemplateFinding] = []
    seen: set[str] = set()
    for role in (r for r in ROLES if r.group in groups_loaded(config)):
        name = templates.file_name(role.name)
        located = templates.locate(name)
        if located is None or located[1] == "built-in" or name in seen:
            continue
        seen.add(name)
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            out.append(describe_render_error(exc, name, located[0]))
        except (jinja2.TemplateError, OSError, UnicodeDecodeError) as exc:
            out.append(describe_render_error(exc, name, located[0]))
    return out
