"""`maildoctor probe --resolver`: on a config whose SMTP side works (the built-in test server),
the sender-dns stage names what receivers will make of the sender domain, and the exit
status follows the verdict: will-fail is 1, at-risk alone a warning (0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from maildoctor.cli.main import cli
from tests.senderdns.zones import ORIGIN, SENDING_IP


def _config(tmp_path: Path, port: int, label: str) -> Path:
    # smtp_host is a name only the test zone knows: the resolve stage must ask --resolver too.
    path = tmp_path / "homeserver.yaml"
    path.write_text("\n".join([
        "server_name: example.org", "public_baseurl: https://matrix.example.org/",
        "email:", f"  smtp_host: smtp.{ORIGIN}", f"  smtp_port: {port}",
        "  enable_tls: false",
        f"  notif_from: 'Matrix <noreply@{label}.{ORIGIN}>'", ""]))
    return path


def _probe(tmp_path: Path, server: Any, knot: Any, label: str, *extra: str) -> Any:
    cfg = _config(tmp_path, server.port, label)
    return CliRunner().invoke(cli, ["probe", str(cfg), "--resolver", knot.resolver,
                                    "--sending-ip", SENDING_IP, "--timeout", "5",
                                    "--no-color", *extra])


@pytest.mark.parametrize(("label", "status", "words"), [
    ("good", 0, "Synapse will send mail with this config"),
    ("nospf", 0, "spf-missing"),
    ("nodmarc", 0, "dmarc-missing"),
    ("exclude", 1, "receivers will reject it"),
    ("gone", 1, f"the sender domain gone.{ORIGIN} does not exist"),
])
def test_probe_exit_follows_the_sender_verdict(tmp_path: Path, smtp_server: Any, knot: Any,
                                                label: str, status: int, words: str) -> None:
    result = _probe(tmp_path, smtp_server(), knot, label)
    assert result.exit_code == status, result.output
    assert words in result.output
    assert "sender-dns" in result.output  # a row of the same stage table


def test_the_record_to_paste_is_in_the_diagnosis(tmp_path: Path, smtp_server: Any,
                                                 knot: Any) -> None:
    result = _probe(tmp_path, smtp_server(), knot, "exclude")
    assert f'exclude.{ORIGIN}. 3600 IN TXT "v=spf1 ip4:198.51.100.0/24 ip4:{SENDING_IP} -all"' \
        in result.output


def test_json_has_the_stage_with_its_verdict(tmp_path: Path, smtp_server: Any,
                                             knot: Any) -> None:
    result = _probe(tmp_path, smtp_server(), knot, "nospf", "--format", "json")
    out = json.loads(result.output)
    names = [s["name"] for s in out["stages"]]
    assert names[0] == "resolve" and "sender-dns" in names
    assert out["stages"][0]["facts"]["addresses"] == ["127.0.0.1"]
    stage = next(s for s in out["stages"] if s["name"] == "sender-dns")
    assert stage["status"] == "warn" and stage["facts"]["verdict"] == "at-risk"
    assert stage["facts"]["record"] == f'nospf.{ORIGIN}. 3600 IN TXT "v=spf1 ip4:{SENDING_IP} ~all"'
    assert out["diagnosis"]["ok"] is True
    assert "receivers may file it as spam" in out["diagnosis"]["root_cause"]
    assert out["diagnosis"]["fix"].endswith(stage["facts"]["record"])


def test_no_sender_dns_turns_the_stage_off(tmp_path: Path, smtp_server: Any, knot: Any) -> None:
    result = _probe(tmp_path, smtp_server(), knot, "gone", "--no-sender-dns")
    assert result.exit_code == 0, result.output
    assert "sender-dns" not in result.output


def test_a_bad_resolver_value_is_a_usage_error(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 2525, "good")
    result = CliRunner().invoke(cli, ["probe", str(cfg), "--resolver", "ns1.example.org"])
    assert result.exit_code == 2
    assert "--resolver" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("mode", ["servfail", "truncated", "silent"])
def test_a_bad_resolver_gives_findings_not_tracebacks(tmp_path: Path, smtp_server: Any,
                                                      bad_dns: Any, mode: str) -> None:
    server = smtp_server()
    dns = bad_dns(mode)
    # smtp_host a name: the resolve stage itself fails, clearly, and the probe exits 1
    named = _config(tmp_path, server.port, "good")
    result = CliRunner().invoke(cli, ["probe", str(named), "--resolver", dns.resolver,
                                      "--timeout", "1", "--no-color"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "resolve" in result.output
    # smtp_host an address: Synapse's part works; the sender domain's DNS is a warning
    literal = tmp_path / "literal.yaml"
    literal.write_text(named.read_text().replace(f"smtp.{ORIGIN}", "127.0.0.1"))
    result = CliRunner().invoke(cli, ["probe", str(literal), "--resolver", dns.resolver,
                                      "--timeout", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    stage = next(s for s in json.loads(result.output)["stages"] if s["name"] == "sender-dns")
    assert stage["status"] == "warn"
    assert stage["facts"]["findings"][0]["code"] == "dns-failure"
