"""The Synapse ``email:`` block that points Synapse at the relay (``maildoctor init --relay``)."""

from __future__ import annotations

from maildoctor.relay.options import DEFAULT_PORT


def relay_email_block(listen_port: int = DEFAULT_PORT) -> str:
    """A commented ``email:`` block for homeserver.yaml that sends through the local relay."""
    return f"""\
# Synapse hands every mail to maildoctor's relay on this machine (`maildoctor relay run`),
# which queues it on disk and delivers it upstream with timeouts, retries, mechanism
# fallback and XOAUTH2. The upstream server and its credentials live in the relay's own
# config, not here.
email:
  smtp_host: 127.0.0.1
  smtp_port: {listen_port}
  # No TLS on this hop, and that is safe: the connection never leaves the machine (loopback
  # traffic does not touch a network card), the relay listens on 127.0.0.1 only, and it
  # encrypts the hop that does cross the network (STARTTLS or implicit TLS upstream).
  # With TLS on, Synapse would need a certificate for 127.0.0.1 that it trusts.
  enable_tls: false
  # No smtp_user/smtp_pass: the relay accepts only clients in its allow-list (loopback by
  # default) and needs no login from Synapse.
  # The sender address: use one the upstream account may send from.
  notif_from: "%(app)s <noreply@example.org>"
"""
