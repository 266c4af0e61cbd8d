"""Regenerate tests/conformance/captured/*.eml: one real mail per kind, sent by a real Synapse.

maildoctor builds Synapse-identical mails itself; these files are what it is compared with.
Each is saved byte for byte as the test SMTP server received it (CRLF line endings, dot-unstuffed),
with Synapse's own Date, Message-ID and MIME boundary.

    MAILDOCTOR_SYNAPSE_PYTHON=$PWD/.venv-synapse/bin/python .venv/bin/python \\
        scripts/synapse/capture_mails.py [OUTPUT_DIR]

One Synapse serves all five kinds: ``request_token_inhibit_3pid_errors`` (needed for the
"already in use" mail) only changes answers for addresses that would otherwise be refused,
and ``enable_notifs`` with a one-second delay makes the invite notification quick.
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.infra.synapse import ENV_VAR, SynapseHarness, SynapseResult, SynapseRun  # noqa: E402

from maildoctor.testing.server import TestServer  # noqa: E402

NOTIF_FROM = "Example %(app)s <noreply@example.org>"


def kinds(run: SynapseRun) -> dict[str, Callable[[], SynapseResult]]:
    """Mail kind -> the request that makes Synapse send it (each to its own address)."""
    return {
        "registration": lambda: run.request_registration_mail("new@example.org"),
        "password_reset": lambda: run.request_password_reset_mail("alice@example.org"),
        "add_threepid": lambda: run.request_add_threepid_mail("second@example.org"),
        "already_in_use": lambda: run.request_already_in_use_mail("bound@example.org"),
        "notification": lambda: run.trigger_notification_mail("carol@example.org"),
    }


def synapse_version(python: str) -> str:
    """From the installed metadata: ``synapse.__version__`` appends git details of the CWD."""
    code = ("from importlib.metadata import version as v; "
            "print(v('matrix-synapse'), v('twisted'))")
    out = subprocess.run([python, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    return f"matrix-synapse {out[0]}, Twisted {out[1]}"


def main() -> int:
    python = os.environ.get(ENV_VAR)
    if not python:
        print(f"{ENV_VAR} is not set: run `make synapse` and export it", file=sys.stderr)
        return 2
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests/conformance/captured"
    out_dir.mkdir(parents=True, exist_ok=True)
    email_block = {"smtp_host": "127.0.0.1", "notif_from": NOTIF_FROM,
                   "enable_notifs": True, "notif_delay_before_mail": "1s"}
    with tempfile.TemporaryDirectory() as tmp, TestServer() as sink:
        harness = SynapseHarness(python, Path(tmp))
        with harness.run({**email_block, "smtp_port": sink.port},
                         {"request_token_inhibit_3pid_errors": True}) as run:
            if run.no_start is not None:
                print(f"Synapse did not start: {run.no_start}", file=sys.stderr)
                return 1
            for number, (kind, request) in enumerate(kinds(run).items()):
                result = request()
                if result.kind != "ok":
                    print(f"{kind}: {result}", file=sys.stderr)
                    return 1
                mail = sink.wait_for_messages(number + 1, timeout=30)[number]
                subject = email.message_from_bytes(mail.data)["Subject"]
                (out_dir / f"{kind}.eml").write_bytes(mail.data)
                print(f"{kind:15} {result.seconds:5.2f} s  {subject}")
        harness.close()
    print(synapse_version(python))
    return 0


if __name__ == "__main__":
    sys.exit(main())
