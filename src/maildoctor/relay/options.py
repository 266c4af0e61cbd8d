"""What a relay is told: :class:`RelayOptions`, and the client :class:`AllowList`.

Validated once, at construction, so a bad CIDR or a metrics port on a public address fails
before anything listens. The relay is never an open relay: the allow-list defaults to
loopback, and an empty allow-list is refused rather than read as "everyone".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from maildoctor import errors
from maildoctor.config.settings import EmailSettings
from maildoctor.hosts import is_loopback

DEFAULT_QUEUE = "/var/lib/maildoctor/relay.sqlite3"
DEFAULT_PORT = 2525
LOOPBACK = ("127.0.0.1/32", "::1/128")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AllowList:
    """The networks whose clients may hand mail to the relay."""

    def __init__(self, cidrs: Sequence[str]) -> None:
        if not cidrs:
            raise errors.UsageError("the allow-list is empty: the relay would accept nobody "
                                    "(give at least one CIDR, e.g. 127.0.0.1/32)")
        networks: list[Network] = []
        for cidr in cidrs:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise errors.UsageError(f"{cidr!r} is not a network (CIDR such as "
                                        "127.0.0.1/32 or ::1/128)") from exc
        self.networks = tuple(networks)

    def allows(self, host: str | None) -> bool:
        """True if a client at ``host`` (a peer address string) may send through the relay.

        IPv4 clients on a dual-stack socket appear as ``::ffff:a.b.c.d``; they are checked as
        the IPv4 address they are, so ``127.0.0.1/32`` still matches.
        """
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == net.version and address in net for net in self.networks)

    def __repr__(self) -> str:
        return f"AllowList({', '.join(str(n) for n in self.networks)})"


@dataclass(frozen=True)
class RelayOptions:
    """Everything the relay needs. Times are seconds; sizes are bytes."""

    upstream: EmailSettings
    fallback: EmailSettings | None = None
    """A second upstream, tried when the first fails with a connection error or any
    non-permanent error (Postfix's ``smtp_fallback_relay``)."""
    listen_host: str = "127.0.0.1"
    listen_port: int = DEFAULT_PORT
    """0 picks any free port (read it back from ``Relay.port``)."""
    queue_path: str = DEFAULT_QUEUE
    allow: tuple[str, ...] = LOOPBACK
    ca_file: str | None = None
    max_message_size: int = 10 * 1024 * 1024
    retry_base: float = 30.0
    retry_max: float = 3600.0
    max_age: float = 5 * 86400
    """A message still undelivered this long after it was accepted is dead-lettered."""
    concurrency: int = 4
    keep: float = 7 * 86400
    """Delivered messages are forgotten this long after delivery (``relay list`` history)."""
    max_connections: int = 50
    """Client sessions at once (Postfix's smtpd_client_connection_count_limit); when full,
    the longest-idle session is closed to make room, else the newcomer hears 421."""
    max_recipients: int = 1000
    """RCPT TO per message (Postfix's smtpd_recipient_limit); more get 452 4.5.3."""
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    xoauth2_token_file: str | None = None
    xoauth2_token_command: str | None = None
    poll_interval: float = 1.0
    """Longest the delivery loop sleeps; bounds how soon `relay retry` from another
    process is noticed."""
    connect_timeout: float = 10.0
    command_timeout: float = 30.0
    data_timeout: float = 120.0
    session_timeout: float = 60.0
    """Idle seconds before the listener drops a client."""
    allow_remote_listen: bool = field(default=False, repr=False)
    """Listen on a non-loopback address (Docker bridge networks); the allow-list still applies."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow", tuple(self.allow))
        AllowList(self.allow)  # validates
        if self.xoauth2_token_file and self.xoauth2_token_command:
            raise errors.UsageError("give either an XOAUTH2 token file or a token command, "
                                    "not both")
        if not 0 <= self.listen_port <= 65535:
            raise errors.UsageError(f"listen port {self.listen_port} is out of range")
        if not self.allow_remote_listen and not is_loopback(self.listen_host):
            raise errors.UsageError(
                f"refusing to listen on {self.listen_host!r}: not a loopback address "
                "(Synapse and the relay belong on the same host)")
        if self.metrics_port is not None and not is_loopback(self.metrics_host):
            raise errors.UsageError(f"the metrics endpoint must be on loopback, not "
                                    f"{self.metrics_host!r}")
        if self.concurrency < 1:
            raise errors.UsageError("concurrency must be at least 1")
        if self.retry_base <= 0 or self.retry_max < self.retry_base or self.max_age <= 0:
            raise errors.UsageError("retry_base must be > 0, retry_max >= retry_base, "
                                    "max_age > 0")
        if self.max_message_size <= 0:
            raise errors.UsageError("max_message_size must be positive")
        if self.keep < 0 or self.max_connections < 1 or self.max_recipients < 1:
            raise errors.UsageError("keep must be >= 0, max_connections and max_recipients "
                                    ">= 1")
        self._refuse_loop()

    def _refuse_loop(self) -> None:
        """An upstream that is the relay itself (easy to do: give ``relay run`` the
        homeserver.yaml that ``init --relay`` just rewrote) would pass every mail round in
        circles."""
        for which, settings in (("email: block", self.upstream),
                                ("fallback's email: block", self.fallback)):
            if settings is None:
                continue
            host, port = settings.smtp_host, settings.smtp_port
            if (isinstance(host, str) and is_loopback(host) and self.listen_port != 0
                    and str(port) == str(self.listen_port)):
                raise errors.UsageError(
                    f"the {which} points at the relay itself ({host}:{port}): give the relay "
                    "a config whose email: block names the upstream server (your provider), "
                    "not the homeserver.yaml that points Synapse at the relay")

    @property
    def uses_xoauth2(self) -> bool:
        return bool(self.xoauth2_token_file or self.xoauth2_token_command)
