"""The child side of :mod:`maildoctor.synapse.engine.twisted_engine`: one send, one reactor.

Reads a JSON job on stdin, prints ``ready`` once Twisted is imported (the parent's
watchdog starts there), runs the send as Synapse's ``_sendmail`` would, and prints JSON
lines: one per Twisted error log event as it happens, then the result. It never prints
the job. The parent redacts what it returns.

The order of events mirrors Synapse: the factory is built first (a non-ASCII envelope
address fails right there, before any connection), then the endpoint connects
(refused / DNS / TCP timeout fail here), then the factory's deferred decides. Hangs
are not detected here: this process simply keeps waiting, like Synapse, until the
parent kills it.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from io import BytesIO
from typing import Any, cast


def qualified_name(exc: BaseException) -> str:
    """The class name as a Python traceback prints it (no ``builtins.`` prefix)."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe(exc: BaseException) -> dict[str, str]:
    text = str(exc)
    return {
        "exception": qualified_name(exc),
        "message": text.split("\n", 1)[0],
        "detail": text,
    }


def _encode(value: Any) -> bytes | None:
    """Synapse encodes user and password with ``.encode("utf-8")`` when not ``None``."""
    return None if value is None else bytes(value.encode("utf-8"))


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Run one send on a fresh reactor and return the result as a dict."""
    from twisted.internet import reactor as installed_reactor
    from twisted.internet._resolver import GAIResolver
    from twisted.internet.defer import Deferred
    from twisted.internet.endpoints import HostnameEndpoint
    from twisted.internet.ssl import optionsForClientTLS
    from twisted.logger import formatEvent, globalLogBeginner
    from twisted.mail.smtp import ESMTPSender, ESMTPSenderFactory
    from twisted.protocols.tls import TLSMemoryBIOFactory
    from twisted.python.failure import Failure

    # Twisted's stubs type the reactor as a bundle of interfaces; treat it as dynamic.
    reactor: Any = installed_reactor
    smtp_factory: Any = ESMTPSenderFactory
    result: dict[str, Any] = {}
    final_reply: list[str] = []
    started = time.monotonic()

    class RecordingSender(ESMTPSender):
        """Synapse's protocol, plus a note of the server's final reply (the queue id),
        which Twisted does not pass on to the caller. Nothing else is changed."""

        def sentMail(self, code: int, resp: bytes, numOk: int, addresses: Any,
                     log: Any) -> Any:
            text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
            final_reply.append(f"{code} {text}")
            return super().sentMail(code, resp, numOk, addresses, log)  # type: ignore[no-untyped-call]

    def observe(event: dict[str, Any]) -> None:
        failure = event.get("log_failure")
        if failure is None and not event.get("isError"):
            return
        header = formatEvent(event) or "Unhandled Error"
        if failure is not None:
            header += f": {qualified_name(failure.value)}: {failure.value}"
        # Streamed at once: on a hang the parent kills this process and keeps what it has.
        _emit({"unhandled": header})

    globalLogBeginner.beginLoggingTo([cast(Any, observe)], redirectStandardIO=False)
    # Synapse resolves with getaddrinfo (IPv4 and IPv6, /etc/hosts honoured).
    reactor.installNameResolver(GAIResolver(reactor))

    def finish(kind: str, exc: BaseException | None = None) -> None:
        if result:
            return
        result["kind"] = kind
        if final_reply:
            result["reply"] = final_reply[-1]
        if exc is not None:
            result.update(_describe(exc))
        result["seconds"] = round(time.monotonic() - started, 3)
        reactor.callLater(0, reactor.stop)

    def failed(failure: Failure) -> None:
        finish("error", failure.value)

    def start() -> None:
        done: Deferred[Any] = Deferred()
        try:
            factory: Any = smtp_factory(
                _encode(job["user"]),
                _encode(job["password"]),
                job["from"],
                job["to"],
                BytesIO(base64.b64decode(job["message"])),
                done,
                heloFallback=True,
                requireAuthentication=job["user"] is not None,
                requireTransportSecurity=job["require_tls"],
                hostname=job["tls_name"],
            )
            factory.protocol = RecordingSender
            if job["force_tls"]:
                factory = TLSMemoryBIOFactory(optionsForClientTLS(job["tls_name"]), True, factory)
            endpoint = HostnameEndpoint(reactor, job["host"], job["port"], timeout=30)
            connecting = endpoint.connect(factory)
        except Exception as exc:  # raised synchronously, like Synapse's own call
            finish("error", exc)
            return
        connecting.addErrback(failed)
        done.addCallbacks(lambda _: finish("ok"), failed)

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    return result


def _emit(record: dict[str, Any]) -> None:
    """One JSON record per stdout line: ``{"unhandled": ...}`` lines, then ``{"result": ...}``."""
    sys.stdout.buffer.write(json.dumps(record).encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


def main() -> int:
    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    import twisted.mail.smtp  # noqa: F401  (the slow import, before "ready")

    sys.stdout.buffer.write(b"ready\n")
    sys.stdout.buffer.flush()
    _emit({"result": run(job)})
    return 0
