"""What reading Synapse's installation adds to ``maildoctor check`` (issue 12).

    .venv/bin/python bench/synapse_python_cost.py [--runs 7]

Baseline: ``check --synapse-python none`` (no search, no subprocess). Candidates: the
default search of the usual places (which finds nothing on a machine without Synapse in
them), and ``--synapse-python`` pointing at the test Synapse's venv, which runs the query
script under that interpreter in a subprocess. Whole processes, runs interleaved (baseline,
search, given, baseline, ...), medians and ratios printed. Synapse comes from
``$MAILDOCTOR_SYNAPSE_PYTHON`` (default ``.venv-synapse/bin/python``); nothing is contacted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "clean" / "homeserver.yaml"


def _run(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "maildoctor", "check", *args, str(EXAMPLE)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
                   check=False)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    opts = parser.parse_args()
    synapse = os.environ.get("MAILDOCTOR_SYNAPSE_PYTHON", str(ROOT / ".venv-synapse/bin/python"))
    if not Path(synapse).exists():
        print(f"no Synapse venv at {synapse}: run `make synapse`", file=sys.stderr)
        return 1
    rows = {"none (baseline)": ["--synapse-python", "none"], "search usual places": [],
            "--synapse-python <venv>": ["--synapse-python", synapse]}
    for args in rows.values():
        _run(args)  # warm-up: bytecode and page cache, untimed
    times: dict[str, list[float]] = {name: [] for name in rows}
    for i in range(opts.runs):
        order = list(rows.items()) if i % 2 == 0 else list(reversed(rows.items()))
        for name, args in order:
            times[name].append(_run(args))
    base = statistics.median(times["none (baseline)"])
    print(f"{'check of examples/clean':<26} {'median':>8} {'ratio':>7}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<26} {median * 1000:>6.0f}ms {median / base:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
