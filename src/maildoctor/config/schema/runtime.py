"""Facts about the software under Synapse's mail path, keyed to versions, each with its source.

The schema's other tables say which *keys* a Synapse release reads; this one says what the
*installation* changes: which Twisted a Synapse release needs for mail, and what Twisted
itself does differently by version. Data only; the rules in
``maildoctor.config.rules.environment`` apply it. Every fact names where it was read
(an issue, a changelog, the spec file that recorded the source diff).
"""

from __future__ import annotations

from dataclasses import dataclass

from maildoctor.config.schema.model import Version

__all__ = ["TWISTED_FACTS", "TwistedFact"]

V = Version
_SPEC_TWISTED = "spec/twisted-smtp.md section 6 (diffs of Twisted's PyPI releases)"


@dataclass(frozen=True)
class TwistedFact:
    """A Twisted behaviour that matters for Synapse's mail, for ``twisted < before``.

    ``synapse_from``/``synapse_until`` bound the Synapse releases concerned (``None``: any).
    ``severity`` is how bad it is for mail: "error" (mail fails), "warning" or "info".
    """

    key: str
    before: Version  # Twisted releases older than this have the behaviour
    what: str
    consequence: str
    severity: str
    source: str
    synapse_from: Version | None = None
    synapse_until: Version | None = None  # exclusive


TWISTED_FACTS: tuple[TwistedFact, ...] = (
    TwistedFact(
        key="hostname-keyword",
        before=V(21, 2, 0),
        synapse_from=V(1, 41, 0),
        synapse_until=V(1, 41, 1),
        what="Synapse passes `hostname=` to Twisted's ESMTPSenderFactory, which only accepts "
             "it from Twisted 21.2.0",
        consequence="every mail fails with TypeError: __init__() got an unexpected keyword "
                    "argument 'hostname' (the client sees 500 M_UNKNOWN)",
        severity="error",
        source="https://github.com/matrix-org/synapse/issues/10709 (Synapse 1.41.0 declared "
               "Twisted>=18.9.0 while needing 21.2.0)",
    ),
    TwistedFact(
        key="legacy-starttls",
        before=V(21, 2, 0),
        what="Twisted's SMTP client before 21.2.0 builds its STARTTLS context with "
             "ClientContextFactory: TLS 1.0 only, and no certificate or name verification",
        consequence="servers that refuse TLS 1.0 drop the STARTTLS handshake (mail fails), "
                    "and a wrong or self-signed certificate is accepted without a word",
        severity="warning",
        source=f"{_SPEC_TWISTED}; https://github.com/matrix-org/synapse/issues/6211; "
               "Twisted PR #1225 (#9740)",
    ),
    TwistedFact(
        key="connection-lost-reason",
        before=V(26, 4, 0),
        synapse_until=V(1, 92, 0),
        what="Twisted before 26.4.0 reports a lost SMTP connection as 'Unable to connect to "
             "server.' instead of the TLS verification error behind it",
        consequence="a certificate problem shows in Synapse's log as a bare connection error",
        severity="info",
        source=f"{_SPEC_TWISTED} (26.4.0, twisted#10210); Synapse >= 1.92 uses "
               "HostnameEndpoint, where this path is never taken",
    ),
)
