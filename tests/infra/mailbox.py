"""Mailbox mode of the throwaway Postfix (pytest plugin): what the round trip reads back.

Postfix (tests/infra/postfix.py) submits through two real OpenDKIM milters: the signer signs
what 127.0.0.1 submits for the test domain (``good.maildoctor.test``, selector ``mail``), and
the verifier checks the signature as a receiving server would, asking the test Knot through
libunbound, and writes ``Authentication-Results``. Delivery goes over LMTP to Dovecot, whose
Sieve rule files mail from ``junk.maildoctor.test`` into Junk; Dovecot serves the mailbox
over IMAPS on loopback. The DKIM key is made fresh per start; :func:`publish_dkim_key` puts
its public half into the test zone.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.infra.postfix import PostfixServer, PostfixStartError, _free_ports, _on_sigterm
from tests.postfix.files import Mailbox, junk_sieve, opendkim_conf, unbound_conf
from tests.senderdns.zones import BODY, ORIGIN

OPENDKIM = "/usr/sbin/opendkim"
DKIM_DOMAIN = f"good.{ORIGIN}"
JUNK_DOMAIN = f"junk.{ORIGIN}"


def prepare_mailbox(root: Path, mailbox: Mailbox, cert: Any) -> None:
    """Files of mailbox mode: Dovecot's TLS key and certificate, the DKIM key, the OpenDKIM
    and libunbound configs, the Sieve rule, and the mail directory."""
    cert.private_key_pem.write_to_path(str(root / "certs" / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(root / "certs" / "cert.pem"))
    (root / "certs" / "key.pem").chmod(0o600)
    dkim = root / "dkim"
    dkim.mkdir()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (dkim / f"{mailbox.selector}.private").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    (dkim / f"{mailbox.selector}.private").chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    (dkim / f"{mailbox.selector}.public").write_text(base64.b64encode(public).decode())
    (dkim / "signer.conf").write_text(opendkim_conf(root, mailbox, verify=False))
    (dkim / "verifier.conf").write_text(opendkim_conf(root, mailbox, verify=True))
    (dkim / "unbound.conf").write_text(unbound_conf(mailbox, ORIGIN))
    # Dovecot compiles the script as the mail user on first use: its directory is theirs.
    (root / "sieve").mkdir()
    (root / "sieve" / "junk.sieve").write_text(junk_sieve(mailbox))
    shutil.chown(root / "sieve", "nobody", "nogroup")
    (root / "mail").mkdir()
    shutil.chown(root / "mail", "nobody", "nogroup")


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def start_milters(root: Path, mailbox: Mailbox, timeout: float) -> None:
    if not shutil.which(OPENDKIM):
        raise PostfixStartError(f"{OPENDKIM} is missing: run `make system-deps` (as root)")
    for name, port in (("signer", mailbox.signer_port), ("verifier", mailbox.verifier_port)):
        log = open(root / "dkim" / f"{name}.log", "wb")
        subprocess.Popen([OPENDKIM, "-f", "-x", str(root / "dkim" / f"{name}.conf")],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _listening(port):
            if time.monotonic() > deadline:
                text = (root / "dkim" / f"{name}.log").read_text(errors="replace")
                raise PostfixStartError(f"OpenDKIM ({name}) did not listen on {port}:\n{text}")
            time.sleep(0.02)


def dkim_public_key(server: PostfixServer) -> str:
    assert server.mailbox is not None
    return (server.root / "dkim" / f"{server.mailbox.selector}.public").read_text()


def dkim_zone(public_b64: str, selector: str = "mail") -> str:
    """The test zone with ``public_b64`` published as the signer's key."""
    value = f"v=DKIM1; k=rsa; p={public_b64}"
    strings = " ".join(f'"{value[i:i + 200]}"' for i in range(0, len(value), 200))
    return BODY + f"{selector}._domainkey.good TXT {strings}\n"


def publish_dkim_key(knot: Any, server: PostfixServer) -> None:
    knot.set_zone(ORIGIN, dkim_zone(dkim_public_key(server)))


@pytest.fixture(scope="session")
def postfix_mailbox(knot: Any) -> Iterator[PostfixServer]:
    """Postfix + OpenDKIM (signer and verifier) + Dovecot LMTP/Sieve/IMAPS, its DKIM key
    published in the test Knot. Mark tests `postfix`."""
    import signal

    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, _on_sigterm)

    def setup(root: Path) -> Mailbox:
        imaps, signer, verifier = _free_ports(3)
        return Mailbox(imaps, signer, verifier, dns_port=knot.port, domain=DKIM_DOMAIN,
                       junk_domain=JUNK_DOMAIN)

    try:
        server = PostfixServer(mailbox=setup).start()
    except PostfixStartError as exc:
        pytest.fail(str(exc), pytrace=False)
    publish_dkim_key(knot, server)
    yield server
    server.stop()
    knot.set_zone(ORIGIN, BODY)
