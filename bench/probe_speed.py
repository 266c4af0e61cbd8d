#!/usr/bin/env python3
"""How fast is a correct diagnosis? For every row of spec/synapse-observed.md (aiosmtpd part),
against the built-in test server on 127.0.0.1:

  maildoctor   whole process `maildoctor probe --format json`, judged correct when its Synapse
               prediction and the key it points at match the row;
  swaks        the same config as swaks options (opportunistic STARTTLS like Synapse,
               tls-on-connect for force_tls, the same credentials, --quit-after RCPT),
               in the same run. swaks names no cause; we record its time and exit code.

Target (issue 3): every scenario diagnosed correctly in <= 2 s.

With ``--postfix`` (as root, Postfix and Dovecot installed): the real-Postfix rows instead,
against the throwaway Postfix + Dovecot SASL of spec/postfix-recipe.md (tests/infra/postfix.py):

  cram-md5-trap            CRAM-MD5 advertised but failing, PLAIN/LOGIN working (target <= 3 s)
  cram-md5-trap, wrong pw  the same with a wrong password (a plain "refused")
  untrusted certificate    STARTTLS to a certificate from a CA this machine does not trust
                           (target <= 2 s)

each as the whole `maildoctor probe` process against a baseline in the same run, alternating
which runs first, medians of --rounds: with ``--old REF`` the old way, the same command from
maildoctor as it was at git REF (extracted with `git archive`, run from this venv), else swaks
(`--auth CRAM-MD5`, as Synapse picks; `--tls-verify` without the CA; swaks names no cause, and
without Authen::SASL it cannot even try CRAM-MD5).

    .venv/bin/python bench/probe_speed.py [--rounds 3]
    sudo .venv/bin/python bench/probe_speed.py --postfix [--rounds 5] [--old 4d6c742]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from maildoctor.testing.observed import ROWS, Row, email_block, homeserver_yaml  # noqa: E402
from maildoctor.testing.ports import free_port  # noqa: E402
from maildoctor.testing.scenarios import SCENARIOS  # noqa: E402
from maildoctor.testing.server import TestServer  # noqa: E402

SWAKS_TIMEOUT = 30  # swaks' own default, stated so the comparison is explicit
MAILDOCTOR = [str(ROOT / ".venv/bin/maildoctor")] if (ROOT / ".venv/bin/maildoctor").exists() \
    else [sys.executable, "-m", "maildoctor"]


def run_maildoctor(row: Row, port: int, ca: str | None, workdir: Path) -> tuple[float, bool, str]:
    cfg = workdir / "homeserver.yaml"
    cfg.write_text(homeserver_yaml(row, port))
    cmd = [*MAILDOCTOR, "probe", str(cfg), "--format", "json", "--timeout", "3"]
    if ca:
        cmd += ["--ca-file", ca]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - start
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return seconds, False, f"no JSON (exit {proc.returncode})"
    diag = out["diagnosis"]
    ok = diag["synapse"]["outcome"] == row.kind and (row.key is None or diag["key"] == row.key)
    return seconds, ok, diag["root_cause"]


def run_swaks(row: Row, port: int, ca: str | None) -> tuple[float, int]:
    email = email_block(row, port)
    cmd = ["swaks", "--server", str(email["smtp_host"]), "--port", str(email.get("smtp_port")),
           "--from", "noreply@example.org", "--to", "alice@example.org",
           "--quit-after", "RCPT", "--hide-all", "--timeout", str(SWAKS_TIMEOUT)]
    if email.get("force_tls"):
        cmd += ["--tls-on-connect"]
    elif email.get("require_transport_security"):
        cmd += ["--tls"]
    else:
        cmd += ["--tls-optional"]
    if email.get("smtp_user") is not None:
        cmd += ["--auth", "--auth-user", str(email["smtp_user"])]
        if email.get("smtp_pass") is not None:
            cmd += ["--auth-password", str(email["smtp_pass"])]
    if ca:
        cmd += ["--tls-verify", "--tls-ca-path", ca]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=SWAKS_TIMEOUT + 15,
                              stdin=subprocess.DEVNULL)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = -1
    return time.perf_counter() - start, code


POSTFIX_ROWS = (
    # name, config changes, trusted CA, words the root cause must contain, target seconds
    ("cram-md5-trap", {}, True, ("CRAM-MD5", "never falls back"), 3.0),
    ("cram-md5-trap, wrong password", {"smtp_pass": "wrong"}, True, ("refused",), 3.0),
    ("untrusted certificate", {}, False, ("certificate", "does not trust"), 2.0),
)


def old_tree(ref: str, into: Path) -> Path:
    """maildoctor's source as it was at ``ref``, to run the old way side by side."""
    import io
    import tarfile

    blob = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True,
                          capture_output=True, timeout=60).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def postfix_rows(rounds: int, old: str | None) -> int:
    """The real-Postfix rows: maildoctor and swaks alternated, medians, ratios."""
    sys.path.insert(0, str(ROOT))
    from tests.infra.postfix import PostfixServer

    failed = False
    with tempfile.TemporaryDirectory() as tmp, PostfixServer(cram_md5_trap=True) as trap, \
            PostfixServer() as plain:
        env = dict(os.environ)
        if old:
            env["PYTHONPATH"] = str(old_tree(old, Path(tmp) / "old"))
        label = f"old way ({old})" if old else "swaks"
        print(f"Postfix + Dovecot on 127.0.0.1 (trap: {trap.submission_port}, "
              f"plain: {plain.submission_port}); {rounds} rounds, order alternated; "
              f"baseline: {label}")
        for name, changes, trusted, words, target in POSTFIX_ROWS:
            pf = plain if name.startswith("untrusted") else trap
            email = {"smtp_host": pf.host, "smtp_port": pf.submission_port,
                     "smtp_user": pf.user, "smtp_pass": pf.password, "tlsname": "mail.test",
                     "notif_from": "Matrix <noreply@example.org>", **changes}
            cfg = Path(tmp) / "homeserver.yaml"
            cfg.write_text(json.dumps({"server_name": "example.org",
                                       "public_baseurl": "https://m.example.org/",
                                       "email": email}))
            cmd = [*MAILDOCTOR, "probe", str(cfg), "--format", "json", "--timeout", "10"]
            if trusted:
                cmd += ["--ca-file", pf.ca_file]
            swaks = ["swaks", "--server", pf.host, "--port", str(pf.submission_port),
                     "--from", "noreply@example.org", "--to", "alice@example.org",
                     "--quit-after", "RCPT", "--hide-all", "--timeout", str(SWAKS_TIMEOUT),
                     "--tls", "--auth", "CRAM-MD5", "--auth-user", pf.user,
                     "--auth-password", str(email["smtp_pass"])]
            if trusted:
                swaks += ["--tls-ca-path", pf.ca_file]
            else:
                swaks += ["--tls-verify"]
            baseline = [sys.executable, "-m", "maildoctor", *cmd[len(MAILDOCTOR):]] if old \
                else swaks
            ours, theirs, cause = [], [], ""
            for n in range(rounds):
                for which in ((0, 1) if n % 2 == 0 else (1, 0)):
                    start = time.perf_counter()
                    if which == 0:
                        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
                        ours.append(time.perf_counter() - start)
                        try:
                            cause = json.loads(proc.stdout)["diagnosis"]["root_cause"]
                        except (json.JSONDecodeError, KeyError):
                            cause = f"no JSON (exit {proc.returncode})"
                    else:
                        subprocess.run(baseline, capture_output=True, env=env,
                                       timeout=SWAKS_TIMEOUT + 60, stdin=subprocess.DEVNULL)
                        theirs.append(time.perf_counter() - start)
            correct = all(w.lower() in cause.lower() for w in words)
            md, sw = statistics.median(ours), statistics.median(theirs)
            met = correct and md <= target
            failed |= not met
            print(f"  {name:<30} maildoctor {md:5.2f}s (min {min(ours):.2f}, max "
                  f"{max(ours):.2f}) {'correct' if correct else 'WRONG'}; {label} {sw:5.2f}s; "
                  f"ratio {md / sw:.2f} ({sw / md:.1f}x faster); target <= {target:g} s: "
                  f"{'MET' if met else 'MISSED'}")
            print(f"      {cause[:150]}")
    return 1 if failed else 0


def main() -> int:
    import logging

    logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # aiosmtpd on sniffed sockets
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="maildoctor runs per scenario")
    parser.add_argument("--no-swaks", action="store_true")
    parser.add_argument("--postfix", action="store_true",
                        help="the real-Postfix rows (root; postfix, dovecot-core, swaks)")
    parser.add_argument("--old", metavar="REF", help="with --postfix: the baseline is "
                        "maildoctor at this git ref (the old way), not swaks")
    args = parser.parse_args()
    if args.postfix:
        return postfix_rows(args.rounds, args.old)
    have_swaks = shutil.which("swaks") is not None and not args.no_swaks
    if not have_swaks and not args.no_swaks:
        print("swaks not found: run `make system-deps` (apt install swaks)", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, row in sorted(ROWS.items()):
            server = TestServer(SCENARIOS[row.server].replace(port=0)).start() \
                if row.server else None
            try:
                port = server.port if server else free_port()
                ca = server.ca_file if server and row.trusted else None
                times, correct, cause = [], True, ""
                for _ in range(args.rounds):
                    seconds, ok, cause = run_maildoctor(row, port, ca, Path(tmp))
                    times.append(seconds)
                    correct &= ok
                swaks = run_swaks(row, port, ca) if have_swaks else (float("nan"), 0)
            finally:
                if server:
                    server.stop()
            rows.append((name, statistics.median(times), correct, swaks, cause))
            print(f"  {name:<32} maildoctor {statistics.median(times):5.2f}s "
                  f"{'correct' if correct else 'WRONG  '}  swaks {swaks[0]:5.2f}s "
                  f"(exit {swaks[1]})", flush=True)
    worst = max(r[1] for r in rows)
    all_correct = all(r[2] for r in rows)
    within = sum(1 for r in rows if r[1] <= 2.0 and r[2])
    print()
    print(f"scenarios: {len(rows)}; diagnosed correctly: {sum(r[2] for r in rows)}; "
          f"correct within 2 s: {within}/{len(rows)}")
    print(f"maildoctor median per scenario: worst {worst:.2f}s, "
          f"total {sum(r[1] for r in rows):.2f}s")
    if have_swaks:
        total_swaks = sum(r[3][0] for r in rows)
        print(f"swaks total {total_swaks:.2f}s (names no cause); ratio maildoctor/swaks "
              f"{sum(r[1] for r in rows) / total_swaks:.3f}")
        for name, md, _ok, (sw, _code), _cause in rows:
            if sw > 5:
                print(f"  {name}: swaks {sw:.1f}s vs maildoctor {md:.2f}s ({sw / md:.0f}x)")
    print(f"target: every scenario correct in <= 2 s: {'MET' if within == len(rows) else 'MISSED'}")
    return 0 if all_correct else 1


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    sys.exit(main())
