"""Resolve: is ``smtp_host`` a host name at all, and what does getaddrinfo say?

Synapse hands ``smtp_host`` to Twisted's ``HostnameEndpoint``, which resolves it with
getaddrinfo (A and AAAA, ``/etc/hosts`` honoured) and tries every address. Common
mistakes are caught before any lookup: an e-mail address, a URL, ``host:port``,
an empty value. An IP literal needs no lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maildoctor.smtp.facts import Resolve
from maildoctor.smtp.tls import is_ip
from maildoctor.smtp.wire import LookupFailed, lookup


@dataclass(frozen=True)
class Resolved:
    outcome: Resolve
    addresses: tuple[str, ...] = ()
    problem: str = ""  # why INVALID / NXDOMAIN / TEMPFAIL, in words
    kind: str = ""  # ip-literal | name | email-address | url | host-port | empty | ...


def check_host(host: Any) -> tuple[str, str]:
    """``(kind, problem)`` for a raw ``smtp_host`` value; ``problem`` empty when usable."""
    if host is None or (isinstance(host, str) and not host.strip()):
        return "empty", "smtp_host is empty"
    if not isinstance(host, str):
        return "not-a-string", f"smtp_host is a {type(host).__name__}, not a host name"
    if host != host.strip() or any(c.isspace() for c in host):
        return "whitespace", "smtp_host contains white space (a space, tab or line break)"
    if "://" in host:
        return "url", "smtp_host is a URL; give only the host name (the port goes in smtp_port)"
    if "@" in host:
        return "email-address", "smtp_host is an e-mail address, not a host name"
    if host.startswith("[") and host.endswith("]"):
        return "bracketed-ip", "smtp_host has brackets; write the IPv6 address without them"
    if is_ip(host):
        return "ip-literal", ""
    if host.count(":") == 1:
        return "host-port", "smtp_host contains ':port'; put the port in smtp_port"
    if host.count(":") > 1:
        return "bad-ip", "smtp_host looks like an IPv6 address but is not a valid one"
    return "name", ""


async def resolve(host: Any, port: int, timeout: float,
                  server: tuple[str, int] | None = None) -> Resolved:
    """``server`` (``--resolver``): ask that DNS server for A and AAAA instead of getaddrinfo
    (no /etc/hosts then, as for any name the server answers)."""
    kind, problem = check_host(host)
    if problem:
        return Resolved(Resolve.INVALID, problem=problem, kind=kind)
    if kind == "ip-literal":
        return Resolved(Resolve.OK, (str(host),), kind=kind)
    if server is not None:
        return await _ask_server(str(host), server, timeout, kind)
    try:
        addresses = await lookup(str(host), port, timeout)
    except LookupFailed as exc:
        return Resolved(Resolve(exc.outcome), problem=exc.message, kind=kind)
    if not addresses:
        return Resolved(Resolve.NXDOMAIN, problem="the name has no address", kind=kind)
    return Resolved(Resolve.OK, tuple(addresses), kind=kind)


async def _ask_server(host: str, server: tuple[str, int], timeout: float,
                      kind: str) -> Resolved:
    from maildoctor.resolver import DnsFailure, Failure, Resolver

    resolver = Resolver(server, timeout=timeout)
    addresses: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = await resolver.aquery(host, rdtype)
        except DnsFailure as exc:
            outcome = Resolve.INVALID if exc.kind is Failure.INVALID_NAME else Resolve.TEMPFAIL
            return Resolved(outcome, problem=exc.detail, kind=kind)
        if answer.nxdomain:
            return Resolved(Resolve.NXDOMAIN, problem=f"{resolver.described} says the name "
                            "does not exist (NXDOMAIN)", kind=kind)
        addresses.extend(r.address for r in answer.records)
    if not addresses:
        return Resolved(Resolve.NXDOMAIN, problem="the name has no address", kind=kind)
    return Resolved(Resolve.OK, tuple(addresses), kind=kind)
