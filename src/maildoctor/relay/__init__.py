"""``maildoctor relay``: a local SMTP relay that makes Synapse's mail reliable.

Synapse hands a mail to the relay over loopback; the relay stores it durably and answers
``250`` (``452 4.3.1`` if it cannot), then delivers it upstream with maildoctor's engine:
timeouts, retries with backoff, mechanism fallback, XOAUTH2, a fallback upstream. Nothing
accepted is lost; a crash may at worst send a mail twice.

    listener.py   aiosmtpd behind an allow-list gate; 250 only after the COMMIT
    store.py      the queue on one thread, with group commit
    queue.py      the SQLite queue (WAL, synchronous=FULL): also the status/retry/drop API
    records.py    the values it holds: accepted message, queued row, upstream status
    delivery.py   scheduler and workers: backoff, dead-letter, bounces, parked outcomes
    routes.py     the primary and --fallback upstreams, each with its outage hold and pace
    throttle.py   provider throttling replies, and the pace that answers them
    upstream.py   the Mailer for the upstream, XOAUTH2 token rotation
    upstream_config.py  refuses (exit 2) an upstream config the relay cannot deliver with
    tokens.py     XOAUTH2 tokens from a file or a command
    explain.py    failure -> reason, plain words, fix (probe's wording)
    metrics.py    Prometheus text endpoint
    logs.py       logfmt event lines
    server.py     Relay: wiring, start/stop, graceful shutdown
"""

from maildoctor.relay.email_block import relay_email_block
from maildoctor.relay.options import AllowList, RelayOptions
from maildoctor.relay.queue import Queue, QueuedMessage, UpstreamStatus
from maildoctor.relay.server import Relay

__all__ = [
    "AllowList",
    "Queue",
    "QueuedMessage",
    "Relay",
    "RelayOptions",
    "UpstreamStatus",
    "relay_email_block",
]
