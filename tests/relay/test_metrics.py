"""The Prometheus endpoint, scraped over HTTP from a running relay."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable

import pytest

from maildoctor.errors import UsageError
from maildoctor.relay import Queue
from maildoctor.relay.metrics import Counters, Snapshot, render
from tests.relay.conftest import RelayFactory, make_options, plain_upstream, send, wait_until


def _scrape(port: int, path: str = "/metrics") -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_endpoint(relay_factory: RelayFactory, closed_port: int,
                          queue: Callable[[], Queue]) -> None:
    relay = relay_factory(plain_upstream("127.0.0.1", closed_port), metrics_port=0)
    assert relay.metrics_port
    send(relay.port, count=2)
    wait_until(lambda: all(m.attempts >= 1 for m in queue().list("queued")),
               what="failed attempts")
    samples = _scrape(relay.metrics_port)
    assert samples["maildoctor_relay_queued"] == 2
    assert samples["maildoctor_relay_delivered_total"] == 0
    assert samples["maildoctor_relay_dead_total"] == 0
    assert samples['maildoctor_relay_deliveries_failed_total{reason="connect"}'] >= 2
    assert samples["maildoctor_relay_oldest_queued_age_seconds"] >= 0
    assert samples["maildoctor_relay_accepted_total"] == 2
    with pytest.raises(urllib.error.HTTPError) as missing:
        _scrape(relay.metrics_port, "/other")
    assert missing.value.code == 404


def test_metrics_must_stay_on_loopback(queue_path: str) -> None:
    with pytest.raises(UsageError, match="loopback"):
        make_options(plain_upstream("127.0.0.1", 25), queue_path, metrics_port=9125,
                     metrics_host="0.0.0.0")


def test_render_is_exposition_format() -> None:
    counters = Counters(accepted=3, failures=Counter({"auth": 2, "connect": 1}))
    text = render(Snapshot({"queued": 1, "delivered": 5, "dead": 0}, 12.5, counters))
    assert "# TYPE maildoctor_relay_queued gauge\nmaildoctor_relay_queued 1\n" in text
    assert 'maildoctor_relay_deliveries_failed_total{reason="auth"} 2\n' in text
    assert "maildoctor_relay_oldest_queued_age_seconds 12.500\n" in text
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.startswith(("# HELP maildoctor_relay_", "# TYPE maildoctor_relay_",
                                "maildoctor_relay_"))


def test_render_per_upstream_with_escaped_labels() -> None:
    from maildoctor.relay.metrics import UpstreamState

    counters = Counters(delivered=Counter({'we"ird\\host:25': 4}),
                        upstream_failures=Counter({("primary.test:587", "connect"): 3}))
    ups = (UpstreamState("primary.test:587", "primary", False, 0),
           UpstreamState('we"ird\\host:25', "fallback", True, 2))
    text = render(Snapshot({"queued": 0, "delivered": 4, "dead": 0}, None, counters, ups, 1))
    assert 'maildoctor_relay_upstream_up{upstream="primary.test:587",role="primary"} 0\n' in text
    assert ('maildoctor_relay_upstream_delivered_total{upstream="we\\"ird\\\\host:25",'
            'role="fallback"} 4\n') in text
    assert 'maildoctor_relay_upstream_slowed{upstream="we\\"ird\\\\host:25",role="fallback"} 2' \
        in text
    assert ('maildoctor_relay_upstream_deliveries_failed_total{upstream="primary.test:587",'
            'reason="connect"} 3\n') in text
    assert "maildoctor_relay_unrecorded_outcomes 1\n" in text
