"""The relay's durable queue: one SQLite file, WAL mode, ``synchronous=FULL``.

Why SQLite: one file, atomic transactions, crash-safe with the settings below, and readable by
``maildoctor relay status`` from another process while the relay writes (WAL lets readers and
the one writer proceed together). ``synchronous=FULL`` makes every COMMIT wait for fsync, so a
message whose INSERT has committed survives a power cut; the listener answers ``250`` only
after that COMMIT.

Only what the relay *promises* needs FULL: accepting a message (the ``250``). Its later
state changes (delivered, postponed, dead) are committed with ``synchronous=NORMAL``, which in
WAL mode survives a crash of the process but not of the machine, and costs no fsync; the next
FULL commit makes them durable too. Losing one to a power cut means a message is tried again:
a possible duplicate, never a loss, which is the relay's contract anyway. This halves the
fsyncs per mail.

A message moves ``queued -> delivered`` or ``queued -> dead``; ``retry`` moves a dead one back.
Delivered rows keep their envelope and outcome but drop the body, so the file stays small.
Recipients the upstream refused are kept on the delivered row (``refused``, the bounce
record); those it refused *temporarily* get a new queued row of their own.

:class:`Queue` is plain and synchronous: the relay calls it from one store thread
(``store.py``), the CLI and tests call it directly.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

from maildoctor import errors
from maildoctor.relay.records import (
    NewMessage,
    QueuedMessage,
    UpstreamError,
    UpstreamStatus,
    message_from_row,
)

__all__ = ["STATES", "NewMessage", "Queue", "QueuedMessage", "UpstreamError", "UpstreamStatus"]

STATES = ("queued", "delivered", "dead")
WAL_LIMIT = 8 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL DEFAULT 'queued',
    received_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    next_attempt REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    message_id TEXT,
    size INTEGER NOT NULL,
    client TEXT,
    data BLOB,
    upstream TEXT,
    last_error TEXT,
    last_reason TEXT,
    refused TEXT,
    parent INTEGER,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (state, next_attempt);
CREATE TABLE IF NOT EXISTS upstreams (
    upstream TEXT PRIMARY KEY,
    last_error TEXT,
    last_reason TEXT,
    last_fix TEXT,
    error_at REAL,
    ok_at REAL
);
"""

_COLUMNS = ("id, state, received_at, expires_at, next_attempt, attempts, sender, recipients, "
            "message_id, size, client, upstream, last_error, last_reason, refused, parent, "
            "finished_at")


def _open_readonly(path: str) -> sqlite3.Connection:
    """The queue for reading only: nothing is created or changed, so ``relay status`` works
    on a read-only mount or as a monitoring user who may only read the files.

    ``mode=ro`` reads a live queue (the relay keeps its ``-wal`` and ``-shm`` files). A queue
    whose relay has stopped has neither, and a reader that may not create the ``-shm`` file
    cannot use ``mode=ro`` on a WAL database; with no ``-wal`` file everything is in the main
    file and nothing can change it behind our back, which is exactly SQLite's ``immutable``.
    """
    uri = f"file:{urllib.parse.quote(path)}"
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=10.0, isolation_level=None,
                             check_same_thread=False)
        db.execute("SELECT 1 FROM messages LIMIT 1").fetchall()
        return db
    except sqlite3.OperationalError:
        wal = f"{path}-wal"
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            raise
    db = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None,
                         check_same_thread=False)
    db.execute("SELECT 1 FROM messages LIMIT 1").fetchall()
    return db


class Queue:
    """The queue file at ``path``. ``create=False`` refuses a missing file (for the CLI)."""

    def __init__(self, path: str, *, create: bool = True, max_age: float = 5 * 86400,
                 readonly: bool = False) -> None:
        if (not create or readonly) and not os.path.exists(path):
            raise errors.UsageError(f"there is no relay queue at {path} (has the relay run? "
                                    "give its --queue)")
        self.path = path
        self.max_age = max_age
        self.readonly = readonly
        try:
            if readonly:
                self._db = _open_readonly(path)
                self._full = True
                self._has_role = "role" in self._columns("upstreams")
                return
            # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves, so a
            # transaction is exactly what each method says it is.
            self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # A WAL file that once grew large is cut back after a checkpoint.
            self._db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            self._full = True
            self._db.executescript(_SCHEMA)
            if "role" not in self._columns("upstreams"):
                self._db.execute("ALTER TABLE upstreams ADD COLUMN role TEXT")
            self._has_role = True
        except sqlite3.Error as exc:
            how = "read" if readonly else "open"
            why = ""
            if not readonly and not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
                why = (" (its directory is read-only for this user; `relay status` and "
                       "`relay list` only read the queue, changes need the relay's user)")
            raise errors.UsageError(f"cannot {how} the relay queue {path}: {exc}{why}") from exc

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})").fetchall()}

    def close(self) -> None:
        self._db.close()

    def _write(self, statements: Iterable[tuple[str, Sequence[Any]]], *,
               durable: bool = True) -> list[int]:
        """Run ``statements`` in one transaction; the rowid of each INSERT, in order.

        ``durable=False``: commit without fsync (see the module docstring for when).
        Raises :class:`~maildoctor.errors.StorageError` if the transaction did not commit
        (disk full, I/O error); nothing of it is then in the file.
        """
        ids: list[int] = []
        self._transaction(statements, durable, ids)
        return ids

    def _change(self, sql: str, params: Sequence[Any], *, durable: bool = False) -> int:
        """One statement in its own transaction; how many rows it changed."""
        changed: list[int] = []
        self._transaction([(sql, params)], durable, [], changed)
        return changed[0]

    def _transaction(self, statements: Iterable[tuple[str, Sequence[Any]]], durable: bool,
                     ids: list[int], changed: list[int] | None = None) -> None:
        if self.readonly:
            raise errors.UsageError(f"the relay queue {self.path} was opened read-only")
        cur = self._db.cursor()
        try:
            if durable != self._full:
                cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._full = durable
            cur.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                cur.execute(sql, params)
                if changed is not None:
                    changed.append(cur.rowcount)
                if sql.lstrip().upper().startswith("INSERT") and cur.lastrowid is not None:
                    ids.append(cur.lastrowid)
            cur.execute("COMMIT")
        except sqlite3.Error as exc:
            # SQLite rolls back by itself on SQLITE_FULL and some I/O errors; a ROLLBACK then
            # would fail ("no transaction is active") and hide the real error.
            self._rollback()
            raise errors.StorageError(f"could not write to the relay queue {self.path}: "
                                      f"{exc}") from exc
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    # -- the listener's side --------------------------------------------------------------

    def add_many(self, messages: Sequence[NewMessage], now: float | None = None) -> list[int]:
        """Store ``messages`` durably in one transaction; their ids."""
        now = time.time() if now is None else now
        sql = ("INSERT INTO messages (received_at, expires_at, next_attempt, sender, "
               "recipients, message_id, size, client, data) VALUES (?,?,?,?,?,?,?,?,?)")
        return self._write((sql, (now, now + self.max_age, now, m.sender,
                                  json.dumps(list(m.recipients)), m.message_id, len(m.data),
                                  m.client, m.data)) for m in messages)

    # -- the delivery side ----------------------------------------------------------------

    def due(self, now: float, exclude: Iterable[int] = (), limit: int = 10
            ) -> list[QueuedMessage]:
        """Queued messages whose next attempt has come, oldest first, with their data."""
        skip = sorted(exclude)
        marks = ",".join("?" * len(skip))
        rows = self._db.execute(
            f"SELECT {_COLUMNS}, data FROM messages WHERE state='queued' AND next_attempt<=? "
            f"{f'AND id NOT IN ({marks})' if skip else ''} ORDER BY next_attempt, id LIMIT ?",
            (now, *skip, limit)).fetchall()
        return [message_from_row(r[:-1], r[-1]) for r in rows]

    def due_and_next(self, now: float, exclude: Iterable[int] = (), limit: int = 10
                     ) -> tuple[builtins.list[QueuedMessage], float | None]:
        """:meth:`due`, and when the next of the others is due (None: nothing queued)."""
        skip = frozenset(exclude)
        found = self.due(now, skip, limit)
        return found, self.next_due(skip | {m.id for m in found})

    def next_due(self, exclude: Iterable[int] = ()) -> float | None:
        skip = sorted(exclude)
        marks = ",".join("?" * len(skip))
        row = self._db.execute(
            "SELECT MIN(next_attempt) FROM messages WHERE state='queued'"
            f"{f' AND id NOT IN ({marks})' if skip else ''}", skip).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def delivered(self, message: QueuedMessage, upstream: str, refused: dict[str, str],
                  retry_recipients: Sequence[str] = (), now: float | None = None, *,
                  failed: Sequence[UpstreamError] = ()) -> None:
        """Mark delivered (body dropped); temporarily refused recipients get a new row.
        ``failed``: upstreams tried before, in vain (the primary, when the fallback took it)."""
        now = time.time() if now is None else now
        statements: list[tuple[str, Sequence[Any]]] = [(
            "UPDATE messages SET state='delivered', attempts=attempts+1, upstream=?, "
            "refused=?, finished_at=?, data=NULL WHERE id=? AND state='queued'",
            (upstream, json.dumps(refused) if refused else None, now, message.id))]
        if retry_recipients and message.data is not None:
            statements.append((
                "INSERT INTO messages (received_at, expires_at, next_attempt, attempts, "
                "sender, recipients, message_id, size, client, data, parent) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (message.received_at, message.expires_at, now, message.attempts + 1,
                 message.sender, json.dumps(list(retry_recipients)), message.message_id,
                 message.size, message.client, message.data, message.id)))
        statements.append(self._upstream_ok(upstream, now))
        statements.extend(self._upstream_error(f, now) for f in failed)
        # A new row for temporarily refused recipients is a promise like an accepted mail.
        self._write(statements, durable=bool(retry_recipients) and message.data is not None)

    def hurry(self, now: float | None = None) -> int:
        """Make every queued message due now (the upstream is back); how many."""
        now = time.time() if now is None else now
        return self._change("UPDATE messages SET next_attempt=? WHERE state='queued' AND "
                            "next_attempt>?", (now, now))

    def postpone(self, message: QueuedMessage, upstream: str, next_attempt: float,
                 error: str, reason: str, fix: str, now: float | None = None, *,
                 failed: Sequence[UpstreamError] | None = None) -> None:
        """Try again at ``next_attempt``; ``failed`` (default: this error at ``upstream``)
        is recorded on each upstream tried."""
        now = time.time() if now is None else now
        if failed is None:
            failed = [UpstreamError(upstream, error, reason, fix)]
        self._write([(
            "UPDATE messages SET attempts=attempts+1, next_attempt=?, upstream=?, "
            "last_error=?, last_reason=? WHERE id=? AND state='queued'",
            (next_attempt, upstream, error, reason, message.id)),
            *(self._upstream_error(f, now) for f in failed)], durable=False)

    def bury(self, message: QueuedMessage, upstream: str, error: str, reason: str, fix: str,
             *, server_failed: bool, now: float | None = None,
             failed: Sequence[UpstreamError] = ()) -> None:
        """Dead-letter ``message``; ``server_failed`` also records the error on the upstream;
        ``failed``: other upstreams tried in vain before."""
        now = time.time() if now is None else now
        statements: list[tuple[str, Sequence[Any]]] = [(
            "UPDATE messages SET state='dead', attempts=attempts+1, upstream=?, last_error=?, "
            "last_reason=?, finished_at=? WHERE id=? AND state='queued'",
            (upstream, error, reason, now, message.id))]
        if server_failed:
            statements.append(self._upstream_error(UpstreamError(upstream, error, reason, fix),
                                                   now))
        statements.extend(self._upstream_error(f, now) for f in failed)
        self._write(statements, durable=False)

    @staticmethod
    def _upstream_ok(upstream: str, now: float) -> tuple[str, Sequence[Any]]:
        return ("INSERT INTO upstreams (upstream, ok_at) VALUES (?, ?) "
                "ON CONFLICT(upstream) DO UPDATE SET ok_at=excluded.ok_at", (upstream, now))

    @staticmethod
    def _upstream_error(failure: UpstreamError, now: float) -> tuple[str, Sequence[Any]]:
        return ("INSERT INTO upstreams (upstream, last_error, last_reason, last_fix, error_at) "
                "VALUES (?,?,?,?,?) ON CONFLICT(upstream) DO UPDATE SET "
                "last_error=excluded.last_error, last_reason=excluded.last_reason, "
                "last_fix=excluded.last_fix, error_at=excluded.error_at",
                (failure.upstream, failure.error, failure.reason, failure.fix, now))

    # -- the operator's side --------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        found = dict(self._db.execute(
            "SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall())
        return {state: int(found.get(state, 0)) for state in STATES}

    def list(self, state: str | None = None, limit: int | None = None) -> list[QueuedMessage]:
        """Messages (without bodies), oldest first; ``state`` filters."""
        if state is not None and state not in STATES:
            raise errors.UsageError(f"unknown state {state!r}; expected one of {STATES}")
        where = "WHERE state=?" if state else ""
        params: list[Any] = [state] if state else []
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM messages {where} ORDER BY id "
                                f"LIMIT ?", (*params, -1 if limit is None else limit))
        return [message_from_row(r) for r in rows.fetchall()]

    def bounces(self, limit: int = 20) -> builtins.list[QueuedMessage]:
        """Delivered messages with recipients the upstream refused, newest first."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM messages WHERE refused IS NOT NULL "
                                "ORDER BY id DESC LIMIT ?", (limit,))
        return [message_from_row(r) for r in rows.fetchall()]

    def get(self, message_id: int) -> QueuedMessage | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM messages WHERE id=?",
                               (message_id,)).fetchone()
        return None if row is None else message_from_row(row)

    def retry(self, message_id: int | None = None, now: float | None = None) -> int:
        """Make a queued or dead message (or all, with None) due now; how many changed.

        A dead message gets a fresh lifetime as long as its first one, so a message that
        died of old age does not die again at once.
        """
        now = time.time() if now is None else now
        sql = ("UPDATE messages SET state='queued', next_attempt=?, finished_at=NULL, "
               "expires_at=MAX(expires_at, ? + (expires_at - received_at)) "
               "WHERE state IN ('queued', 'dead') AND data IS NOT NULL")
        params: list[Any] = [now, now]
        if message_id is not None:
            sql += " AND id=?"
            params.append(message_id)
        return self._change(sql, params)

    def drop(self, message_id: int) -> bool:
        """Delete a message for good; False if there is no such message."""
        return self._change("DELETE FROM messages WHERE id=?", (message_id,)) > 0

    def prune(self, before: float) -> int:
        """Forget delivered messages finished before ``before`` (``--keep``); how many.

        SQLite reuses the freed pages, so under a steady flow the file stops growing."""
        return self._change("DELETE FROM messages WHERE state='delivered' AND finished_at<?",
                            (before,))

    def oldest_age(self, now: float | None = None) -> float | None:
        """Seconds since the oldest still-queued message was accepted; None if none is."""
        now = time.time() if now is None else now
        row = self._db.execute(
            "SELECT MIN(received_at) FROM messages WHERE state='queued'").fetchone()
        return None if row is None or row[0] is None else max(0.0, now - float(row[0]))

    def register_upstreams(self, roles: dict[str, str]) -> None:
        """Note which upstream is the primary and which the fallback (``relay status``)."""
        self._write([("UPDATE upstreams SET role=NULL", ()), *(
            ("INSERT INTO upstreams (upstream, role) VALUES (?, ?) ON CONFLICT(upstream) "
             "DO UPDATE SET role=excluded.role", (name, role)) for name, role in roles.items())],
            durable=False)

    def upstreams(self) -> builtins.list[UpstreamStatus]:
        """Each upstream's last outcome, the primary first, then the fallback."""
        role = "role" if self._has_role else "NULL"
        rows = self._db.execute(f"SELECT upstream, last_error, last_reason, last_fix, error_at, "
                                f"ok_at, {role} FROM upstreams").fetchall()
        delivered = dict(self._db.execute(
            "SELECT upstream, COUNT(*) FROM messages WHERE state='delivered' "
            "GROUP BY upstream").fetchall())
        order = {"primary": 0, "fallback": 1}
        found = [UpstreamStatus(upstream=r[0], last_error=r[1], last_reason=r[2], last_fix=r[3],
                                error_at=r[4], ok_at=r[5], role=r[6],
                                delivered=int(delivered.get(r[0], 0))) for r in rows]
        return sorted(found, key=lambda u: (order.get(u.role or "", 2), u.upstream))
