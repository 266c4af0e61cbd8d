"""Who answered a link, row by row (pure), and the bounded fetch against real loopback
servers that fail in the ways a proxy does (refused, silent, untrusted TLS)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
import trustme

from maildoctor.links import Link, judge_link, links_from_config
from maildoctor.links.fetch import Fetched, fetch

RESET = Link("password-reset", "https://m.test/_synapse/client/password_reset/email/"
             "submit_token", "public_baseurl", True)
CLIENT = Link("client-base-url", "https://app.m.test/", "email.client_base_url", False)

ROWS = [
    ("synapse html behind nginx (no Server header)", RESET,
     Fetched(RESET.url, 400, "nginx", "text/html", body="<p>Missing string query parameter "
             "&#x27;sid&#x27;</p>"), True),
    ("synapse json", RESET, Fetched(RESET.url, 400, "", "application/json",
                                    body='{"errcode":"M_MISSING_PARAM"}'), True),
    ("synapse server header", RESET, Fetched(RESET.url, 405, "Synapse/1.163.2"), True),
    ("proxy 404", RESET, Fetched(RESET.url, 404, "nginx", "text/html", body="Not Found"), False),
    ("redirect elsewhere", RESET, Fetched(RESET.url, 301, location="https://www.m.test/"), False),
    ("web client 200", CLIENT, Fetched(CLIENT.url, 200), True),
    ("web client 404", CLIENT, Fetched(CLIENT.url, 404), False),
]


@pytest.mark.parametrize(("link", "got", "works"), [r[1:] for r in ROWS],
                         ids=[r[0] for r in ROWS])
def test_who_answered(link: Link, got: Fetched, works: bool) -> None:
    verdict = judge_link(link, got)
    assert verdict.works is works
    if not works and link.synapse:
        assert "/_synapse/client" in verdict.problem + verdict.fix


def test_links_from_config() -> None:
    links = links_from_config({"server_name": "m.test", "email": {
        "client_base_url": "https://app.m.test/", "invite_client_location": "not a url"}})
    assert links[0].url == (
        "https://m.test/_synapse/client/password_reset/email/submit_token")
    assert [link.key for link in links][-1] == "email.client_base_url"
    assert len(links) == 5


@pytest.fixture
def tls_server() -> Iterator[int]:
    """A TLS server whose certificate no system store trusts (a self-made CA)."""
    cert = trustme.CA().issue_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    listener.close()


def test_an_untrusted_certificate_is_a_dead_link(tls_server: int) -> None:
    link = Link("password-reset", f"https://127.0.0.1:{tls_server}/_synapse/client/x",
                "public_baseurl", True)
    verdict = judge_link(link, fetch(link.url, timeout=2))
    assert not verdict.works and verdict.seen.startswith("TLS: the certificate does not verify")


def test_a_silent_server_is_bounded() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/_synapse/client/x"
        got = fetch(url, timeout=0.5)
    assert got.error == "no answer in 0.5 s"
