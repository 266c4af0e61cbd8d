"""The exporter's endpoints, as a function from a request to a response (no sockets here):

- ``GET /probe?target=NAME``: probe the target NAME (one of those configured) and answer
  with its metrics (:mod:`maildoctor.exporter.probe_metrics`);
- ``GET /metrics``: the exporter's own metrics (requests, probes, timeouts, the process);
- ``GET /``: a line saying what is where.

A request can only *name* a configured target. Anything that looks like an attempt to point
the exporter somewhere else gets a 4xx and is never acted on: a parameter other than
``target`` (``config=``, ``module=``, ``host=``...), ``target`` given twice or empty, a value
that is not a plain name (``/etc/passwd``, ``../x``, ``smtp.example.org:25``, ``[::1]``), an
absolute request URI. An unknown name gets 404. The exporter never opens a path or contacts a
host taken from a request.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

from maildoctor.errors import ConfigLoadError
from maildoctor.exporter.probe_metrics import printable, probe_registry
from maildoctor.exporter.scheduler import OnFinish, ProbeOutcome, ProbeScheduler
from maildoctor.exporter.targets import Target, valid_name
from maildoctor.smtp.report import ProbeOptions

TEXT = "text/plain; charset=utf-8"
SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
# Leave this much of Prometheus' scrape timeout for sending the answer.
SCRAPE_MARGIN = 0.5
MIN_DEADLINE = 0.5
MAX_QUERY_FIELDS = 8
PATHS = ("/probe", "/metrics", "/")


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = TEXT
    headers: tuple[tuple[str, str], ...] = ()


def _text(status: int, message: str, *headers: tuple[str, str]) -> Response:
    return Response(status, (message + "\n").encode("utf-8"), TEXT, headers)


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def probe_target(target: Target, options: ProbeOptions,
                 synapse_version: str | None = None) -> ProbeOutcome:
    """Probe one target as ``maildoctor probe`` does (check, probe, predict, diagnose)."""
    from maildoctor.doctor import probe_config

    started, clock = time.time(), time.monotonic()
    try:
        run = probe_config(list(target.paths), options, synapse_version=synapse_version)
    except ConfigLoadError as exc:
        return ProbeOutcome(target.name, started, time.monotonic() - clock, load_error=exc)
    return ProbeOutcome(target.name, started, time.monotonic() - clock, run=run)


class Exporter:
    def __init__(self, targets: dict[str, Target], options: ProbeOptions, *,
                 min_interval: float = 60.0, concurrency: int = 4, deadline: float = 30.0,
                 synapse_version: str | None = None, log: OnFinish | None = None) -> None:
        self.targets = targets
        self.deadline = deadline
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self._requests = Counter("maildoctor_exporter_requests", "HTTP requests answered.",
                                 ("path", "code"), registry=self.registry)
        self._probes = Counter("maildoctor_exporter_probes",
                               "Probes run, by result (success, failure, config-error, "
                               "internal-error).", ("target", "result"), registry=self.registry)
        self._probe_seconds = Histogram("maildoctor_exporter_probe_duration_seconds",
                                        "How long probes took.", ("target",),
                                        buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
                                        registry=self.registry)
        self._answers = Counter("maildoctor_exporter_probe_answers",
                                "/probe answers, by how they were made (probed, cached, "
                                "timeout).", ("target", "how"), registry=self.registry)
        Gauge("maildoctor_exporter_targets", "Targets configured.",
              registry=self.registry).set(len(targets))
        in_flight = Gauge("maildoctor_exporter_probes_in_flight", "Probes running now.",
                          registry=self.registry)
        self._log = log
        self.scheduler = ProbeScheduler(
            targets, lambda t: probe_target(t, options, synapse_version),
            min_interval=min_interval, concurrency=concurrency, on_finish=self._finished)
        in_flight.set_function(lambda: self.scheduler.in_flight)

    def _finished(self, outcome: ProbeOutcome) -> None:
        if outcome.load_error is not None:
            result = "config-error"
        elif outcome.internal_error:
            result = "internal-error"
        else:
            result = "success" if outcome.run.diagnosis.ok else "failure"
        self._probes.labels(target=outcome.target, result=result).inc()
        self._probe_seconds.labels(target=outcome.target).observe(outcome.seconds)
        if self._log is not None:
            self._log(outcome)

    def handle(self, method: str, uri: str, headers: Mapping[str, str]) -> Response:
        """Answer one request (``uri`` as sent: path and query)."""
        path = urlsplit(uri).path if uri.startswith("/") else ""
        try:
            response = self._route(method, uri, headers)
        except BadRequest as exc:
            response = _text(exc.status, exc.message)
        label = path if path in PATHS else "other"
        self._requests.labels(path=label, code=str(response.status)).inc()
        return response

    def _route(self, method: str, uri: str, headers: Mapping[str, str]) -> Response:
        if not uri.startswith("/") or uri.startswith("//"):
            raise BadRequest(400, "request a path on this exporter: /probe?target=NAME")
        parts = urlsplit(uri)
        if parts.path not in PATHS:
            raise BadRequest(404, "not found: try /probe?target=NAME or /metrics")
        if method not in ("GET", "HEAD"):
            return _text(405, "only GET and HEAD", ("Allow", "GET, HEAD"))
        if parts.path == "/":
            return _text(200, "maildoctor exporter: /probe?target=NAME probes a configured "
                              "target; /metrics has the exporter's own metrics")
        encoder, content_type = choose_encoder(headers.get("Accept", ""))
        if parts.path == "/metrics":
            if parts.query:
                raise BadRequest(400, "/metrics takes no parameters")
            return Response(200, encoder(self.registry), content_type)
        name = self._target_name(parts.query)
        deadline = self._deadline(headers.get(SCRAPE_TIMEOUT_HEADER))
        clock = time.monotonic()
        answer = self.scheduler.answer(name, deadline)
        how = "timeout" if answer.timed_out else ("cached" if answer.cached else "probed")
        self._answers.labels(target=name, how=how).inc()
        registry = probe_registry(answer, waited=time.monotonic() - clock)
        return Response(200, encoder(registry), content_type)

    def _target_name(self, query: str) -> str:
        try:
            fields = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query),
                               errors="strict", max_num_fields=MAX_QUERY_FIELDS)
        except (ValueError, UnicodeError) as exc:
            raise BadRequest(400, "the query string is not valid") from exc
        extra = sorted({key for key, _ in fields if key != "target"})
        if extra:
            shown = ", ".join(printable(k, 40) for k in extra[:5])
            raise BadRequest(400, f"unknown parameter(s): {shown}. This exporter takes only "
                                  "target=NAME: config paths and hosts are set on its command "
                                  "line, never in a request")
        values = [value for _, value in fields]
        if len(values) != 1:
            raise BadRequest(400, "give exactly one target=NAME")
        name = values[0]
        if not valid_name(name):
            raise BadRequest(400, f"{printable(name, 80)!s} is not a target name (a target is "
                                  "named on the exporter's command line, not a path or a host)")
        if name not in self.targets:
            raise BadRequest(404, f"unknown target {name}")
        return name

    def _deadline(self, scrape_timeout: str | None) -> float:
        deadline = self.deadline
        if scrape_timeout:
            try:
                offered = float(scrape_timeout)
            except ValueError:
                offered = deadline
            if offered == offered:  # not NaN
                deadline = min(deadline, offered - SCRAPE_MARGIN)
        return max(MIN_DEADLINE, deadline)
