"""DNS questions asked the way the probe needs them: every question bounded in time, every
failure a named kind (no such name, no answer, server failure, timeout, truncated, refused),
and optionally all of them sent to one server (``--resolver IP[:PORT]``) instead of the
system's. Used by the resolve stage (smtp/) and the sender-domain checks (senderdns/)."""

from maildoctor.resolver.client import (
    Answer,
    DnsFailure,
    Failure,
    Resolver,
    parse_resolver_address,
)
from maildoctor.resolver.text import printable, txt_text

__all__ = ["Answer", "DnsFailure", "Failure", "Resolver", "parse_resolver_address",
           "printable", "txt_text"]
