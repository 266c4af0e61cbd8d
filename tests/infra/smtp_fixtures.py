"""The built-in test SMTP server as pytest fixtures (a pytest plugin, see tests/conftest.py).

``smtp_server`` is a factory: call it with options (and/or field changes) to get a running
:class:`~maildoctor.testing.server.TestServer` on 127.0.0.1, port 0. Every server a test starts
is stopped at teardown, even when the test fails, and stopping is prompt whatever faults are
active. ``smtp_scenario("sender-rejected")`` starts a named row of the scenario table.

    def test_something(smtp_server):
        server = smtp_server(ServerOptions(tls="starttls"), cert="untrusted")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from maildoctor.testing.scenarios import SCENARIOS
from maildoctor.testing.server import ServerOptions, TestServer

ServerFactory = Callable[..., TestServer]


@pytest.fixture
def smtp_server() -> Iterator[ServerFactory]:
    started: list[TestServer] = []

    def start(options: ServerOptions | None = None, /, **changes: Any) -> TestServer:
        opts = options or ServerOptions()
        if changes:
            opts = opts.replace(**changes)
        server = TestServer(opts).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def smtp_scenario(smtp_server: ServerFactory) -> ServerFactory:
    def start(name: str, /, **changes: Any) -> TestServer:
        return smtp_server(SCENARIOS[name].replace(port=0), **changes)

    return start


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connecting is refused)."""
    from maildoctor.testing.ports import free_port

    return free_port()
