"""Benchmark: the embedded task queue — tasks delivered per second and enqueue → handler latency.

SUT: `SqliteTaskQueue` (WAL, one transaction per enqueue, lease and complete) and its
`TaskWorker` (the stack's default `TASK_WORKERS` threads) delivering every task over HTTP to a
trivial handler served by waitress in this process, the way the worker delivers to
`/tasks/<kind>`. Each payload carries its enqueue time; the handler notes its arrival time.
Tasks are enqueued by a producer thread at once (a burst: throughput) and then one by one with
a pause (latency unaffected by a backlog).

FLOOR: the raw SQLite cost of a queue, on the same kind of file with the same pragmas: one
INSERT and one DELETE, each its own transaction, per task.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import flask
import requests
from waitress.adjustments import Adjustments

from bench.harness import Context, Row, benchmark, check, percentile, vs_floor
from bench.servers import WaitressServer
from sapa.adapters.embedded.sqlite_queue import SqliteTaskQueue
from sapa.adapters.embedded.task_worker import TaskWorker
from sapa.dev.localserver import function_app
from sapa.ports import Task
from sapa.settings import load_settings


class Sink:
    """The trivial task handler: notes each task's arrival (and duplicates)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.latency: list[float] = []
        self.duplicates = 0
        self.lock = threading.Lock()
        self.all = threading.Event()
        self.expect = 0

    def __call__(self, request: flask.Request) -> flask.Response:
        now = time.time()
        body = json.loads(request.get_data())
        name = request.headers.get("X-CloudTasks-TaskName", "")
        with self.lock:
            if name in self.arrived:
                self.duplicates += 1
            else:
                self.arrived[name] = now
                self.latency.append(now - body["enqueued_at"])
            if len(self.arrived) >= self.expect:
                self.all.set()
        return flask.Response("{}", 200, mimetype="application/json")

    def reset(self, expect: int) -> None:
        with self.lock:
            self.latency = []
            self.expect = len(self.arrived) + expect
            self.all.clear()


def ms(values: list[float], p: float) -> float:
    return percentile(values, p) * 1000


def sqlite_floor(path: Path, n: int) -> float:
    """Insert + delete rate (tasks/s) of raw SQLite, one transaction each, WAL + NORMAL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, payload TEXT)"
    )
    payload = json.dumps({"case_id": "x" * 32, "enqueued_at": 0.0})
    t0 = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (name, payload) VALUES (?, ?)", (f"n{i}", payload))
        conn.execute("COMMIT")
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM t WHERE name = ?", (f"n{i}",))
        conn.execute("COMMIT")
    seconds = time.perf_counter() - t0
    conn.close()
    return n / seconds


@benchmark(
    "queue", "local task queue: tasks/s delivered and enqueue → handler latency vs raw SQLite"
)
def queue_bench(ctx: Context) -> list[Row]:
    burst, paced = (200, 20) if ctx.quick else (3000, 300)
    with tempfile.TemporaryDirectory(prefix="sapa-bench-queue-") as tmp:
        settings = load_settings(sapa_data_dir=Path(tmp) / "data")
        workers = settings.task_workers
        floor_rate = sqlite_floor(Path(tmp) / "floor.db", burst)
        queue = SqliteTaskQueue(Path(tmp) / "tasks.db")
        sink = Sink()
        # waitress configured as LocalStack configures it
        like = SimpleNamespace(
            adj=Adjustments(threads=16, channel_timeout=120, clear_untrusted_proxy_headers=True)
        )
        server = WaitressServer(function_app(sink, 10), like).start()
        worker = TaskWorker(queue, server.base_url, "bench-token", concurrency=workers)
        worker.start()
        try:
            ctx.log(f"burst of {burst} tasks, then {paced} paced")
            sink.reset(burst)
            t0 = time.perf_counter()
            for i in range(burst):
                queue.enqueue(Task("bench", {"enqueued_at": time.time(), "i": i}, name=f"b{i}"))
            enqueued_s = time.perf_counter() - t0
            sink.all.wait(timeout=120 + burst / 10)
            wall = time.perf_counter() - t0
            delivered = len(sink.arrived)
            burst_latency = list(sink.latency)
            sink.reset(paced)
            for i in range(paced):
                queue.enqueue(Task("bench", {"enqueued_at": time.time(), "i": i}, name=f"p{i}"))
                time.sleep(0.01)
            sink.all.wait(timeout=60)
            paced_latency = list(sink.latency)
            # latency floor: the same handler called directly, no queue in between
            sink.reset(paced)
            with requests.Session() as http:
                http.trust_env = False
                for i in range(paced):
                    body = json.dumps({"enqueued_at": time.time(), "i": i})
                    http.post(
                        server.base_url, data=body, headers={"X-CloudTasks-TaskName": f"d{i}"}
                    )
                    time.sleep(0.01)
            direct_latency = list(sink.latency)
            # the last completions may still be on their way
            deadline = time.monotonic() + 10
            while queue.pending() and time.monotonic() < deadline:
                time.sleep(0.02)
            stats = queue.stats()
        finally:
            worker.stop()
            server.stop()
    rate = delivered / wall if wall else 0.0
    direct = direct_latency
    lost = burst + 2 * paced - len(sink.arrived)
    details: dict[str, Any] = {
        "workers": workers,
        "burst": burst,
        "paced": paced,
        "burst_enqueue_rate": round(burst / enqueued_s, 1),
        "burst_wall_s": round(wall, 3),
        "delivered_per_s": round(rate, 1),
        "sqlite_insert_delete_per_s": round(floor_rate, 1),
        "latency_ms": {
            "burst_p50": round(percentile(burst_latency, 50) * 1000, 2),
            "burst_p99": round(percentile(burst_latency, 99) * 1000, 2),
            "paced_p50": round(percentile(paced_latency, 50) * 1000, 2),
            "paced_p99": round(percentile(paced_latency, 99) * 1000, 2),
        },
        "left_in_queue": stats.pending,
        "dead": stats.dead,
        "duplicates": sink.duplicates,
    }
    details["latency_ms"]["direct_p50"] = round(ms(direct, 50), 2)
    details["latency_ms"]["direct_p99"] = round(ms(direct, 99), 2)
    ctx.details["queue"] = details
    ctx.note(
        f"Queue: {burst} tasks enqueued at once then {paced} at 100/s, {workers} worker threads"
        " delivering over HTTP to a trivial waitress handler; latency = handler arrival −"
        " enqueue time (wall clock). FLOOR for throughput: raw SQLite INSERT + DELETE, one"
        " transaction each (WAL, synchronous=NORMAL); FLOOR for latency: the same handler POSTed"
        " directly (no queue), paced the same way."
    )
    return [
        vs_floor("tasks delivered per second (burst)", rate, floor_rate, "tasks/s"),
        vs_floor("enqueue → handler p50 (paced)", ms(paced_latency, 50), ms(direct, 50), "ms"),
        vs_floor("enqueue → handler p99 (paced)", ms(paced_latency, 99), ms(direct, 99), "ms"),
        vs_floor("enqueue → handler p99 (burst)", ms(burst_latency, 99), ms(direct, 99), "ms"),
        check("tasks lost or left in the queue", lost + stats.pending + stats.dead),
        check("tasks delivered twice", sink.duplicates),
    ]
