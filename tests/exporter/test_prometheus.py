"""The shipped Prometheus files (contrib/prometheus/) against the real thing: promtool accepts
the scrape config and runs the alert unit tests, and a real Prometheus, configured from the
example with only its addresses and intervals changed, scrapes the exporter for two targets
(a healthy homeserver and one with the ``smpt_pass`` typo) and starts the mail-broken alert
for the broken one only."""

from __future__ import annotations

import copy
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from maildoctor.exporter import Exporter, ExporterServer, Target
from maildoctor.smtp.report import ProbeOptions
from maildoctor.testing.server import TestServer
from tests.exporter.homeservers import write_healthy, write_smpt_pass
from tests.infra.prometheus import PrometheusServer

CONTRIB = Path(__file__).resolve().parent.parent.parent / "contrib" / "prometheus"
Promtool = Callable[..., subprocess.CompletedProcess[str]]
SCRAPE_WAIT = 90.0


def test_example_scrape_config_is_valid(promtool: Promtool) -> None:
    result = promtool("check", "config", "prometheus.yml", cwd=CONTRIB)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_alert_unit_tests_pass(promtool: Promtool) -> None:
    """Among them: MaildoctorMailBroken fires for the smpt_pass homeserver after 15 minutes,
    and only for it."""
    result = promtool("test", "rules", "alerts_test.yml", cwd=CONTRIB)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_alert_unit_tests_can_fail(promtool: Promtool, tmp_path: Path) -> None:
    """The same tests, expecting the alert for the healthy homeserver instead: promtool says
    no, so the passing run above means something."""
    (tmp_path / "alerts.yml").write_text((CONTRIB / "alerts.yml").read_text(), "utf-8")
    wrong = (CONTRIB / "alerts_test.yml").read_text().replace(
        "              instance: smpt-pass\n            exp_annotations:\n"
        "              summary: \"Synapse on smpt-pass",
        "              instance: healthy\n            exp_annotations:\n"
        "              summary: \"Synapse on smpt-pass", 1)
    assert "instance: healthy" in wrong
    (tmp_path / "alerts_test.yml").write_text(wrong, "utf-8")
    result = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0


@pytest.fixture
def running_exporter(smtp_server: Callable[..., TestServer],
                     tmp_path: Path) -> Iterator[ExporterServer]:
    server = smtp_server(tls="starttls")
    targets = {
        "healthy": Target("healthy", (write_healthy(server, tmp_path / "healthy.yaml"),)),
        "smpt-pass": Target("smpt-pass",
                            (write_smpt_pass(server, tmp_path / "smpt-pass.yaml"),)),
    }
    app = Exporter(targets, ProbeOptions(timeout=5, ca_file=server.ca_file), min_interval=5)
    http = ExporterServer(("127.0.0.1", 0), app, log=lambda line: None)
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    yield http
    http.stop()
    thread.join(timeout=30)
    http.server_close()


def config_from_example(exporter_address: str) -> dict[str, Any]:
    """The shipped prometheus.yml with the example's names and addresses replaced by the
    test's, and intervals of a second: the relabelling is used exactly as shipped."""
    example = yaml.safe_load((CONTRIB / "prometheus.yml").read_text(encoding="utf-8"))
    config = copy.deepcopy(example)
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    probe = jobs["maildoctor"]
    probe.update(scrape_interval="1s", scrape_timeout="1s")
    probe["static_configs"] = [{"targets": ["healthy", "smpt-pass"]}]
    (address_rule,) = [r for r in probe["relabel_configs"]
                       if r.get("target_label") == "__address__"]
    address_rule["replacement"] = exporter_address
    jobs["maildoctor_exporter"]["static_configs"] = [{"targets": [exporter_address]}]
    jobs["maildoctor_exporter"]["scrape_interval"] = "1s"
    jobs["maildoctor_exporter"]["scrape_timeout"] = "1s"
    return config


def test_real_prometheus_scrapes_two_targets(
        running_exporter: ExporterServer,
        prometheus_server: Callable[..., PrometheusServer], promtool: Promtool,
        tmp_path: Path) -> None:
    address = f"127.0.0.1:{running_exporter.port}"
    alerts = (CONTRIB / "alerts.yml").read_text(encoding="utf-8")
    prom = prometheus_server(config_from_example(address), files={"alerts.yml": alerts})

    def both_seen() -> bool:
        return prom.query("maildoctor_probe_success") == {"healthy": 1.0, "smpt-pass": 0.0}

    prom.wait_until(both_seen, SCRAPE_WAIT, "maildoctor_probe_success for both targets")
    outcome = prom.query('maildoctor_synapse_outcome{outcome="error"}')
    assert outcome == {"healthy": 0.0, "smpt-pass": 1.0}
    causes = prom.api("query", query="maildoctor_root_cause_info")["result"]
    assert [(c["metric"]["instance"], c["metric"]["code"]) for c in causes] == \
        [("smpt-pass", "MD101")]
    assert prom.query("maildoctor_certificate_expiry_timestamp_seconds - time() > bool 0") == \
        {"healthy": 1.0, "smpt-pass": 1.0}

    def alert_pending() -> bool:
        alerts = prom.api("alerts")["alerts"]
        return any(a["labels"]["alertname"] == "MaildoctorMailBroken" for a in alerts)

    prom.wait_until(alert_pending, SCRAPE_WAIT, "the MaildoctorMailBroken alert")
    broken = [a for a in prom.api("alerts")["alerts"]
              if a["labels"]["alertname"] == "MaildoctorMailBroken"]
    assert [(a["labels"]["instance"], a["state"]) for a in broken] == [("smpt-pass", "pending")]
    prom.wait_until(lambda: prom.query('up{job="maildoctor_exporter"}') == {address: 1.0},
                    SCRAPE_WAIT, "the exporter's own metrics")
    assert prom.query("maildoctor_exporter_targets") == {address: 2.0}

    # What this Prometheus scraped, held for 20 minutes, fires the shipped alert for the
    # smpt_pass homeserver only, in promtool's rule tests.
    scraped = prom.api("query", query="maildoctor_probe_success")["result"]
    series = [{"series": "maildoctor_probe_success{" + ", ".join(
                   f'{k}="{v}"' for k, v in sorted(item["metric"].items())
                   if k != "__name__") + "}",
               "values": f"{float(item['value'][1]):g}x20"} for item in scraped]
    shipped = yaml.safe_load((CONTRIB / "alerts_test.yml").read_text(encoding="utf-8"))
    (annotations,) = [a["exp_annotations"] for t in shipped["tests"]
                      for case in t["alert_rule_test"]
                      if case["alertname"] == "MaildoctorMailBroken"
                      for a in case["exp_alerts"]]  # the same instance name: smpt-pass
    fired = [{"exp_labels": {"severity": "critical", **{
        k: v for k, v in item["metric"].items() if k != "__name__"}},
              "exp_annotations": annotations}
             for item in scraped if item["metric"]["instance"] == "smpt-pass"]
    unit = {"rule_files": ["alerts.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series,
                       "alert_rule_test": [{"eval_time": "16m",
                                            "alertname": "MaildoctorMailBroken",
                                            "exp_alerts": fired}]}]}
    (tmp_path / "alerts.yml").write_text(alerts, encoding="utf-8")
    (tmp_path / "scraped_test.yml").write_text(yaml.safe_dump(unit), encoding="utf-8")
    result = promtool("test", "rules", "scraped_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
