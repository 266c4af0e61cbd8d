"""The Mailer against the project's shared fault-injecting server, scenario by scenario.

conftest.py's small server covers what only it can observe (pipelining, connection counts,
echoed secrets); this table checks the Mailer's verdict on each fault the shared
``maildoctor.testing.server.TestServer`` can stage.
"""

from __future__ import annotations

from typing import Any

import pytest

from maildoctor import errors
from maildoctor.config.settings import settings_from_config
from maildoctor.mailer import RetryPolicy, SyncMailer, Timeouts
from maildoctor.testing.server import Fault, ServerOptions, TestServer

from .helpers import MESSAGE

SHORT = Timeouts(connect=0.5, command=0.5, data=0.5)
UNTRUSTED = dict(tls="starttls", cert="untrusted")

# id -> (server options, extra email config, Mailer options, expected error or None, stage)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any], Any, str]] = {
    "ok-plain": ({}, {}, {}, None, ""),
    "ok-starttls": ({"tls": "starttls"}, {}, {}, None, ""),
    "ok-implicit": ({"tls": "implicit"}, {}, {}, None, ""),
    # aiosmtplib refuses replies over its size limit; so do we, by name.
    "huge-ehlo": ({"faults": (Fault.HUGE_REPLY,)}, {}, {}, errors.GreetingRejected, "ehlo"),
    "cram-broken": ({"mechanisms": ("CRAM-MD5-BROKEN", "LOGIN")}, {}, {},
                    errors.AuthFailure, "auth"),
    "cram-broken-fallback": ({"mechanisms": ("CRAM-MD5-BROKEN", "LOGIN")}, {},
                             {"fallback": True}, None, ""),
    "untrusted": (UNTRUSTED, {}, {}, errors.TLSFailure, "starttls"),
    "self-signed-implicit": ({"tls": "implicit", "cert": "self-signed"}, {}, {},
                             errors.TLSFailure, "greeting"),
    "expired": ({"tls": "starttls", "cert": "expired"}, {}, {}, errors.TLSFailure, "starttls"),
    "silent": ({"faults": (Fault.SILENT,)}, {}, {}, errors.ServerHung, "greeting"),
    "not-smtp": ({"faults": (Fault.NOT_SMTP,)}, {}, {}, errors.GreetingRejected, "greeting"),
    "greeting-421": ({"replies": {"greeting": "421 4.3.2 busy"}}, {}, {},
                     errors.GreetingRejected, "greeting"),
    "drop-after-mail": ({"faults": (Fault.DROP_AFTER_MAIL,)}, {}, {},
                        errors.ConnectionLost, "mail"),
    "stall-after-ehlo": ({"faults": (Fault.STALL_AFTER_EHLO,)}, {}, {},
                         errors.ServerHung, "auth"),
    "no-auth": ({"advertise_auth": False}, {}, {}, errors.AuthFailure, "auth"),
    "xoauth2-only": ({"mechanisms": ("XOAUTH2",)}, {}, {}, errors.AuthFailure, "auth"),
    "wrong-password": ({}, {"smtp_pass": "not-it"}, {}, errors.AuthFailure, "auth"),
    "auth-silent": ({"auth_failure": "silent"}, {"smtp_pass": "not-it"}, {},
                    errors.ServerHung, "auth"),
    "sender-553": ({"replies": {"mail": "553 5.7.1 not yours"}}, {}, {},
                   errors.SenderRejected, "mail"),
    "rcpt-550": ({"replies": {"rcpt": "550 5.1.1 unknown"}}, {}, {},
                 errors.RecipientRejected, "rcpt"),
    "dot-554": ({"replies": {"dot": "554 5.7.1 spam"}}, {}, {}, errors.DataRejected, "message"),
    "require-tls-plain": ({}, {"require_transport_security": True}, {},
                          errors.TLSFailure, "starttls"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_verdict_per_scenario(case: str) -> None:
    server_options, email, options, expected, stage = CASES[case]
    with TestServer(ServerOptions(**server_options)) as server:
        config = {**server.synapse_email_config(), **email}
        settings = settings_from_config({"email": config})
        mailer = SyncMailer.from_settings(settings, ca_file=server.ca_file, timeouts=SHORT,
                                          retries=RetryPolicy(attempts=1),
                                          local_hostname="client.test", **options)
        with mailer:
            if expected is None:
                result = mailer.send("noreply@example.org", "alice@example.org", MESSAGE)
                assert result.reply.startswith("250")
                assert len(server.wait_for_messages(1)) == 1
                return
            with pytest.raises(expected) as caught:
                mailer.send("noreply@example.org", "alice@example.org", MESSAGE)
    assert caught.value.stage == stage, str(caught.value)
    assert config.get("smtp_pass", "\0") not in str(caught.value)
