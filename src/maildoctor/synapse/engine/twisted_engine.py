"""Send one message exactly the way Synapse's ``_sendmail`` does, with real Twisted.

This is the witness for :func:`maildoctor.synapse.model.predict.predict`: where the model
reasons from the spec, this engine lets Twisted itself decide. It builds the same
client Synapse builds (spec/synapse-email.md 2.3, spec/twisted-smtp.md 1):

- an ``ESMTPSenderFactory`` with the user and password as UTF-8 bytes (or ``None``),
  ``heloFallback=True``, authentication required whenever a user is set, transport
  security as configured, and the TLS name as ``hostname`` (``None`` when
  ``enable_tls`` is off, which removes the TLS context altogether);
- for ``force_tls``, that factory wrapped in a client-side ``TLSMemoryBIOFactory``;
- connected through ``HostnameEndpoint(timeout=30)`` with a getaddrinfo resolver,
  as Synapse >= 1.92 does; no retries, no SMTP timeout.

Twisted's reactor runs once per process, and a Synapse-style send can hang forever,
so each send runs in a fresh child (``python -m maildoctor.synapse.engine.twisted_engine``)
that reads a JSON job on stdin and writes a JSON result on stdout. The parent
enforces the watchdog and reports a kill as ``kind="hang"``. The password travels
only through the child's stdin; every text returned is passed through a
:class:`~maildoctor.secrets.Redactor` because Twisted's exception text ends with the
last transcript lines, which carry the base64 of the credentials.

Twisted is an optional extra (``pip install 'maildoctor[twisted]'``): nothing here
imports it until the child runs.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from maildoctor.config.settings import EmailSettings
from maildoctor.errors import MaildoctorError
from maildoctor.secrets import Redactor
from maildoctor.synapse.model.startup import startup_failure

__all__ = ["EngineResult", "TwistedMissingError", "send_like_synapse"]

_READY = b"ready\n"
_STARTUP_LIMIT = 60.0  # importing Twisted on a loaded machine; not part of the watchdog


class TwistedMissingError(MaildoctorError, ImportError):
    """The optional Twisted extra is not installed."""


@dataclass(frozen=True)
class EngineResult:
    """What happened to one Synapse-style send.

    ``kind``: ``ok``, ``error``, ``hang`` (killed by the watchdog), or ``no-start``
    (Synapse would crash before serving, e.g. a numeric password). ``exception`` is the
    class name as Synapse's traceback prints it, ``message`` the first line of
    ``str(e)``, ``detail`` the whole (redacted) text, ``unhandled`` Twisted's
    "Unhandled Error" log lines.
    """

    kind: str
    exception: str = ""
    message: str = ""
    detail: str = ""
    seconds: float = 0.0
    unhandled: tuple[str, ...] = ()
    reply: str = ""  # the server's final reply (with its queue id), when the mail went out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["unhandled"] = list(self.unhandled)
        return data


def _require_twisted() -> None:
    for module in ("twisted", "OpenSSL", "service_identity"):
        if importlib.util.find_spec(module) is None:
            raise TwistedMissingError(
                f"the Synapse-exact engine needs Twisted with TLS support ({module} is "
                "missing): pip install 'maildoctor[twisted]'"
            )


def _job(settings: EmailSettings, from_addr: str, to_addr: str, message: bytes) -> dict[str, Any]:
    """The child's instructions: the raw values Synapse would hand to Twisted."""
    password = settings.smtp_pass.reveal() if settings.smtp_pass is not None else None
    return {
        "host": settings.smtp_host,
        "port": settings.smtp_port,
        "user": settings.smtp_user,
        "password": password,
        "force_tls": settings.implicit_tls,
        "require_tls": settings.require_tls,
        "tls_name": settings.tls_name,
        "from": from_addr,
        "to": to_addr,
        "message": base64.b64encode(message).decode("ascii"),
    }


def send_like_synapse(
    settings: EmailSettings,
    from_addr: str,
    to_addr: str,
    message: bytes,
    *,
    watchdog: float = 10.0,
    ca_file: str | None = None,
) -> EngineResult:
    """Send ``message`` as Synapse would with ``settings``; give up after ``watchdog`` s.

    ``from_addr``/``to_addr`` are the envelope addresses (Synapse's ``parseaddr`` results).
    ``ca_file`` becomes the child's ``SSL_CERT_FILE``, as an admin would set it for
    Synapse. The watchdog starts once the child has imported Twisted.
    """
    crash = startup_failure(settings)
    if crash is not None:  # Synapse dies at startup; there is no send to watch
        return EngineResult("no-start", crash.exception, crash.message, crash.message)
    _require_twisted()
    redact = Redactor()
    user = settings.smtp_user if isinstance(settings.smtp_user, str) else None
    redact.add(settings.smtp_pass, [user])
    env = dict(os.environ)
    if ca_file is not None:
        env["SSL_CERT_FILE"] = ca_file
    job = json.dumps(_job(settings, from_addr, to_addr, message)).encode("utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "maildoctor.synapse.engine.twisted_engine"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, bufsize=0,
    )
    return _supervise(proc, job, watchdog, redact)


def _supervise(
    proc: subprocess.Popen[bytes], job: bytes, watchdog: float, redact: Redactor
) -> EngineResult:
    """Feed the job, wait for "ready", then give the send ``watchdog`` seconds."""
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(job)
        proc.stdin.close()
        proc.stdin = None  # so communicate() below does not flush a closed pipe
        ready = proc.stdout.readline()  # unbuffered pipe: reads exactly one line
        started = time.monotonic()
        if ready != _READY:
            _, err = proc.communicate(timeout=_STARTUP_LIMIT)
            raise MaildoctorError(
                "the Twisted engine failed to start: "
                + redact(err.decode("utf-8", "replace").strip()[-2000:])
            )
        try:
            out, err = proc.communicate(timeout=watchdog)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            seconds = round(time.monotonic() - started, 3)
            return _result(out, err, redact, hung_after=seconds)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return _result(out, err, redact)


def _result(out: bytes, err: bytes, redact: Redactor, hung_after: float | None = None
            ) -> EngineResult:
    """Parse the child's JSON lines (log events, then the result unless it was killed)."""
    unhandled: list[str] = []
    raw: dict[str, Any] | None = None
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "unhandled" in record:
            unhandled.append(redact(str(record["unhandled"])))
        elif "result" in record:
            raw = record["result"]
    if hung_after is not None:
        return EngineResult("hang", seconds=hung_after, unhandled=tuple(unhandled))
    if raw is None:
        tail = redact(err.decode("utf-8", "replace").strip()[-2000:])
        raise MaildoctorError(f"the Twisted engine returned no result: {tail}")
    return EngineResult(
        kind=str(raw["kind"]),
        exception=str(raw.get("exception", "")),
        message=redact(str(raw.get("message", ""))),
        detail=redact(str(raw.get("detail", ""))),
        seconds=float(raw.get("seconds", 0.0)),
        unhandled=tuple(unhandled),
        reply=redact(str(raw.get("reply", ""))),
    )


if __name__ == "__main__":
    from maildoctor.synapse.engine.twisted_child import main

    sys.exit(main())
