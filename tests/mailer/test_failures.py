"""One test per failure kind: the exception class, its stage and a message naming the cause."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from maildoctor import errors
from maildoctor.mailer import RetryPolicy, Timeouts
from maildoctor.mailer.failures import Where, translate
from maildoctor.secrets import Redactor

from .conftest import Options
from .helpers import authed, mailer, send_one, settings

SHORT = Timeouts(connect=0.3, command=0.3, data=0.3)


def test_missing_password_refused_before_connecting(serve: Any) -> None:
    server = serve()
    with pytest.raises(errors.NotConfiguredError, match=r"no password configured \(smtp_pass"):
        mailer(settings(server.port, smtp_user="synapse@example.org"))
    assert server.record.connections == 0


def test_password_without_user_refused(serve: Any) -> None:
    with pytest.raises(errors.NotConfiguredError, match=r"smtp_user is not"):
        mailer(settings(serve().port, smtp_pass="x"))


def test_connection_refused(closed_port: int) -> None:
    with pytest.raises(errors.ConnectFailure, match=r"refused") as caught:
        send_one(settings(closed_port))
    assert caught.value.stage == "connect"
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_no_greeting_is_server_hung_with_hint(silent_port: int) -> None:
    with pytest.raises(errors.ServerHung, match=r"force_tls") as caught:
        send_one(settings(silent_port), timeouts=SHORT)
    assert caught.value.stage == "greeting"


def test_greeting_rejected(raw_server: Any) -> None:
    server = raw_server(b"554 5.7.1 no service for you\r\n")
    with pytest.raises(errors.GreetingRejected, match=r"554") as caught:
        send_one(settings(server.port))
    assert caught.value.code == 554


def test_greeting_421_is_retried_on_new_connections(raw_server: Any) -> None:
    server = raw_server(b"421 4.3.2 too busy, come back later\r\n")
    with pytest.raises(errors.GreetingRejected, match=r"421"):
        send_one(settings(server.port), retries=RetryPolicy(attempts=2, base_delay=0.01))
    assert server.connections == 2


def test_ehlo_refused_falls_back_to_helo_without_auth(serve: Any) -> None:
    server = serve(Options(refuse_ehlo=True))
    assert send_one(settings(server.port)).reply.startswith("250 ")


def test_ehlo_refused_is_fatal_when_auth_is_needed(serve: Any) -> None:
    server = serve(Options(refuse_ehlo=True))
    expected = r"refused EHLO \(HELO cannot carry STARTTLS or AUTH\) \(502"
    with pytest.raises(errors.GreetingRejected, match=expected) as caught:
        send_one(authed(server.port))
    assert caught.value.stage == "ehlo"


def test_not_smtp_at_all(raw_server: Any) -> None:
    server = raw_server(b"+OK Dovecot ready.\r\n")
    with pytest.raises(errors.GreetingRejected, match=r"does not speak SMTP.*Dovecot"):
        send_one(settings(server.port))


def test_untrusted_certificate(serve: Any, certs: Any) -> None:
    server = serve(Options(tls="starttls", trusted=False))
    with pytest.raises(errors.TLSFailure, match=r"unable to get local issuer") as caught:
        send_one(settings(server.port), ca_file=certs.ca_file)
    assert caught.value.stage == "starttls"


def test_name_mismatch(serve: Any, certs: Any) -> None:
    server = serve(Options(tls="implicit"))
    with pytest.raises(errors.TLSFailure, match=r"'wrong.test'.*mismatch"):
        send_one(settings(server.port, force_tls=True, tlsname="wrong.test"),
                 ca_file=certs.ca_file)


def test_implicit_tls_against_plaintext(serve: Any, certs: Any) -> None:
    server = serve()
    with pytest.raises(errors.TLSFailure, match=r"TLS handshake.*force_tls needs a port"):
        send_one(settings(server.port, force_tls=True), ca_file=certs.ca_file)


def test_require_transport_security_without_starttls(serve: Any) -> None:
    server = serve()
    with pytest.raises(errors.TLSFailure, match=r"require_transport_security"):
        send_one(settings(server.port, require_transport_security=True))
    assert server.record.mails == []


def test_wrong_password(serve: Any) -> None:
    server = serve()
    with pytest.raises(errors.AuthFailure) as caught:
        send_one(authed(server.port, smtp_pass="wrong-one"))
    text = str(caught.value)
    assert "refused the credentials for smtp_user 'synapse@example.org'" in text
    assert "535 5.7.8" in text and caught.value.code == 535


def test_no_auth_offered(serve: Any) -> None:
    server = serve(Options(mechanisms=()))
    with pytest.raises(errors.AuthFailure, match=r"does not offer AUTH"):
        send_one(authed(server.port))


def test_only_unsupported_mechanisms(serve: Any) -> None:
    server = serve(Options(mechanisms=("XOAUTH2",)))
    with pytest.raises(errors.AuthFailure, match=r"offers only XOAUTH2"):
        send_one(authed(server.port))


def test_sender_rejected(serve: Any) -> None:
    server = serve(Options(replies={"mail": ["553 5.7.1 sender not owned by user"]}))
    with pytest.raises(errors.SenderRejected, match=r"<noreply@example.org>.*553") as caught:
        send_one(settings(server.port))
    assert caught.value.reply == "5.7.1 sender not owned by user"


def test_recipient_rejected(serve: Any) -> None:
    server = serve(Options(replies={"rcpt": ["550 5.1.1 no such user"]}))
    with pytest.raises(errors.RecipientRejected, match=r"alice@example.org.*550 5.1.1"):
        send_one(settings(server.port))


def test_data_rejected(serve: Any) -> None:
    server = serve(Options(replies={"data": ["554 5.7.1 looks like spam"]}))
    with pytest.raises(errors.DataRejected, match=r"554 5.7.1 looks like spam"):
        send_one(settings(server.port))


def test_stalled_reply_is_server_hung(serve: Any) -> None:
    server = serve(Options(stall_mail=True))
    with pytest.raises(errors.ServerHung, match=r"0.3 s during mail") as caught:
        send_one(settings(server.port), timeouts=SHORT)
    assert isinstance(caught.value, TimeoutError)


def test_connection_lost(serve: Any) -> None:
    server = serve(Options(drop_on_mail=True))
    with pytest.raises(errors.ConnectionLost, match=r"closed the connection during mail"):
        send_one(settings(server.port))


def test_unresolvable_name_is_resolve_error() -> None:
    # No lookup is made: this checks the mapping of the resolver's error.
    where = Where("mail.invalid", 25, None, None, Redactor())
    failure = translate(socket.gaierror(-2, "Name or service not known"), "connect", where)
    assert isinstance(failure, errors.ResolveError)
    assert "'mail.invalid' does not resolve" in str(failure)


def test_injected_address_is_refused_without_sending(serve: Any) -> None:
    server = serve()
    with mailer(settings(server.port)) as m:
        with pytest.raises(errors.RecipientRejected, match=r"control character"):
            m.send("noreply@example.org", "a@example.org>\r\nRCPT TO:<evil@x", b"x\r\n")
        results = m.send_many([("bad\n@example.org", "a@example.org", b"x\r\n")])
    assert isinstance(results[0], errors.SenderRejected)
    assert server.record.pipelined == []  # no MAIL ever reached the server
