"""The relay's side of the upstream: a :class:`~maildoctor.mailer.Mailer` built from the
admin's ``email:`` block, with the settings Synapse cannot have.

- Mechanism fallback is on, and under TLS PLAIN/LOGIN come before CRAM-MD5 (the CRAM-MD5
  trap of synapse#10280 costs one refused attempt, not every mail).
- XOAUTH2: when a token source is given, the token takes the password's place and XOAUTH2 is
  the only mechanism. A new token means a new Mailer (the pooled connections were logged in
  with the old one); a refused token is reloaded and the mail tried once more at once.
- The Mailer makes one attempt per call: retries belong to the queue, which survives restarts.
- IPv4/IPv6: the mailer connects with ``socket.create_connection``, which tries every address
  the host name resolves to, in the resolver's order.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from maildoctor import errors
from maildoctor.config.settings import EmailSettings
from maildoctor.mailer import Mailer, RetryPolicy, SendResult, Timeouts, endpoint_from_settings
from maildoctor.mailer.session import Endpoint
from maildoctor.relay.options import RelayOptions
from maildoctor.relay.tokens import TokenSource
from maildoctor.secrets import Secret

TLS_ORDER = ("plain", "login", "cram-md5")
CLEAR_ORDER = ("cram-md5", "login", "plain")
"""In clear text CRAM-MD5 first: it is the one that keeps the password off the wire."""


def build_endpoint(options: RelayOptions, token: Secret | None = None,
                   settings: EmailSettings | None = None) -> Endpoint:
    """The upstream connection (the primary unless ``settings`` names another); raises
    NotConfiguredError for a config that cannot work. XOAUTH2 is for the primary only."""
    xoauth2 = options.uses_xoauth2 and settings is None
    settings = options.upstream if settings is None else settings
    if xoauth2:
        if settings.smtp_user is None:
            raise errors.NotConfiguredError(
                "XOAUTH2 needs smtp_user (the mailbox the token belongs to) in the email: block",
                stage="config")
        settings = dataclasses.replace(settings, smtp_pass=token or Secret("token-not-loaded"))
    endpoint = endpoint_from_settings(settings, ca_file=options.ca_file,
                                      mechanism_order=CLEAR_ORDER, fallback=True)
    if xoauth2:
        return dataclasses.replace(endpoint, mechanisms=("xoauth2",), secure_mechanisms=None)
    return dataclasses.replace(endpoint, secure_mechanisms=TLS_ORDER)


class Upstream:
    """Sends one queued message upstream; used from the relay's event loop only."""

    def __init__(self, options: RelayOptions, role: str = "primary") -> None:
        self.options = options
        self.role = role
        self._settings = options.fallback if role == "fallback" else None
        # validates the config before anything runs
        self.endpoint = build_endpoint(options, settings=self._settings)
        self.name = f"{self.endpoint.host}:{self.endpoint.port}"
        self.tokens: TokenSource | None = None
        if options.uses_xoauth2 and self._settings is None:
            self.tokens = TokenSource(file=options.xoauth2_token_file,
                                      command=options.xoauth2_token_command)
        self._timeouts = Timeouts(connect=options.connect_timeout,
                                  command=options.command_timeout, data=options.data_timeout)
        self._mailer: Mailer | None = None
        self._token: Secret | None = None
        self._lock = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()

    async def _current(self) -> Mailer:
        async with self._lock:
            token = await self.tokens.current() if self.tokens is not None else None
            if self._mailer is None or token != self._token:
                old, self._token = self._mailer, token
                self._mailer = Mailer(build_endpoint(self.options, token, self._settings),
                                      timeouts=self._timeouts, retries=RetryPolicy(attempts=1),
                                      concurrency=self.options.concurrency)
                if old is not None:  # its in-flight mails finish; idle connections close
                    task = asyncio.get_running_loop().create_task(old.close())
                    self._retired.add(task)
                    task.add_done_callback(self._retired.discard)
            return self._mailer

    async def send(self, sender: str, recipients: Sequence[str], data: bytes) -> SendResult:
        mailer = await self._current()
        try:
            return await mailer.send(sender, recipients, data)
        except errors.AuthFailure:
            if self.tokens is None:
                raise
            used = self._token
            self.tokens.invalidate()
            mailer = await self._current()
            if self._token == used:  # the source still has the refused token
                raise
            return await mailer.send(sender, recipients, data)

    async def close(self) -> None:
        if self._mailer is not None:
            await self._mailer.close()
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)
