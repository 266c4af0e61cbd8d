"""XOAUTH2 to an upstream that offers nothing else, with the token from a file or a command."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from maildoctor.relay import Queue
from maildoctor.relay.tokens import parse_token
from maildoctor.testing.server import DEFAULT_USER
from tests.relay.conftest import RelayFactory, send, wait_until

GOOD = "ya29.good-token"


def _upstream(smtp_server: Any) -> Any:
    return smtp_server(mechanisms=("XOAUTH2",), credentials={DEFAULT_USER: GOOD},
                       auth_required=True)


def _config(server: Any) -> dict[str, Any]:
    return {"smtp_host": "127.0.0.1", "smtp_port": server.port, "smtp_user": DEFAULT_USER,
            "enable_tls": False}


def test_token_file_is_reread_after_a_refusal(smtp_server: Any, relay_factory: RelayFactory,
                                              queue: Callable[[], Queue],
                                              tmp_path: Path) -> None:
    upstream = _upstream(smtp_server)
    token = tmp_path / "token"
    token.write_text("ya29.expired\n")
    relay = relay_factory(_config(upstream), xoauth2_token_file=str(token))
    send(relay.port)
    wait_until(lambda: (rows := queue().list("queued")) and rows[0].attempts >= 1,
               what="a refused attempt")
    row = queue().list("queued")[0]
    assert row.last_reason == "auth"
    assert row.last_error is not None and "XOAUTH2" in row.last_error
    assert "ya29" not in (row.last_error or "")
    token.write_text(GOOD + "\n")  # what a token refresher timer would do
    upstream.wait_for_messages(1, timeout=10)
    wait_until(lambda: queue().counts()["delivered"] == 1, what="delivered")
    auths = [e for e in upstream.events if e.kind == "auth"]
    assert [e.mechanism for e in auths] == ["XOAUTH2"] * len(auths)
    assert auths[-1].success and auths[-1].username == DEFAULT_USER


def test_token_command_is_run_again_when_refused(smtp_server: Any,
                                                 relay_factory: RelayFactory,
                                                 queue: Callable[[], Queue],
                                                 tmp_path: Path) -> None:
    # The command hands out a stale token first, then a good one: the relay must ask again
    # as soon as the upstream refuses the first, within the same delivery attempt.
    upstream = _upstream(smtp_server)
    counter = tmp_path / "runs"
    script = tmp_path / "token.py"
    script.write_text(
        "import json, pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1))\n"
        f"token = 'ya29.stale' if n == 0 else {GOOD!r}\n"
        "print(json.dumps({'access_token': token, 'expires_in': 3599}))\n")
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    relay = relay_factory(_config(upstream), xoauth2_token_command=command)
    send(relay.port)
    upstream.wait_for_messages(1, timeout=10)
    wait_until(lambda: queue().counts()["delivered"] == 1, what="delivered")
    assert counter.read_text() == "2"
    (row,) = queue().list("delivered")
    assert row.attempts == 1
    assert relay.upstream.tokens is not None and relay.upstream.tokens.refreshes == 2


def test_failing_token_command_is_reported(smtp_server: Any, relay_factory: RelayFactory,
                                           queue: Callable[[], Queue]) -> None:
    upstream = _upstream(smtp_server)
    command = f"{shlex.quote(sys.executable)} -c \"import sys; sys.exit('no refresh token')\""
    relay = relay_factory(_config(upstream), xoauth2_token_command=command)
    send(relay.port)
    wait_until(lambda: (rows := queue().list("queued")) and rows[0].attempts >= 1,
               what="a failed attempt")
    row = queue().list("queued")[0]
    assert row.last_reason == "auth"
    assert row.last_error == ("the XOAUTH2 token command failed with exit status 1: "
                              "no refresh token")


@pytest.mark.parametrize(("text", "token", "expires"), [
    ("ya29.abc\n", "ya29.abc", None),
    ('{"access_token": "t1", "expires_in": 60}', "t1", 1060.0),
    ('{"access_token": "t2", "expires_at": 5000}', "t2", 5000.0),
    ('{"token": "t3"}', "t3", None),
])
def test_parse_token(text: str, token: str, expires: float | None) -> None:
    assert parse_token(text, now=1000.0) == (token, expires)


@pytest.mark.parametrize("text", ["", "two words", "a\nb", "{not json", '{"expires_in": 3}',
                                  '["a list"]'])
def test_parse_token_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_token(text, now=0.0)


def test_command_token_renewed_before_expiry(tmp_path: Path) -> None:
    import asyncio

    from maildoctor.relay.tokens import REFRESH_MARGIN, TokenSource

    script = tmp_path / "t.py"
    script.write_text("import json, time\nprint(json.dumps({'access_token': "
                      f"'t' + str(time.time_ns()), 'expires_in': {REFRESH_MARGIN + 0.5}}}))\n")
    source = TokenSource(command=f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")

    async def twice() -> tuple[str, str, str]:
        first = (await source.current()).reveal()
        same = (await source.current()).reveal()
        deadline = time.monotonic() + 5
        while (await source.current()).reveal() == first and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return first, same, (await source.current()).reveal()

    first, same, later = asyncio.run(twice())
    assert first == same and later != first
