"""The links stage against a real Synapse behind a real nginx: a proxy that forwards only
/_matrix (the classic broken setup: the password-reset and unsubscribe links die at nginx's
404, and the diagnosis names the missing /_synapse/client location), and one that forwards
both (no finding). The SMTP side is the built-in test server; DNS is the test Knot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from maildoctor.cli.main import cli
from maildoctor.links import Link, judge_link
from maildoctor.links.fetch import Fetched
from tests.infra.nginx import NginxProxy
from tests.senderdns.zones import ORIGIN, SENDING_IP


@pytest.fixture
def proxied(synapse_behind_nginx: NginxProxy) -> NginxProxy:
    return synapse_behind_nginx


def _config(tmp_path: Path, port: int, base: str, label: str = "good") -> Path:
    path = tmp_path / "homeserver.yaml"
    path.write_text("\n".join([
        "server_name: example.org", f"public_baseurl: {base}",
        "email:", "  smtp_host: 127.0.0.1", f"  smtp_port: {port}", "  enable_tls: false",
        f"  notif_from: 'Matrix <noreply@{label}.{ORIGIN}>'", ""]))
    return path


def _probe(tmp_path: Path, smtp: Any, knot: Any, base: str, *extra: str) -> Any:
    cfg = _config(tmp_path, smtp.port, base)
    return CliRunner().invoke(cli, ["probe", str(cfg), "--resolver", knot.resolver,
                                    "--sending-ip", SENDING_IP, "--no-color", "--timeout", "5",
                                    *extra])


@pytest.mark.synapse
def test_a_proxy_forwarding_only_matrix_kills_the_synapse_client_links(
        tmp_path: Path, smtp_server: Any, knot: Any, proxied: NginxProxy) -> None:
    result = _probe(tmp_path, smtp_server(), knot, proxied.url("matrix-only"))
    assert result.exit_code == 1, result.output
    assert "its links are dead" in result.output
    assert "location /_synapse/client" in result.output
    assert "404" in result.output


@pytest.mark.synapse
def test_a_proxy_forwarding_both_is_a_clean_pass(tmp_path: Path, smtp_server: Any, knot: Any,
                                                 proxied: NginxProxy) -> None:
    result = _probe(tmp_path, smtp_server(), knot, proxied.url("both"), "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    stage = next(s for s in out["stages"] if s["name"] == "links")
    assert stage["status"] == "ok"
    assert [link["works"] for link in stage["facts"]["links"]] == [True] * 4
    assert out["diagnosis"]["ok"] is True
    sender = next(s for s in out["stages"] if s["name"] == "sender-dns")
    assert sender["facts"]["verdict"] == "ok"


@pytest.mark.synapse
def test_no_links_turns_the_stage_off(tmp_path: Path, smtp_server: Any, knot: Any,
                                      proxied: NginxProxy) -> None:
    result = _probe(tmp_path, smtp_server(), knot, proxied.url("matrix-only"), "--no-links")
    assert result.exit_code == 0, result.output
    assert "links" not in [line.split()[0] for line in result.output.splitlines() if line]


def test_a_closed_port_and_a_foreign_redirect_are_dead_links(closed_port: int) -> None:
    from maildoctor.links.fetch import fetch

    link = Link("password-reset", f"http://127.0.0.1:{closed_port}/_synapse/client/x",
                "public_baseurl", True)
    verdict = judge_link(link, fetch(link.url, timeout=1))
    assert not verdict.works and "connection refused" in verdict.seen
    moved = Fetched(link.url, status=302, location="https://elsewhere.test/")
    verdict = judge_link(link, moved)
    assert not verdict.works and "elsewhere.test" in verdict.problem
