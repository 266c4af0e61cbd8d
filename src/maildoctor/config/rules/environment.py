"""MD6xx: where Synapse runs: its installation, its network, its container, its EHLO name.

These rules read :class:`~maildoctor.config.environment.Environment` (observed by
``maildoctor.host``: never by the rules themselves) together with the config, so each is a
pure function that tests can feed any situation. Without an environment (the library's
``check()`` called alone, the corpus) they say nothing.

Findings about the installation point at the ``email:`` key: the block whose mail they
break. Findings about the network and the container point at ``smtp_host``.
"""

from __future__ import annotations

from collections.abc import Iterator

from maildoctor.config.environment import Installation, Network
from maildoctor.config.rules import LintContext, rule
from maildoctor.config.schema.model import Version, parse_version
from maildoctor.config.schema.runtime import TWISTED_FACTS
from maildoctor.diagnostics import NO_START_PREFIX, Diagnostic, Fix, Location, Severity
from maildoctor.hosts import is_loopback


def _version(text: str | None) -> Version | None:
    if not text:
        return None
    try:
        return parse_version(".".join(text.split(".")[:3]).split("rc")[0].split("+")[0])
    except ValueError:
        return None


def _installation(ctx: LintContext) -> Installation | None:
    env = ctx.environment
    return env.installation if env is not None else None


def _email_loc(ctx: LintContext) -> tuple[Location, ...]:
    return ctx.loc(("email",)) or ()


@rule("MD601", "synapse-requirement-unmet", Severity.ERROR,
      "The installed packages do not meet a requirement Synapse declares")
def synapse_requirement_unmet(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse declares its dependencies in its package metadata (``Requires-Dist``) and checks
    them when it starts: a missing or too old one stops it ("Missing Requirements") before
    it serves anything. ``pip install --upgrade matrix-synapse`` in a venv where other
    packages were pinned, or a distribution package mixed with pip, can leave such a gap.
    maildoctor reads the same metadata from Synapse's own interpreter (``--synapse-python``
    or a usual place) and compares it with what is installed beside it.
    """
    inst = _installation(ctx)
    if inst is None or not inst.unmet:
        return
    for unmet in inst.unmet:
        have = f"{unmet.installed} is installed" if unmet.installed else "it is not installed"
        said = (f"Synapse {inst.synapse} needs {unmet.wanted}, but got "
                f"{unmet.name}=={unmet.installed}" if unmet.installed
                else f"Missing Requirements: \"{unmet.name}\"")
        yield ctx.diag(
            "MD601",
            f"Synapse {inst.synapse} needs {unmet.wanted}, but {have} (in {inst.python})",
            consequence=f"{NO_START_PREFIX}: its dependency check prints \"{said}\" "
                        "and exits before serving anything",
            fix=Fix(f"in Synapse's environment: {inst.python} -m pip install "
                    f"'{unmet.wanted}' (or reinstall matrix-synapse, which pulls its "
                    "requirements)"),
            locations=_email_loc(ctx),
        )


def _applies(fact_from: Version | None, fact_until: Version | None,
             synapse: Version | None) -> bool:
    if fact_from is None and fact_until is None:
        return True
    if synapse is None:
        return False
    return (fact_from is None or synapse >= fact_from) and (
        fact_until is None or synapse < fact_until)


@rule("MD602", "twisted-mail-behaviour", Severity.WARNING,
      "The installed Twisted sends mail differently from what Synapse expects")
def twisted_mail_behaviour(ctx: LintContext) -> Iterator[Diagnostic]:
    """Synapse's mail goes through Twisted's SMTP client, and Twisted's behaviour changed over
    its releases: before 21.2.0 its STARTTLS offers TLS 1.0 only and verifies no
    certificate, and it does not take the ``hostname=`` argument that Synapse 1.41.0 passes
    (a TypeError on every mail). Each fact, with its source, is in the schema's runtime
    table (``config/schema/runtime.py``); this rule applies the ones that match the Twisted
    and Synapse versions found in Synapse's interpreter.
    """
    inst = _installation(ctx)
    if inst is None or inst.twisted is None:
        return
    twisted = _version(inst.twisted)
    synapse = _version(inst.synapse)
    if twisted is None:
        return
    for fact in TWISTED_FACTS:
        if twisted >= fact.before or not _applies(fact.synapse_from, fact.synapse_until,
                                                  synapse):
            continue
        severity = Severity(fact.severity)
        yield ctx.diag(
            "MD602",
            f"Twisted {inst.twisted} (with Synapse {inst.synapse or 'unknown'}): {fact.what}",
            consequence=f"{fact.consequence} (source: {fact.source})",
            fix=Fix(f"upgrade Twisted in Synapse's environment: {inst.python} -m pip install "
                    f"'twisted[tls]>={fact.before}'"),
            locations=_email_loc(ctx), severity=severity,
        )


@rule("MD603", "synapse-python-unusable", Severity.WARNING,
      "The interpreter given as Synapse's could not tell what it has installed")
def synapse_python_unusable(ctx: LintContext) -> Iterator[Diagnostic]:
    """``--synapse-python`` names the interpreter Synapse runs under; maildoctor asks it for
    Synapse's and Twisted's versions in a subprocess. When that interpreter does not exist,
    does not answer in time, or has no ``matrix-synapse`` installed, the check falls back
    to its default Synapse version, and says so here rather than pretending.
    """
    inst = _installation(ctx)
    if inst is None or not inst.error:
        return
    yield ctx.diag(
        "MD603", f"could not read Synapse's installation: {inst.error}",
        consequence="the check uses maildoctor's default Synapse version instead",
        fix=Fix("pass the python that runs Synapse, e.g. --synapse-python "
                "/opt/venvs/matrix-synapse/bin/python (Debian package) or the venv's bin/python"),
        locations=_email_loc(ctx),
    )


def _families(net: Network) -> str:
    routed = [name for name, ok in (("IPv4", net.ipv4), ("IPv6", net.ipv6)) if ok]
    return " and ".join(routed) if routed else "no family at all"


@rule("MD610", "target-family-unroutable", Severity.ERROR,
      "smtp_host only has addresses of a family this host cannot route")
def target_family_unroutable(ctx: LintContext) -> Iterator[Diagnostic]:
    """Twisted's ``HostnameEndpoint`` tries every address of ``smtp_host`` in the resolver's
    order, but an address of a family this host has no route for fails at once (network
    unreachable). An IPv6-only host cannot reach an IPv4-only relay, nor the reverse: every
    mail fails. The route lookup maildoctor makes sends no packet. Fixes: a relay that has
    both families, NAT64/DNS64 on an IPv6-only network (an IPv6 address that reaches the
    IPv4 server), or an address of the family this host has.
    """
    env = ctx.environment
    net = env.network if env is not None else None
    if net is None or not net.targets or any(t.routable for t in net.targets):
        return
    fams = sorted({t.family for t in net.targets})
    addresses = ", ".join(t.address for t in net.targets)
    missing = " and ".join(fams)
    other = "IPv6" if fams == ["IPv4"] else "IPv4" if fams == ["IPv6"] else "another family"
    yield ctx.diag(
        "MD610",
        f"smtp_host {net.host!r} has only {missing} addresses ({addresses}), and this host has "
        f"no {missing} route: it routes {_families(net)}",
        consequence="every connection attempt fails with \"Network is unreachable\"; Synapse "
                    "answers 500 M_UNKNOWN to the client and logs ConnectError",
        fix=Fix(f"use a relay reachable over {other} (one with both families), NAT64/DNS64 "
                f"on this network, or an smtp_host address of the {other} family"),
        locations=ctx.email_loc("smtp_host", at="value"),
    )


def _instead(kind: str, gateway: str | None) -> str:
    ways = []
    if gateway:
        ways.append(f"the host's address on the container network ({gateway}, the default "
                    "gateway here)")
    if kind == "podman":
        ways.append("host.containers.internal")
    elif kind != "kubernetes":
        ways.append("host.docker.internal (on Linux add `extra_hosts: "
                    "[\"host.docker.internal:host-gateway\"]` to the Compose service)")
    if kind == "kubernetes":
        ways.append("the mail server's Service name (localhost only reaches containers of "
                    "the same pod, e.g. a sidecar MTA)")
    else:
        ways.append("the Compose service name of the mail container")
    return ", or ".join(ways)


@rule("MD620", "localhost-in-container", Severity.INFO,
      "smtp_host is localhost, and this runs in a container: that is the container itself")
def localhost_in_container(ctx: LintContext) -> Iterator[Diagnostic]:
    """Inside a container (Docker, Podman, Kubernetes), ``localhost``, ``127.0.0.1`` and
    ``::1`` are the container's own loopback, not the host's: a Postfix on the host is not
    there, and the connection is refused. It is right only when the mail server runs in
    the same container or network namespace (a sidecar in the same pod, ``network_mode:
    service:...``). A note for ``check``; the probe makes it the cause when nothing answers.
    """
    env = ctx.environment
    box = env.container if env is not None else None
    host = ctx.settings.smtp_host
    if box is None or not is_loopback(host):
        return
    yield ctx.diag(
        "MD620",
        f"smtp_host is {host!r}, and maildoctor runs in a {box.kind} container "
        f"({'; '.join(box.evidence)}): that is the container itself, not the host",
        consequence="unless a mail server listens inside this container (or its pod), "
                    "Synapse's connection is refused and every mail fails",
        fix=Fix(f"set smtp_host to {_instead(box.kind, box.gateway)}"),
        locations=ctx.email_loc("smtp_host", at="value"),
    )


def _looks_like_image_layout(ctx: LintContext) -> str | None:
    """A path of the official image's layout (``/data/...``) among the files or values."""
    for pf in ctx.config.files:
        if pf.path.startswith("/data/"):
            return pf.path
    for key in ("media_store_path", "pid_file", "log_config", "signing_key_path"):
        value = ctx.merged.get(key)
        if isinstance(value, str) and value.startswith("/data/"):
            return f"{key}: {value}"
    return None


@rule("MD621", "view-differs-from-synapse-container", Severity.INFO,
      "maildoctor probes from outside the container Synapse seems to run in")
def view_differs_from_synapse_container(ctx: LintContext) -> Iterator[Diagnostic]:
    """The official Synapse image keeps its config and data under ``/data``. When a config
    laid out that way is probed by a maildoctor that runs *outside* any container, the
    probe's network is not Synapse's: ``localhost`` differs, firewalls and DNS may differ.
    The probe's answer is then about this host; the README section "Probing from Synapse's
    network position" shows how to run it from inside Synapse's network namespace.
    """
    env = ctx.environment
    if env is None or env.network is None or not env.in_container_known:
        return
    if env.container is not None:
        return
    sign = _looks_like_image_layout(ctx)
    if sign is None:
        return
    yield ctx.diag(
        "MD621",
        f"this config looks like the Synapse container image's ({sign}), but maildoctor runs "
        "outside any container: its network view differs from Synapse's",
        consequence="the probe tells what this host can reach; Synapse, in its container, "
                    "may reach something else (localhost above all)",
        fix=Fix("probe from Synapse's network namespace: docker run --rm --network "
                "container:synapse ... maildoctor probe /data/homeserver.yaml (see the README)"),
        locations=ctx.email_loc("smtp_host", at="value") or _email_loc(ctx),
    )


@rule("MD630", "ehlo-name-not-qualified", Severity.INFO,
      "The EHLO name Twisted will announce from this host is not fully qualified")
def ehlo_name_not_qualified(ctx: LintContext) -> Iterator[Diagnostic]:
    """Twisted announces ``EHLO <socket.getfqdn()>`` for Synapse and Synapse has no setting
    for it. A bare name (a container's random hostname, ``localhost``) is refused by relays
    that demand a fully qualified one (Postfix's ``reject_non_fqdn_helo_hostname``, many
    providers), and then every mail fails. The fix is on the host: a fully qualified
    hostname for the machine or container, or a relay that accepts the name.
    """
    env = ctx.environment
    if env is None or env.ehlo_name is None or env.ehlo_fully_qualified is not False:
        return
    yield ctx.diag(
        "MD630",
        f"Twisted will announce `EHLO {env.ehlo_name}` from this host, which is not a fully "
        "qualified name",
        consequence="a relay that requires a fully qualified EHLO name refuses it (e.g. "
                    "504 5.5.2 Helo command rejected: need fully-qualified hostname), and "
                    "every mail fails",
        fix=Fix("Synapse has no setting for its EHLO name: give this host (or container) a "
                "fully qualified hostname (`hostname:` in Compose, `docker run --hostname`, "
                "/etc/hosts), or send through a relay that accepts the name"),
        locations=ctx.email_loc("smtp_host", at="value") or _email_loc(ctx),
    )
