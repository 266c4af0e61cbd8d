"""A throwaway nginx on 127.0.0.1 in front of a real Synapse (pytest plugin): the reverse
proxy of the links checks. :class:`NginxProxy` serves one site per entry of ``sites`` (a
name -> the ``location`` prefixes forwarded to Synapse), each on its own free loopback port,
from its own directory, removed on stop. Everything else gets nginx's own 404, as on a
server whose proxy rules were copied for ``/_matrix`` only."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from maildoctor.testing.ports import free_port

NGINX = "/usr/sbin/nginx"
START_TIMEOUT = 15.0


class NginxStartError(RuntimeError):
    """nginx did not come up; the message carries its error log."""


def nginx_conf(root: Path, upstream_port: int, sites: Mapping[str, tuple[int, Sequence[str]]]
               ) -> str:
    servers = []
    for _name, (port, prefixes) in sites.items():
        locations = "".join(
            f"        location {p} {{ proxy_pass http://127.0.0.1:{upstream_port}; "
            "proxy_set_header Host $host; }\n" for p in prefixes)
        servers.append(f"    server {{\n        listen 127.0.0.1:{port};\n"
                       f"        server_name localhost;\n{locations}    }}\n")
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(f"    {k}_temp_path {root}/tmp/{k};\n"
                   for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"{user}worker_processes 1;\npid {root}/nginx.pid;\n"
            f"error_log {root}/error.log warn;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n    access_log off;\n{temp}" + "".join(servers) + "}\n")


class NginxProxy:
    def __init__(self, upstream_port: int, sites: Mapping[str, Sequence[str]]) -> None:
        self.upstream_port = upstream_port
        self.sites = {name: tuple(prefixes) for name, prefixes in sites.items()}
        self.ports: dict[str, int] = {}
        self.root = Path()
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, site: str) -> str:
        return f"http://127.0.0.1:{self.ports[site]}/"

    def __enter__(self) -> NginxProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> NginxProxy:
        if not os.access(NGINX, os.X_OK):
            raise NginxStartError(f"{NGINX} is missing: run `make system-deps` (as root)")
        self.root = Path(tempfile.mkdtemp(prefix="maildoctor-nginx-"))
        (self.root / "tmp").mkdir()
        self.ports = {name: free_port() for name in self.sites}
        conf = self.root / "nginx.conf"
        conf.write_text(nginx_conf(self.root, self.upstream_port,
                                   {n: (self.ports[n], p) for n, p in self.sites.items()}))
        self._proc = subprocess.Popen(
            [NGINX, "-p", str(self.root), "-c", str(conf), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.root / "stderr.log", "wb"), start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not all(self._listening(p) for p in self.ports.values()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = self.log_text()
                self.stop()
                raise NginxStartError(f"nginx did not start:\n{log}")
            time.sleep(0.02)
        return self

    def _listening(self, port: int) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    def log_text(self) -> str:
        out = []
        for name in ("error.log", "stderr.log"):
            with contextlib.suppress(OSError):
                out.append((self.root / name).read_text(errors="replace"))
        return "".join(out)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def synapse_behind_nginx(synapse_harness: Any) -> Iterator[NginxProxy]:
    """A real Synapse behind nginx with two sites: ``matrix-only`` (location /_matrix) and
    ``both`` (/_matrix and /_synapse/client). Mark tests `synapse`."""
    block = {"smtp_host": "127.0.0.1", "smtp_port": 2525, "enable_tls": False,
             "notif_from": "Matrix <noreply@example.org>"}
    with synapse_harness.run(block) as syn:
        try:
            proxy = NginxProxy(syn.port, {"matrix-only": ["/_matrix"],
                                          "both": ["/_matrix", "/_synapse/client"]}).start()
        except NginxStartError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield proxy
        proxy.stop()
