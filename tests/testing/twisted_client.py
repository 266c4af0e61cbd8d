"""Send one mail per case the way Synapse >= 1.92 does, with Twisted, and report what happened.

Run as a subprocess (Twisted's reactor cannot be restarted inside pytest):
``python -m tests.testing.twisted_client '<json list of cases>' <seconds>``; prints one JSON list
of outcomes in the same order. The client is built from the facts in spec/twisted-smtp.md
section 1 (ESMTPSenderFactory with heloFallback, requireAuthentication when a user is set,
hostname only when TLS is enabled, HostnameEndpoint with a 30 s connect timeout, the factory
wrapped in TLSMemoryBIOFactory for force_tls). All cases run concurrently; any case without a
result when the deadline passes is reported as a hang, which is what Synapse does forever.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any


def main(cases: list[dict[str, Any]], deadline: float) -> list[dict[str, Any]]:
    from twisted.internet import defer, reactor
    from twisted.internet.endpoints import HostnameEndpoint
    from twisted.internet.ssl import optionsForClientTLS
    from twisted.mail.smtp import ESMTPSenderFactory
    from twisted.protocols.tls import TLSMemoryBIOFactory

    results: list[dict[str, Any]] = [{"outcome": "hang"} for _ in cases]
    pending = []
    for index, case in enumerate(cases):
        done: defer.Deferred[Any] = defer.Deferred()
        user = case.get("user")
        password = case.get("password")
        tls_name = case["host"] if case.get("enable_tls", True) else None
        factory = ESMTPSenderFactory(
            user.encode() if user else None, password.encode() if password else None,
            "noreply@example.org", "alice@example.org",
            io.BytesIO(b"Subject: test\r\n\r\nhello\r\n"), done,
            heloFallback=True, requireAuthentication=user is not None,
            requireTransportSecurity=case.get("require_transport_security", False),
            hostname=tls_name,
        )
        if case.get("force_tls"):
            factory = TLSMemoryBIOFactory(optionsForClientTLS(tls_name), True, factory)
        HostnameEndpoint(reactor, case["host"], case["port"], timeout=30).connect(factory)

        def ok(_: object, index: int = index) -> None:
            results[index] = {"outcome": "sent"}

        def failed(failure: Any, index: int = index) -> None:
            results[index] = {
                "outcome": "error", "type": failure.type.__name__,
                "text": str(failure.value).split("\n")[0],
            }

        done.addCallbacks(ok, failed)
        pending.append(done)

    everything = defer.DeferredList(pending, consumeErrors=True)
    everything.addBoth(lambda _: reactor.stop())
    reactor.callLater(deadline, lambda: reactor.running and reactor.stop())
    reactor.run()
    return results


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]), float(sys.argv[2]))))
