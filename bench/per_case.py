"""Benchmark: machine time per case — what the server spends on one complete case, steps 1–8.

SUT: a LocalStack (worker off) wrapped in `bench.case.ServerTimer`; `CaseDriver` runs cases one
after another (greeting, guest-book link, the form with two documents, six officer steps each
opened, claimed and done, the SIAK hand-off, the signature by the local PAdES signer, delivery
and the simulator's sent/delivered statuses). Per case: the serving threads' CPU time and wall
time summed over every SAPA request and task of that case (the simulator's own requests, which
stand for Meta, and the officers' logins, once per session, are not counted).

FLOOR: the very same requests (count, method, body size) replayed against a trivial function
(reads the body, answers 200) served the same way and timed by the same middleware: what any
implementation pays to receive that traffic at all.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
from pathlib import Path

import flask
import requests

from bench.case import UNLIMITED, CaseDriver, ServerTimer, Timed, instrument
from bench.harness import Context, Row, benchmark, check, percentile, vs_floor
from bench.servers import WaitressServer, captured_waitress_warnings
from sapa.dev.localserver import LocalStack, function_app
from sapa.settings import load_settings

KECAMATAN = tuple(f"7306{n:02d}" for n in range(1, 19))
CPU_TARGET_S = 0.25  # per case on the embedded stack (absolute target of issue #9)


def trivial(request: flask.Request) -> flask.Response:
    request.get_data()
    return flask.Response("ok", 200, mimetype="text/plain")


def replay(base: str, records: list[Timed]) -> None:
    """The same number of requests with bodies of the same sizes, one after another."""
    with requests.Session() as s:
        s.trust_env = False
        for r in records:
            if r.method == "GET":
                s.get(f"{base}/{r.category}", timeout=30)
            else:
                s.post(f"{base}/{r.category}", data=b"x" * r.bytes_in, timeout=30)


def store_writes(db: Path, case_ids: list[str]) -> dict[str, float]:
    """Median per case of what the store kept: saves of the case document (its version), audit
    events and conversation messages (each its own document in Firestore)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        per: dict[str, list[int]] = {"case_document_saves": [], "events": [], "messages": []}
        for case_id in case_ids:
            (version,) = conn.execute(
                "SELECT version FROM cases WHERE id = ?", (case_id,)
            ).fetchone()
            (events,) = conn.execute(
                "SELECT COUNT(*) FROM events WHERE case_id = ?", (case_id,)
            ).fetchone()
            (messages,) = conn.execute(
                "SELECT COUNT(*) FROM messages WHERE case_id = ?", (case_id,)
            ).fetchone()
            per["case_document_saves"].append(int(version))
            per["events"].append(int(events))
            per["messages"].append(int(messages))
    finally:
        conn.close()
    return {k: statistics.median(v) if v else 0 for k, v in per.items()}


def _sums(records: list[Timed]) -> tuple[float, float]:
    return sum(r.cpu_s for r in records), sum(r.wall_s for r in records)


def measure(ctx: Context, cases: int, warmup: int, floor_cases: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="sapa-bench-case-") as tmp:
        stack = LocalStack(load_settings(sapa_data_dir=Path(tmp), **UNLIMITED))
        stack.start(worker=False)
        timer = instrument(stack)
        floor_timer = ServerTimer(function_app(trivial, 10))
        floor_srv = WaitressServer(floor_timer, stack.server).start()
        driver = CaseDriver(stack, timer=timer)
        cpu: list[float] = []
        wall: list[float] = []
        floor_cpu: list[float] = []
        floor_wall: list[float] = []
        per_kind: dict[str, list[float]] = {}
        requests_per_case: list[int] = []
        case_ids: list[str] = []
        failed: list[str] = []
        try:
            ctx.log(f"{warmup} warm-up case(s), then {cases} measured, one at a time")
            for k in range(warmup + cases):
                mark = timer.mark()
                try:
                    result = driver.run_case(KECAMATAN[k % len(KECAMATAN)])
                except Exception as exc:  # reported as a check row, the run goes on
                    failed.append(f"{type(exc).__name__}: {exc}")
                    continue
                records = timer.since(mark)
                if k < warmup:
                    continue
                case_ids.append(result.case_id)
                c, w = _sums(records)
                cpu.append(c)
                wall.append(w)
                requests_per_case.append(len(records))
                kinds: dict[str, float] = {}
                for r in records:
                    kinds[r.category] = kinds.get(r.category, 0.0) + r.cpu_s
                for kind, value in kinds.items():
                    per_kind.setdefault(kind, []).append(value)
                if len(floor_cpu) < floor_cases:
                    fmark = floor_timer.mark()
                    replay(floor_srv.base_url, records)
                    fc, fw = _sums(floor_timer.since(fmark))
                    floor_cpu.append(fc)
                    floor_wall.append(fw)
                if (k - warmup + 1) % 50 == 0:
                    ctx.log(f"{k - warmup + 1} cases")
            writes = store_writes(Path(tmp) / "sapa.db", case_ids)
        finally:
            driver.close()
            floor_srv.stop()
            stack.stop()
    if not cpu:
        raise RuntimeError(f"no case completed: {failed[:3]}")
    med_cpu, med_wall = statistics.median(cpu), statistics.median(wall)
    f_cpu, f_wall = statistics.median(floor_cpu), statistics.median(floor_wall)
    ctx.details["per_case"] = {
        "cases": len(cpu),
        "failed": failed[:10],
        "requests_per_case": statistics.median(requests_per_case),
        "cpu_s": {
            "p50": round(med_cpu, 4),
            "p90": round(percentile(cpu, 90), 4),
            "max": round(max(cpu), 4),
        },
        "wall_s": {"p50": round(med_wall, 4), "p90": round(percentile(wall, 90), 4)},
        "floor_cpu_s_p50": round(f_cpu, 5),
        "floor_wall_s_p50": round(f_wall, 5),
        "store_per_case_p50": writes,
        "cpu_ms_p50_by_function": {
            k: round(statistics.median(v) * 1000, 2) for k, v in sorted(per_kind.items())
        },
    }
    top = sorted(ctx.details["per_case"]["cpu_ms_p50_by_function"].items(), key=lambda kv: -kv[1])
    ctx.note(
        f"Per case ({len(cpu)} cases, {statistics.median(requests_per_case):.0f} timed requests"
        f" each, tasks included): CPU = serving thread's time.thread_time, wall = call → close of"
        f" the response; median CPU by function: "
        + ", ".join(f"{k} {v:.0f} ms" for k, v in top[:5])
        + ". Target: CPU < 0.25 s per case (absolute). The guest book's per-client rate limit is"
        " lifted (every resident here is 127.0.0.1); it still runs and is timed."
    )
    ctx.note(
        "FLOOR: the same requests (count, method, body size) against a trivial function that"
        f" reads the body and answers 200, timed by the same middleware (median of"
        f" {len(floor_cpu)} replayed cases)."
    )
    return [
        vs_floor(
            "server CPU per case, p50",
            med_cpu * 1000,
            f_cpu * 1000,
            "ms",
            target=CPU_TARGET_S * 1000,
            absolute=True,
        ),
        vs_floor("server CPU per case, p90", percentile(cpu, 90) * 1000, f_cpu * 1000, "ms"),
        vs_floor("server wall time per case, p50", med_wall * 1000, f_wall * 1000, "ms"),
        check("cases not delivered", len(failed)),
    ]


@benchmark(
    "case",
    "machine time per complete case (steps 1-8, delivery) vs the same requests, trivial handler",
)
def per_case(ctx: Context) -> list[Row]:
    cases, warmup, floor_cases = (1, 1, 1) if ctx.quick else (200, 3, 20)
    with captured_waitress_warnings() as warnings:
        rows = measure(ctx, cases, warmup, floor_cases)
    ctx.details["waitress_warnings"] = warnings.summary()
    return rows
