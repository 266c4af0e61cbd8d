"""A real Synapse on loopback, started per scenario, so tests can see what Synapse itself does.

maildoctor predicts how Synapse reacts to an ``email:`` block and an SMTP server; the only way
to keep that prediction honest is to ask the real thing. This plugin installs nothing: the
Makefile puts ``matrix-synapse`` into its own venv (``make synapse``) and exports
``MAILDOCTOR_SYNAPSE_PYTHON``. Without it the fixture fails loudly rather than skipping, so a
missing Synapse can never pass as a green run.

Speed matters because every scenario needs a restart (Synapse never reloads ``email:``):

- importing Synapse is about two seconds of CPU, so a fork server
  (``scripts/synapse/forkserver.py``) imports it once and forks a fresh Synapse per run, entered
  through the same ``main()`` as ``python -m synapse.app.homeserver`` (``fork=False`` runs that
  plain command instead; a test checks that both behave the same);
- ``--generate-config`` (keys, secrets) runs once per session;
- a schema-migrated SQLite file is made once and copied for each run, skipping the migrations;
- each run passes the base config plus a small overlay (a second ``-c``) holding the listener,
  per-run paths and the ``email:`` block; Synapse merges top-level keys, so the overlay's
  ``email:`` replaces nothing but itself.

A run then costs about 0.5 s to start and a few ms to stop, against 2.5-3 s for a plain start.
This module is longer than our usual 400 lines because the process plumbing (fork server
client, pidfd watching) only exists to serve the harness and reads best next to it.

What a run observes comes back as a :class:`SynapseResult`, with the last traceback of the log
parsed into ``exception``/``message`` and every secret of the email block masked (the overlay
and log files are rewritten masked once Synapse has stopped).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import pytest
import yaml

from maildoctor.secrets import Redactor
from maildoctor.testing.ports import free_port as _free_port

SERVER_NAME = "example.org"
ENV_VAR = "MAILDOCTOR_SYNAPSE_PYTHON"
STARTUP_TIMEOUT = 90.0  # generous: two shared cores, and a cold import of Synapse is heavy
STOP_TIMEOUT = 10.0
FORKSERVER = Path(__file__).resolve().parents[2] / "scripts" / "synapse" / "forkserver.py"
LOG_FORMAT = "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"

Kind = Literal["ok", "error", "hang", "no-start"]


@dataclass(frozen=True)
class SynapseResult:
    """What one request (or a failed start) looked like from the outside and in the log.

    ``exception`` is the class name as the traceback prints it (qualified unless builtin) and
    ``message`` the first line of its text, without Twisted's ``<<<``/``>>>`` transcript.
    """

    kind: Kind
    http_status: int | None
    body: str
    seconds: float
    exception: str | None = None
    message: str | None = None
    log_tail: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def last_exception(text: str) -> tuple[str | None, str | None]:
    """The final exception of the last traceback in ``text`` as (class name, first line)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call")]
    if not starts:
        return None, None
    for line in lines[starts[-1] + 1:]:
        if not line.strip() or line[0].isspace():
            continue  # frames, source lines and 3.11's ^^^ markers are all indented
        name, sep, message = line.partition(": ")
        if " " in name:  # not "pkg.Class: text" (e.g. a log line that followed the traceback)
            return None, None
        return name, (message if sep else None)
    return None, None


def config_error(text: str) -> tuple[str | None, str | None]:
    """Synapse prints a ConfigError as ``Error in configuration[ at 'path']:`` and the indented
    message (no traceback); returns it as one line, header included."""
    match = re.search(r"^(Error in configuration.*?:)\n(.*?)(?:\n\s*\n|\Z)", text, re.M | re.S)
    if match is None:
        return None, None
    return "synapse.config._base.ConfigError", " ".join(match.group(0).split())




def _secret_values(block: Mapping[str, Any] | str | None) -> tuple[list[str], list[str]]:
    """Passwords (any key naming a password, typos included) and user names of a block."""
    parsed: Any = block
    if isinstance(block, str):
        try:
            parsed = yaml.safe_load(block)
        except yaml.YAMLError:
            parsed = None
        if not isinstance(parsed, Mapping):  # unparsable: fall back to the text itself
            found = re.findall(r"^\s*\w*pass\w*\s*:\s*['\"]?(.*?)['\"]?\s*$", block, re.M)
            return [v for v in found if v], []
    if not isinstance(parsed, Mapping):
        return [], []
    passwords = [str(v) for k, v in parsed.items() if "pass" in str(k) and v not in (None, "")]
    users = [str(v) for k, v in parsed.items() if "user" in str(k) and v is not None]
    return passwords, users


def _http(
    port: int, method: str, path: str, body: Mapping[str, Any] | None = None,
    token: str | None = None, timeout: float = 10.0,
) -> tuple[int, str]:
    """One request to Synapse; raises TimeoutError when no answer comes within ``timeout``.

    http.client rather than urllib: urllib would honour proxy variables, and we talk to
    127.0.0.1 only.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


class _Process(Protocol):
    """What a run needs from its Synapse process; ``subprocess.Popen`` already fits."""

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...


class _Forked:
    """A Synapse forked by the fork server: not our child, so watched through a pidfd."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self._fd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone (and reaped by the fork server)
            self._fd = None

    def poll(self) -> int | None:
        return None if self._fd is not None and not self._exited(0) else -1

    def _exited(self, timeout: float | None) -> bool:
        assert self._fd is not None
        if not select.select([self._fd], [], [], timeout)[0]:
            return False
        os.close(self._fd)
        self._fd = None
        return True

    def wait(self, timeout: float | None = None) -> int:
        if self._fd is not None and not self._exited(timeout):
            raise subprocess.TimeoutExpired(f"synapse pid {self.pid}", timeout or 0)
        return -1

    def send_signal(self, sig: int) -> None:
        if self.poll() is None and self._fd is not None:
            signal.pidfd_send_signal(self._fd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _ForkServer:
    """Client of scripts/synapse/forkserver.py: Synapse imported once, forked per run."""

    def __init__(self, python: str, workdir: Path) -> None:
        self._stderr = (workdir / "forkserver.log").open("wb")
        self._proc = subprocess.Popen(
            [python, str(FORKSERVER)], cwd=workdir, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, start_new_session=True,
        )
        if self._reply(STARTUP_TIMEOUT).get("ready") is not True:
            raise RuntimeError("fork server did not start")

    def _reply(self, timeout: float) -> dict[str, Any]:
        out: IO[str] | None = self._proc.stdout
        assert out is not None
        if not select.select([out], [], [], timeout)[0]:
            raise RuntimeError("fork server did not answer")
        line = out.readline()
        if not line:
            raise RuntimeError("fork server exited")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def spawn(self, args: list[str], cwd: Path, env: Mapping[str, str],
              output: Path) -> _Forked:
        assert self._proc.stdin is not None
        request = {"args": args, "cwd": str(cwd), "env": dict(env), "output": str(output)}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return _Forked(int(self._reply(30)["pid"]))

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()  # the server's cue to exit; SIGTERM skips its slow teardown
        self._proc.terminate()
        try:
            self._proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=STOP_TIMEOUT)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()


class SynapseRun:
    """One started Synapse. Use as a context manager; it is always stopped on exit."""

    def __init__(self, harness: SynapseHarness, run_dir: Path, port: int,
                 extra: Mapping[str, Any], redact: Redactor,
                 proc: _Process, started: float) -> None:
        self.harness = harness
        self.dir = run_dir
        self.port = port
        self.extra = dict(extra)
        self.redact = redact
        self.proc: _Process | None = proc
        self.log = run_dir / "homeserver.log"
        self.output = run_dir / "output.txt"
        self.startup_seconds = 0.0
        self.no_start: SynapseResult | None = None
        self._admin_token: str | None = None
        self._wait_until_ready(started)

    # ---- lifecycle -----------------------------------------------------------------------

    def _wait_until_ready(self, started: float) -> None:
        """Poll the client API until it answers, or the process dies (bounded, no fixed sleep)."""
        assert self.proc is not None
        deadline = started + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                status, _ = _http(self.port, "GET", "/_matrix/client/versions", timeout=2)
            except (OSError, http.client.HTTPException):
                status = 0
            if status == 200:
                self.startup_seconds = time.monotonic() - started
                return
            try:
                self.proc.wait(timeout=0.05)  # returns at once if Synapse exits
            except subprocess.TimeoutExpired:
                continue
            break
        seconds = time.monotonic() - started
        self.stop()
        text = self._read(self.output) + "\n" + self._read(self.log)
        exc, msg = last_exception(text)
        if exc is None and time.monotonic() >= deadline:
            msg = f"Synapse did not answer within {STARTUP_TIMEOUT:.0f} s"
        elif exc is None:
            exc, msg = config_error(text)
        self.no_start = SynapseResult("no-start", None, "", seconds, exc, msg, self._tail(text))

    def stop(self) -> None:
        """SIGTERM, a bounded wait, then SIGKILL; afterwards mask secrets in the files we keep."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=STOP_TIMEOUT)
            self.harness._live.discard(self)
        for name in ("overlay.yaml", "homeserver.log", "output.txt"):
            path = self.dir / name
            if path.exists():
                path.write_text(self.redact(self._read(path, raw=True)))
        for junk in ("homeserver.db", "homeserver.db-wal", "homeserver.db-shm"):
            (self.dir / junk).unlink(missing_ok=True)

    def __enter__(self) -> SynapseRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- requests ----------------------------------------------------------------------

    def request_registration_mail(self, address: str, timeout: float = 6.0) -> SynapseResult:
        """``/register/email/requestToken`` with a fresh client secret: the validation mail
        (or, with ``request_token_inhibit_3pid_errors`` and a bound address, "already in use")."""
        return self.request_token("/_matrix/client/v3/register/email/requestToken", address,
                                  timeout)

    def request_password_reset_mail(self, address: str, timeout: float = 6.0, *,
                                    bind: bool = True) -> SynapseResult:
        """The reset mail needs an account with ``address`` bound; ``bind`` creates one first."""
        if bind and self.no_start is None:
            self.bind_email(address)
        return self.request_token("/_matrix/client/v3/account/password/email/requestToken",
                                  address, timeout)

    def request_add_threepid_mail(self, address: str, timeout: float = 6.0) -> SynapseResult:
        """``/account/3pid/email/requestToken``: Synapse asks no access token for it."""
        return self.request_token("/_matrix/client/v3/account/3pid/email/requestToken",
                                  address, timeout)

    def request_already_in_use_mail(self, address: str, timeout: float = 6.0) -> SynapseResult:
        """Registration with a bound address; needs ``request_token_inhibit_3pid_errors``."""
        if not self.extra.get("request_token_inhibit_3pid_errors"):
            raise ValueError("pass extra={'request_token_inhibit_3pid_errors': True} to run()")
        if self.no_start is None:
            self.bind_email(address)
        return self.request_registration_mail(address, timeout)

    def request_token(self, path: str, address: str, timeout: float) -> SynapseResult:
        if self.no_start is not None:
            return self.no_start
        body = {"email": address, "client_secret": uuid.uuid4().hex, "send_attempt": 1}
        return self._observe(lambda: _http(self.port, "POST", path, body, timeout=timeout))

    def trigger_notification_mail(self, address: str, timeout: float = 6.0) -> SynapseResult:
        """Bind ``address`` to a new user (with ``enable_notifs`` its email pusher comes with
        it) and invite that user to a DM. The mail follows after ``notif_delay_before_mail``;
        failures only reach the log (``Exception processing notifs``), so wait on the sink."""
        if self.no_start is not None:
            return self.no_start
        user_id = self.bind_email(address)
        body = {"invite": [user_id], "is_direct": True, "preset": "trusted_private_chat"}
        token = self.admin_token()
        return self._observe(lambda: _http(self.port, "POST", "/_matrix/client/v3/createRoom",
                                           body, token, timeout))

    def _observe(self, send: Callable[[], tuple[int, str]]) -> SynapseResult:
        """Time one request and read what the log said while it ran."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        started = time.monotonic()
        status: int | None
        try:
            status, text = send()
        except TimeoutError:
            status, text = None, ""
        seconds = time.monotonic() - started
        with self.log.open("rb") as log:
            log.seek(offset)
            since = self.redact(log.read().decode("utf-8", "replace"))
        exc, msg = last_exception(since)
        kind: Kind = "hang" if status is None else "ok" if status == 200 else "error"
        return SynapseResult(kind, status, self.redact(text), seconds, exc, msg,
                             self._tail(since))

    # ---- accounts (admin API) ------------------------------------------------------------

    def admin_token(self) -> str:
        """An admin registered through the shared-secret API (no extra tool, no login)."""
        if self._admin_token is None:
            _, text = _http(self.port, "GET", "/_synapse/admin/v1/register")
            nonce = json.loads(text)["nonce"]
            secret = self.harness.registration_shared_secret.encode()
            msg = b"\0".join([nonce.encode(), b"admin", b"adminpw", b"admin"])
            mac = hmac.new(secret, msg, hashlib.sha1).hexdigest()
            body = {"nonce": nonce, "username": "admin", "password": "adminpw", "admin": True,
                    "mac": mac}
            status, text = _http(self.port, "POST", "/_synapse/admin/v1/register", body)
            if status != 200:
                raise RuntimeError(f"admin registration failed: {status} {text}")
            self._admin_token = str(json.loads(text)["access_token"])
        return self._admin_token

    def bind_email(self, address: str, localpart: str | None = None) -> str:
        """Create (or update) a user with ``address`` bound; returns its user id."""
        local = localpart or re.sub(r"[^a-z0-9._=-]", "", address.split("@")[0].lower()) or "u"
        user_id = f"@{local}:{SERVER_NAME}"
        body = {"password": "userpw", "threepids": [{"medium": "email", "address": address}]}
        status, text = _http(self.port, "PUT", f"/_synapse/admin/v2/users/{user_id}", body,
                             self.admin_token())
        if status not in (200, 201):
            raise RuntimeError(f"binding {address} failed: {status} {text}")
        return user_id

    # ---- files ----------------------------------------------------------------------------

    def _read(self, path: Path, raw: bool = False) -> str:
        text = path.read_text("utf-8", "replace") if path.exists() else ""
        return text if raw else self.redact(text)

    def _tail(self, text: str, lines: int = 40) -> str:
        return self.redact("\n".join(text.splitlines()[-lines:]))

    def log_text(self) -> str:
        """The whole log so far, masked."""
        return self._read(self.log)


@dataclass
class SynapseHarness:
    """Generates the base config once, then starts one Synapse per :meth:`run`."""

    python: str
    root: Path
    # False: a plain ``python -m synapse.app.homeserver`` per run. The fork server needs
    # Linux (epoll, pidfd), as does the rest of our test setup.
    fork: bool = field(default_factory=lambda: hasattr(os, "pidfd_open"))
    _live: set[SynapseRun] = field(default_factory=set)
    _forks: _ForkServer | None = None
    _template_db: Path | None = None

    def __post_init__(self) -> None:
        """Generate the base config, unless another harness on ``root`` already did."""
        self.base = self.root / "base"
        self.base.mkdir(parents=True, exist_ok=True)
        self.config = self.base / "homeserver.yaml"
        if not self.config.exists():
            output = self.base / "generate.txt"
            proc = self._spawn(["--server-name", SERVER_NAME, "--config-path", str(self.config),
                                "--generate-config", "--report-stats=no"],
                               self.base, dict(os.environ), output)
            proc.wait(timeout=STARTUP_TIMEOUT)
            if not self.config.exists():
                raise RuntimeError(f"synapse --generate-config failed:\n{output.read_text()}")
        loaded = yaml.safe_load(self.config.read_text())
        self.registration_shared_secret = str(loaded["registration_shared_secret"])

    def run(self, email_block: Mapping[str, Any] | str | None,
            extra: Mapping[str, Any] | None = None, *,
            env: Mapping[str, str] | None = None) -> SynapseRun:
        """Start Synapse with ``email_block`` (a mapping dumped with yaml, or raw YAML text for
        the value of ``email:``, or None for no ``email:`` key) and top-level ``extra`` keys.

        Never raises for a Synapse that does not start: the run's request methods then return
        its ``no-start`` result.
        """
        if self._template_db is None:
            self._template_db = self._make_template_db()
        return self._start(email_block, extra or {}, env or {}, self._template_db)

    def _start(self, email_block: Mapping[str, Any] | str | None, extra: Mapping[str, Any],
               env: Mapping[str, str], template_db: Path | None) -> SynapseRun:
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self.root))
        if template_db is not None:
            shutil.copyfile(template_db, run_dir / "homeserver.db")
        port = _free_port()
        overlay = self._overlay(run_dir, port, email_block, extra)
        redact = Redactor()
        passwords, users = _secret_values(email_block)
        for password in passwords:
            redact.add(password, users)
        args = ["-c", str(self.config), "-c", str(overlay)]
        started = time.monotonic()
        proc = self._spawn(args, run_dir, {**os.environ, **env}, run_dir / "output.txt")
        run = SynapseRun(self, run_dir, port, extra, redact, proc, started)
        if run.proc is not None:
            self._live.add(run)
        return run

    def _spawn(self, args: list[str], cwd: Path, env: Mapping[str, str],
               output: Path) -> _Process:
        if self.fork and self._forks is None:
            self._forks = _ForkServer(self.python, self.base)
        if self._forks is not None:
            return self._forks.spawn(args, cwd, env, output)
        with output.open("wb") as out:
            return subprocess.Popen(
                [self.python, "-m", "synapse.app.homeserver", *args], cwd=cwd,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )

    def _overlay(self, run_dir: Path, port: int, email_block: Mapping[str, Any] | str | None,
                 extra: Mapping[str, Any]) -> Path:
        log_config = run_dir / "log.yaml"
        log_config.write_text(yaml.safe_dump({
            "version": 1,
            "formatters": {"precise": {"format": LOG_FORMAT}},
            "handlers": {"file": {"class": "logging.FileHandler", "formatter": "precise",
                                  "filename": str(run_dir / "homeserver.log"),
                                  "encoding": "utf8"}},
            "loggers": {"synapse.storage.SQL": {"level": "INFO"}},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }))
        has_email = email_block is not None and email_block != {} and email_block != ""
        settings: dict[str, Any] = {
            "pid_file": str(run_dir / "homeserver.pid"),
            "database": {"name": "sqlite3", "args": {"database": str(run_dir / "homeserver.db")}},
            "log_config": str(log_config),
            "media_store_path": str(run_dir / "media_store"),
            "public_baseurl": f"http://127.0.0.1:{port}/",
            "listeners": [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http",
                           "tls": False, "x_forwarded": False,
                           "resources": [{"names": ["client"], "compress": False}]}],
            "trusted_key_servers": [],  # never reach matrix.org
            "presence": {"enabled": False},
            "bcrypt_rounds": 4,  # the default 12 costs ~0.3 s per account created
            "enable_registration": True,
            "rc_3pid_validation": {"per_second": 1000, "burst_count": 1000},
            "rc_registration": {"per_second": 1000, "burst_count": 1000},
            "rc_login": {"address": {"per_second": 1000, "burst_count": 1000},
                         "account": {"per_second": 1000, "burst_count": 1000}},
            "rc_message": {"per_second": 1000, "burst_count": 1000},
        }
        if has_email:
            settings["registrations_require_3pid"] = ["email"]
        else:  # require_3pid without email refuses to start, which is not what we test then
            settings["enable_registration_without_verification"] = True
        settings.update(extra)
        text = yaml.safe_dump(settings, sort_keys=False)
        if isinstance(email_block, str):
            indented = "".join(f"  {line}\n" for line in email_block.splitlines())
            text += "email:\n" + indented if indented.strip() else "email:\n"
        elif email_block is not None:
            text += yaml.safe_dump({"email": dict(email_block)}, sort_keys=False)
        overlay = run_dir / "overlay.yaml"
        overlay.write_text(text)
        return overlay

    def _make_template_db(self) -> Path | None:
        """Start once without email so Synapse migrates a fresh SQLite file; later runs copy it."""
        template = self.base / "template.db"
        if template.exists():
            return template
        run = self._start(None, {}, {}, None)
        if run.no_start is not None:
            return None  # every run will then show its own no-start cause
        if run.proc is not None:
            run.proc.send_signal(signal.SIGTERM)
            run.proc.wait(timeout=STOP_TIMEOUT * 3)
        shutil.copyfile(run.dir / "homeserver.db", template)
        run.stop()
        return template

    def close(self) -> None:
        for run in list(self._live):
            run.stop()
        if self._forks is not None:
            self._forks.close()
            self._forks = None


@pytest.fixture(scope="session")
def synapse_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseHarness]:
    """The real Synapse from ``make synapse``; fails (never skips) when it is missing."""
    python = os.environ.get(ENV_VAR)
    if not python:
        pytest.fail(f"{ENV_VAR} is not set: run the tests through `make test`, or run "
                    f"`make synapse` and export {ENV_VAR}=<repo>/.venv-synapse/bin/python",
                    pytrace=False)
    if not Path(python).exists():
        pytest.fail(f"{ENV_VAR}={python} does not exist: run `make synapse`", pytrace=False)
    harness = SynapseHarness(python, tmp_path_factory.mktemp("synapse"))
    try:
        yield harness
    finally:
        harness.close()
