"""Config values that stop Synapse before it serves anything (spec/synapse-email.md 1.2).

These never reach the SMTP server, so they are checked first, in the order Synapse
meets them: the TLS-option ConfigErrors and the ``notif_from`` checks while the config
loads, then the ``.encode()`` of user and password when the email handler is built.
"""

from __future__ import annotations

from email.utils import parseaddr

from maildoctor.config.schema.data import NOTIF_FROM_MISSING
from maildoctor.config.settings import EmailSettings, truthy
from maildoctor.synapse.model.outcome import CONFIG_ERROR, NO_RESPONSE, Outcome

__all__ = ["startup_failure"]


def _no_start(exception: str, text: str, why: str, logged: str) -> Outcome:
    return Outcome(
        "no-start", exception, text, NO_RESPONSE, logged, "config", why
    )


def startup_failure(settings: EmailSettings) -> Outcome | None:
    """The config errors that stop Synapse before it serves anything, in Synapse's order."""
    s = settings
    tls_checks = (
        (truthy(s.force_tls), "email.force_tls requires email.enable_tls to be true"),
        (s.require_tls, "email.require_transport_security requires email.enable_tls to be true"),
    )
    for bad, text in tls_checks:
        if bad and not s.starttls_enabled:
            why = "Synapse refuses a TLS option while enable_tls is false (checked at load)."
            return _no_start(CONFIG_ERROR, text, why, f"stderr: Error in configuration:\n  {text}")
    if s.notif_from is not None and parseaddr(str(s.notif_from))[1] == "":
        why = "notif_from has no address part that parseaddr can find."
        return _no_start("RuntimeError", "Invalid notif_from address", why,
                         "startup traceback ending RuntimeError: Invalid notif_from address")
    if s.email_enabled and not s.notif_from:
        text = NOTIF_FROM_MISSING
        why = "Any non-empty email block turns on email verification, which needs notif_from."
        return _no_start(CONFIG_ERROR, text, why, f"stderr: Error in configuration:\n  {text}")
    for key, type_name in (("smtp_user", type(s.smtp_user).__name__),
                           ("smtp_pass", s.smtp_pass_raw_type)):
        if type_name not in ("str", "NoneType"):
            text = f"'{type_name}' object has no attribute 'encode'"
            why = (f"YAML read {key} as {type_name}, not a string; Synapse calls .encode() "
                   "on it when it builds its email handler at startup. Quote the value.")
            return _no_start("AttributeError", text, why,
                             f"startup traceback in send_email.py ending AttributeError: {text}")
    return None
