"""MD110: the startup checks of old Synapse releases, from the release facts table.

Each fact in :data:`maildoctor.config.schema.releases.RELEASE_FACTS` holds for a range of
releases, with its source; this module applies the ones that hold for the version being
checked (``--synapse-version``, or the installed Synapse's).
"""

from __future__ import annotations

from collections.abc import Iterator

from maildoctor.config.rules import LintContext, rule
from maildoctor.config.schema.releases import RELEASE_FACTS
from maildoctor.config.settings import truthy
from maildoctor.diagnostics import NO_START_PREFIX, Diagnostic, Fix, Severity


@rule("MD110", "old-release-startup-check", Severity.ERROR,
      "An older Synapse release refuses this config at startup")
def old_release_startup_check(ctx: LintContext) -> Iterator[Diagnostic]:
    """Some Synapse releases checked more at startup than today's. From 1.0 to 1.11, with
    ``enable_notifs`` on, Synapse refused to start unless ``smtp_host``, ``smtp_port``,
    ``notif_from``, ``notif_template_html`` and ``notif_template_text`` were all present,
    although today's releases give the last four defaults: a config written for a new
    Synapse stops an old one. Before 1.47 ``enable_notifs`` also demanded ``public_baseurl``.
    Every such fact, with the releases it holds for and its source, is in the schema's
    release table (``config/schema/releases.py``).
    """
    for fact in RELEASE_FACTS:
        if not fact.since <= ctx.version < fact.until or fact.kind != "startup":
            continue
        if not ctx.email_enabled or not truthy(ctx.email.get(fact.when)):
            continue
        missing = [f"email.{key}" for key in fact.needs if key not in ctx.email]
        missing += [key for key in fact.needs_top if not ctx.merged.get(key)]
        if not missing:
            continue
        keys = ", ".join(missing)
        yield ctx.diag(
            "MD110",
            f"Synapse {ctx.version} requires {keys} when email.{fact.when} is on",
            consequence=f"{NO_START_PREFIX}: {fact.said.format(keys=keys)} "
                        f"(releases {fact.since} to before {fact.until}; source: {fact.source})",
            fix=Fix(fact.fix),
            path=("email", fact.when),
        )
