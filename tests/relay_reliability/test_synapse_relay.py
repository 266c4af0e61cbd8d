"""The issue's "done when": a real Synapse pointed at the relay delivers every kind of mail
through a real Postfix upstream.

Synapse talks to the relay as the README tells admins to set it up (``smtp_host: 127.0.0.1``,
the relay's port, ``enable_tls: false``, no login); the relay talks to Postfix's submission
port with STARTTLS (trusting the throwaway CA, TLS name ``mail.test``) and AUTH. Each mail is
looked for in Postfix's Maildir by its unique recipient, and its row in the relay's queue must
say delivered: Synapse has no other way to Postfix, so this is the relay's doing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from tests.infra.postfix import PostfixServer
from tests.infra.synapse import SynapseHarness, SynapseResult
from tests.relay_reliability.conftest import RelayFactory

pytestmark = [pytest.mark.synapse, pytest.mark.postfix]

FROM = "Matrix <noreply@example.org>"


def wait_at_postfix(postfix: PostfixServer, address: str, timeout: float = 30.0
                    ) -> EmailMessage:
    deadline = time.monotonic() + timeout
    while True:
        for message in postfix.received():
            if message.get("To", "").strip() == address:
                return message
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {address} at Postfix within {timeout:.0f} s\n"
                                 f"{postfix.log_text()[-3000:]}")
        time.sleep(0.05)


def test_every_kind_of_mail_through_the_relay(postfix: PostfixServer,
                                              synapse_harness: SynapseHarness,
                                              relay_factory: RelayFactory) -> None:
    running = relay_factory({
        "smtp_host": postfix.host, "smtp_port": postfix.submission_port,
        "smtp_user": postfix.user, "smtp_pass": postfix.password,
        "require_transport_security": True, "tlsname": "mail.test", "notif_from": FROM,
    }, ca_file=postfix.ca_file)
    block = {"smtp_host": "127.0.0.1", "smtp_port": running.port, "enable_tls": False,
             "notif_from": FROM, "enable_notifs": True, "notif_delay_before_mail": "1s"}
    run_id = uuid.uuid4().hex[:8]
    with synapse_harness.run(block, {"request_token_inhibit_3pid_errors": True}) as syn:
        kinds: dict[str, tuple[Callable[[str], SynapseResult], str]] = {
            "registration": (syn.request_registration_mail,
                             "[example.org] Validate your email"),
            "password-reset": (syn.request_password_reset_mail,
                               "[example.org] Password reset"),
            "add-threepid": (syn.request_add_threepid_mail,
                             "[example.org] Validate your email"),
            "already-in-use": (syn.request_already_in_use_mail,
                               "[example.org] Email already in use"),
            "notification": (syn.trigger_notification_mail,
                             "[Matrix] admin has invited you to chat on Matrix..."),
        }
        found: dict[str, Any] = {}
        for kind, (request, subject) in kinds.items():
            address = f"relay-{kind}-{run_id}@example.org"
            result = request(address)
            assert result.kind == "ok", (kind, result, syn.log_text()[-3000:])
            message = wait_at_postfix(postfix, address)
            assert message["Subject"] == subject, (kind, message["Subject"])
            # Postfix's own trace: the relay came in with STARTTLS (S) and AUTH (A).
            received = " ".join(str(h) for h in message.get_all("Received", []))
            assert "ESMTPSA" in received, received
            found[kind] = message
    assert set(found) == set(kinds)
    rows = {r.recipients[0]: r for r in running.records() if r.recipients}
    for kind in kinds:
        address = f"relay-{kind}-{run_id}@example.org"
        assert rows[address].state == "delivered", rows[address]
        assert rows[address].refused == {}, rows[address]
    assert running.counts() == {"queued": 0, "delivered": len(kinds), "dead": 0}
