"""The exporter's endpoints against a real test SMTP server (STARTTLS, a trusted test CA):
the metrics of a healthy and a broken target, every refusal of a request that tries to name a
file or a host, one probe for a scrape storm, deadlines, load errors, no secret anywhere,
printable labels."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from maildoctor.exporter import Exporter, Response, Target
from maildoctor.exporter.scheduler import ProbeOutcome
from maildoctor.smtp.report import ProbeOptions, StageResult, StageStatus
from maildoctor.testing.server import DEFAULT_PASSWORD, EventKind, Fault, TestServer
from tests.exporter.homeservers import write_healthy, write_smpt_pass, write_unreadable

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
LEAKS = [DEFAULT_PASSWORD, base64.b64encode(DEFAULT_PASSWORD.encode()).decode().rstrip("="),
         base64.b64encode(b"\0synapse@example.org\0" + DEFAULT_PASSWORD.encode()).decode()]


def samples(response: Response) -> Samples:
    assert response.status == 200, response.body
    text = response.body.decode("utf-8")
    for leak in LEAKS:
        assert leak not in text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


@pytest.fixture
def tls_server(smtp_server: Callable[..., TestServer]) -> TestServer:
    return smtp_server(tls="starttls")


@pytest.fixture
def make_exporter(tls_server: TestServer, tmp_path: Path) -> Iterator[Callable[..., Exporter]]:
    def make(*, server: TestServer | None = None, min_interval: float = 60.0,
             log: Callable[[ProbeOutcome], None] | None = None, **extra: Any) -> Exporter:
        server = server or tls_server
        targets = {
            "healthy": Target("healthy", (write_healthy(server, tmp_path / "healthy.yaml"),)),
            "broken": Target("broken", (write_smpt_pass(server, tmp_path / "broken.yaml"),)),
            "unreadable": Target("unreadable", (write_unreadable(tmp_path / "bad.yaml"),)),
        }
        options = ProbeOptions(timeout=extra.pop("timeout", 5.0), ca_file=server.ca_file)
        return Exporter(targets, options, min_interval=min_interval, log=log, **extra)

    yield make


def scrape(exporter: Exporter, target: str, **headers: str) -> Samples:
    return samples(exporter.handle("GET", f"/probe?target={target}", headers))


def test_healthy_target(make_exporter: Callable[..., Exporter]) -> None:
    found = scrape(make_exporter(), "healthy")
    assert value(found, "maildoctor_probe_success") == 1
    assert value(found, "maildoctor_config_loaded") == 1
    assert value(found, "maildoctor_probe_cached") == 0
    assert value(found, "maildoctor_probe_duration_seconds") > 0
    assert value(found, "maildoctor_synapse_outcome", outcome="ok") == 1
    assert value(found, "maildoctor_synapse_outcome", outcome="error") == 0
    for stage in ("resolve", "connect", "ehlo", "tls", "auth", "envelope"):
        assert value(found, "maildoctor_probe_stage_success", stage=stage) == 1
        assert ("maildoctor_probe_stage_duration_seconds",
                frozenset({("stage", stage)})) in found
    assert value(found, "maildoctor_certificate_expiry_timestamp_seconds") > \
        value(found, "maildoctor_probe_timestamp_seconds")
    assert value(found, "maildoctor_check_findings", severity="error") == 0
    assert ("maildoctor_root_cause_info" not in {name for name, _ in found})


def test_smpt_pass_target(make_exporter: Callable[..., Exporter]) -> None:
    found = scrape(make_exporter(), "broken")
    assert value(found, "maildoctor_probe_success") == 0
    assert value(found, "maildoctor_synapse_outcome", outcome="error") == 1
    assert value(found, "maildoctor_check_findings", severity="error") >= 1
    assert value(found, "maildoctor_root_cause_info", code="MD101",
                 key="email.smpt_pass") == 1


def test_unusable_config_is_reported_not_raised(make_exporter: Callable[..., Exporter]) -> None:
    found = scrape(make_exporter(), "unreadable")
    assert value(found, "maildoctor_config_loaded") == 0
    assert value(found, "maildoctor_probe_success") == 0


@pytest.mark.parametrize(("uri", "status"), [
    ("/probe?target=/etc/passwd", 400),
    ("/probe?target=..%2F..%2Fetc%2Fpasswd", 400),
    ("/probe?target=..", 400),
    ("/probe?target=file%3A%2F%2F%2Fetc%2Fpasswd", 400),
    ("/probe?target=127.0.0.1:25", 400),
    ("/probe?target=smtp.example.org%3A587", 400),
    ("/probe?target=%5B%3A%3A1%5D", 400),
    ("/probe?target=healthy%00", 400),
    ("/probe?target=%ff", 400),
    ("/probe?target=healthy&config=/etc/passwd", 400),
    ("/probe?config=/etc/passwd&target=healthy", 400),
    ("/probe?target=healthy&module=smtp", 400),
    ("/probe?target=healthy&host=127.0.0.1&port=25", 400),
    ("/probe?target=healthy&target=broken", 400),
    ("/probe?target=", 400),
    ("/probe", 400),
    ("/probe?target=nope", 404),
    ("/probe/../etc/passwd?target=healthy", 404),
    ("/etc/passwd", 404),
    ("http://127.0.0.1:25/probe?target=healthy", 400),
    ("//127.0.0.1:25/probe?target=healthy", 400),
    ("/metrics?target=healthy", 400),
])
def test_requests_naming_files_or_hosts_are_refused(
        make_exporter: Callable[..., Exporter], tls_server: TestServer, uri: str,
        status: int) -> None:
    exporter = make_exporter()
    response = exporter.handle("GET", uri, {})
    assert response.status == status, response.body
    body = response.body.decode("utf-8")
    assert all(c.isprintable() for c in body.rstrip("\n"))
    own = samples(exporter.handle("GET", "/metrics", {}))
    assert not [k for k in own if k[0] == "maildoctor_exporter_probes_total"]
    assert not [e for e in tls_server.events if e.kind is EventKind.CONNECT]


def test_a_file_named_in_a_request_is_never_read(make_exporter: Callable[..., Exporter],
                                                 tmp_path: Path) -> None:
    """Even a readable config the exporter does not list cannot be probed by naming it."""
    other = tmp_path / "elsewhere.yaml"
    other.write_text("email:\n  smtp_host: 127.0.0.1\n", encoding="utf-8")
    exporter = make_exporter()
    for name in (str(other), other.name, "elsewhere"):
        assert exporter.handle("GET", f"/probe?target={name}", {}).status in (400, 404)


def test_other_methods_get_405(make_exporter: Callable[..., Exporter]) -> None:
    response = make_exporter().handle("POST", "/probe?target=healthy", {})
    assert response.status == 405 and ("Allow", "GET, HEAD") in response.headers


def test_a_scrape_storm_logs_in_once(make_exporter: Callable[..., Exporter],
                                     tls_server: TestServer) -> None:
    exporter = make_exporter(min_interval=60.0)
    answers: list[Samples] = []
    lock = threading.Lock()

    def one() -> None:
        found = scrape(exporter, "healthy")
        with lock:
            answers.append(found)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 12
    assert all(value(a, "maildoctor_probe_success") == 1 for a in answers)
    assert sum(value(a, "maildoctor_probe_cached") == 0 for a in answers) == 1
    later = scrape(exporter, "healthy")
    assert value(later, "maildoctor_probe_cached") == 1
    logins = [e for e in tls_server.events if e.kind is EventKind.AUTH]
    assert len(logins) == 1 and logins[0].success


def test_without_a_minimum_interval_each_scrape_probes(
        make_exporter: Callable[..., Exporter], tls_server: TestServer) -> None:
    exporter = make_exporter(min_interval=0.0)
    for _ in range(2):
        assert value(scrape(exporter, "healthy"), "maildoctor_probe_cached") == 0
    assert len([e for e in tls_server.events if e.kind is EventKind.AUTH]) == 2


def test_a_silent_server_is_bounded_by_the_scrape_deadline(
        make_exporter: Callable[..., Exporter],
        smtp_server: Callable[..., TestServer]) -> None:
    silent = smtp_server(faults=(Fault.SILENT,))
    finished = threading.Event()
    exporter = make_exporter(server=silent, timeout=0.5, log=lambda _o: finished.set())
    found = scrape(exporter, "healthy", **{"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
    assert value(found, "maildoctor_probe_timed_out") == 1
    assert value(found, "maildoctor_probe_success") == 0
    assert finished.wait(timeout=60), "the probe goes on within its own timeouts"
    then = scrape(exporter, "healthy")
    assert value(then, "maildoctor_probe_cached") == 1
    assert value(then, "maildoctor_probe_timed_out") == 0
    assert value(then, "maildoctor_probe_success") == 0
    assert value(then, "maildoctor_synapse_outcome", outcome="hang") == 1


def test_own_metrics(make_exporter: Callable[..., Exporter]) -> None:
    exporter = make_exporter()
    scrape(exporter, "broken")
    exporter.handle("GET", "/probe?target=/etc/passwd", {})
    own = samples(exporter.handle("GET", "/metrics", {}))
    assert value(own, "maildoctor_exporter_targets") == 3
    assert value(own, "maildoctor_exporter_probes_total", target="broken",
                 result="failure") == 1
    assert value(own, "maildoctor_exporter_requests_total", path="/probe", code="400") == 1
    assert value(own, "maildoctor_exporter_probes_in_flight") == 0


def test_untrusted_text_in_labels_is_printable(tmp_path: Path,
                                               tls_server: TestServer) -> None:
    weird = "mail\x1b[2J evil\u202e\nhost"
    config = tmp_path / "weird.yaml"
    config.write_text(
        'email:\n  smtp_host: "mail\\e[2J evil\\u202e\\nhost"\n  smtp_port: 587\n'
        '  notif_from: "M <m@example.org>"\n', encoding="utf-8")
    exporter = Exporter({"weird": Target("weird", (str(config),))}, ProbeOptions(timeout=1))
    response = exporter.handle("GET", "/probe?target=weird", {})
    text = response.body.decode("utf-8")
    assert "\x1b" not in text and "\u202e" not in text
    found = samples(response)
    (host,) = [dict(labels)["host"] for name, labels in found
               if name == "maildoctor_target_info"]
    assert host == "mail\\x1b[2J evil\\u202e\\x0ahost" and host != weird


def test_stages_are_read_generically(make_exporter: Callable[..., Exporter]) -> None:
    """A stage the probe gains later (sender-dns, with a verdict) is exported as it comes."""
    from dataclasses import replace

    from maildoctor.exporter.probe_metrics import probe_registry
    from maildoctor.exporter.scheduler import Answer

    exporter = make_exporter()
    answer = exporter.scheduler.answer("healthy", 30)
    assert answer.outcome is not None and answer.outcome.run is not None
    run = answer.outcome.run
    extra = StageResult("sender-dns", StageStatus.WARN, 0.25, facts={"verdict": "at-risk"})
    run = replace(run, report=replace(run.report, stages=[*run.report.stages, extra]))
    registry = probe_registry(Answer(replace(answer.outcome, run=run), False, False), waited=0)
    from prometheus_client import generate_latest

    found = samples(Response(200, generate_latest(registry)))
    assert value(found, "maildoctor_probe_stage_success", stage="sender-dns") == 1
    assert value(found, "maildoctor_probe_stage_duration_seconds", stage="sender-dns") == 0.25
    assert value(found, "maildoctor_probe_stage_verdict", stage="sender-dns",
                 verdict="at-risk") == 1


@pytest.mark.parametrize(("label", "verdict", "success"), [
    ("good", "ok", 1), ("nospf", "at-risk", 1), ("exclude", "will-fail", 0),
])
def test_sender_dns_verdict(tmp_path: Path, smtp_server: Callable[..., TestServer],
                            knot: Any, label: str, verdict: str, success: int) -> None:
    """The sender-dns stage against the test zone (Knot): its verdict is a metric of its own;
    receivers rejecting the mail makes the probe fail although Synapse would send."""
    from maildoctor.resolver import parse_resolver_address
    from tests.senderdns.zones import ORIGIN, SENDING_IP

    server = smtp_server()
    config = tmp_path / "homeserver.yaml"
    config.write_text("\n".join([
        "server_name: example.org", "public_baseurl: https://matrix.example.org/",
        "email:", f"  smtp_host: smtp.{ORIGIN}", f"  smtp_port: {server.port}",
        "  enable_tls: false", f"  notif_from: 'Matrix <noreply@{label}.{ORIGIN}>'", ""]),
        encoding="utf-8")
    options = ProbeOptions(timeout=5, resolver=parse_resolver_address(knot.resolver),
                           sending_ips=(SENDING_IP,))
    exporter = Exporter({label: Target(label, (str(config),))}, options)
    found = scrape(exporter, label)
    for known in ("ok", "at-risk", "will-fail"):
        assert value(found, "maildoctor_sender_dns_verdict", verdict=known) == \
            (1 if known == verdict else 0)
    assert value(found, "maildoctor_probe_stage_verdict", stage="sender-dns",
                 verdict=verdict) == 1
    assert value(found, "maildoctor_synapse_outcome", outcome="ok") == 1
    assert value(found, "maildoctor_probe_success") == success
