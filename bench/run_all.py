#!/usr/bin/env python3
"""`make bench`: every benchmark under bench/, one after the other, each printing its own
figures and ratios against its baseline (measured in the same run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    ("check_speed.py", []),          # issue 2: check vs python -m synapse.config
    ("probe_speed.py", []),          # issue 3: time to a correct diagnosis vs swaks
    ("send_throughput.py", []),      # issue 4: our engine vs Synapse's way vs smtplib
    ("relay_throughput.py", []),     # issue 6: the relay vs Postfix as a relay
    ("after_the_250.py", []),        # issue 11: time the sender-dns and links stages add
    ("synapse_python_cost.py", []),  # issue 12: what reading Synapse's installation costs
]


def main() -> int:
    failed = []
    for name, args in BENCHES:
        path = HERE / name
        if not path.exists():
            continue
        print(f"\n=== bench/{name} ===", flush=True)
        if subprocess.run([sys.executable, str(path), *args]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
