"""The shape of a prediction: :class:`Outcome`, and the words Synapse and Twisted use.

Kept apart from the decision steps (:mod:`maildoctor.synapse.model.predict`) so that the
startup checks (:mod:`maildoctor.synapse.model.startup`) and the Twisted engine can build
and compare outcomes without importing the whole model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = [
    "AUTH_DEPENDS",
    "AUTH_REQUIRED_TEXT",
    "CONFIG_ERROR",
    "HANG_WHY",
    "HTTP_500",
    "HTTP_OK",
    "NET_ERRORS",
    "NO_RESPONSE",
    "SMTP_ERRORS",
    "Outcome",
]

HTTP_OK = "200"
HTTP_500 = '500 M_UNKNOWN "An error was encountered when sending the email"'
NO_RESPONSE = "no response"

SMTP_ERRORS = "twisted.mail._except."
NET_ERRORS = "twisted.internet.error."
CONFIG_ERROR = "synapse.config._base.ConfigError"
AUTH_REQUIRED_TEXT = (
    "502 Server does not support Client Authentication schemes [CRAM-MD5, LOGIN, PLAIN]"
)
AUTH_DEPENDS = (
    "After a failed AUTH the outcome depends on the server: a 5xx verdict surfaces as an "
    "error, a 4xx verdict, silence or a dropped connection leaves Synapse hanging."
)
HANG_WHY = (
    " Twisted never reports this to Synapse (no retries under HostnameEndpoint, no timeout)."
)


@dataclass(frozen=True)
class Outcome:
    """What Synapse does. ``kind``: ``ok``, ``error``, ``hang`` or ``no-start``.

    ``exception`` is the class as Synapse's traceback prints it; ``message`` the first
    line of ``str(e)`` (Twisted's transcript trailer left out); ``http`` what the
    ``requestToken`` client sees; ``logged`` what homeserver.log shows; ``stage`` where
    it happens; ``why`` the mechanism in one sentence.
    """

    kind: str
    exception: str = ""
    message: str = ""
    http: str = HTTP_OK
    logged: str = ""
    stage: str = ""
    why: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)
