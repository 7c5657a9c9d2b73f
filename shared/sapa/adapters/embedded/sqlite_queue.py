"""A durable Cloud-Tasks-like queue in one SQLite file, and its HTTP delivery worker."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sapa.ports import Clock, Task

if TYPE_CHECKING:  # the worker's HTTP client: a function that only enqueues never loads it
    import requests

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


class TaskWorker:
    """Delivers a `SqliteTaskQueue`'s tasks the way Cloud Tasks calls an HTTP target.

    Each task is a `POST {target_base}/tasks/{kind}` with the payload as JSON body, a bearer
    `token`, and Cloud Tasks' `X-CloudTasks-*` headers. A 2xx answer completes the task;
    anything else (other status, connection error, timeout after `request_timeout`) fails it,
    which retries with backoff or dead-letters it. `start` runs `concurrency` daemon threads that
    wake on every enqueue (through a queue listener) or after `poll_interval` seconds; `stop`
    ends them. `run_once` delivers what is due synchronously, for tests and scripts.

    Proxy settings from the environment are ignored: the target is normally this machine.
    """

    def __init__(
        self,
        queue: SqliteTaskQueue,
        target_base: str,
        token: str,
        *,
        concurrency: int = 4,
        poll_interval: float = 0.25,
        lease_seconds: float = 60.0,
        request_timeout: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if lease_seconds <= request_timeout:
            raise ValueError("lease_seconds must exceed request_timeout")
        self.queue = queue
        self.target_base = target_base.rstrip("/")
        self._token = token
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.request_timeout = request_timeout
        self._cond = threading.Condition()
        self._generation = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"TaskWorker(target_base={self.target_base!r}, concurrency={self.concurrency})"

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between `start` and `stop`."""
        return bool(self._threads)

    def start(self) -> None:
        """Start the delivery threads (daemon threads; call `stop` for a clean shutdown)."""
        with self._cond:
            if self._threads:
                raise RuntimeError("task worker already started")
            self._stopping = False
            self._threads = [
                threading.Thread(target=self._loop, name=f"sapa-tasks-{i}", daemon=True)
                for i in range(self.concurrency)
            ]
        self.queue.add_listener(self.wake)
        for thread in self._threads:
            thread.start()
        log.info("task worker started: %d threads → %s", self.concurrency, self.target_base)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads, waiting up to `timeout` seconds in all for deliveries in flight.

        A delivery still running after that finishes in the background; if the process exits
        first, its lease expires and the task is delivered again.
        """
        self.queue.remove_listener(self.wake)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            log.warning("task worker stop: %s still delivering", ", ".join(alive))
        elif threads:
            log.info("task worker stopped")

    def wake(self) -> None:
        """Make idle delivery threads look for due tasks now (the queue's enqueue listener)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    # -- delivery -------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Lease and deliver, one by one on this thread, every task due now.

        Returns the number of delivery attempts made (successful or not).
        """
        attempts = 0
        with self._session() as session:
            while leased := self.queue.lease(1, self.lease_seconds):
                for task in leased:
                    self.deliver(task, session)
                    attempts += 1
        return attempts

    def deliver(self, task: LeasedTask, session: requests.Session | None = None) -> bool:
        """POST one leased task to its target and complete or fail it; True on a 2xx answer."""
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self._token}",
            "User-Agent": "Google-Cloud-Tasks",
            "X-CloudTasks-QueueName": task.kind,
            "X-CloudTasks-TaskName": task.name,
            "X-CloudTasks-TaskRetryCount": str(task.retry_count),
            "X-CloudTasks-TaskExecutionCount": str(task.execution_count),
            "X-CloudTasks-TaskETA": f"{task.schedule_at.timestamp():.6f}",
        }
        if task.last_status is not None:
            headers["X-CloudTasks-TaskPreviousResponse"] = str(task.last_status)
        import requests

        body = json.dumps(task.payload, ensure_ascii=False, separators=(",", ":")).encode()
        url = f"{self.target_base}/tasks/{task.kind}"
        own = session is None
        http = session if session is not None else self._new_session()
        try:
            response = http.post(
                url, data=body, headers=headers, timeout=self.request_timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            self.queue.fail(task.id, f"{type(exc).__name__}: {exc}", retry_count=task.retry_count)
            return False
        except Exception as exc:  # a bug must not kill the worker thread
            log.exception("task %s (%s): delivery crashed", task.name, task.kind)
            self.queue.fail(task.id, f"{type(exc).__name__}: {exc}", retry_count=task.retry_count)
            return False
        finally:
            if own:
                http.close()
        if 200 <= response.status_code < 300:
            self.queue.complete(task.id)
            log.debug("task %s (%s) delivered: %d", task.name, task.kind, response.status_code)
            return True
        excerpt = " ".join(response.text[:200].split())
        self.queue.fail(
            task.id,
            f"HTTP {response.status_code}: {excerpt}",
            status=response.status_code,
            retry_count=task.retry_count,
        )
        return False

    @staticmethod
    def _new_session() -> requests.Session:
        import requests

        session = requests.Session()
        session.trust_env = False
        return session

    @contextmanager
    def _session(self) -> Iterator[requests.Session]:
        session = self._new_session()
        try:
            yield session
        finally:
            session.close()

    def _loop(self) -> None:
        with self._session() as session:
            while True:
                with self._cond:
                    if self._stopping:
                        return
                    generation = self._generation
                try:
                    leased = self.queue.lease(1, self.lease_seconds)
                    for task in leased:
                        self.deliver(task, session)
                except Exception:
                    log.exception("task worker: queue error")
                    leased = []
                if leased:
                    continue
                with self._cond:
                    if not self._stopping and self._generation == generation:
                        self._cond.wait(self.poll_interval)


# -- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI: `python -m sapa.adapters.embedded.sqlite_queue [--db FILE] COMMAND`.

    Commands: `stats`, `dead [--verbose]` (payloads only with --verbose), `replay ID`.
    Returns the exit status.
    """
    default_db = Path(os.environ.get("SAPA_DATA_DIR", "var")) / "tasks.db"
    parser = argparse.ArgumentParser(
        prog="python -m sapa.adapters.embedded.sqlite_queue",
        description="Inspect the embedded task queue.",
    )
    parser.add_argument("--db", type=Path, default=default_db, help=f"default: {default_db}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stats", help="count pending, due, leased, scheduled and dead tasks")
    dead = commands.add_parser("dead", help="list dead letters")
    dead.add_argument("--verbose", "-v", action="store_true", help="also print payloads")
    replay = commands.add_parser("replay", help="put one dead letter back in the queue")
    replay.add_argument("id", type=int, help="dead letter id (see `dead`)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.db.exists():
        print(f"no task queue at {args.db}", file=sys.stderr)
        return 2
    queue = SqliteTaskQueue(args.db)

    if args.command == "stats":
        s = queue.stats()
        print(f"pending:   {s.pending}")
        print(f"  due:       {s.due}")
        print(f"  leased:    {s.leased}")
        print(f"  scheduled: {s.scheduled}")
        print(f"dead:      {s.dead}")
        return 0
    if args.command == "dead":
        letters = queue.dead_letters()
        if not letters:
            print("no dead letters")
        for d in letters:
            status = d.last_status if d.last_status is not None else "-"
            print(
                f"#{d.id}  {d.failed_at:%Y-%m-%d %H:%M:%S}Z  {d.kind}  {d.name}"
                f"  attempts={d.attempts}  status={status}  error={d.last_error or ''}"
            )
            if args.verbose:
                print(f"    payload: {json.dumps(d.payload, ensure_ascii=False, sort_keys=True)}")
        return 0
    if queue.replay_dead(args.id):
        print(f"replayed dead letter #{args.id}")
        return 0
    print(f"dead letter #{args.id} not found (or its task is queued already)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
