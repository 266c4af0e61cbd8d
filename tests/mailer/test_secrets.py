"""No password, nor its base64 forms, in any exception text, reply, repr or args."""

from __future__ import annotations

from typing import Any

import pytest

from maildoctor import errors
from maildoctor.mailer import Timeouts

from .conftest import PASSWORD, Options, secret_forms
from .helpers import authed, mailer, send_one

SHORT = Timeouts(connect=0.3, command=0.3, data=0.3)


def assert_clean(*texts: str) -> None:
    for text in texts:
        for form in secret_forms():
            assert form not in text, f"secret form {form[:4]}... leaked"


def failure_texts(failure: errors.SMTPFailure) -> list[str]:
    chain: list[str] = []
    current: BaseException | None = failure
    while isinstance(current, errors.SMTPFailure):
        chain += [str(current), repr(current), current.message, current.reply,
                  repr(current.args)]
        current = current.__cause__ if isinstance(current.__cause__, errors.SMTPFailure) else None
    return chain


ECHO_AUTH = f"535 5.7.8 password {PASSWORD} is wrong"
CASES = {
    "wrong": lambda: Options(credentials={"synapse@example.org": "something-else"}),
    "cram": lambda: Options(mechanisms=("CRAM-MD5",), cram_always_fails=True),
    "xoauth2": lambda: Options(mechanisms=("XOAUTH2",)),
    "noauth": lambda: Options(mechanisms=()),
    "echo-auth": lambda: Options(replies={"auth": [ECHO_AUTH, ECHO_AUTH]}),
    "echo-mail": lambda: Options(replies={"mail": [f"553 5.7.1 nice try {PASSWORD}"]}),
    "echo-rcpt": lambda: Options(replies={"rcpt": [f"550 5.1.1 {PASSWORD}"]}),
    "echo-data": lambda: Options(replies={"data": [f"554 {PASSWORD}"]}),
    "drop": lambda: Options(drop_on_mail=True),
    "stall": lambda: Options(stall_mail=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_secret_in_failures(serve: Any, case: str) -> None:
    server = serve(CASES[case]())
    with pytest.raises(errors.SMTPFailure) as caught:
        send_one(authed(server.port), timeouts=SHORT, fallback=True)
    texts = failure_texts(caught.value)
    assert_clean(*texts)
    if case.startswith("echo"):
        assert any("********" in t for t in texts)


def test_wrong_password_form_not_leaked(serve: Any) -> None:
    server = serve()
    wrong = "An0ther-Secret"
    with pytest.raises(errors.AuthFailure) as caught:
        send_one(authed(server.port, smtp_pass=wrong))
    assert all(wrong not in t for t in failure_texts(caught.value))


def test_no_secret_in_reprs(serve: Any) -> None:
    server = serve()
    with mailer(authed(server.port)) as m:
        m.send("noreply@example.org", "alice@example.org", b"Subject: x\r\n\r\nx\r\n")
        assert_clean(repr(m), repr(m.mailer), repr(m.mailer.endpoint),
                     repr(m.mailer._idle[0].where))


def test_missing_password_message_names_the_key_only() -> None:
    from .helpers import settings
    with pytest.raises(errors.NotConfiguredError) as caught:
        mailer(settings(25, smtp_user="synapse@example.org", smtp_pass=""))
    assert "smtp_pass" in str(caught.value)
