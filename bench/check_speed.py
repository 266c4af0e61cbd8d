"""Whole-process speed of ``maildoctor check`` against Synapse's own config check.

    .venv/bin/python bench/check_speed.py [--runs 9] [--example examples/broken/homeserver.yaml]
    .venv/bin/python bench/check_speed.py --runs 11 --floor   # and what no check can go below
    .venv/bin/python bench/check_speed.py --format sarif      # check's output for CI uploads

Both tools get the same arguments: the example file, then a small companion file with the
keys Synapse insists on that have nothing to do with email (macaroon_secret_key, a
database, a signing key path...), so that ``python -m synapse.config`` reaches "Config
parses OK!" instead of stopping early. The runs are interleaved, and the order alternates
from round to round (ours then Synapse's, then Synapse's then ours), so that load on the
shared machine hits both alike; the script prints both medians and their ratio (target:
ours / Synapse's <= 0.05).

Synapse comes from ``$MAILDOCTOR_SYNAPSE_PYTHON`` (default ``.venv-synapse/bin/python``).
When it is missing the script waits for another process that is creating that venv (it
polls for ``bin/synapse_homeserver``), or creates it and installs matrix-synapse itself.

``--floor`` also times, in the same rounds, what any ``check`` built on this stack pays
before it reads a byte: the interpreter starting (``python -c pass``), then importing the
two libraries the command cannot do without (``import yaml, click``), then those and the
standard modules every check run needs (``email.utils`` for Synapse's own ``parseaddr`` of
notif_from, ``dataclasses`` for the records), each as a ratio to Synapse's check.

Bytecode: this machine sets ``PYTHONDONTWRITEBYTECODE``, which makes every run of either
tool compile its sources again. An installed package has bytecode (pip compiles it), so the
children run without that variable, after one untimed warm-up run each.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYNAPSE_VERSION = "1.163.2"
TARGET = 0.05
# --floor: what a check on this stack pays before maildoctor's own code (see the docstring).
FLOORS = (
    ("python -c pass", "pass"),
    ("import yaml, click", "import yaml, click"),
    ("+ email.utils, dataclasses", "import yaml, click, email.utils, dataclasses"),
)
WAIT_FOR_VENV_S = 600

COMPANION = """\
# Keys Synapse requires before it looks at email: (not read by maildoctor's rules).
macaroon_secret_key: "benchmark-only-macaroon-key"
signing_key_path: {dir}/bench.signing.key
database:
  name: sqlite3
  args:
    database: {dir}/homeserver.db
media_store_path: {dir}/media_store
suppress_key_server_warning: true
"""


def synapse_python() -> Path:
    """The Python of a venv with matrix-synapse, waiting for or creating it if needed."""
    configured = os.environ.get("MAILDOCTOR_SYNAPSE_PYTHON")
    if configured:
        return Path(configured)
    venv = ROOT / ".venv-synapse"
    python, ready = venv / "bin" / "python", venv / "bin" / "synapse_homeserver"
    if ready.exists():
        return python
    if venv.exists():  # someone (make synapse, another bench) is creating it: do not race
        print(f"waiting up to {WAIT_FOR_VENV_S} s for {ready} ...", file=sys.stderr)
        deadline = time.monotonic() + WAIT_FOR_VENV_S
        while time.monotonic() < deadline:
            if ready.exists():
                return python
            time.sleep(5)  # polling a file another process creates: no event to wait on
        raise SystemExit(f"{ready} did not appear; run `make synapse`")
    print(f"creating {venv} with matrix-synapse=={SYNAPSE_VERSION} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q",
                    f"matrix-synapse=={SYNAPSE_VERSION}"], check=True)
    return python


def maildoctor_command() -> list[str]:
    script = Path(sys.executable).parent / "maildoctor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "maildoctor"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["NO_COLOR"] = "1"
    return env


def timed(cmd: list[str], cwd: str,
          env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    return time.perf_counter() - start, proc


def prepare(workdir: Path, example: Path, syn_python: Path, env: dict[str, str]) -> Path:
    companion = workdir / "companion.yaml"
    companion.write_text(COMPANION.format(dir=workdir))
    subprocess.run([str(syn_python), "-m", "synapse.app.homeserver", "-c", str(example),
                    "-c", str(companion), "--generate-keys"], cwd=workdir, env=env,
                   capture_output=True, check=True, timeout=120)
    return companion


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs of each (>= 5)")
    parser.add_argument("--example", type=Path, default=ROOT / "examples/broken/homeserver.yaml")
    parser.add_argument("--baseline-src", type=Path, metavar="DIR",
                        help="also time maildoctor from another source tree (its src/ "
                        "directory, e.g. an older commit's `git archive`), in the same rounds")
    parser.add_argument("--format", default="text", choices=("text", "json", "github", "sarif"),
                        help="maildoctor check's output format (default: text)")
    parser.add_argument("--floor", action="store_true",
                        help="also time the interpreter's start and the imports no check "
                        "can avoid, in the same rounds, as ratios to Synapse's check")
    args = parser.parse_args()
    runs = max(5, args.runs)
    example = args.example.resolve()
    syn_python = synapse_python()
    env = child_env()
    with tempfile.TemporaryDirectory(prefix="md-bench-") as tmp:
        workdir = Path(tmp)
        companion = prepare(workdir, example, syn_python, env)
        files = ["-c", str(example), "-c", str(companion)]
        fmt = [] if args.format == "text" else ["--format", args.format]
        ours = [*maildoctor_command(), "check", *fmt, *files]
        theirs = [str(syn_python), "-m", "synapse.config", *files]
        # the baseline runs under the same interpreter, its own sources first on the path
        base = [sys.executable, "-m", "maildoctor", "check", *fmt, *files]
        base_env = {**env, "PYTHONPATH": str(args.baseline_src.resolve())} \
            if args.baseline_src else env
        # Warm-up (untimed): writes bytecode, and proves each tool does its job on this input.
        _, md = timed(ours, tmp, env)
        if md.returncode != 1 or "smpt_pass" not in md.stdout:
            raise SystemExit(f"maildoctor did not report the example's error:\n{md.stdout}"
                             f"{md.stderr}")
        _, syn = timed(theirs, tmp, env)
        if syn.returncode != 0 or "Config parses OK!" not in syn.stdout:
            raise SystemExit(f"Synapse did not accept the config:\n{syn.stdout}{syn.stderr}")
        ours_s: list[float] = []
        theirs_s: list[float] = []
        base_s: list[float] = []
        floors = [(label, [sys.executable, "-c", code]) for label, code in FLOORS] \
            if args.floor else []
        floor_s: dict[str, list[float]] = {label: [] for label, _ in floors}
        if args.baseline_src:
            _, proc = timed(base, tmp, base_env)  # warm-up: bytecode for the baseline too
            if proc.returncode != 1 or "smpt_pass" not in proc.stdout:
                raise SystemExit(f"the baseline did not report the example's error:\n"
                                 f"{proc.stdout}{proc.stderr}")
        for round_no in range(runs):
            order = [("ours", ours, env, 1, ours_s), ("theirs", theirs, env, 0, theirs_s)]
            if args.baseline_src:
                order.append(("base", base, base_env, 1, base_s))
            order += [(label, cmd, env, 0, floor_s[label]) for label, cmd in floors]
            if round_no % 2:
                order.reverse()
            for _name, cmd, cmd_env, expected, into in order:
                seconds, proc = timed(cmd, tmp, cmd_env)
                assert proc.returncode == expected, proc.stderr
                into.append(seconds)
    ours_median, theirs_median = statistics.median(ours_s), statistics.median(theirs_s)
    ratio = ours_median / theirs_median
    print(f"maildoctor check     : {shlex.join(ours)}")
    print(f"python -m synapse.config: {shlex.join(theirs)}")
    print(f"runs each (interleaved, order alternated): {runs}")
    print(f"maildoctor check median : {ours_median:.3f} s  "
          f"(min {min(ours_s):.3f}, max {max(ours_s):.3f})")
    print(f"synapse.config median   : {theirs_median:.3f} s  "
          f"(min {min(theirs_s):.3f}, max {max(theirs_s):.3f})")
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"ratio maildoctor / synapse = {ratio:.3f} ({verdict} the target <= {TARGET:.2f})")
    # On a loaded machine the medians wander; the minimums show the cost without the load.
    print(f"ratio of the minimums      = {min(ours_s) / min(theirs_s):.3f}")
    if base_s:
        base_median = statistics.median(base_s)
        print(f"baseline ({args.baseline_src}) median: {base_median:.3f} s  "
              f"(min {min(base_s):.3f}); ratio to synapse {base_median / theirs_median:.3f}; "
              f"this tree / baseline = {ours_median / base_median:.3f}")
    for label, seconds in floor_s.items():
        median = statistics.median(seconds)
        print(f"floor {label:<27}: {median:.3f} s (min {min(seconds):.3f}); ratio to "
              f"synapse {median / theirs_median:.3f} (minimums: "
              f"{min(seconds) / min(theirs_s):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
