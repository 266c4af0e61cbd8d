"""Where Synapse really runs: its installation, its network, its container, its EHLO name.

The config is half of Synapse's mail; the other half is the machine. This package
*observes* that half and returns plain data (:class:`~maildoctor.config.environment.
Environment`); the MD6xx rules judge it. One module per question, I/O kept to the edges:

- :mod:`.installation`: which interpreter runs Synapse (given, or a usual place), and what it
  has installed, asked in a bounded subprocess; :mod:`.requirements` (pure) compares that
  with what Synapse declares;
- :mod:`.network`: the address families this host routes, and ``smtp_host``'s addresses
  in the order Twisted's ``HostnameEndpoint`` tries them;
- :mod:`.container`: Docker, Podman, Kubernetes markers, and the way out of the container;
- :mod:`.ehlo`: the name Twisted announces (``socket.getfqdn()``), and whether it is
  fully qualified.

Imports run one way: ``host`` uses ``config`` (the data types, the schema) and ``smtp`` (host
name checks); nothing below ``cli`` imports ``host`` except the probe pipeline.
"""

from __future__ import annotations

from maildoctor.config import schema
from maildoctor.config.environment import Environment, Installation
from maildoctor.host import container as _container
from maildoctor.host import installation as _installation

__all__ = ["NO_LOOKUP", "checked_as", "observe"]

#: ``--synapse-python none``: do not look for Synapse's interpreter at all.
NO_LOOKUP = "none"


def checked_as(inst: Installation | None) -> tuple[str | None, str]:
    """The Synapse version to check with, for an installation, and a note when clamped."""
    if inst is None or not inst.synapse:
        return None, ""
    try:
        found = schema.parse_version(".".join(inst.synapse.split(".")[:3]))
    except ValueError:
        return None, f"Synapse version {inst.synapse!r} is not one maildoctor can read"
    oldest, newest = schema.KNOWN_VERSIONS[0], schema.NEWEST
    if found > newest:
        return str(newest), (f"Synapse {inst.synapse} is newer than maildoctor knows; "
                             f"checking as {newest}")
    if found < oldest:
        return str(oldest), (f"Synapse {inst.synapse} is older than maildoctor knows; "
                             f"checking as {oldest}")
    return str(found), ""


def observe(synapse_python: str | None = None, *, timeout: float = _installation.ASK_TIMEOUT,
            places: list[_installation.Place] | None = None) -> Environment:
    """The installation (given, or looked for) and the container, for ``check``."""
    notes: list[str] = []
    inst: Installation | None = None
    searched: tuple[str, ...] = ()
    if synapse_python != NO_LOOKUP:
        place, searched = _installation.find(synapse_python, places)
        if place is not None:
            inst = _installation.ask(place, timeout)
    version, note = checked_as(inst)
    if note:
        notes.append(note)
    env = Environment(installation=inst, searched=searched, checked_as=version,
                      container=_container.detect(), in_container_known=True,
                      notes=tuple(notes))
    return env

