"""The sending engine: pooled, pipelined, retrying SMTP delivery built from Synapse's settings.

aiosmtplib opens connections (TCP, TLS, EHLO, STARTTLS, AUTH); our ``Channel`` then runs
the mail transactions on the same transport so MAIL/RCPT/DATA can be pipelined.
Modules: ``mailer`` (Mailer, results), ``session`` (one connection), ``pipeline`` (a
batch chained across messages on one connection), ``channel`` (the pipelining
writer/reader), ``replies`` (pure parsing/encoding), ``failures`` (the one error boundary),
``retry`` (backoff policy), ``sync`` (blocking wrapper).
"""

from maildoctor.mailer.mailer import Mail, Mailer, SendResult, endpoint_from_settings
from maildoctor.mailer.retry import RetryPolicy
from maildoctor.mailer.session import Endpoint, Timeouts
from maildoctor.mailer.sync import SyncMailer

__all__ = [
    "Endpoint",
    "Mail",
    "Mailer",
    "RetryPolicy",
    "SendResult",
    "SyncMailer",
    "Timeouts",
    "endpoint_from_settings",
]
