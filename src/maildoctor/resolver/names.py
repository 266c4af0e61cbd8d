"""Names that can never be a real deployment's: the documentation domains of RFC 2606
(example.com, example.net, example.org and the .example TLD) and .invalid. The probe does
not ask the DNS or the web about them (a config copied from documentation would otherwise
send questions about someone else's domain); it says why it skipped instead. ``.test`` and
``.localhost`` are left alone: they are for testing, and tests serve them."""

from __future__ import annotations

DOCUMENTATION_DOMAINS = ("example.com", "example.net", "example.org")
DOCUMENTATION_TLDS = ("example", "invalid")


def is_documentation_name(name: str) -> bool:
    n = name.strip().rstrip(".").lower()
    if n.rsplit(".", 1)[-1] in DOCUMENTATION_TLDS:
        return True
    return any(n == d or n.endswith("." + d) for d in DOCUMENTATION_DOMAINS)
