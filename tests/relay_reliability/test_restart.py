"""A graceful stop (SIGTERM, as systemd and Docker send it) loses nothing.

The relay process is stopped while its upstream is down and mails wait in the queue; it must
exit 0 promptly, leave every mail queued on disk, and deliver them all after the next start,
once the upstream is back.
"""

from __future__ import annotations

import time
from pathlib import Path

from maildoctor.relay import Queue
from maildoctor.testing.server import ServerOptions, TestServer
from tests.relay_reliability.harness import (
    Pusher,
    RelayProcess,
    free_port,
    make_mail,
    message_ids,
    wait_until,
    write_upstream_config,
)

MAILS = 50
FAST_RETRY = ["--retry-base", "0.1", "--retry-max", "0.5"]


def test_sigterm_keeps_the_queue(tmp_path: Path) -> None:
    upstream_port = free_port()  # nothing listens there yet
    config = write_upstream_config(tmp_path / "homeserver.yaml", {
        "smtp_host": "127.0.0.1", "smtp_port": upstream_port, "enable_tls": False,
        "notif_from": "Matrix <noreply@example.org>"})
    queue_path = tmp_path / "queue.sqlite3"
    relay = RelayProcess(config, queue_path, tmp_path, FAST_RETRY)
    mails = [make_mail("sigterm", n) for n in range(MAILS)]
    relay.start()
    queue = Queue(str(queue_path))
    try:
        pusher = Pusher(relay.port, mails, connections=2).start()
        pusher.join(timeout=30)
        assert len(pusher.accepted) == MAILS and pusher.retries == 0, pusher.errors
        wait_until(lambda: any(m.attempts > 0 for m in queue.list()), timeout=10,
                   what="a failed attempt while the upstream is down")
        started = time.monotonic()
        assert relay.stop() == 0, relay.logs()
        assert time.monotonic() - started < 10, "SIGTERM took too long"
        assert queue.counts() == {"queued": MAILS, "delivered": 0, "dead": 0}
        with TestServer(ServerOptions(port=upstream_port)) as upstream:
            relay.start()
            wanted = {mid for mid, _ in mails}
            wait_until(lambda: set(message_ids(m.data for m in upstream.messages)) >= wanted
                       and queue.counts()["queued"] == 0, timeout=20,
                       what="every mail delivered after the restart",
                       describe=lambda: f"{queue.counts()}\n{relay.logs()}")
            assert relay.stop() == 0, relay.logs()
            assert len(upstream.messages) == MAILS  # a clean stop sends nothing twice
        assert queue.counts() == {"queued": 0, "delivered": MAILS, "dead": 0}
    finally:
        relay.kill()
        queue.close()
