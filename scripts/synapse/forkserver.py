"""Start Synapse processes by forking a process that has already imported Synapse.

Run with Synapse's own Python (``.venv-synapse/bin/python``). Importing Synapse costs about two
seconds of CPU, most of a start; the test harness starts one Synapse per scenario, so it asks
this server to fork instead. Each child is a full Synapse, entered through the same
``synapse.app.homeserver.main()`` as ``python -m synapse.app.homeserver``, with its own argv,
environment, working directory and output file.

One thing a plain fork would share is Twisted's reactor, which Synapse installs at import: the
epoll instance and the waker pipe would be common to every child, so one child could swallow
another's wake-ups. Each child therefore gets a fresh epoll and a fresh waker before it runs.

Protocol, one JSON object per line: the harness writes
``{"args": [...], "cwd": ..., "env": {...}, "output": path}`` and reads ``{"pid": N}``; the
first line written here is ``{"ready": true}``. Children are reaped automatically (SIGCHLD is
ignored), so the harness watches them through a pidfd. EOF on stdin ends the server, and
its children with it.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import sys
import traceback
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def fresh_reactor() -> None:
    """Give this (forked) process its own epoll and waker instead of the inherited ones."""
    from twisted.internet import reactor

    r: Any = reactor
    old_waker = r.waker
    r._poller = select.epoll(1024)
    r._internalReaders.discard(old_waker)
    r._reads.discard(old_waker.fileno())  # epoll's tables hold fds, not objects
    r._selectables.pop(old_waker.fileno(), None)
    for fd in (old_waker.i, old_waker.o):
        os.close(fd)
    r.waker = None
    r.installWaker()
    if r._selectables.keys() != {r.waker.fileno()}:
        raise RuntimeError(f"unexpected reactor state after import: {r._selectables}")


def die_with_parent(parent: int) -> None:
    """SIGTERM this child when the fork server dies, which it does when the harness's pipe
    closes: a crashed test run then leaves no Synapse behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the server died before prctl took effect
        os._exit(1)


def child(request: dict[str, Any], entry: Any, parent: int) -> int:
    os.setsid()
    die_with_parent(parent)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [getattr(entry, "__module__", "synapse"), *request["args"]]
    fresh_reactor()
    try:
        entry()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def main() -> int:
    import synapse.app.homeserver  # type: ignore[import-not-found]  # Synapse's own venv

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # auto-reap: no zombies to wait for
    print(json.dumps({"ready": True}), flush=True)
    parent = os.getpid()
    while line := sys.stdin.readline():
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child(request, synapse.app.homeserver.main, parent)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
