"""The Twisted engine against real aiosmtpd servers, and the model against the engine.

Each scenario starts a real aiosmtpd server on 127.0.0.1 (port 0, trustme certificates),
observes it with small stdlib clients to build the ServerFacts, runs a real
Synapse-style Twisted send in a child process, and checks that the engine's outcome
equals ``predict(settings, facts)``. Hangs are detected by the engine's watchdog (2 s).
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from maildoctor.smtp.facts import Connect, Reply, Resolve, ServerFacts, Speaks, TlsVerify
from maildoctor.synapse.model.predict import predict
from tests.synapse.support import (
    FROM,
    PASSWORD,
    TO,
    USER,
    assert_agrees,
    assert_no_secret,
    observe,
    observe_login,
    run,
    settings,
    unused_port,
)

# --- a small local server fixture ------------------------------------------------------


class Sink:
    """aiosmtpd handler: keeps delivered envelopes; optionally rejects the sender."""

    def __init__(self, mail_reply: str | None = None) -> None:
        self.mail_reply = mail_reply
        self.delivered: list[Envelope] = []

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.delivered.append(envelope)
        return "250 OK"


class XOAuthSink(Sink):
    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return AuthResult(success=False)


def check_password(silent: bool = False) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator for USER/PASSWORD. ``silent``: on failure, say nothing."""
    def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      data: LoginPassword) -> AuthResult:
        ok = data.login == USER.encode() and data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=silent and not ok)
    return authenticator


class ServerLoop:
    """An asyncio loop in a thread, serving aiosmtpd instances on 127.0.0.1 port 0."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncio.Server] = []

    def serve(self, handler: Sink, *, implicit: ssl.SSLContext | None = None,
              **smtp: Any) -> int:
        def protocol() -> SMTP:
            return SMTP(handler, hostname="mx.test", loop=self.loop, **smtp)

        async def start() -> asyncio.Server:
            return await self.loop.create_server(protocol, "127.0.0.1", 0, ssl=implicit)

        server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def close(self) -> None:
        async def stop() -> None:
            for server in self.servers:
                server.close()
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerLoop]:
    loop = ServerLoop()
    yield loop
    loop.close()


class Certs:
    def __init__(self, tmp: Path) -> None:
        self.ca = trustme.CA()
        self.other_ca = trustme.CA()  # never trusted
        self.ca_file = str(tmp / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)

    def context(self, trusted: bool = True) -> ssl.SSLContext:
        ca = self.ca if trusted else self.other_ca
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("mail.test", "localhost", "127.0.0.1").configure_cert(ctx)
        return ctx


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


# --- scenarios --------------------------------------------------------------------------


def test_works_with_auth_login(servers: ServerLoop) -> None:
    sink = Sink()
    port = servers.serve(sink, authenticator=check_password(), auth_require_tls=False)
    facts = observe(port)
    facts = replace(facts, auth=observe_login(port, PASSWORD))
    s = settings(port, smtp_user=USER, smtp_pass=PASSWORD)
    result = run(s)
    assert_agrees(result, predict(s, facts))
    assert result.kind == "ok"
    assert [e.mail_from for e in sink.delivered[-1:]] == [FROM]


def test_seed_typo_smpt_pass(servers: ServerLoop) -> None:
    port = servers.serve(Sink(), authenticator=check_password(), auth_require_tls=False)
    s = settings(port, smtp_user=USER, smpt_pass=PASSWORD)
    result = run(s)
    assert_agrees(result, predict(s, observe(port)))
    assert result.exception == "twisted.mail._except.AUTHRequiredError"


@pytest.mark.parametrize("kind", ["no AUTH offered", "XOAUTH2 only"])
def test_no_usable_auth(servers: ServerLoop, kind: str) -> None:
    if kind == "no AUTH offered":  # aiosmtpd hides AUTH before TLS
        port = servers.serve(Sink(), authenticator=check_password(), auth_require_tls=True)
    else:
        port = servers.serve(XOAuthSink(), authenticator=check_password(),
                             auth_require_tls=False, auth_exclude_mechanism=["LOGIN", "PLAIN"])
    facts = observe(port)
    s = settings(port, smtp_user=USER, smtp_pass=PASSWORD)
    result = run(s)
    outcome = predict(s, facts)
    assert_agrees(result, outcome)
    assert result.exception == "twisted.mail._except.AUTHRequiredError"
    assert ("XOAUTH2" in outcome.why) == (kind == "XOAUTH2 only")


def test_require_transport_security_without_starttls(servers: ServerLoop) -> None:
    port = servers.serve(Sink())
    s = settings(port, require_transport_security=True)
    result = run(s)
    assert_agrees(result, predict(s, observe(port)))
    assert result.exception == "twisted.mail._except.TLSRequiredError"


def test_sender_rejected_553(servers: ServerLoop) -> None:
    text = f"553 5.7.1 <{FROM}>: Sender address rejected: not owned by user"
    port = servers.serve(Sink(mail_reply=text))
    s = settings(port)
    result = run(s)
    assert_agrees(result, predict(s, observe(port, mail_from=FROM)))
    assert result.message == text


def test_nothing_listening() -> None:
    port = unused_port()
    s = settings(port)
    result = run(s)
    assert_agrees(result, predict(s, ServerFacts(connect=Connect.REFUSED)))


def test_host_does_not_resolve() -> None:
    s = settings(25, smtp_host="smtp.invalid")
    result = run(s)
    assert_agrees(result, predict(s, ServerFacts(resolve=Resolve.NXDOMAIN)))
    assert "smtp.invalid" in result.message


def test_implicit_tls_port_without_force_tls_hangs(servers: ServerLoop, certs: Certs) -> None:
    port = servers.serve(Sink(), implicit=certs.context())
    s = settings(port)
    result = run(s, ca_file=certs.ca_file)
    assert_agrees(result, predict(s, ServerFacts(connect=Connect.OK, speaks=Speaks.TLS)))
    assert result.kind == "hang"


def test_force_tls_on_plaintext_port_hangs(servers: ServerLoop, certs: Certs) -> None:
    port = servers.serve(Sink())
    s = settings(port, force_tls=True, tlsname="mail.test")
    result = run(s, ca_file=certs.ca_file)
    assert_agrees(result, predict(s, ServerFacts(connect=Connect.OK, speaks=Speaks.SMTP)))


def test_force_tls_with_trusted_ca_works(servers: ServerLoop, certs: Certs) -> None:
    sink = Sink()
    port = servers.serve(sink, implicit=certs.context())
    s = settings(port, force_tls=True, tlsname="mail.test")
    facts = ServerFacts(connect=Connect.OK, speaks=Speaks.TLS, tls=TlsVerify.OK)
    result = run(s, ca_file=certs.ca_file)
    assert_agrees(result, predict(s, facts))
    assert result.kind == "ok" and len(sink.delivered) == 1


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted-hangs", "trusted-works"])
def test_starttls(servers: ServerLoop, certs: Certs, trusted: bool) -> None:
    port = servers.serve(Sink(), tls_context=certs.context(trusted), require_starttls=True)
    facts = observe(port)
    assert "STARTTLS" in facts.ehlo_lines
    verify = TlsVerify.OK if trusted else TlsVerify.UNTRUSTED
    facts = replace(facts, starttls=Reply(220, "Ready"), tls=verify)
    s = settings(port, tlsname="mail.test")
    result = run(s, ca_file=certs.ca_file)
    assert_agrees(result, predict(s, facts))
    assert result.kind == ("ok" if trusted else "hang")


def test_enable_tls_false_sends_in_plaintext_despite_starttls(
    servers: ServerLoop, certs: Certs
) -> None:
    port = servers.serve(Sink(), tls_context=certs.context(trusted=False))
    facts = observe(port)
    s = settings(port, enable_tls=False)
    result = run(s)
    assert_agrees(result, predict(s, facts))
    assert result.kind == "ok"


@pytest.mark.parametrize("silent", [False, True], ids=["535-declined", "no-reply-hangs"])
def test_wrong_password_login(servers: ServerLoop, silent: bool) -> None:
    """aiosmtpd answers a bad LOGIN with 535 unless the authenticator handles the failure
    itself (``handled=True``), in which case it says nothing and Synapse hangs."""
    port = servers.serve(Sink(), authenticator=check_password(silent), auth_require_tls=False)
    attempt = observe_login(port, "nope", silence=1.0 if silent else 10.0)
    facts = observe(port)
    stalled = "auth" if silent else None
    facts = replace(facts, auth=attempt, stalled_at=stalled)
    s = settings(port, smtp_user=USER, smtp_pass="nope")
    result = run(s)
    outcome = predict(s, facts)
    assert_agrees(result, outcome)
    if silent:
        assert [r.code for r in attempt.replies] == [334, 334]
        assert result.kind == "hang"
    else:
        assert [r.code for r in attempt.replies] == [334, 334, 535]
        assert result.message == "535 5.7.8 Authentication credentials invalid"


def test_wrong_password_is_redacted_from_the_transcript(servers: ServerLoop) -> None:
    port = servers.serve(Sink(), authenticator=check_password(), auth_require_tls=False)
    wrong = "wrong-Passw0rd"
    s = settings(port, smtp_user=USER, smtp_pass=wrong)
    result = run(s)
    assert result.exception == "twisted.mail._except.AUTHDeclinedError"
    assert ">>> ********" in result.detail  # the base64 password line, masked
    assert_no_secret(result, wrong)


def test_aiosmtpd_default_auth_result_is_silent(servers: ServerLoop) -> None:
    """``AuthResult(success=False)`` defaults to ``handled=True``: aiosmtpd then sends no
    reply at all, which is why a real Synapse hung on a wrong password against aiosmtpd."""
    port = servers.serve(Sink(), authenticator=lambda *a: AuthResult(success=False),
                         auth_require_tls=False)
    attempt = observe_login(port, "nope", silence=1.0)
    assert [r.code for r in attempt.replies] == [334, 334]
    s = settings(port, smtp_user=USER, smtp_pass="nope")
    result = run(s)
    facts = replace(observe(port), auth=attempt, stalled_at="auth")
    assert_agrees(result, predict(s, facts))
    assert result.kind == "hang"


def test_password_without_user_crashes_twisted_and_hangs(servers: ServerLoop) -> None:
    port = servers.serve(Sink(), authenticator=check_password(), auth_require_tls=False)
    s = settings(port, smtp_pass=PASSWORD)
    result = run(s)
    outcome = predict(s, observe(port))
    assert_agrees(result, outcome)
    assert any(outcome.message in line for line in result.unhandled)
    assert_no_secret(result)


@pytest.mark.parametrize(
    ("change", "to"),
    [
        ({"smtp_port": None}, TO),
        ({"smtp_port": "notaport"}, TO),
        ({"smtp_host": None}, TO),
        ({"smtp_port": 25.0}, TO),
        ({}, "al\u00f6ce@example.org"),
        ({"smtp_user": "u", "smtp_pass": 123456}, TO),
    ],
    ids=["port-null", "port-not-a-number", "host-null", "port-float", "non-ascii-to",
         "numeric-password"],
)
def test_config_shapes(change: dict[str, Any], to: str) -> None:
    s = settings(unused_port(), **change)
    result = run(s, to=to)
    assert_agrees(result, predict(s, ServerFacts(connect=Connect.REFUSED), recipient=to))


def test_missing_twisted_names_the_extra() -> None:
    """With Twisted unimportable, the engine says how to install it (in a clean process)."""
    code = (
        "import sys; sys.modules['twisted'] = None\n"
        "from maildoctor.synapse.engine.twisted_engine import (\n"
        "    TwistedMissingError, send_like_synapse)\n"
        "from maildoctor.config.settings import settings_from_config\n"
        "s = settings_from_config({'email': {'notif_from': 'a@b.c'}})\n"
        "try:\n"
        "    send_like_synapse(s, 'a@b.c', 'd@e.f', b'x')\n"
        "except TwistedMissingError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert "pip install 'maildoctor[twisted]'" in done.stdout
