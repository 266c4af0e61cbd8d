"""A provider that throttles the account: the whole upstream slows down, not one message at
a time.

The upstream answers every MAIL FROM with Gmail's ``421 4.7.0 Try again later, closing
connection``. Twenty mails are queued. Retrying each message on its own backoff would send
the next twenty attempts within milliseconds; the relay instead pauses the upstream after
the first throttling reply and then sends one mail at a time with a growing pause. Checked
from the upstream's side: after the attempts that were already under way, no two attempts
come closer together than half the first pause (a loaded machine only makes them further
apart). Once the provider lets mail through again, everything is delivered and the relay
returns to full speed.
"""

from __future__ import annotations

import urllib.request

from tests.relay_reliability.conftest import RelayFactory
from tests.relay_reliability.harness import HOST, make_mail, message_ids, send, wait_until
from tests.relay_reliability.sink import PickySink

CONCURRENCY = 4
BASE = 0.2


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(f"maildoctor_relay_{name}"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {name}")


def test_throttling_slows_the_whole_upstream(relay_factory: RelayFactory) -> None:
    with PickySink({}) as sink:
        sink.mail_reply = "421 4.7.0 Try again later, closing connection."
        running = relay_factory({"smtp_host": HOST, "smtp_port": sink.port,
                                 "enable_tls": False}, concurrency=CONCURRENCY,
                                retry_base=BASE, retry_max=0.4, metrics_port=0)
        mails = [make_mail("throttled", n) for n in range(20)]
        send(running.port, mails, ["alice@example.org"])
        wait_until(lambda: len(sink.mail_refused_at) >= CONCURRENCY + 5, timeout=30,
                   what="the relay trying again while throttled")
        refused = sorted(sink.mail_refused_at)
        gaps = [b - a for a, b in zip(refused[CONCURRENCY:], refused[CONCURRENCY + 1:],
                                      strict=False)]
        assert min(gaps) >= BASE / 2, f"attempts {gaps} apart while throttled"
        port = running.relay.metrics_port
        assert metric(port, "upstream_slowed") >= 1

        sink.mail_reply = None  # the provider lets the account send again
        wait_until(lambda: running.counts()["delivered"] == 20, timeout=60,
                   what="every mail delivered once the throttling ends",
                   describe=lambda: repr(running.counts()))
        assert message_ids(d.data for d in sink.delivered) == {mid: 1 for mid, _ in mails}
        assert running.counts()["dead"] == 0
