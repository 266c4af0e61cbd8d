"""The network as Synapse's host sees it: routable families and ``smtp_host``'s addresses.

- Families: a UDP socket ``connect()`` makes the kernel look a route up and sends nothing;
  ``ENETUNREACH`` means no route. A public documentation address of each family
  (192.0.2.1, 2001:db8::1; RFC 5737 and RFC 3849) stands for "the Internet", and the
  loopback addresses for "this machine".
- Targets: ``getaddrinfo(smtp_host, port, AF_UNSPEC, SOCK_STREAM)``, which is what Twisted's
  ``GAIResolver`` asks; ``HostnameEndpoint`` then starts one connection attempt every 0.3 s
  in exactly that order, and the first to connect wins. Each address gets the same route
  lookup.
- An IPv6 literal is written without brackets in ``smtp_host`` (``::1``): with brackets the
  whole string goes to getaddrinfo and fails as an unknown host name.

Everything is bounded: the lookup runs in a thread abandoned after ``timeout``.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from maildoctor.config.environment import Network, TargetAddress

__all__ = ["PUBLIC_V4", "PUBLIC_V6", "family_of", "observe", "route_to"]

PUBLIC_V4 = "192.0.2.1"
PUBLIC_V6 = "2001:db8::1"


def family_of(address: str) -> str:
    return "IPv6" if ipaddress.ip_address(address.split("%")[0]).version == 6 else "IPv4"


def route_to(address: str) -> tuple[bool, str]:
    """Whether the kernel has a route to ``address`` (no packet leaves the host)."""
    family = socket.AF_INET6 if family_of(address) == "IPv6" else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as exc:  # the family is not even compiled in or enabled
        return False, errno.errorcode.get(exc.errno or 0, str(exc))
    try:
        sock.connect((address, 9))
        return True, ""
    except OSError as exc:
        return False, errno.errorcode.get(exc.errno or 0, str(exc))
    finally:
        sock.close()


def _lookup(host: str, port: int, timeout: float) -> tuple[list[str], str]:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maildoctor-network")
    try:
        future = executor.submit(socket.getaddrinfo, host, port, socket.AF_UNSPEC,
                                 socket.SOCK_STREAM)
        infos = future.result(timeout=timeout)
    except FutureTimeout:
        return [], f"no answer from the resolver in {timeout:g} s"
    except (OSError, UnicodeError, ValueError) as exc:
        return [], str(getattr(exc, "strerror", None) or exc)
    finally:
        executor.shutdown(wait=False)
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if str(sockaddr[0]) not in seen:
            seen.append(str(sockaddr[0]))
    return seen, ""


def _ask_server(name: str, server: tuple[str, int], timeout: float) -> tuple[list[str], str]:
    """A and AAAA from one DNS server (``--resolver``) instead of getaddrinfo."""
    from maildoctor.resolver import DnsFailure, Resolver

    resolver = Resolver(server, timeout=timeout)
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = resolver.query(name, rdtype)
        except DnsFailure as exc:
            return found, exc.detail
        found.extend(r.address for r in answer.records)
    return found, "" if found else "the name has no address"


def observe(host: object, port: int | None, timeout: float = 5.0,
            server: tuple[str, int] | None = None) -> Network:
    """Families routed here, and ``host``'s addresses in HostnameEndpoint's order (asked of
    ``server`` when given, as ``--resolver`` asks)."""
    name = "" if host is None else str(host)
    literal = False
    try:
        ipaddress.ip_address(name)
        literal = True
    except ValueError:
        pass
    if literal:
        addresses, error = [name], ""
    elif name and server is not None:
        addresses, error = _ask_server(name, server, timeout)
    elif name:
        addresses, error = _lookup(name, port or 25, timeout)
    else:
        addresses, error = [], "smtp_host is empty"
    targets = []
    for address in addresses:
        routable, why = route_to(address)
        targets.append(TargetAddress(address, family_of(address), routable, why))
    return Network(
        host=name, ipv4=route_to(PUBLIC_V4)[0], ipv6=route_to(PUBLIC_V6)[0],
        loopback4=route_to("127.0.0.1")[0], loopback6=route_to("::1")[0],
        targets=tuple(targets), literal=literal, resolve_error=error,
    )
