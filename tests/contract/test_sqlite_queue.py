"""Contract tests of the embedded Cloud-Tasks-like queue and its HTTP worker."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from sapa.adapters.clock import FixedClock
from sapa.adapters.embedded.queue_cli import main
from sapa.adapters.embedded.sqlite_queue import SqliteTaskQueue
from sapa.adapters.embedded.task_worker import TaskWorker
from sapa.ports import Task

TOKEN = "test-task-token"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "var" / "tasks.db"


@pytest.fixture
def make_queue(db: Path, clock: FixedClock) -> Callable[..., SqliteTaskQueue]:
    def make(**kwargs: Any) -> SqliteTaskQueue:
        kwargs.setdefault("clock", clock)
        return SqliteTaskQueue(db, **kwargs)

    return make


@pytest.fixture
def queue(make_queue: Callable[..., SqliteTaskQueue]) -> SqliteTaskQueue:
    return make_queue(max_attempts=3, min_backoff=1.0, max_backoff=10.0)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Target:
    """A real HTTP target: records requests, answers the queued statuses, then 200."""

    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    base: str = ""

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.seen.append(Seen(request.path, dict(request.headers), request.get_json(silent=True)))
        if self.delay:
            time.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        self.arrived.set()
        return Response("oops" if status >= 300 else "ok", status=status)(environ, start_response)


@pytest.fixture
def target() -> Iterator[Target]:
    app = Target()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield app
    server.shutdown()
    server.server_close()
    thread.join(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the queue ----------------------------------------------------------------------------------


def test_enqueue_lease_complete(queue: SqliteTaskQueue, clock: FixedClock) -> None:
    assert queue.enqueue(Task("notify", {"case_id": "C-1", "n": 1}, name="notify-C-1"))
    assert queue.pending() == 1

    [task] = queue.lease(10, 30)
    assert (task.kind, task.name, task.payload) == (
        "notify",
        "notify-C-1",
        {"case_id": "C-1", "n": 1},
    )
    assert (task.retry_count, task.execution_count) == (0, 0)
    assert task.schedule_at == clock.now()
    assert task.lease_until == clock.now() + timedelta(seconds=30)
    assert queue.lease(10, 30) == []  # leased: not handed out twice

    queue.complete(task.id)
    assert queue.pending() == 0
    clock.advance(3600)
    assert queue.lease(10, 30) == []


def test_lease_oldest_first_and_limit(queue: SqliteTaskQueue, clock: FixedClock) -> None:
    now = clock.now()
    queue.enqueue(Task("a", {}, name="late", schedule_at=now - timedelta(seconds=1)))
    queue.enqueue(Task("a", {}, name="early", schedule_at=now - timedelta(seconds=5)))
    queue.enqueue(Task("a", {}, name="middle", schedule_at=now - timedelta(seconds=3)))
    assert [t.name for t in queue.lease(2, 30)] == ["early", "middle"]
    assert [t.name for t in queue.lease(2, 30)] == ["late"]
    assert queue.lease(0, 30) == []


def test_unnamed_tasks_get_distinct_names(queue: SqliteTaskQueue) -> None:
    assert queue.enqueue(Task("notify", {"x": 1}))
    assert queue.enqueue(Task("notify", {"x": 1}))
    names = {t.name for t in queue.lease(10, 30)}
    assert len(names) == 2


def test_named_dedupe_also_after_completion_and_restart(
    queue: SqliteTaskQueue, make_queue: Callable[..., SqliteTaskQueue]
) -> None:
    task = Task("notify", {"case_id": "C-1"}, name="welcome-C-1")
    assert queue.enqueue(task) is True
    assert queue.enqueue(task) is False
    assert queue.pending() == 1

    [leased] = queue.lease(1, 30)
    queue.complete(leased.id)
    assert queue.enqueue(task) is False

    restarted = make_queue()
    assert restarted.enqueue(task) is False
    assert restarted.pending() == 0


def test_names_are_pruned_after_30_days_but_not_while_queued(
    queue: SqliteTaskQueue, make_queue: Callable[..., SqliteTaskQueue], clock: FixedClock
) -> None:
    queue.enqueue(Task("notify", {}, name="done"))
    queue.enqueue(Task("notify", {}, name="waiting", schedule_at=clock.now() + timedelta(days=60)))
    [done] = queue.lease(5, 30)
    queue.complete(done.id)

    clock.advance(timedelta(days=29).total_seconds())
    assert make_queue().enqueue(Task("notify", {}, name="done")) is False

    clock.advance(timedelta(days=2).total_seconds())
    restarted = make_queue()
    assert restarted.enqueue(Task("notify", {}, name="done")) is True
    assert restarted.enqueue(Task("notify", {}, name="waiting")) is False


def test_schedule_at_in_the_future_waits_for_the_clock(
    queue: SqliteTaskQueue, clock: FixedClock
) -> None:
    queue.enqueue(Task("remind", {}, name="r", schedule_at=clock.now() + timedelta(minutes=10)))
    assert queue.lease(10, 30) == []
    clock.advance(599.9)
    assert queue.lease(10, 30) == []
    clock.advance(0.1)
    [task] = queue.lease(10, 30)
    assert task.name == "r"
    assert queue.stats().leased == 1


def test_invalid_tasks_are_rejected(queue: SqliteTaskQueue) -> None:
    with pytest.raises(ValueError):
        queue.enqueue(Task("notify", {}, schedule_at=datetime(2026, 1, 1)))
    with pytest.raises(ValueError):
        queue.enqueue(Task("../admin", {}))
    with pytest.raises(ValueError):
        queue.enqueue(Task("notify", {}, name="bad\r\nname"))
    with pytest.raises(TypeError):
        queue.enqueue(Task("notify", {"when": object()}))
    assert queue.pending() == 0


def test_backoff_doubles_up_to_the_cap(
    make_queue: Callable[..., SqliteTaskQueue], clock: FixedClock
) -> None:
    queue = make_queue(max_attempts=10, min_backoff=1.0, max_backoff=10.0)
    assert [queue.backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]

    queue.enqueue(Task("notify", {}, name="flaky"))
    for attempt, delay in enumerate([1, 2, 4, 8, 10, 10]):
        [task] = queue.lease(1, 30)
        assert task.retry_count == attempt
        assert queue.fail(task.id, "HTTP 503", status=503, retry_count=task.retry_count) is True
        clock.advance(delay - 0.01)
        assert queue.lease(1, 30) == []
        clock.advance(0.01)
    [task] = queue.lease(1, 30)
    assert (task.retry_count, task.execution_count, task.last_status) == (6, 6, 503)


def test_max_attempts_dead_letter_and_replay(queue: SqliteTaskQueue, clock: FixedClock) -> None:
    queue.enqueue(Task("sign", {"case_id": "C-9"}, name="sign-C-9"))
    results = []
    for _ in range(3):
        clock.advance(60)
        [task] = queue.lease(1, 30)
        results.append(queue.fail(task.id, "HTTP 500: boom", status=500))
    assert results == [True, True, False]
    assert queue.pending() == 0
    assert queue.lease(1, 30) == []

    [dead] = queue.dead_letters()
    assert (dead.kind, dead.name, dead.payload) == ("sign", "sign-C-9", {"case_id": "C-9"})
    assert (dead.attempts, dead.execution_count) == (3, 3)
    assert (dead.last_error, dead.last_status) == ("HTTP 500: boom", 500)
    assert dead.failed_at == clock.now()
    assert queue.stats().dead == 1

    assert queue.enqueue(Task("sign", {}, name="sign-C-9")) is False  # still deduped
    assert queue.replay_dead(dead.id) is True
    assert queue.replay_dead(dead.id) is False
    assert queue.dead_letters() == []
    [again] = queue.lease(1, 30)
    assert (again.name, again.payload, again.retry_count) == ("sign-C-9", {"case_id": "C-9"}, 0)
    assert queue.replay_dead(12345) is False


def test_lease_expiry_redelivers_and_ignores_the_stale_result(
    queue: SqliteTaskQueue, clock: FixedClock
) -> None:
    queue.enqueue(Task("notify", {}, name="n"))
    [first] = queue.lease(1, 10)
    clock.advance(9.9)
    assert queue.lease(1, 10) == []
    clock.advance(0.1)
    [second] = queue.lease(1, 10)
    assert second.id == first.id
    assert second.retry_count == 1

    # The first worker wakes up late: its failure must not disturb the new lease.
    assert queue.fail(first.id, "late", retry_count=first.retry_count) is True
    assert queue.lease(1, 10) == []
    queue.complete(second.id)
    assert queue.pending() == 0
    assert queue.fail(second.id, "gone") is False


def test_worker_dying_on_every_attempt_ends_in_dead_letters(
    queue: SqliteTaskQueue, clock: FixedClock
) -> None:
    queue.enqueue(Task("notify", {}, name="poison"))
    for _ in range(3):
        assert len(queue.lease(1, 10)) == 1
        clock.advance(11)  # the worker never reports back
    assert queue.lease(1, 10) == []
    [dead] = queue.dead_letters()
    assert dead.name == "poison"
    assert dead.attempts == 3
    assert "lease expired" in (dead.last_error or "")


def test_listener_runs_after_each_enqueue(queue: SqliteTaskQueue) -> None:
    calls: list[int] = []
    queue.add_listener(lambda: calls.append(queue.pending()))

    def broken() -> None:
        raise RuntimeError("a broken listener must not break enqueue")

    queue.add_listener(broken)
    queue.enqueue(Task("notify", {}, name="a"))
    queue.enqueue(Task("notify", {}, name="a"))
    queue.enqueue(Task("notify", {}, name="b"))
    assert calls == [1, 2]


def test_two_threads_never_lease_the_same_task(
    queue: SqliteTaskQueue, make_queue: Callable[..., SqliteTaskQueue]
) -> None:
    for i in range(120):
        queue.enqueue(Task("notify", {"i": i}, name=f"t{i}"))
    other = make_queue()  # a second object on the same file, as a second process would have
    got: list[list[int]] = [[], [], []]
    barrier = threading.Barrier(3)

    def drain(q: SqliteTaskQueue, out: list[int]) -> None:
        barrier.wait()
        while batch := q.lease(3, 60):
            out.extend(t.id for t in batch)

    threads = [
        threading.Thread(target=drain, args=(q, out))
        for q, out in zip((queue, queue, other), got, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = [i for out in got for i in out]
    assert len(ids) == 120
    assert len(set(ids)) == 120


def test_file_is_in_wal_mode(queue: SqliteTaskQueue) -> None:
    with sqlite3.connect(queue.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- the worker -----------------------------------------------------------------------------------


def test_worker_delivers_like_cloud_tasks(
    queue: SqliteTaskQueue, target: Target, clock: FixedClock
) -> None:
    eta = clock.now() - timedelta(seconds=5)
    payload = {"case_id": "C-1", "text": "Dokumen Anda siap ✓"}
    queue.enqueue(Task("notify", payload, name="notify-C-1-ready", schedule_at=eta))

    worker = TaskWorker(queue, target.base + "/", TOKEN)
    assert worker.run_once() == 1
    assert queue.pending() == 0

    [seen] = target.seen
    assert seen.path == "/tasks/notify"
    assert seen.body == payload
    h = seen.headers
    assert h["Content-Type"] == "application/json"
    assert h["Authorization"] == f"Bearer {TOKEN}"
    assert h["X-Cloudtasks-Taskname"] == "notify-C-1-ready"
    assert h["X-Cloudtasks-Taskretrycount"] == "0"
    assert h["X-Cloudtasks-Taskexecutioncount"] == "0"
    assert h["X-Cloudtasks-Queuename"] == "notify"
    assert float(h["X-Cloudtasks-Tasketa"]) == pytest.approx(eta.timestamp(), abs=1e-5)
    assert worker.run_once() == 0


def test_worker_retries_500_then_succeeds(
    queue: SqliteTaskQueue, target: Target, clock: FixedClock
) -> None:
    target.statuses = [500]
    queue.enqueue(Task("sign", {"case_id": "C-2"}, name="sign-C-2"))
    worker = TaskWorker(queue, target.base, TOKEN)

    assert worker.run_once() == 1
    assert queue.pending() == 1
    assert worker.run_once() == 0  # backing off
    clock.advance(queue.min_backoff)
    assert worker.run_once() == 1
    assert queue.pending() == 0

    assert [s.headers["X-Cloudtasks-Taskretrycount"] for s in target.seen] == ["0", "1"]
    assert [s.headers["X-Cloudtasks-Taskexecutioncount"] for s in target.seen] == ["0", "1"]
    assert target.seen[1].headers["X-Cloudtasks-Taskpreviousresponse"] == "500"
    assert [s.body for s in target.seen] == [{"case_id": "C-2"}] * 2


def test_worker_connection_refused_is_a_failure(
    make_queue: Callable[..., SqliteTaskQueue], clock: FixedClock
) -> None:
    queue = make_queue(max_attempts=2)
    queue.enqueue(Task("notify", {}, name="nobody-home"))
    worker = TaskWorker(queue, f"http://127.0.0.1:{free_port()}", TOKEN, request_timeout=2)

    assert worker.run_once() == 1
    assert queue.pending() == 1
    clock.advance(1)
    assert worker.run_once() == 1
    [dead] = queue.dead_letters()
    assert dead.execution_count == 0
    assert dead.last_status is None
    assert "ConnectionError" in (dead.last_error or "")


def test_worker_timeout_is_a_failure(
    make_queue: Callable[..., SqliteTaskQueue], target: Target
) -> None:
    queue = make_queue(max_attempts=1)
    target.delay = 0.4
    queue.enqueue(Task("notify", {}, name="slow"))
    worker = TaskWorker(queue, target.base, TOKEN, request_timeout=0.1, lease_seconds=5)
    assert worker.run_once() == 1
    [dead] = queue.dead_letters()
    assert "Timeout" in (dead.last_error or "")


def test_task_survives_a_restart(
    make_queue: Callable[..., SqliteTaskQueue], target: Target, clock: FixedClock
) -> None:
    first = make_queue()
    first.enqueue(Task("notify", {"case_id": "C-3"}, name="after-restart"))
    first.enqueue(Task("notify", {"case_id": "C-4"}, name="leased-when-crashed"))
    [crashed] = first.lease(1, 60)
    del first

    second = make_queue()
    worker = TaskWorker(second, target.base, TOKEN)
    assert worker.run_once() == 1
    clock.advance(60)  # the dead process's lease runs out
    assert worker.run_once() == 1
    assert second.pending() == 0
    assert sorted(s.body["case_id"] for s in target.seen) == ["C-3", "C-4"]
    redelivered = next(s for s in target.seen if s.body["case_id"] == crashed.payload["case_id"])
    assert redelivered.headers["X-Cloudtasks-Taskretrycount"] == "1"


def test_background_worker_wakes_on_enqueue_and_stops(
    make_queue: Callable[..., SqliteTaskQueue], target: Target
) -> None:
    queue = make_queue()
    worker = TaskWorker(queue, target.base, TOKEN, concurrency=2, poll_interval=30)
    worker.start()
    try:
        with pytest.raises(RuntimeError):
            worker.start()
        time.sleep(0.05)  # let both threads go idle on their 30 s poll
        queue.enqueue(Task("notify", {"case_id": "C-5"}, name="wake-up"))
        assert target.arrived.wait(5)
        deadline = time.monotonic() + 5
        while queue.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert queue.pending() == 0
    finally:
        started = time.monotonic()
        worker.stop()
        assert time.monotonic() - started < 2
    assert not worker.running
    assert [s.body for s in target.seen] == [{"case_id": "C-5"}]


# -- the command line -----------------------------------------------------------------------------


def test_cli_stats_dead_and_replay(
    make_queue: Callable[..., SqliteTaskQueue], db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = make_queue(max_attempts=1, clock=None)
    queue.enqueue(Task("sign", {"case_id": "C-7"}, name="sign-C-7"))
    queue.enqueue(
        Task(
            "notify", {}, name="later", schedule_at=datetime.now().astimezone() + timedelta(hours=1)
        )
    )
    [task] = queue.lease(1, 30)
    queue.fail(task.id, "HTTP 502: bad gateway", status=502)

    assert main(["--db", str(db), "stats"]) == 0
    out = capsys.readouterr().out
    assert "pending:   1" in out
    assert "scheduled: 1" in out
    assert "dead:      1" in out

    assert main(["--db", str(db), "dead"]) == 0
    out = capsys.readouterr().out
    assert "sign-C-7" in out and "attempts=1" in out and "HTTP 502: bad gateway" in out
    assert 'C-7"' not in out and "payload" not in out

    assert main(["--db", str(db), "dead", "--verbose"]) == 0
    assert '"case_id": "C-7"' in capsys.readouterr().out

    [dead] = queue.dead_letters()
    assert main(["--db", str(db), "replay", str(dead.id)]) == 0
    assert main(["--db", str(db), "replay", str(dead.id)]) == 1
    assert queue.pending() == 2

    assert main(["--db", str(db.with_name("missing.db")), "stats"]) == 2
    assert not db.with_name("missing.db").exists()
