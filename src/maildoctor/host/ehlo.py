"""The EHLO name Twisted announces for Synapse: ``socket.getfqdn()`` of Synapse's host.

Twisted computes it once, at import (``twisted.mail.smtp.DNSNAME``), and Synapse has no
setting to change it. In a container it is often the container's random hostname, with no
dot; relays that demand a fully qualified name (Postfix's
``reject_non_fqdn_helo_hostname``, many providers) refuse the EHLO, and Synapse's mail fails.
The remedies are outside Synapse: give the host or container a fully qualified hostname
(``hostname:`` in Compose, ``--hostname`` for ``docker run``, ``/etc/hosts``), or send
through a relay that accepts the name (a local Postfix, ``maildoctor relay``).
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from maildoctor.smtp.parse import is_fully_qualified

__all__ = ["REMEDY", "ehlo_name", "is_fully_qualified"]

REMEDY = ("Synapse has no setting for its EHLO name: give this host (or container) a fully "
          "qualified hostname (`hostname:` in Compose, `docker run --hostname`, /etc/hosts), "
          "or send through a relay that accepts the name (a local Postfix, `maildoctor relay`)")


def ehlo_name(timeout: float = 5.0) -> str:
    """``socket.getfqdn()`` bounded in time (it may ask DNS); the bare hostname on timeout."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maildoctor-fqdn")
    try:
        return executor.submit(socket.getfqdn).result(timeout=timeout)
    except FutureTimeout:
        return socket.gethostname()
    finally:
        executor.shutdown(wait=False)
