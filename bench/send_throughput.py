"""How fast can a mail leave? maildoctor's Mailer against Synapse's way and smtplib.

Run:  .venv/bin/python bench/send_throughput.py [--count 1000] [--concurrency 1 2 4 8]

A loopback aiosmtpd sink runs in its own process (it advertises PIPELINING, as Postfix
does). Each engine runs in its own child process, one after the other, sending the same
pre-built ~4 KB multipart mail, as bytes exactly as Synapse hands them to Twisted
(``as_string().encode()``: bare LF line ends; message construction is not measured):

- ours:     maildoctor.mailer.Mailer.send_many, reused connection(s), pipelined across
            messages (the end of one mail rides with the next one's MAIL/RCPT/DATA);
- synapse:  what Synapse's ``_sendmail`` does per mail, in our own words: a new Twisted
            ESMTPSenderFactory connected through HostnameEndpoint, mails one after the other;
- smtplib:  the standard library, a new connection per mail.

Each child reports its mails/s, its CPU and its peak RSS (ru_maxrss); the sink confirms the
count and reports its own CPU, and the load average is printed at the start and the end,
so the reader can judge how much other processes disturbed the run.
Everything is bounded: --count mails per engine, --time-limit seconds per child, and
only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import resource
import subprocess
import sys
import threading
import time
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SENDER = "noreply@example.org"
RCPT = "alice@example.org"
EHLO_NAME = "bench.client.test"


def build_message() -> bytes:
    """A mail shaped like Synapse's: multipart/alternative, base64 text and HTML parts,
    encoded as Synapse encodes it (``as_string().encode("utf8")``, so LF line ends: Twisted
    turns them into CRLF, and so must every other engine)."""
    msg = MIMEMultipart("alternative")
    msg["Subject"] = "[Matrix] Validate your email"
    msg["From"] = f"Matrix <{SENDER}>"
    msg["To"] = RCPT
    msg["Message-ID"] = "<bench@example.org>"
    text = "Click the link to confirm your address.\n" * 30
    msg.attach(MIMEText(text, "plain", "utf-8"))
    msg.attach(MIMEText(f"<html><body><p>{text}</p></body></html>", "html", "utf-8"))
    return msg.as_string().encode("utf8")


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def cpu_seconds() -> float:
    """User + system CPU of this process: unlike wall time, barely moved by other load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the sink ---------------------------------------------------------------------------

def run_sink() -> int:
    """Serve on 127.0.0.1:0, print the port, answer ``count`` lines on stdin, exit on EOF."""
    from aiosmtpd.smtp import SMTP

    logging.getLogger("mail.log").setLevel(logging.ERROR)
    received = 0

    class Sink:
        async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                              responses: list[str]) -> list[str]:
            session.host_name = hostname
            return [responses[0], "250-PIPELINING", *responses[1:]]

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            nonlocal received
            received += 1
            return f"250 2.0.0 Ok: queued as B{received}"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Sink(), hostname="sink.test"), HOST, 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        done = asyncio.Event()

        def read_stdin() -> None:
            for line in sys.stdin:
                if line.strip() == "count":
                    loop.call_soon_threadsafe(
                        lambda: print(received, cpu_seconds(), flush=True))
            loop.call_soon_threadsafe(done.set)

        threading.Thread(target=read_stdin, daemon=True).start()
        await done.wait()
        server.close()

    asyncio.run(serve())
    return 0


# --- the engines (each in its own child) ------------------------------------------------

def engine_ours(port: int, count: int, concurrency: int, message: bytes,
                chain: bool = True) -> int:
    from maildoctor.config.settings import settings_from_config
    from maildoctor.mailer import Mail, Mailer

    settings = settings_from_config({"email": {"smtp_host": HOST, "smtp_port": port}})

    async def go() -> int:
        async with Mailer.from_settings(settings, concurrency=concurrency,
                                        local_hostname=EHLO_NAME,
                                        pipeline_batches=chain) as mailer:
            results = await mailer.send_many(Mail(SENDER, [RCPT], message) for _ in range(count))
        failures = [r for r in results if isinstance(r, Exception)]
        if failures:
            raise SystemExit(f"ours: {len(failures)} failures, first: {failures[0]}")
        return len(results)

    return asyncio.run(go())


def engine_synapse(port: int, count: int, concurrency: int, message: bytes,
                   nodelay: bool = False) -> int:
    """Synapse's ``_sendmail`` per mail, sequentially (spec/synapse-email.md 2.3).

    ``nodelay`` is not Synapse: it sets TCP_NODELAY on each connection, to show how much
    of the per-mail time is Nagle's algorithm meeting delayed ACKs (Twisted leaves
    Nagle on, and the final ``.`` of DATA waits for the ACK of the body).
    """
    from io import BytesIO

    from twisted.internet import defer, endpoints, reactor
    from twisted.mail import smtp
    from twisted.mail.smtp import ESMTPSenderFactory

    if nodelay:
        made = smtp.SMTPClient.connectionMade

        def connection_made(self: Any) -> None:
            self.transport.setTcpNoDelay(True)
            made(self)

        smtp.SMTPClient.connectionMade = connection_made  # type: ignore[method-assign]

    sent = 0
    failure: list[Any] = []

    @defer.inlineCallbacks
    def one() -> Any:
        finished: defer.Deferred[Any] = defer.Deferred()
        factory = ESMTPSenderFactory(
            None, None, SENDER, RCPT, BytesIO(message), finished, heloFallback=True,
            requireAuthentication=False, requireTransportSecurity=False,
            hostname=HOST)  # enable_tls defaults to true, so the TLS name is smtp_host
        endpoint = endpoints.HostnameEndpoint(reactor, HOST, port, timeout=30)
        yield endpoint.connect(factory)
        yield finished

    @defer.inlineCallbacks
    def all_mails() -> Any:
        nonlocal sent
        try:
            for _ in range(count):
                yield one()
                sent += 1
        except Exception as exc:  # reported by the parent
            failure.append(exc)
        finally:
            reactor.stop()

    reactor.callWhenRunning(all_mails)
    reactor.run()
    if failure:
        raise SystemExit(f"synapse: failed after {sent}: {failure[0]!r}")
    return sent


def engine_smtplib(port: int, count: int, concurrency: int, message: bytes) -> int:
    import smtplib

    message = message.replace(b"\n", b"\r\n")  # smtplib sends bytes as they are: CRLF them
    for _ in range(count):
        with smtplib.SMTP(HOST, port, local_hostname=EHLO_NAME, timeout=30) as client:
            client.sendmail(SENDER, [RCPT], message)
    return count


def engine_ours_unchained(port: int, count: int, concurrency: int, message: bytes) -> int:
    return engine_ours(port, count, concurrency, message, chain=False)


def engine_twisted_nodelay(port: int, count: int, concurrency: int, message: bytes) -> int:
    return engine_synapse(port, count, concurrency, message, nodelay=True)


ENGINES = {"ours": engine_ours, "synapse": engine_synapse, "smtplib": engine_smtplib,
           "twisted-nodelay": engine_twisted_nodelay, "ours-unchained": engine_ours_unchained}
LABELS = {"synapse": "Synapse's way", "smtplib": "smtplib, conn/mail",
          "twisted-nodelay": "Twisted+NODELAY (info)",
          "ours-unchained": "ours, 1 mail/group (info)"}


PREIMPORTS = {
    "ours": ("maildoctor.mailer", "maildoctor.config.settings"),
    "synapse": ("twisted.internet.reactor", "twisted.internet.endpoints", "twisted.mail.smtp"),
    "twisted-nodelay": ("twisted.internet.reactor", "twisted.internet.endpoints",
                        "twisted.mail.smtp"),
    "smtplib": ("smtplib",),
    "ours-unchained": ("maildoctor.mailer", "maildoctor.config.settings"),
}


def run_engine(name: str, port: int, count: int, concurrency: int) -> int:
    """Time one engine; module imports happen before the clock starts, connections after."""
    for module in PREIMPORTS[name]:
        importlib.import_module(module)
    message = build_message()
    started, cpu_before = time.perf_counter(), cpu_seconds()
    sent = ENGINES[name](port, count, concurrency, message)
    seconds = time.perf_counter() - started
    print(json.dumps({"engine": name, "sent": sent, "seconds": seconds,
                      "cpu": cpu_seconds() - cpu_before,
                      "peak_rss_kib": peak_rss_kib(), "concurrency": concurrency}))
    return 0


# --- the parent -------------------------------------------------------------------------

def child(args: list[str], limit: float) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         timeout=limit, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", nargs="?", default="bench",
                        choices=["bench", "sink", *ENGINES])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8],
                        help="pool sizes to run our engine with (the Mailer's default is "
                        f"{DEFAULT_CONCURRENCY})")
    parser.add_argument("--time-limit", type=float, default=300.0,
                        help="seconds allowed per engine run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each short row (all but Synapse's way), interleaved")
    parser.add_argument("--no-info", action="store_true",
                        help="skip the informative runs (ours without chaining across "
                        "messages, Twisted+TCP_NODELAY)")
    opts = parser.parse_args()
    if opts.role == "sink":
        return run_sink()
    if opts.role in ENGINES:
        return run_engine(opts.role, opts.port, opts.count, opts.concurrency[0])
    if not 1 <= opts.count <= 100_000:
        parser.error("--count must be between 1 and 100000")
    if not 1 <= opts.rounds <= 20:
        parser.error("--rounds must be between 1 and 20")

    load_start = os.getloadavg()
    sink = subprocess.Popen([sys.executable, __file__, "sink"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdin is not None and sink.stdout is not None
    try:
        port = int(sink.stdout.readline())
        sink.stdin.write("count\n")
        sink.stdin.flush()
        sink_cpu = float(sink.stdout.readline().split()[1])
        short = [("ours", c) for c in opts.concurrency] + [("smtplib", 1)]
        if not opts.no_info:
            short += [("ours-unchained", 1), ("twisted-nodelay", 1)]
        # The short runs (1-7 s) are repeated, interleaved, so a burst of load from other
        # processes hits one round, not one row; Synapse's way takes ~50 s per 1,000 mails
        # and is paced by a timer (the delayed ACK), so it runs once.
        runs = short * opts.rounds + [("synapse", 1)]
        results: dict[tuple[str, int], list[dict[str, Any]]] = {}
        expected = 0
        for name, concurrency in runs:
            res = child([name, "--port", str(port), "--count", str(opts.count),
                         "--concurrency", str(concurrency)], opts.time_limit)
            sink.stdin.write("count\n")
            sink.stdin.flush()
            total, cpu = sink.stdout.readline().split()
            res["sink_cpu"] = float(cpu) - sink_cpu
            sink_cpu = float(cpu)
            expected += res["sent"]
            if int(total) != expected:
                raise SystemExit(f"the sink counted {total}, expected {expected}")
            res["rate"] = res["sent"] / res["seconds"]
            results.setdefault((name, concurrency), []).append(res)
    finally:
        sink.stdin.close()
        sink.wait(timeout=30)

    load_end = os.getloadavg()
    print(f"{opts.count} mails per engine to an aiosmtpd sink on {HOST}:{port} "
          f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs); "
          f"every row but Synapse's way: median of {opts.rounds} interleaved runs")
    print("load average (1, 5, 15 min) at start: {:.2f} {:.2f} {:.2f}   at end: "
          "{:.2f} {:.2f} {:.2f}\n".format(*load_start, *load_end))
    print(f"{'engine':<24}{'mails/s':>9}{'(min-max)':>13}{'seconds':>9}{'peak RSS MiB':>14}"
          f"{'client CPU ms/mail':>20}{'sink CPU ms/mail':>18}")
    rate: dict[tuple[str, int], float] = {}
    for (name, concurrency), runs_of_row in results.items():
        by_rate = sorted(runs_of_row, key=lambda r: r["rate"])
        res = by_rate[len(by_rate) // 2]
        rate[name, concurrency] = res["rate"]
        spread = (f"({by_rate[0]['rate']:.0f}-{by_rate[-1]['rate']:.0f})"
                  if len(by_rate) > 1 else "")
        label = ours_label(concurrency) if name == "ours" else LABELS[name]
        print(f"{label:<24}{res['rate']:>9.0f}{spread:>13}{res['seconds']:>9.2f}"
              f"{max(r['peak_rss_kib'] for r in runs_of_row) / 1024:>14.1f}"
              f"{1000 * res['cpu'] / res['sent']:>20.2f}"
              f"{1000 * res['sink_cpu'] / res['sent']:>18.2f}")
    print()
    synapse, smtplib_rate = rate["synapse", 1], rate["smtplib", 1]
    for (name, concurrency), ours in rate.items():
        if name == "ours":
            ratio = ours / synapse
            verdict = ""
            if concurrency == DEFAULT_CONCURRENCY:
                verdict = f"   target >= 20x: {'met' if ratio >= 20 else 'NOT met'}"
            print(f"{ours_label(concurrency) + ' / Synapse' + chr(39) + 's way:':<40}"
                  f"{ratio:>6.1f}x   ours / smtplib: {ours / smtplib_rate:.1f}x{verdict}")
    return 0


def ours_label(concurrency: int) -> str:
    default = ", default" if concurrency == DEFAULT_CONCURRENCY else ""
    return f"ours (pool {concurrency}{default})"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from maildoctor.mailer.mailer import DEFAULT_CONCURRENCY
    raise SystemExit(main())
