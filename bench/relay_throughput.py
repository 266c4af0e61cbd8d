"""How fast does mail go through ``maildoctor relay``, next to Postfix doing the same job?

Run:  .venv/bin/python bench/relay_throughput.py [--count 1000] [--connections 4]
      (as root: the Postfix side starts a throwaway Postfix, as the test suite does)

One loopback upstream sink (aiosmtpd in its own process, advertising PIPELINING) stamps the
arrival of every mail by Message-ID with CLOCK_MONOTONIC, which all processes share. Then, one
after the other, on the same machine in the same run:

- ours:    ``python -m maildoctor relay run`` with its queue in a directory on disk;
- postfix: a throwaway Postfix whose only job is relaying: ``relayhost = [127.0.0.1]:<sink>``,
           no TLS, ``mynetworks = 127.0.0.0/8``, its queue on the same disk, stock tuning.

The same client feeds both: maildoctor's Mailer over ``--connections`` reused connections,
each sending its next mail once the last got its 250 (as Synapse's senders do), each mail
with its own Message-ID (built before the clock starts). For each system it prints the
sustained accepted rate (mails / time to the client's last 250), the delivered rate (mails /
time to the sink's last arrival), the accept latency (how long the client waited for each
250: what Synapse waits), and the transit latency from each 250 to the mail's arrival at the
sink (p50, p99). Then the ratios ours / Postfix of the delivered rate (target >= 1.0) and of
the p99 accept latency (target <= 1.0), median over the rounds. Bounded: ``--count`` mails,
``--time-limit`` seconds per system; only 127.0.0.1 is ever contacted. Exits non-zero if a
mail is missing at the sink.
``BENCH_KEEP_POSTFIX_LOG=FILE`` keeps Postfix's log (its ``delays=a/b/c/d`` show where its
time goes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from maildoctor.testing.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
SENDER = "noreply@example.org"
RCPT = "alice@example.org"
READY_TIMEOUT = 30.0
RELAY_COMMAND = [sys.executable, "-m", "maildoctor", "relay"]


def build_mails(count: int, tag: str) -> list[tuple[str, bytes]]:
    """~4 KB mails shaped like Synapse's (multipart/alternative), one Message-ID each."""
    text = "Click the link to confirm your address.\r\n" * 40
    mails = []
    for n in range(count):
        mid = f"<{tag}-{n:06d}@bench.test>"
        mails.append((mid, (
            f"From: Matrix <{SENDER}>\r\nTo: {RCPT}\r\nSubject: [Matrix] bench {n}\r\n"
            f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
            f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
            f"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{text}</p>\r\n--b--\r\n"
        ).encode()))
    return mails


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def greets(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            ok = sock.recv(512).startswith(b"220")
            sock.sendall(b"QUIT\r\n")
            return ok
    except OSError:
        return False


def wait_greeting(port: int, what: str, alive: Any = lambda: True) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not greets(port):
        if time.monotonic() > deadline or not alive():
            raise SystemExit(f"{what} did not greet on {HOST}:{port}")
        time.sleep(0.05)


# --- the sink (its own process) ---------------------------------------------------------

def run_sink() -> int:
    """Serve on 127.0.0.1:0, print the port; on stdin ``dump`` prints the arrivals as JSON,
    ``reset`` forgets them; EOF ends it."""
    from aiosmtpd.smtp import SMTP

    logging.getLogger("mail.log").setLevel(logging.ERROR)
    arrivals: dict[str, float] = {}
    total = 0

    class Sink:
        async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                              responses: list[str]) -> list[str]:
            session.host_name = hostname
            return [responses[0], "250-PIPELINING", *responses[1:]]

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            nonlocal total
            now = time.monotonic()
            total += 1
            head = (envelope.original_content or b"").split(b"\r\n\r\n", 1)[0]
            for line in head.split(b"\r\n"):
                if line[:11].lower() == b"message-id:":
                    arrivals.setdefault(line[11:].strip().decode(), now)
            return f"250 2.0.0 Ok: queued as S{total}"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Sink(), hostname="sink.test"), HOST, 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        done = asyncio.Event()

        def answer(command: str) -> None:
            nonlocal total
            if command == "dump":
                print(json.dumps({"total": total, "arrivals": arrivals}), flush=True)
            elif command == "reset":
                arrivals.clear()
                total = 0
                print("ok", flush=True)

        def read_stdin() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(answer, line.strip())
            loop.call_soon_threadsafe(done.set)

        threading.Thread(target=read_stdin, daemon=True).start()
        await done.wait()
        server.close()

    asyncio.run(serve())
    return 0


class SinkClient:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "sink"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def arrivals(self) -> tuple[int, dict[str, float]]:
        answer = json.loads(self.ask("dump"))
        return int(answer["total"]), dict(answer["arrivals"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


# --- the two relays ---------------------------------------------------------------------

@contextlib.contextmanager
def our_relay(sink_port: int, workdir: Path, extra: list[str]) -> Iterator[int]:
    """maildoctor relay as a real process, its queue on disk in ``workdir``."""
    import yaml

    config = workdir / "homeserver.yaml"
    config.write_text(yaml.safe_dump({"server_name": "example.org", "email": {
        "smtp_host": HOST, "smtp_port": sink_port, "enable_tls": False,
        "notif_from": f"Matrix <{SENDER}>"}}))
    port = free_port()
    log = (workdir / "relay.log").open("wb")
    proc = subprocess.Popen(
        [*RELAY_COMMAND, "run", str(config), "--listen",
         f"{HOST}:{port}", "--queue", str(workdir / "queue.sqlite3"), *extra],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_greeting(port, "maildoctor relay", lambda: proc.poll() is None)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@contextlib.contextmanager
def postfix_relay(sink_port: int) -> Iterator[int]:
    """A throwaway Postfix that relays everything from 127.0.0.0/8 to the sink, no TLS.

    Built the way tests/infra/postfix.py builds its instance (same directory prefix, so an
    instance left by a killed bench is reaped by the next test run or bench)."""
    sys.path.insert(0, str(ROOT))
    from tests.infra.postfix import (
        POSTFIX,
        ROOT_PREFIX,
        _reap_stale,
        _run,
        _stop_tree,
        _update_alternates,
        _write,
    )
    from tests.postfix.files import MASTER_SERVICES, TREE

    if os.geteuid() != 0:
        raise SystemExit("the Postfix side needs root (as `make test` does); "
                         "use --only ours to run without it")
    _reap_stale()
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
    root.chmod(0o755)
    (root / "owner.pid").write_text(f"{os.getpid()}\n")
    for sub, owner, group, mode in TREE:
        (root / sub).mkdir()
        (root / sub).chmod(mode)
        shutil.chown(root / sub, owner, group)
    (root / "queue" / "quick-start").touch()
    port = free_port()
    _write(root / "etc" / "main.cf", f"""\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.bench.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
relayhost = [{HOST}]:{sink_port}
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
biff = no
maillog_file = {root}/postfix.log
maillog_file_prefixes = /var, /dev/stdout, {root}
smtp_tls_security_level = none
smtp_host_lookup = native
""")
    _write(root / "etc" / "master.cf", MASTER_SERVICES + f"""\
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
{HOST}:{port} inet n - n - - smtpd
""")
    etc = str(root / "etc")
    try:
        _update_alternates(add=etc)
        code, output = _run([POSTFIX, "-c", etc, "start"], timeout=READY_TIMEOUT)
        if code != 0:
            raise SystemExit(f"postfix start failed ({code}):\n{output}")
        wait_greeting(port, "Postfix")
        yield port
    finally:
        if os.environ.get("BENCH_KEEP_POSTFIX_LOG"):
            shutil.copy(root / "postfix.log", os.environ["BENCH_KEEP_POSTFIX_LOG"])
        _stop_tree(root)
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _update_alternates(remove=etc)


# --- the client and the measurement -----------------------------------------------------

async def push(port: int, mails: list[tuple[str, bytes]], connections: int,
               limit: float) -> tuple[float, dict[str, float], dict[str, float], int]:
    """Send every mail over ``connections`` reused connections, each sending its next mail
    once the last got its reply (as Synapse's senders do); (start time, Message-ID -> time of
    its 250, Message-ID -> seconds the client waited for that 250, failures)."""
    from maildoctor.config.settings import settings_from_config
    from maildoctor.mailer import Mailer

    settings = settings_from_config({"email": {"smtp_host": HOST, "smtp_port": port,
                                               "enable_tls": False}})
    accepted: dict[str, float] = {}
    waited: dict[str, float] = {}
    failures = 0
    todo = iter(mails)
    async with Mailer.from_settings(settings, concurrency=connections,
                                    local_hostname="bench.client.test") as mailer:

        async def worker() -> None:
            nonlocal failures
            for mid, data in todo:
                began = time.monotonic()
                try:
                    await mailer.send(SENDER, [RCPT], data)
                except Exception as exc:
                    failures += 1
                    if failures == 1:
                        print(f"  first failure: {exc}", file=sys.stderr)
                    continue
                accepted[mid] = time.monotonic()
                waited[mid] = accepted[mid] - began

        started = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))),
                                   limit)
        except TimeoutError:
            print(f"  time limit: {len(accepted)} of {len(mails)} accepted in {limit:.0f} s",
                  file=sys.stderr)
    return started, accepted, waited, len(mails) - len(accepted)


def measure(name: str, port: int, sink: SinkClient, mails: list[tuple[str, bytes]],
            connections: int, limit: float) -> dict[str, Any]:
    sink.ask("reset")
    deadline = time.monotonic() + limit
    started, accepted, waited, failures = asyncio.run(push(port, mails, connections, limit))
    wanted = {mid for mid, _ in mails}
    while True:
        total, arrivals = sink.arrivals()
        if wanted <= arrivals.keys() or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    missing = len(wanted - arrivals.keys())
    latencies = [arrivals[mid] - t for mid, t in accepted.items() if mid in arrivals]
    last_accept = max(accepted.values(), default=started)
    last_arrival = max(arrivals.values(), default=started)
    return {
        "system": name, "count": len(mails), "failures": failures, "missing": missing,
        "duplicates": total - len(arrivals),
        "accepted_rate": len(accepted) / max(1e-9, last_accept - started),
        "delivered_rate": (len(arrivals) / max(1e-9, last_arrival - started)),
        "p50_ms": 1000 * percentile(latencies, 0.50) if latencies else float("nan"),
        "p99_ms": 1000 * percentile(latencies, 0.99) if latencies else float("nan"),
        "mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
        "accept_p50_ms": 1000 * percentile(list(waited.values()), 0.50) if waited else
        float("nan"),
        "accept_p99_ms": 1000 * percentile(list(waited.values()), 0.99) if waited else
        float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("role", nargs="?", default="bench", choices=["bench", "sink"])
    parser.add_argument("--count", type=int, default=1000, help="mails per system")
    parser.add_argument("--connections", type=int, default=4,
                        help="reused client connections feeding each system")
    parser.add_argument("--time-limit", type=float, default=120.0,
                        help="seconds allowed per system (push and drain)")
    parser.add_argument("--only", choices=["ours", "postfix"], default=None)
    parser.add_argument("--relay-arg", action="append", default=[],
                        help="extra argument for `maildoctor relay run` (repeatable)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat both systems, alternating which goes first")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    opts = parser.parse_args()
    if opts.role == "sink":
        return run_sink()
    if (not 1 <= opts.count <= 100_000 or not 1 <= opts.connections <= 64
            or not 1 <= opts.rounds <= 20):
        parser.error("--count must be within 1..100000, --connections 1..64, --rounds 1..20")

    systems = [name for name in ("ours", "postfix") if opts.only in (None, name)]
    sink = SinkClient()
    results: list[dict[str, Any]] = []
    try:
        for round_number in range(1, opts.rounds + 1):
            # Alternate who goes first, so warm-up and drifting load favour neither.
            order = systems if round_number % 2 else systems[::-1]
            for name in order:
                results.append(run_system(name, round_number, sink, opts))
    finally:
        sink.close()
    report(results, opts, sink.port)
    return 1 if any(r["missing"] or r["failures"] for r in results) else 0


def run_system(name: str, round_number: int, sink: SinkClient,
               opts: argparse.Namespace) -> dict[str, Any]:
    mails = build_mails(opts.count, f"{name}-r{round_number}")
    if name == "ours":
        with tempfile.TemporaryDirectory(prefix="maildoctor-relay-bench-") as workdir, \
                our_relay(sink.port, Path(workdir), opts.relay_arg) as port:
            result = measure("maildoctor relay", port, sink, mails, opts.connections,
                             opts.time_limit)
    else:
        with postfix_relay(sink.port) as port:
            result = measure("Postfix (relayhost)", port, sink, mails, opts.connections,
                             opts.time_limit)
    result["round"] = round_number
    return result


def report(results: list[dict[str, Any]], opts: argparse.Namespace, sink_port: int) -> None:
    print(f"\n{opts.count} mails per system and round, {opts.connections} client connections, "
          f"queues on disk, sink on {HOST}:{sink_port} (Python {sys.version.split()[0]})\n")
    print("accept: how long the client waited for each 250; transit: from that 250 to the "
          "mail's arrival at the sink\n")
    print(f"{'round':<6}{'system':<22}{'accepted/s':>11}{'delivered/s':>12}"
          f"{'accept p50':>11}{'accept p99':>11}{'transit p50':>12}{'transit p99':>12}"
          f"{'dups':>6}{'missing':>8}{'failed':>7}")
    for r in results:
        print(f"{r['round']:<6}{r['system']:<22}{r['accepted_rate']:>11.0f}"
              f"{r['delivered_rate']:>12.0f}{r['accept_p50_ms']:>9.1f}ms"
              f"{r['accept_p99_ms']:>9.1f}ms{r['p50_ms']:>10.1f}ms{r['p99_ms']:>10.1f}ms"
              f"{r['duplicates']:>6}{r['missing']:>8}{r['failures']:>7}")
    ratios = []
    for round_number in range(1, opts.rounds + 1):
        pair = {r["system"]: r for r in results if r["round"] == round_number}
        if len(pair) == 2:
            ours, postfix = pair["maildoctor relay"], pair["Postfix (relayhost)"]
            ratios.append((ours["delivered_rate"] / postfix["delivered_rate"],
                           ours["accepted_rate"] / postfix["accepted_rate"],
                           ours["accept_p99_ms"] / postfix["accept_p99_ms"]))
    if ratios:
        delivered = statistics.median(r[0] for r in ratios)
        accepted = statistics.median(r[1] for r in ratios)
        p99 = statistics.median(r[2] for r in ratios)
        each = ", ".join(f"{r[0]:.2f}" for r in ratios)
        print(f"\nours / Postfix, delivered mails/s: {delivered:.2f}x (median of {len(ratios)}: "
              f"{each}; target >= 1.0), accepted mails/s: {accepted:.2f}x, accept p99: "
              f"{p99:.2f}x (target <= 1.0)")
    if opts.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    raise SystemExit(main())
