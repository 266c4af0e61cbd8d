#!/usr/bin/env python3
"""What do the after-the-250 stages add to a probe? Whole-process `maildoctor probe`, against
the built-in test SMTP server and a Knot serving the sender-domain test zone on loopback:

  baseline   probe --no-sender-dns --no-links
  candidate  probe (sender-dns with --resolver and --sending-ip, links against an nginx-less
             public_baseurl on a closed loopback port: the refused-connection path)

Same run, order alternated, median of the rounds; prints the added seconds and the ratio.
The sender-dns stage's own time (from the JSON) is printed too: the part of the difference
that is DNS, not process start.

    .venv/bin/python bench/after_the_250.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.infra.knot import KnotServer  # noqa: E402
from tests.senderdns.zones import ORIGIN, SENDING_IP, ZONES  # noqa: E402

from maildoctor.testing.ports import free_port  # noqa: E402
from maildoctor.testing.server import ServerOptions, TestServer  # noqa: E402

MAILDOCTOR = [str(ROOT / ".venv/bin/maildoctor")] if (ROOT / ".venv/bin/maildoctor").exists() \
    else [sys.executable, "-m", "maildoctor"]


def run(cfg: Path, knot: KnotServer, extra: list[str]) -> tuple[float, dict[str, float]]:
    started = time.monotonic()
    proc = subprocess.run([*MAILDOCTOR, "probe", str(cfg), "--format", "json", "--resolver",
                           knot.resolver, "--sending-ip", SENDING_IP, "--timeout", "5", *extra],
                          capture_output=True, text=True, timeout=60, check=False)
    seconds = time.monotonic() - started
    out = json.loads(proc.stdout)
    stages = {s["name"]: s["seconds"] for s in out["stages"]
              if s["name"] in ("sender-dns", "links")}
    return seconds, stages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with KnotServer(ZONES) as knot:
        server = TestServer(ServerOptions()).start()
        try:
            cfg = Path(tempfile.mkdtemp()) / "homeserver.yaml"
            cfg.write_text(f"public_baseurl: http://127.0.0.1:{free_port()}/\nemail:\n"
                           f"  smtp_host: 127.0.0.1\n  smtp_port: {server.port}\n"
                           f"  enable_tls: false\n  notif_from: 'M <noreply@good.{ORIGIN}>'\n")
            base: list[float] = []
            cand: list[float] = []
            stage_times: dict[str, list[float]] = {"sender-dns": [], "links": []}
            for i in range(args.rounds):
                order = [("base", ["--no-sender-dns", "--no-links"]), ("cand", [])]
                for name, extra in order if i % 2 == 0 else reversed(order):
                    seconds, stages = run(cfg, knot, extra)
                    (base if name == "base" else cand).append(seconds)
                    for key, value in stages.items():
                        stage_times[key].append(value)
        finally:
            server.stop()
    b, c = statistics.median(base), statistics.median(cand)
    print(f"probe without the stages  median {b:.3f} s  min {min(base):.3f} s  "
          f"({args.rounds} rounds)")
    print(f"probe with the stages     median {c:.3f} s  min {min(cand):.3f} s")
    print(f"added (median) {c - b:+.3f} s  ratio {c / b:.2f}x; added (min) "
          f"{min(cand) - min(base):+.3f} s  ratio {min(cand) / min(base):.2f}x")
    # Inside the process, free of start-up noise: the stages' own wall time.
    for key, values in stage_times.items():
        print(f"  {key:<10} stage median {statistics.median(values):.3f} s  "
              f"max {max(values):.3f} s")


if __name__ == "__main__":
    main()
