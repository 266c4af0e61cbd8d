"""Read config files with a real Synapse's own config loader, as its startup does.

Run with the Python of Synapse's venv: ``python config_check.py FILE...``. Each file is read
by ``HomeServerConfig.load_config`` (every section's ``read_config``: the email checks,
template compilation...) together with a small overlay giving what a start needs and the
file may lack (a signing key, ``report_stats``). Prints one JSON object: each file's path ->
``null`` when Synapse accepts it, or ``"ExceptionClass: message"`` when its startup would
stop there. One process for many files, as importing Synapse takes seconds.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def main(paths: list[str]) -> int:
    from signedjson.key import generate_signing_key, write_signing_keys
    from synapse.config.homeserver import HomeServerConfig

    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "signing.key"
        with key.open("w") as fh:
            write_signing_keys(fh, (generate_signing_key("a"),))
        overlay = Path(tmp) / "overlay.yaml"
        overlay.write_text(json.dumps({
            "report_stats": False, "signing_key_path": str(key),
            "media_store_path": str(Path(tmp) / "media"),
            "database": {"name": "sqlite3", "args": {"database": ":memory:"}},
            "macaroon_secret_key": "config-check", "form_secret": "config-check",
            "registration_shared_secret": "config-check",
            "trusted_key_servers": [], "suppress_key_server_warning": True}))
        out: dict[str, str | None] = {}
        for path in paths:
            try:
                HomeServerConfig.load_config("", ["-c", path, "-c", str(overlay)])
            except BaseException as exc:
                out[path] = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
            else:
                out[path] = None
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
