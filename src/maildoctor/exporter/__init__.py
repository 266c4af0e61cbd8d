"""``maildoctor exporter``: probe many homeservers' mail for Prometheus, blackbox_exporter style.

Prometheus scrapes ``/probe?target=NAME``; NAME is one of the targets the operator configured
(``--target NAME=CONFIG`` or a targets file), the exporter probes that config's SMTP server as
``maildoctor probe`` does and answers in the Prometheus text format. Modules, in the order a
scrape goes through them: ``targets`` (names -> config paths), ``app`` (endpoints and request
checks), ``scheduler`` (one probe per target at a time, a minimum interval, a concurrency cap,
deadlines), ``probe_metrics`` (a probe's result as metrics), ``server`` (HTTP).
"""

from maildoctor.exporter.app import Exporter, Response
from maildoctor.exporter.server import ExporterServer, parse_listen
from maildoctor.exporter.targets import Target, load_targets_file, parse_target_options

__all__ = ["Exporter", "ExporterServer", "Response", "Target", "load_targets_file",
           "parse_listen", "parse_target_options"]
