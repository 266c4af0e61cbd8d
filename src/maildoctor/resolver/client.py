"""A bounded DNS client on top of dnspython, with failures as data.

    DnsFailure(kind)     kind is one of :class:`Failure`: the server failed (SERVFAIL), refused,
                         did not answer in time, answered truncated with no way to get the
                         whole answer, the name is not a valid DNS name, or no resolver is
                         configured at all

A name that does not exist is not a failure: it is an :class:`Answer` with ``nxdomain``
set, since "this domain does not exist" is exactly what the sender checks want to know.
Every question is bounded by the resolver's per-question timeout and, when given, by a
deadline shared by all the questions of a stage.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from maildoctor.resolver.text import printable


class Failure(StrEnum):
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TRUNCATED = "truncated"
    INVALID_NAME = "invalid-name"
    NO_RESOLVER = "no-resolver"
    ERROR = "error"


class DnsFailure(Exception):
    """A DNS question got no usable answer; ``kind`` says how, the message says it in words."""

    def __init__(self, kind: Failure, name: str, rdtype: str, detail: str) -> None:
        self.kind = kind
        self.name = name
        self.rdtype = rdtype
        self.detail = detail
        super().__init__(f"{rdtype} {printable(name)}: {detail}")


@dataclass(frozen=True)
class Answer:
    name: str
    rdtype: str
    records: tuple[Any, ...] = ()  # dnspython rdata objects
    nxdomain: bool = False

    @property
    def empty(self) -> bool:
        return not self.records


def parse_resolver_address(text: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address -> (ip, port).

    Raises ValueError with a message fit for the user."""
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: write an IPv6 resolver as [ADDRESS]:PORT")
        if rest:
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, raw = text.partition(":")
        port = _port(raw, text)
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an IP address (IP or IP:PORT; a name would itself "
                         "need a resolver)") from exc
    return host, port


def _port(raw: str, text: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return int(raw)


class Resolver:
    """Asks one configured server (``server=(ip, port)``) or the system's resolvers.

    ``timeout`` bounds each question; ``deadline`` (a ``time.monotonic()`` value) bounds
    all of them together."""

    def __init__(self, server: tuple[str, int] | None = None, *, timeout: float = 5.0,
                 deadline: float | None = None) -> None:
        self.server = server
        self.timeout = timeout
        self.deadline = deadline
        self.questions = 0
        self._sync: dns.resolver.Resolver | None = None
        self._async: dns.asyncresolver.Resolver | None = None
        self._setup_error = ""

    def __repr__(self) -> str:
        where = f"{self.server[0]}:{self.server[1]}" if self.server else "system"
        return f"Resolver({where}, timeout={self.timeout:g})"

    @property
    def described(self) -> str:
        """Which resolver answered, for messages."""
        if self.server is None:
            return "the system's resolver"
        ip, port = self.server
        shown = f"[{ip}]" if ":" in ip else ip
        return f"the resolver {shown}:{port}" if port != 53 else f"the resolver {shown}"

    def with_deadline(self, deadline: float | None) -> Resolver:
        return Resolver(self.server, timeout=self.timeout, deadline=deadline)

    def _configure(self, resolver: dns.resolver.BaseResolver) -> None:
        if self.server is not None:
            resolver.nameservers = [self.server[0]]
            resolver.port = self.server[1]
        resolver.timeout = self.timeout
        resolver.lifetime = self.timeout
        resolver.cache = None

    def _make(self, factory: type[Any]) -> Any:
        try:
            resolver = factory(configure=self.server is None)
        except (dns.resolver.NoResolverConfiguration, OSError) as exc:
            self._setup_error = f"no DNS resolver is configured on this machine ({exc})"
            return None
        self._configure(resolver)
        return resolver

    def _lifetime(self, name: str, rdtype: str) -> float:
        if self.deadline is None:
            return self.timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DnsFailure(Failure.TIMEOUT, name, rdtype,
                             "not asked: this stage's time budget is spent")
        return min(self.timeout, left)

    def query(self, name: str, rdtype: str) -> Answer:
        """Ask ``rdtype`` for ``name`` (blocking, bounded)."""
        if self._sync is None:
            self._sync = self._make(dns.resolver.Resolver)
        if self._sync is None:
            raise DnsFailure(Failure.NO_RESOLVER, name, rdtype, self._setup_error)
        lifetime = self._lifetime(name, rdtype)
        self.questions += 1
        try:
            answer = self._sync.resolve(name, rdtype, lifetime=lifetime, search=False,
                                        raise_on_no_answer=False)
        except Exception as exc:  # dnspython's error tree, turned into ours at one place
            return self._failed(exc, name, rdtype, lifetime)
        return Answer(name, rdtype, tuple(answer.rrset or ()))

    async def aquery(self, name: str, rdtype: str) -> Answer:
        """Ask ``rdtype`` for ``name`` without blocking the event loop (bounded)."""
        if self._async is None:
            self._async = self._make(dns.asyncresolver.Resolver)
        if self._async is None:
            raise DnsFailure(Failure.NO_RESOLVER, name, rdtype, self._setup_error)
        lifetime = self._lifetime(name, rdtype)
        self.questions += 1
        try:
            answer = await self._async.resolve(name, rdtype, lifetime=lifetime, search=False,
                                               raise_on_no_answer=False)
        except Exception as exc:
            return self._failed(exc, name, rdtype, lifetime)
        return Answer(name, rdtype, tuple(answer.rrset or ()))

    def _failed(self, exc: Exception, name: str, rdtype: str, lifetime: float) -> Answer:
        if isinstance(exc, dns.resolver.NXDOMAIN):
            return Answer(name, rdtype, nxdomain=True)
        if isinstance(exc, dns.exception.Timeout):
            raise DnsFailure(Failure.TIMEOUT, name, rdtype,
                             f"no answer from {self.described} in {lifetime:g} s") from exc
        if isinstance(exc, dns.resolver.NoNameservers):
            kind, detail = _no_nameservers(exc)
            raise DnsFailure(kind, name, rdtype, f"{self.described} {detail}") from exc
        if isinstance(exc, (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel,
                            dns.exception.SyntaxError, UnicodeError)):
            raise DnsFailure(Failure.INVALID_NAME, name, rdtype,
                             f"not a valid DNS name ({exc})") from exc
        if isinstance(exc, (dns.exception.DNSException, OSError, ValueError)):
            raise DnsFailure(Failure.ERROR, name, rdtype,
                             printable(f"{type(exc).__name__}: {exc}")) from exc
        raise exc


def _no_nameservers(exc: dns.resolver.NoNameservers) -> tuple[Failure, str]:
    """What the servers said, from dnspython's list of (server, tcp, port, error, answer)."""
    errors = exc.kwargs.get("errors") or []
    truncated = False
    for _server, tcp, _port, error, answer in errors:
        if answer is not None:
            rcode = answer.rcode()
            if rcode == dns.rcode.SERVFAIL:
                return Failure.SERVFAIL, "answered SERVFAIL (the server failed to resolve it)"
            if rcode == dns.rcode.REFUSED:
                return Failure.REFUSED, "refused to answer (REFUSED: not its zone, or not " \
                                        "for this client)"
        if tcp and error is not None:
            truncated = True
    if truncated:
        return Failure.TRUNCATED, ("sent a truncated answer over UDP and the retry over TCP "
                                   "failed: the whole answer could not be read")
    return Failure.ERROR, printable(f"gave no usable answer ({exc})")
