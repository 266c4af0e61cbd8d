"""One bounded HTTP GET, the way a mail reader's browser would make it (no redirects
followed: a redirect is itself a fact), with the host's address asked of ``--resolver``
when given. OS, ssl and socket errors become a :class:`Fetched` with ``error`` set."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from maildoctor.resolver import DnsFailure, Failure, Resolver, printable

BODY_LIMIT = 4096


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int = 0
    server: str = ""
    content_type: str = ""
    location: str = ""
    body: str = ""
    error: str = ""  # the connection failed: this says how
    seconds: float = 0.0


def fetch(url: str, *, timeout: float, resolver: Resolver | None = None,
          ca_file: str | None = None) -> Fetched:
    started = time.monotonic()
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        address = _address(host, resolver)
        sock = socket.create_connection((address, port), timeout=timeout)
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=ca_file) if ca_file \
                else ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock
        try:
            conn.request("GET", target, headers={"Host": parts.netloc.rpartition("@")[2],
                                                 "User-Agent": "maildoctor-links"})
            response = conn.getresponse()
            body = response.read(BODY_LIMIT)
        finally:
            conn.close()
    except DnsFailure as exc:
        return Fetched(url, error=f"DNS: {exc.detail}", seconds=time.monotonic() - started)
    except ssl.SSLCertVerificationError as exc:
        return Fetched(url, error=f"TLS: the certificate does not verify "
                       f"({printable(exc.verify_message or str(exc))})",
                       seconds=time.monotonic() - started)
    except ssl.SSLError as exc:
        return Fetched(url, error=f"TLS: {printable(str(exc))}",
                       seconds=time.monotonic() - started)
    except TimeoutError:
        return Fetched(url, error=f"no answer in {timeout:g} s",
                       seconds=time.monotonic() - started)
    except ConnectionRefusedError:
        return Fetched(url, error=f"connection refused by {printable(host)} port {port}",
                       seconds=time.monotonic() - started)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Fetched(url, error=printable(f"{type(exc).__name__}: {exc}"),
                       seconds=time.monotonic() - started)
    return Fetched(url, response.status, printable(response.getheader("Server") or ""),
                   printable(response.getheader("Content-Type") or ""),
                   printable(response.getheader("Location") or ""),
                   body.decode("utf-8", errors="replace"), seconds=time.monotonic() - started)


def _address(host: str, resolver: Resolver | None) -> str:
    if resolver is None or _is_ip(host):
        return host
    for rdtype in ("A", "AAAA"):
        answer = resolver.query(host, rdtype)
        if answer.records:
            return str(answer.records[0].address)
        if answer.nxdomain:
            break
    raise DnsFailure(Failure.ERROR, host, "A", "the name has no address")


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
