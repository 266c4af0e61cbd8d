"""A throwaway real Postfix + Dovecot SASL on 127.0.0.1, for tests (pytest plugin).

Why a real MTA: aiosmtpd and Postfix answer the same client mistakes differently (a wrong
password gives Synapse a clean 535 from Postfix but a hang from aiosmtpd, see
spec/synapse-observed.md), so the conformance tests need both. Everything lives in one fresh
directory ``$R`` and is removed on stop; nothing binds port 25 and mail never leaves: every
recipient is delivered by Postfix's ``virtual`` agent into one Maildir, ``$R/sink/inbox``, which
:meth:`PostfixServer.received` reads back. The files themselves are rendered by the pure
functions in tests/postfix/files.py; this module runs the processes.

Postfix without syslog fails silently (see spec/postfix-recipe.md), so its commands run under a
pseudo-terminal and log to ``$R/postfix.log``; any start failure raises
:class:`PostfixStartError` carrying those logs. Every wait is bounded. Instances left behind by
a killed session are reaped at the next start (their owner pid is dead), and the
``alternate_config_directories`` entry that Postfix demands for a non-default config directory
is removed again under a file lock, since several pytest processes may share this machine.
"""

from __future__ import annotations

import atexit
import contextlib
import email.policy
import fcntl
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import FrameType, TracebackType

import pytest
import trustme

from maildoctor.secrets import Redactor
from tests.infra.nxdomain import NxdomainServer
from tests.postfix.files import (
    HOSTNAME,
    PASSWORD,
    TREE,
    USER,
    Mailbox,
    dovecot_conf,
    main_cf,
    master_cf,
    sender_logins,
    users_file,
)

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
ROOT_PREFIX = "maildoctor-postfix-"
REGISTRY_LOCK = Path(tempfile.gettempdir()) / "maildoctor-postfix.lock"
START_TIMEOUT = 20.0
SYSTEM_DEPS_HINT = "run `make system-deps` (as root) to install postfix, dovecot-core and swaks"


class PostfixStartError(RuntimeError):
    """The throwaway Postfix/Dovecot did not come up; the message carries their own logs."""


# --- processes, ports and the shared registry --------------------------------------------


def _write(path: Path, text: str) -> None:
    """Writes a config file dated 10 s ago: Postfix polls a main.cf younger than a second
    every 300 ms until it has settled, which cost a second per start."""
    path.write_text(text)
    past = time.time() - 10
    os.utime(path, (past, past))


def _run(argv: list[str], timeout: float) -> tuple[int, str]:
    """Runs under a pseudo-terminal: Postfix only prints its errors when stderr is a tty."""
    proc = subprocess.run(
        ["script", "-qec", shlex.join(argv), "/dev/null"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=timeout, check=False,
    )
    return proc.returncode, proc.stdout.decode(errors="replace").replace("\r\n", "\n")


def _free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out; held together so the two are distinct."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def _alive(pid: int) -> bool:
    """True for a running process; a zombie counts as dead (in containers whose pid 1 does
    not reap, a stopped Postfix master stays a zombie forever)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _terminate(pid: int | None, sig: signal.Signals, deadline: float) -> None:
    """Signals a master (Postfix's or Dovecot's), waits for it with a bounded deadline, then
    SIGKILLs its process group, which it leads, so children still winding down go too."""
    if pid is None or not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _update_alternates(add: str | None = None, remove: str | None = None) -> None:
    """Edits the default instance's ``alternate_config_directories`` under a lock, also
    dropping entries of ours whose directory is gone (left by a killed session)."""
    with open(REGISTRY_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        out = subprocess.run(
            ["postconf", "-h", "alternate_config_directories"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        current = [d for d in out.replace(",", " ").split() if d]
        wanted = [
            d for d in current
            if d != remove and not (ROOT_PREFIX in d and not Path(d).exists())
        ]
        if add and add not in wanted:
            wanted.append(add)
        if wanted == current:
            return
        args = (["-e", "alternate_config_directories = " + ", ".join(wanted)] if wanted
                else ["-X", "alternate_config_directories"])
        subprocess.run(["postconf", *args], capture_output=True, timeout=10, check=True)
        # Every postfix command sleeps until main.cf is over a second old; don't pay that.
        past = time.time() - 2
        os.utime("/etc/postfix/main.cf", (past, past))


def _stop_tree(root: Path) -> None:
    """Stops whatever runs from ``root`` (ours or a dead session's) and removes it.

    Postfix gets what `postfix stop` sends (SIGTERM to the master), but polled every 20 ms
    where postfix-script sleeps whole seconds. Dovecot needs a second to exit on SIGTERM and
    keeps nothing we want, so it gets SIGKILL."""
    deadline = time.monotonic() + 10
    _terminate(_read_pid(root / "queue" / "pid" / "master.pid"), signal.SIGTERM, deadline)
    _terminate(_read_pid(root / "dv" / "run" / "master.pid"), signal.SIGKILL, deadline)
    for milter in ("signer", "verifier"):  # mailbox mode's OpenDKIMs
        _terminate(_read_pid(root / "dkim" / f"{milter}.pid"), signal.SIGTERM, deadline)
    shutil.rmtree(root, ignore_errors=True)


def _reap_stale() -> None:
    """Stops and removes instances whose owning process is gone (a session killed with
    SIGKILL runs no cleanup). A root without owner.pid may be one another session is creating
    right now: only reap it once it is a minute old."""
    for root in Path(tempfile.gettempdir()).glob(ROOT_PREFIX + "*"):
        owner = _read_pid(root / "owner.pid")
        with contextlib.suppress(OSError):
            if (not _alive(owner) if owner is not None
                    else time.time() - root.stat().st_mtime > 60):
                _stop_tree(root)


# --- the harness ---------------------------------------------------------------------------


_LIVE: set[PostfixServer] = set()


class PostfixServer:
    """A running Postfix with submission (STARTTLS required before AUTH) and implicit-TLS
    ports, AUTH PLAIN LOGIN checked by Dovecot. ``cram_md5_trap=True`` also advertises
    CRAM-MD5, which always fails. Use as a context manager or call start()/stop()."""

    def __init__(self, *, cram_md5_trap: bool = False, start_timeout: float = START_TIMEOUT,
                 mailbox: Callable[[Path], Mailbox] | None = None,
                 nxdomain_dns: bool = False):
        """``mailbox``: mailbox mode (tests/infra/mailbox.py), given the root, returns its
        setup (ports chosen then)."""
        self.cram_md5_trap = cram_md5_trap
        # Postfix in its own mount namespace whose resolv.conf names a DNS server that says
        # NXDOMAIN to everything (tests/infra/nxdomain.py): reject_unknown_sender_domain
        # then really rejects, and no query leaves the machine.
        self.nxdomain_dns = nxdomain_dns
        self._dns: NxdomainServer | None = None
        self.mailbox_setup = mailbox
        self.mailbox: Mailbox | None = None
        self.start_timeout = start_timeout
        self.host = "127.0.0.1"
        self.hostname = HOSTNAME
        self.user = USER
        self.password = PASSWORD
        self.submission_port = 0
        self.smtps_port = 0
        self.sender_rules_port = 0  # submission with reject_sender_login_mismatch
        self.start_seconds = 0.0
        self.root = Path()
        self.ca_file = ""
        self._redact = Redactor()
        self._redact.add(PASSWORD, [USER])

    def __repr__(self) -> str:
        return (f"PostfixServer(host={self.host!r}, submission_port={self.submission_port}, "
                f"smtps_port={self.smtps_port}, cram_md5_trap={self.cram_md5_trap})")

    def __enter__(self) -> PostfixServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- start --

    def start(self) -> PostfixServer:
        for binary in (POSTFIX, DOVECOT, shutil.which("script") or "/usr/bin/script"):
            if not os.access(binary, os.X_OK):
                raise PostfixStartError(f"{binary} is missing: {SYSTEM_DEPS_HINT}")
        if os.geteuid() != 0:
            raise PostfixStartError("the throwaway Postfix must be started as root")
        began = time.monotonic()
        _reap_stale()
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        _LIVE.add(self)
        try:
            self._build()
            _update_alternates(add=str(self.root / "etc"))
            self._start_dovecot()
            if self.nxdomain_dns:
                self._dns = NxdomainServer().start()
            if self.mailbox is not None:
                from tests.infra.mailbox import start_milters

                start_milters(self.root, self.mailbox, self.start_timeout)
            self._start_postfix()
        except PostfixStartError:
            self.stop()
            raise
        except Exception as exc:
            error = self._failure(f"{type(exc).__name__}: {exc}")
            self.stop()
            raise error from exc
        except BaseException:  # interrupted: leave nothing behind
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _build(self) -> None:
        r = self.root
        r.chmod(0o755)  # mkdtemp gives 0700; the postfix user must traverse it
        (r / "owner.pid").write_text(f"{os.getpid()}\n")
        for sub, owner, group, mode in TREE:
            (r / sub).mkdir()
            (r / sub).chmod(mode)
            shutil.chown(r / sub, owner, group)
        # The tree above is what `postfix-script check-fatal` would create (post-install
        # create-missing) and check-warn would audit: ~2 s of shell. `quick-start` skips both.
        (r / "queue" / "quick-start").touch()
        ca = trustme.CA()
        cert = ca.issue_cert(HOSTNAME, "localhost", "127.0.0.1")
        cert.private_key_and_cert_chain_pem.write_to_path(str(r / "certs" / "server.pem"))
        (r / "certs" / "server.pem").chmod(0o600)
        ca.cert_pem.write_to_path(str(r / "certs" / "ca.pem"))
        self.ca_file = str(r / "certs" / "ca.pem")
        if self.mailbox_setup is not None:
            from tests.infra.mailbox import prepare_mailbox

            self.mailbox = self.mailbox_setup(r)
            prepare_mailbox(r, self.mailbox, cert)
        _write(r / "etc" / "main.cf", main_cf(r, self.mailbox, self.nxdomain_dns))
        _write(r / "etc" / "sink.regexp", "/./ inbox/\n")
        _write(r / "etc" / "sender_logins", sender_logins())
        _write(r / "dv" / "dovecot.conf", dovecot_conf(r, self.cram_md5_trap, self.mailbox))
        _write(r / "dv" / "users", users_file(self.cram_md5_trap, self.mailbox is not None))
        (r / "dv" / "users").chmod(0o600)
        shutil.chown(r / "dv" / "users", "dovecot", "dovecot")  # read by Dovecot's auth process

    def _start_dovecot(self) -> None:
        conf = str(self.root / "dv" / "dovecot.conf")
        # Dovecot daemonises but its log child keeps stdout open: never wait on a pipe. Its
        # config errors go to stderr before log_path applies, so keep them in a file.
        with open(self.root / "dv" / "start.log", "wb") as out:
            proc = subprocess.run([DOVECOT, "-c", conf], stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=out, timeout=self.start_timeout, check=False)
        if proc.returncode != 0:
            raise self._failure(f"dovecot -c {conf} exited with {proc.returncode}")
        socket_path = self.root / "queue" / "private" / "auth"
        self._wait("Dovecot's auth socket", socket_path.exists)

    def _start_postfix(self) -> None:
        etc = str(self.root / "etc")
        for _attempt in range(3):  # another process may grab a port between pick and bind
            self.submission_port, self.smtps_port, self.sender_rules_port = _free_ports(3)
            _write(self.root / "etc" / "master.cf",
                   master_cf(self.host, self.submission_port, self.smtps_port,
                             self.sender_rules_port, self.root, self.nxdomain_dns))
            start = [POSTFIX, "-c", etc, "start"]
            if self._dns is not None:
                resolv = self.root / "etc" / "resolv.conf"
                resolv.write_text(f"nameserver {self._dns.address}\noptions attempts:1\n")
                start = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                         f"mount --bind {shlex.quote(str(resolv))} /etc/resolv.conf && "
                         f"exec {shlex.join(start)}"]
            code, output = _run(start, timeout=self.start_timeout)
            if code == 0:
                break
            # The master reports its own fatal errors (a failed bind, a bad master.cf) only
            # to syslog, absent here. Find them ourselves: bind the listeners, run the check.
            binds = self._bind_problems()
            if binds and all("Address already in use" in b for b in binds):
                continue
            check = "" if binds else _run([POSTFIX, "-c", etc, "check"], self.start_timeout)[1]
            raise self._failure(f"postfix -c {etc} start exited with {code}:\n{output}"
                                + "".join(f"{b}\n" for b in binds)
                                + (f"postfix check says:\n{check}" if check.strip() else ""))
        else:
            raise self._failure(f"postfix -c {etc} start: ports kept being taken")
        self._wait("the submission port's 220 greeting", lambda: self._greets(tls=False))
        self._wait("the implicit-TLS port's 220 greeting", lambda: self._greets(tls=True))

    def _bind_problems(self) -> list[str]:
        problems = []
        for port in (self.submission_port, self.smtps_port):
            with socket.socket() as sock:
                try:
                    sock.bind((self.host, port))
                except OSError as exc:
                    problems.append(f"cannot bind {self.host}:{port}: {exc.strerror}")
        return problems

    def _greets(self, *, tls: bool) -> bool:
        """A real readiness check: smtpd loads its certificate and answers, or it does not."""
        port = self.smtps_port if tls else self.submission_port
        try:
            with socket.create_connection((self.host, port), timeout=2) as raw:
                sock: socket.socket = raw
                if tls:
                    ctx = ssl.create_default_context(cafile=self.ca_file)
                    sock = ctx.wrap_socket(raw, server_hostname=self.hostname)
                ready = sock.recv(512).startswith(b"220 ")
                sock.sendall(b"QUIT\r\n")
                return ready
        except (OSError, ssl.SSLError):
            return False

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not ready():
            if time.monotonic() > deadline:
                raise self._failure(f"timed out after {self.start_timeout:.0f} s "
                                    f"waiting for {what}")
            time.sleep(0.02)

    def _failure(self, what: str) -> PostfixStartError:
        return PostfixStartError(f"throwaway Postfix/Dovecot in {self.root}: "
                                 f"{self._redact(what)}\n{self.log_text()}")

    # -- observe --

    def _read(self, name: str) -> str:
        try:
            return (self.root / name).read_text(errors="replace")
        except OSError:
            return ""

    def log_text(self) -> str:
        """Postfix's and Dovecot's logs, with the password (and its base64 forms) masked."""
        text = (f"--- postfix.log ---\n{self._read('postfix.log')}"
                f"--- dovecot.log ---\n{self._read('dv/start.log')}"
                f"{self._read('dv/dovecot.log')}")
        return self._redact(text)

    def received(self) -> list[EmailMessage]:
        """Every message delivered so far, oldest first (Maildir files sort by arrival)."""
        new = self.root / "sink" / "inbox" / "new"
        # Maildir: the virtual agent writes into tmp/ and renames into new/, so every file
        # seen here is complete.
        files = sorted(new.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name)) \
            if new.is_dir() else []
        parser = BytesParser(policy=email.policy.default)
        return [parser.parsebytes(p.read_bytes()) for p in files]

    def wait_for_message(self, message_id: str, timeout: float = 10.0) -> EmailMessage:
        """Delivery runs after the 250 to DATA; poll the Maildir with a bounded deadline."""
        deadline = time.monotonic() + timeout
        while True:
            for msg in self.received():
                if msg.get("Message-ID", "").strip() == message_id.strip():
                    return msg
            if time.monotonic() > deadline:
                raise AssertionError(f"no message {message_id} delivered within {timeout} s\n"
                                     f"{self.log_text()}")
            time.sleep(0.02)

    # -- stop --

    def stop(self) -> None:
        """Idempotent: stops Postfix and Dovecot, unregisters the directory, removes it."""
        if self not in _LIVE:
            return
        _LIVE.discard(self)
        _stop_tree(self.root)
        if self._dns is not None:
            self._dns.stop()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _update_alternates(remove=str(self.root / "etc"))


def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


atexit.register(_stop_all)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM'd session skips atexit and fixture teardown: clean up, then die of the
    signal as the default handler would have."""
    _stop_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _start_for_session(cram_md5_trap: bool) -> PostfixServer:
    """Starts a server for a session fixture. Missing packages or a failed start fail the
    tests (never skip them): a skipped conformance test would look like a passing one."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # leave anyone else's handler be
        with contextlib.suppress(ValueError):  # not in the main thread
            signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return PostfixServer(cram_md5_trap=cram_md5_trap).start()
    except PostfixStartError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def postfix() -> Iterator[PostfixServer]:
    """Postfix with AUTH PLAIN LOGIN, started once per session (mark tests `postfix`)."""
    server = _start_for_session(cram_md5_trap=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postfix_unknown_domains() -> Iterator[PostfixServer]:
    """Postfix whose DNS says NXDOMAIN to every name (its own mount namespace), for
    reject_unknown_sender_domain on the sender-rules port."""
    try:
        server = PostfixServer(nxdomain_dns=True).start()
    except PostfixStartError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postfix_cram_trap() -> Iterator[PostfixServer]:
    """Postfix advertising AUTH PLAIN LOGIN CRAM-MD5 where CRAM-MD5 always fails."""
    server = _start_for_session(cram_md5_trap=True)
    yield server
    server.stop()
