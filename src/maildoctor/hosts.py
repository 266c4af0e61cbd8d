"""What a host name or address is, decided once for every part of maildoctor.

:func:`is_loopback` answers for a config's ``smtp_host`` (rules MD306, MD309, MD310), for
the address a probe or the shell actually reached, and for where the relay and the test
server may listen without an explicit "allow remote" option.
"""

from __future__ import annotations

import ipaddress

__all__ = ["LOOPBACK_NAMES", "is_loopback"]

# Names that mean this machine everywhere: Debian's /etc/hosts aliases, and RFC 6761's
# reserved ``localhost`` with its subdomains (checked separately).
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost",
                            "ip6-loopback"})


def is_loopback(host: object) -> bool:
    """``localhost`` and its aliases, 127.0.0.0/8 and ::1 (brackets, a trailing dot, a zone
    id and case tolerated); anything that is not a string is not loopback."""
    if not isinstance(host, str):
        return False
    name = host.strip().strip("[]").rstrip(".").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
