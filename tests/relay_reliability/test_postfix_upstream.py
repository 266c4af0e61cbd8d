"""`relay status` explains, in plain words, why a real Postfix upstream refuses the relay.

The issue's "done when" asks that `relay status` explain an upstream failure in plain words;
here the failures are a real server's: a wrong password (Dovecot says 535 after its delay) and
a certificate the relay does not trust. The mail stays queued meanwhile, nothing is lost.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from maildoctor.cli.relay import command as relay_cli
from tests.infra.postfix import PostfixServer
from tests.relay_reliability.conftest import RelayFactory
from tests.relay_reliability.harness import HOST, make_mail, send, wait_until

pytestmark = pytest.mark.postfix

# failure -> (changes to the upstream block, relay options, words the cause must contain)
FAILURES: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]] = {
    "wrong-password": ({"smtp_pass": "not-the-password"}, {}, ("535",)),
    "untrusted-certificate": ({}, {"ca_file": None}, ("certificate",)),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_status_explains_a_real_upstream_failure(failure: str, postfix: PostfixServer,
                                                 relay_factory: RelayFactory) -> None:
    changes, options, words = FAILURES[failure]
    block = {"smtp_host": postfix.host, "smtp_port": postfix.submission_port,
             "smtp_user": postfix.user, "smtp_pass": postfix.password,
             "require_transport_security": True, "tlsname": "mail.test",
             "notif_from": "Matrix <noreply@example.org>", **changes}
    running = relay_factory(block, **{"ca_file": postfix.ca_file, **options})
    message_id, data = make_mail(f"status-{failure}", 1)
    send(running.port, [(message_id, data)], ["alice@example.org"])
    wait_until(lambda: any(r.attempts > 0 for r in running.records()), timeout=15,
               what="a failed attempt against Postfix",
               describe=lambda: repr(running.records()))
    result = CliRunner().invoke(relay_cli, ["status", "--queue", str(running.queue_path)])
    assert result.exit_code == 1, result.output
    assert f"upstream {HOST}:{postfix.submission_port}: FAILING" in result.output
    cause = result.output.split("cause:", 1)[1].splitlines()[0]
    assert all(word in cause for word in words), result.output
    assert "fix:" in result.output, result.output
    assert postfix.password not in result.output and "not-the-password" not in result.output
    assert running.counts() == {"queued": 1, "delivered": 0, "dead": 0}
