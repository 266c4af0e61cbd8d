"""Helpers shared by the engine tests: observing a server with stdlib clients (the facts
the model gets), Synapse-like settings, running the engine, comparing it with the model."""

from __future__ import annotations

import base64
import json
import smtplib
import socket
import ssl
from dataclasses import replace
from typing import Any

from maildoctor.config.settings import EmailSettings, settings_from_config
from maildoctor.smtp.facts import (
    AuthAttempt,
    Connect,
    Reply,
    Resolve,
    ServerFacts,
    Speaks,
    TlsVerify,
)
from maildoctor.synapse.engine.twisted_engine import EngineResult, send_like_synapse
from maildoctor.synapse.model.predict import Outcome
from maildoctor.testing.ports import free_port

USER, PASSWORD = "synapse@example.org", "s3cret"
FROM, TO = "noreply@example.org", "alice@example.org"
MESSAGE = b"Subject: test\nFrom: Matrix <noreply@example.org>\n\nhello\n"
WATCHDOG = 3.0  # the machine is shared; a hang is anything still waiting after this


def observe(port: int, *, mail_from: str | None = None, rcpt_to: str | None = None,
            starttls_ca: str | None = None) -> ServerFacts:
    """Greeting, EHLO lines (before and, with ``starttls_ca``, after STARTTLS) and the MAIL
    and RCPT replies, observed with stdlib smtplib."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=5) as client:
        code, text = client.ehlo()
        lines = tuple(text.decode().split("\n"))
        facts = ServerFacts(host="127.0.0.1", port=port, resolve=Resolve.OK, connect=Connect.OK,
                            speaks=Speaks.SMTP, greeting=Reply(220, "mail.test"),
                            ehlo=Reply(code, lines[0]), ehlo_lines=lines)
        if starttls_ca is not None:
            context = ssl.create_default_context(cafile=starttls_ca)
            tcode, ttext = client.starttls(context=context)
            _, after = client.ehlo()
            facts = replace(facts, starttls=Reply(tcode, ttext.decode()), tls=TlsVerify.OK,
                            ehlo_tls_lines=tuple(after.decode().split("\n")))
        if mail_from is not None:
            mcode, mtext = client.mail(mail_from)
            facts = replace(facts, mail=Reply(mcode, mtext.decode()))
        if rcpt_to is not None:
            rcode, rtext = client.rcpt(rcpt_to)
            facts = replace(facts, rcpt=Reply(rcode, rtext.decode()))
    return facts


def observe_login(port: int, password: str, silence: float = 10.0) -> AuthAttempt:
    """AUTH LOGIN with USER/``password`` over a raw socket, as Twisted sends it.

    A reply that does not come within ``silence`` seconds ends the observation (the
    caller records the stall); a closed connection is recorded as ``dropped``."""
    replies: list[Reply] = []
    with socket.create_connection(("127.0.0.1", port), timeout=silence) as sock:
        stream = sock.makefile("rb")

        def reply() -> Reply | str:
            lines: list[bytes] = []
            try:
                while True:
                    line = stream.readline()
                    if not line:
                        return "closed"
                    lines.append(line.rstrip(b"\r\n"))
                    if line[3:4] != b"-":
                        break
            except TimeoutError:
                return "silent"
            except ConnectionResetError:
                return "closed"
            return Reply(int(lines[0][:3]), "\n".join(x[4:].decode() for x in lines))

        reply()
        sock.sendall(b"EHLO client.test\r\n")
        reply()
        for line in (b"AUTH LOGIN", base64.b64encode(USER.encode()),
                     base64.b64encode(password.encode())):
            sock.sendall(line + b"\r\n")
            got = reply()
            if isinstance(got, str):
                return AuthAttempt("LOGIN", tuple(replies), dropped=got == "closed")
            replies.append(got)
    return AuthAttempt("LOGIN", tuple(replies))



unused_port = free_port



def settings(port: int | None, **email: Any) -> EmailSettings:
    block = {"smtp_host": "127.0.0.1", "smtp_port": port, "notif_from": f"Matrix <{FROM}>"}
    return settings_from_config({"email": {**block, **email}})


def run(s: EmailSettings, ca_file: str | None = None, to: str = TO) -> EngineResult:
    return send_like_synapse(s, FROM, to, MESSAGE, watchdog=WATCHDOG, ca_file=ca_file)


def assert_agrees(result: EngineResult, outcome: Outcome) -> None:
    assert (result.kind, result.exception, result.message) == (
        outcome.kind, outcome.exception if outcome.kind != "hang" else "",
        outcome.message if outcome.kind != "hang" else "",
    ), outcome.why


def assert_no_secret(result: EngineResult, password: str = PASSWORD) -> None:
    dumped = json.dumps(result.to_json())
    for form in (password, base64.b64encode(password.encode()).decode(),
                 base64.b64encode(f"{USER}\0{USER}\0{password}".encode()).decode(),
                 base64.b64encode(f"\0{USER}\0{password}".encode()).decode()):
        assert form not in dumped


