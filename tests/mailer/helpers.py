"""Building Mailers against the test servers of conftest.py."""

from __future__ import annotations

from typing import Any

from maildoctor.config.settings import settings_from_config
from maildoctor.mailer import RetryPolicy, SyncMailer, Timeouts

from .conftest import PASSWORD, TLS_NAME, USER

MESSAGE = (b"From: Matrix <noreply@example.org>\r\nTo: alice@example.org\r\n"
           b"Message-ID: <m1@example.org>\r\nSubject: hi\r\n\r\nbody\r\n.leading dot\r\n")
FAST = Timeouts(connect=2.0, command=2.0, data=2.0)
NO_RETRY = RetryPolicy(attempts=1)


def settings(port: int, **email: Any) -> Any:
    block: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": port, "tlsname": TLS_NAME,
                             "notif_from": "Matrix <noreply@example.org>"}
    block.update(email)
    return settings_from_config({"email": block})


def authed(port: int, **email: Any) -> Any:
    block: dict[str, Any] = {"smtp_user": USER, "smtp_pass": PASSWORD}
    block.update(email)
    return settings(port, **block)


def mailer(config: Any, **options: Any) -> SyncMailer:
    options.setdefault("timeouts", FAST)
    options.setdefault("retries", NO_RETRY)
    options.setdefault("local_hostname", "client.test")
    return SyncMailer.from_settings(config, **options)


def send_one(config: Any, **options: Any) -> Any:
    with mailer(config, **options) as m:
        return m.send("noreply@example.org", ["alice@example.org"], MESSAGE)
