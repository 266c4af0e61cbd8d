"""Is this process in a container? The marker files and variables runtimes leave behind.

- ``/.dockerenv``: Docker creates it in every container;
- ``/run/.containerenv``: Podman (and Buildah) create it;
- ``KUBERNETES_SERVICE_HOST``: set by Kubernetes in every pod's containers;
- ``container=<runtime>``: the environment variable systemd's convention asks runtimes to set;
- ``/proc/1/cgroup`` naming ``docker``, ``kubepods``, ``libpod`` or ``containerd``: cgroup v1
  hosts (with cgroup v2 the file says only ``0::/``, so it is a hint, never required).

The decision (:func:`classify`) is a pure function of those observations, so tests can
give it any combination; :func:`detect` reads them from the file system and environment.
Inside a container, ``localhost`` is the container itself: the host's gateway on the
container network (read from ``/proc/net/route``) is one way out, and is reported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from maildoctor.config.environment import Container

__all__ = ["Markers", "classify", "default_gateway", "detect"]

_CGROUP_HINTS = (("kubepods", "kubernetes"), ("libpod", "podman"), ("docker", "docker"),
                 ("containerd", "container"))


@dataclass(frozen=True)
class Markers:
    """What :func:`detect` read; every field may be empty."""

    dockerenv: bool = False
    containerenv: bool = False
    kubernetes_host: str = ""
    container_var: str = ""
    cgroup: str = ""


def classify(m: Markers) -> tuple[str, tuple[str, ...]] | None:
    """``(kind, evidence)`` when the markers say container, else ``None``."""
    evidence: list[str] = []
    kind = ""
    if m.kubernetes_host:
        kind = "kubernetes"
        evidence.append("KUBERNETES_SERVICE_HOST is set")
    if m.containerenv:
        kind = kind or "podman"
        evidence.append("/run/.containerenv exists")
    if m.dockerenv:
        kind = kind or "docker"
        evidence.append("/.dockerenv exists")
    if m.container_var:
        kind = kind or (m.container_var if m.container_var in ("docker", "podman")
                        else "container")
        evidence.append(f"container={m.container_var} is set")
    for hint, runtime in _CGROUP_HINTS:
        if hint in m.cgroup:
            kind = kind or runtime
            evidence.append(f"/proc/1/cgroup mentions {hint}")
            break
    return (kind, tuple(evidence)) if kind else None


def _read(path: str, limit: int = 65536) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return ""


def default_gateway(route_table: str | None = None) -> str | None:
    """The IPv4 default gateway from ``/proc/net/route`` (hex, little-endian), if any."""
    text = _read("/proc/net/route") if route_table is None else route_table
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000" and fields[2] != "00000000":
            try:
                raw = bytes.fromhex(fields[2])[::-1]
            except ValueError:
                return None
            return ".".join(str(byte) for byte in raw) if len(raw) == 4 else None
    return None


def detect(root: str = "/", environ: Mapping[str, str] | None = None) -> Container | None:
    """The container this process runs in, or ``None``."""
    env = os.environ if environ is None else environ
    # os.path, not pathlib (nor socket): `check` observes on every run, and those imports
    # cost it more than the observation itself
    markers = Markers(
        dockerenv=os.path.exists(os.path.join(root, ".dockerenv")),
        containerenv=os.path.exists(os.path.join(root, "run", ".containerenv")),
        kubernetes_host=env.get("KUBERNETES_SERVICE_HOST", ""),
        container_var=env.get("container", ""),
        cgroup=_read(os.path.join(root, "proc", "1", "cgroup")),
    )
    found = classify(markers)
    if found is None:
        return None
    kind, evidence = found
    return Container(kind=kind, evidence=evidence, hostname=os.uname().nodename,
                     gateway=default_gateway())
