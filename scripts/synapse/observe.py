"""Replay the aiosmtpd scenarios of spec/synapse-observed.md against a real Synapse.

Prints one Markdown row per scenario (what the client saw, how long it took, the last
exception in Synapse's log) so the spec can be re-checked after a Synapse or Twisted upgrade:

    MAILDOCTOR_SYNAPSE_PYTHON=$PWD/.venv-synapse/bin/python .venv/bin/python \\
        scripts/synapse/observe.py [--hang-timeout SECONDS] [NAME_SUBSTRING]

Each scenario is (name, server options, changes to the base ``email:`` block, extra env).
The base block sends as ``synapse@example.org`` / ``s3cret`` to the test server on 127.0.0.1.
A changes value of ``None`` removes the key, ``PORT``/``PORT_TEXT`` stand for the server's port
as an int or a string, and a ``str`` of changes is raw YAML (for values PyYAML would quote).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.infra.synapse import ENV_VAR, SynapseHarness, SynapseResult  # noqa: E402

from maildoctor.testing.server import ServerOptions, TestServer  # noqa: E402

USER, PASSWORD = "synapse@example.org", "s3cret"
PORT, PORT_TEXT = "<port as int>", "<port as str>"


@dataclass(frozen=True)
class Scenario:
    name: str
    server: ServerOptions | None = field(default_factory=ServerOptions)  # None: no server
    changes: dict[str, Any] | str = field(default_factory=dict)
    trust_server_ca: bool = False


SCENARIOS = [
    Scenario("works"),
    Scenario("the seed's typo", changes={"smtp_pass": None, "smpt_pass": PASSWORD}),
    Scenario("port typo (smpt_port, so port 25)",
             changes={"smtp_port": None, "smpt_port": PORT}),
    Scenario("wrong password, server answers 535",
             changes={"smtp_pass": "nope"}),
    Scenario("wrong password, server stays silent",
             ServerOptions(auth_failure="silent"), {"smtp_pass": "nope"}),
    Scenario("server offers no AUTH", ServerOptions(advertise_auth=False)),
    Scenario("server offers only XOAUTH2", ServerOptions(mechanisms=("XOAUTH2",))),
    Scenario("implicit-TLS port, force_tls off", ServerOptions(tls="implicit")),
    Scenario("force_tls on a plaintext server", changes={"force_tls": True}),
    Scenario("force_tls, untrusted certificate", ServerOptions(tls="implicit"),
             {"force_tls": True}),
    Scenario("force_tls, CA trusted via SSL_CERT_FILE", ServerOptions(tls="implicit"),
             {"force_tls": True}, trust_server_ca=True),
    Scenario("STARTTLS offered, untrusted certificate", ServerOptions(tls="starttls")),
    Scenario("STARTTLS, CA trusted via SSL_CERT_FILE", ServerOptions(tls="starttls"),
             trust_server_ca=True),
    Scenario("require_transport_security, no STARTTLS",
             changes={"require_transport_security": True}),
    Scenario("sender rejected (553 at MAIL)", ServerOptions(replies={
        "mail": "553 5.7.1 <{address}>: Sender address rejected: not owned by user"})),
    Scenario("nothing listening", server=None),
    Scenario("host does not resolve", changes={"smtp_host": "smtp.invalid"}),
    Scenario("port as a string", changes={"smtp_port": PORT_TEXT}),
    Scenario("numeric password (unquoted)", changes="smtp_pass: 123456"),
    Scenario("no user, no auth", changes={"smtp_user": None, "smtp_pass": None}),
]


def email_block(port: int, changes: dict[str, Any] | str) -> dict[str, Any] | str:
    base: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_user": USER,
                            "smtp_pass": PASSWORD, "notif_from": "Matrix <noreply@example.org>"}
    if isinstance(changes, str):  # raw YAML lines replacing keys of the same name
        keys = {line.split(":")[0] for line in changes.splitlines()}
        kept = [f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}"
                for k, v in base.items() if k not in keys]
        return "\n".join([*kept, changes])
    block = dict(base)
    for key, value in changes.items():
        if value is None:
            block.pop(key, None)
        else:
            block[key] = {PORT: port, PORT_TEXT: str(port)}.get(value, value)
    return block


def run(harness: SynapseHarness, scenario: Scenario, hang_timeout: float) -> SynapseResult:
    if scenario.server is None:
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
            with harness.run(email_block(port, scenario.changes)) as syn:
                return syn.request_registration_mail("alice@example.org", hang_timeout)
    with TestServer(scenario.server) as server:
        env = {"SSL_CERT_FILE": server.ca_file} if scenario.trust_server_ca else {}
        with harness.run(email_block(server.port, scenario.changes), env=env) as syn:
            return syn.request_registration_mail("alice@example.org", hang_timeout)


def row(name: str, result: SynapseResult) -> str:
    answer = {"ok": "200", "hang": "no answer", "no-start": "does not start"}.get(
        result.kind, f"{result.http_status}")
    seconds = f"{result.seconds:.2f} s" if result.kind != "hang" else f"> {result.seconds:.0f} s"
    last = f"`{result.exception}: {result.message}`" if result.exception else ""
    return f"| {name} | {answer} | {seconds} | {last} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hang-timeout", type=float, default=4.0)
    parser.add_argument("only", nargs="?", default="")
    args = parser.parse_args()
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's notes on TLS bytes
    python = os.environ.get(ENV_VAR)
    if not python:
        print(f"{ENV_VAR} is not set: run `make synapse` and export it", file=sys.stderr)
        return 2
    print("| scenario | HTTP answer | time | last exception in the log |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        harness = SynapseHarness(python, Path(tmp))
        try:
            for scenario in SCENARIOS:
                if args.only.lower() in scenario.name.lower():
                    print(row(scenario.name, run(harness, scenario, args.hang_timeout)),
                          flush=True)
        finally:
            harness.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
