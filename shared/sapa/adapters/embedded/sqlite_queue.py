"""A durable Cloud-Tasks-like queue in one SQLite file: the embedded `TaskQueue`. Its delivery
worker is `sapa.adapters.embedded.task_worker`, its operators' command line
`python -m sapa.adapters.embedded.queue_cli`."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sapa.ports import Clock, Task

log = logging.getLogger(__name__)

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    schedule_at REAL NOT NULL,
    created_at  REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    responses   INTEGER NOT NULL DEFAULT 0,
    lease_until REAL,
    last_error  TEXT,
    last_status INTEGER
);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks (schedule_at, id);
CREATE TABLE IF NOT EXISTS task_names (
    name       TEXT PRIMARY KEY,
    created_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_names_age ON task_names (created_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    responses   INTEGER NOT NULL,
    last_error  TEXT,
    last_status INTEGER,
    created_at  REAL NOT NULL,
    failed_at   REAL NOT NULL
);
"""

# Cloud Tasks queue ids allow letters, digits and hyphens; "_" is accepted for function names.
_KIND = re.compile(r"[A-Za-z0-9_-]{1,100}")
# Names travel in an HTTP header: printable ASCII only, no control characters.
_NAME = re.compile(r"[\x21-\x7e]{1,500}")
_ERROR_MAX = 500


def _ts(value: datetime) -> float:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("task times must be timezone-aware")
    return value.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class LeasedTask:
    """A task handed to one worker until `lease_until`; deliver it, then `complete` or `fail` it.

    `retry_count` and `execution_count` are what Cloud Tasks sends as `X-CloudTasks-TaskRetryCount`
    (earlier delivery attempts) and `X-CloudTasks-TaskExecutionCount` (earlier attempts that got an
    HTTP response). `schedule_at` is the time this attempt was scheduled for (the ETA).
    """

    id: int
    kind: str
    name: str
    payload: dict[str, Any]
    schedule_at: datetime
    created_at: datetime
    lease_until: datetime
    retry_count: int
    execution_count: int
    last_status: int | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A task that failed `max_attempts` times; it stays here until replayed with `replay_dead`."""

    id: int
    kind: str
    name: str
    payload: dict[str, Any]
    attempts: int
    execution_count: int
    last_error: str | None
    last_status: int | None
    created_at: datetime
    failed_at: datetime


@dataclass(frozen=True)
class QueueStats:
    """Counts of the queue's tasks: `pending` = `due` + `leased` + `scheduled`."""

    pending: int
    due: int
    leased: int
    scheduled: int
    dead: int


class SqliteTaskQueue:
    """The embedded `TaskQueue`: Cloud Tasks semantics on a SQLite file (WAL mode).

    Delivery is at-least-once. `lease` hands due tasks to a worker for `lease_seconds`; a worker
    then calls `complete` (the task is deleted) or `fail` (it is retried with exponential backoff
    `min(max_backoff, min_backoff * 2 ** (attempts - 1))` seconds, and moved to the dead-letter
    table after `max_attempts` attempts). A worker that dies leaves its lease to expire, and the
    task is delivered again; that expired attempt counts towards `max_attempts`.

    Task names are remembered for `name_retention_days` after enqueue (even after completion),
    so enqueueing the same named task again is a no-op; older names are pruned at construction.

    Several objects, threads and processes may share the file: every call opens its own
    connection and every write is one `BEGIN IMMEDIATE` transaction. Times are stored as UTC
    unix seconds; payloads as JSON. `clock` (default: the system clock) decides what is due.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_attempts: int = 8,
        min_backoff: float = 1.0,
        max_backoff: float = 300.0,
        clock: Clock | None = None,
        name_retention_days: float = 30.0,
        busy_timeout: float = 10.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min_backoff < 0 or max_backoff < min_backoff:
            raise ValueError("need 0 <= min_backoff <= max_backoff")
        if clock is None:
            from sapa.adapters.clock import SystemClock

            clock = SystemClock()
        self.path = Path(path)
        self.max_attempts = max_attempts
        self.min_backoff = float(min_backoff)
        self.max_backoff = float(max_backoff)
        self.clock = clock
        self._busy_ms = max(0, int(busy_timeout * 1000))
        self._local = threading.local()
        self._listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()
        self._init_db(timedelta(days=name_retention_days))

    # -- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection per thread, kept open: opening and closing one per call made each
        # enqueue pay a WAL checkpoint on close (the webhook's largest cost, per the benchmark).
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_ms / 1000,
                isolation_level=None,
                check_same_thread=True,
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            # WAL + NORMAL: a commit survives a process crash; only a power cut may lose the
            # last transactions (the same trade the case store makes).
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
        yield conn

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _init_db(self, retention: timedelta) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("task queue %s: journal mode is %s, not WAL", self.path, mode)
        with self._write() as conn:
            for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            cutoff = _ts(self.clock.now() - retention)
            pruned = conn.execute(
                "DELETE FROM task_names WHERE created_at < ?"
                " AND name NOT IN (SELECT name FROM tasks)"
                " AND name NOT IN (SELECT name FROM dead_letters)",
                (cutoff,),
            ).rowcount
        if pruned:
            log.info(
                "task queue %s: pruned %d task names older than %s", self.path, pruned, retention
            )

    def _now(self) -> float:
        return _ts(self.clock.now())

    def _notify(self) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn()
            except Exception:
                log.exception("task queue listener failed")

    def _bury(self, conn: sqlite3.Connection, row: sqlite3.Row, now: float, **last: Any) -> None:
        """Move `row` to the dead-letter table (inside the caller's transaction)."""
        values = {**dict(row), **last}
        conn.execute(
            "INSERT INTO dead_letters (name, kind, payload, attempts, responses, last_error,"
            " last_status, created_at, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                values["name"],
                values["kind"],
                values["payload"],
                values["attempts"],
                values["responses"],
                values["last_error"],
                values["last_status"],
                values["created_at"],
                now,
            ),
        )
        conn.execute("DELETE FROM tasks WHERE id = ?", (row["id"],))
        log.error(
            "task %s (%s) moved to dead letters after %d attempts: %s",
            values["name"],
            values["kind"],
            values["attempts"],
            values["last_error"],
        )

    # -- the TaskQueue port ---------------------------------------------------------------------

    def enqueue(self, task: Task) -> bool:
        """Queue `task`; False (and nothing queued) if a task of that name was ever enqueued.

        Unnamed tasks get a random name. `schedule_at` must be timezone-aware (None = now).
        Raises ValueError for a kind or name that cannot be delivered, TypeError for a payload
        that is not JSON-serialisable.
        """
        if not _KIND.fullmatch(task.kind):
            raise ValueError(f"invalid task kind {task.kind!r}")
        name = task.name if task.name is not None else uuid.uuid4().hex
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid task name {name!r}")
        if not isinstance(task.payload, dict):
            raise TypeError("task payload must be a dict")
        payload = json.dumps(task.payload, ensure_ascii=False, separators=(",", ":"))
        now = self._now()
        schedule = now if task.schedule_at is None else _ts(task.schedule_at)
        with self._connect() as conn:
            # Most repeats of a deterministic name are answered by a read, with no write lock.
            if conn.execute("SELECT 1 FROM task_names WHERE name = ?", (name,)).fetchone():
                log.debug("task %s (%s) already enqueued once: deduped", name, task.kind)
                return False
        with self._write() as conn:
            fresh = conn.execute(
                "INSERT OR IGNORE INTO task_names (name, created_at) VALUES (?, ?)", (name, now)
            ).rowcount
            if not fresh:
                log.debug("task %s (%s) already enqueued once: deduped", name, task.kind)
                return False
            conn.execute(
                "INSERT INTO tasks (name, kind, payload, schedule_at, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, task.kind, payload, schedule, now),
            )
        log.debug("task %s (%s) enqueued for %s", name, task.kind, _dt(schedule).isoformat())
        self._notify()
        return True

    # -- worker side ----------------------------------------------------------------------------

    def lease(self, limit: int, lease_seconds: float) -> list[LeasedTask]:
        """Atomically lease up to `limit` due tasks, the earliest scheduled first.

        A task is due when its schedule time has passed and it has no unexpired lease. Each
        lease counts as a delivery attempt; a task whose lease expired on its last allowed attempt
        goes to the dead-letter table instead of being leased again.
        """
        if limit <= 0:
            return []
        now = self._now()
        until = now + lease_seconds
        with self._write() as conn:
            for row in conn.execute(
                "SELECT * FROM tasks WHERE lease_until IS NOT NULL AND lease_until <= ?"
                " AND attempts >= ?",
                (now, self.max_attempts),
            ).fetchall():
                self._bury(conn, row, now, last_error="lease expired: no result from the worker")
            rows = conn.execute(
                "SELECT * FROM tasks WHERE schedule_at <= ?"
                " AND (lease_until IS NULL OR lease_until <= ?)"
                " ORDER BY schedule_at, id LIMIT ?",
                (now, now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE tasks SET lease_until = ?, attempts = attempts + 1 WHERE id = ?",
                [(until, row["id"]) for row in rows],
            )
        return [
            LeasedTask(
                id=row["id"],
                kind=row["kind"],
                name=row["name"],
                payload=json.loads(row["payload"]),
                schedule_at=_dt(row["schedule_at"]),
                created_at=_dt(row["created_at"]),
                lease_until=_dt(until),
                retry_count=row["attempts"],
                execution_count=row["responses"],
                last_status=row["last_status"],
            )
            for row in rows
        ]

    def release_leases(self) -> int:
        """Make every leased task due again now (its attempt still counts); how many were.

        For a worker starting where a killed one of the same data left leases: without this
        they wait for their leases to run out. Another live worker on the same file would get
        those tasks delivered twice, which at-least-once delivery allows. A task that was on
        its last attempt goes to the dead letters, as when its lease expires: a task that kills
        the server every time must not do so forever."""
        now = self._now()
        with self._write() as conn:
            for row in conn.execute(
                "SELECT * FROM tasks WHERE lease_until IS NOT NULL AND attempts >= ?",
                (self.max_attempts,),
            ).fetchall():
                self._bury(conn, row, now, last_error="the worker stopped during the attempt")
            released = conn.execute(
                "UPDATE tasks SET lease_until = NULL WHERE lease_until IS NOT NULL"
            ).rowcount
        if released:
            self._notify()
        return int(released)

    def complete(self, task_id: int) -> None:
        """Delete a delivered task (its name stays remembered for dedupe)."""
        with self._write() as conn:
            gone = conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,)).rowcount
        if not gone:
            log.debug("complete: task %d was no longer queued", task_id)

    def fail(
        self,
        task_id: int,
        error: str,
        *,
        status: int | None = None,
        retry_count: int | None = None,
    ) -> bool:
        """Record a failed delivery; True if the task will be delivered again.

        The task is rescheduled after the backoff, or moved to the dead-letter table (False)
        when this was attempt `max_attempts`. `status` is the HTTP status if the target answered
        (None for connection errors and timeouts). Pass the lease's `retry_count` to ignore a
        stale failure of a task that has been leased again since its lease expired. A task that
        is no longer queued (completed meanwhile) is left alone and gives False.
        """
        error = error[:_ERROR_MAX]
        now = self._now()
        with self._write() as conn:
            row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                log.debug("fail: task %d was no longer queued", task_id)
                return False
            leased = row["lease_until"] is not None
            if retry_count is not None and (not leased or row["attempts"] != retry_count + 1):
                log.info("fail: ignoring a stale result for task %s", row["name"])
                return True
            attempts = row["attempts"] if leased else row["attempts"] + 1
            responses = row["responses"] + (status is not None)
            if attempts >= self.max_attempts:
                self._bury(
                    conn,
                    row,
                    now,
                    attempts=attempts,
                    responses=responses,
                    last_error=error,
                    last_status=status,
                )
                return False
            delay = self.backoff(attempts)
            conn.execute(
                "UPDATE tasks SET schedule_at = ?, lease_until = NULL, attempts = ?,"
                " responses = ?, last_error = ?, last_status = ? WHERE id = ?",
                (now + delay, attempts, responses, error, status, task_id),
            )
        log.warning(
            "task %s (%s) attempt %d failed (%s); retry in %.1fs",
            row["name"],
            row["kind"],
            attempts,
            status if status is not None else "no response",
            delay,
        )
        return True

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after `attempts` failed attempts (1 = the first failure)."""
        doublings = min(max(attempts - 1, 0), 64)
        return min(self.max_backoff, self.min_backoff * 2.0**doublings)

    # -- operations -----------------------------------------------------------------------------

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead-lettered task, oldest failure first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM dead_letters ORDER BY failed_at, id").fetchall()
        return [
            DeadLetter(
                id=row["id"],
                kind=row["kind"],
                name=row["name"],
                payload=json.loads(row["payload"]),
                attempts=row["attempts"],
                execution_count=row["responses"],
                last_error=row["last_error"],
                last_status=row["last_status"],
                created_at=_dt(row["created_at"]),
                failed_at=_dt(row["failed_at"]),
            )
            for row in rows
        ]

    def replay_dead(self, dead_id: int) -> bool:
        """Put a dead letter back in the queue, due now, with its attempts reset.

        False if there is no such dead letter, or a task of the same name is queued already.
        """
        now = self._now()
        with self._write() as conn:
            row = conn.execute("SELECT * FROM dead_letters WHERE id = ?", (dead_id,)).fetchone()
            if row is None:
                return False
            if conn.execute("SELECT 1 FROM tasks WHERE name = ?", (row["name"],)).fetchone():
                log.warning("replay: task %s is already queued", row["name"])
                return False
            conn.execute(
                "INSERT INTO tasks (name, kind, payload, schedule_at, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (row["name"], row["kind"], row["payload"], now, row["created_at"]),
            )
            conn.execute(
                "INSERT INTO task_names (name, created_at) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET created_at = excluded.created_at",
                (row["name"], now),
            )
            conn.execute("DELETE FROM dead_letters WHERE id = ?", (dead_id,))
        log.info("replayed dead letter %d: task %s (%s)", dead_id, row["name"], row["kind"])
        self._notify()
        return True

    def pending(self) -> int:
        """Tasks still in the queue: due, leased or scheduled for later."""
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])

    def stats(self) -> QueueStats:
        """Counts of due, leased, later-scheduled and dead-lettered tasks."""
        now = self._now()
        with self._connect() as conn:
            row = conn.execute(
                "SELECT COUNT(*),"
                " COALESCE(SUM(lease_until > ?), 0),"
                " COALESCE(SUM(schedule_at > ? AND (lease_until IS NULL OR lease_until <= ?)), 0)"
                " FROM tasks",
                (now, now, now),
            ).fetchone()
            dead = conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        pending, leased, scheduled = (int(v) for v in row)
        return QueueStats(
            pending=pending,
            due=pending - leased - scheduled,
            leased=leased,
            scheduled=scheduled,
            dead=int(dead),
        )

    def add_listener(self, fn: Callable[[], None]) -> None:
        """Call `fn()` after every enqueue and replay (so an in-process worker wakes at once).

        `fn` runs on the enqueuing thread after the commit; it must be quick and not raise.
        """
        with self._listeners_lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[], None]) -> None:
        """Stop calling `fn` (no error if it was not registered)."""
        with self._listeners_lock:
            if fn in self._listeners:
                self._listeners.remove(fn)
