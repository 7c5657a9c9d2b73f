"""Benchmark: the reports over one and two years of cases, and the two scheduled sweeps.

SUT: the staff function (functions-framework's test client, in this process, logged in as the
head of division) over a fresh embedded SQLite store seeded by `sapa.dev.seed` at 5,000 cases a
month, the rate docs/scale.md assumes for Gowa (60,000 a year): 10,000 cases are September and
October 2026, 60,000 the twelve months to October 2026, 120,000 the twenty-four. The clock is
Monday 2 November 2026, 09:00 WITA. Views, each the median of several runs after one warm-up:

- the dashboard page (`GET /dashboard`, HTML with its charts and tables), its CSV (`GET
  /dashboard.csv?table=steps`) and its XLSX (`GET /dashboard.xlsx`), for the full year
  (2025-11-01 to 2026-10-31) and for October 2026;
- the monthly PDF (`GET /reports/monthly.pdf?month=2026-10`);
- the STATUS estimate (`sapa.services.estimate.status_reply` for an open case waiting on an
  officer), its per-process cache emptied before each run (what the first STATUS after the
  cache's lifetime costs);
- the SLA sweep and the retention sweep (`sapa.services.sla_sweep.sweep`,
  `sapa.services.retention.sweep`, their public functions only), all runs at the same clock:
  the first run on the seeded store; the runs until one writes no case (catching up: the seed
  leaves each month's unfinished cases open at the month's end and no sweep ever ran over its
  history), at most 15; then the median of three steady runs (what the scheduled sweep costs
  once it has caught up).

Cases read: the container's store is wrapped in a proxy that counts the `Case` objects (and the
rollup cells) any of its methods returns (lists, tuples, iterators included), whatever method a
view or sweep uses. A report must read no case, and at most days × kecamatan × services cells;
a sweep is shown against the open cases it could have to look at.

FLOOR: a SQL aggregate over the same case rows in the same SQLite file, through its own
read-only connection: the cases opened in the period (the dashboard's definition) counted per
kecamatan, service and state, with how many are open (`json_extract` of the opening time and
the service from the case document, which is where the store keeps them). Views of a period
are set against the floor of that period; the PDF against the month's; the STATUS estimate
and the sweeps against the year's. The floor's count of the year's cases is checked against
the dashboard's (rollups and cases must agree).

Peak RSS: the year's dashboard page, CSV and XLSX at the largest size in a fresh subprocess
(VmHWM), against the same subprocess doing everything but the views (imports, store, staff
function, login, the SQL floor). Target ≤ 180 MiB.

Firestore: on Google's emulator (`tests.contract.firestore_emulator`; skipped with the reason
when java or the jar is missing) October 2026 is seeded at 2,000 and at 5,000 cases (Gowa's
month) into two prefixes of one database, and the documents read by October's page and CSV are
counted at the Firestore client's RPC layer (`RunQuery` and `BatchGetDocuments` answers, found
or missing), against the bound days × kecamatan × services.

The year's dashboard page at 60,000 cases is run once more under cProfile (where its time goes,
in the JSON and the notes), as is any view that misses its target.

Seeding 120,000 cases takes minutes, so every size is seeded once into
var/bench/reports-cache/<rate>-seed<seed>-<hash of the seed's and the store's code>/<cases>/
and copied from there for each run (a larger size continues from the largest smaller one); the
stores of an older version of that code are deleted when a new one is seeded.
--quick: 2,000 cases in one month, no cache, and 40 / 120 cases on the emulator.
"""

from __future__ import annotations

import cProfile
import dataclasses
import hashlib
import json
import os
import pstats
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.harness import Context, Row, benchmark, check, vs_floor
from sapa.domain.case import Case
from sapa.domain.rollup import RollupCell

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "bench" / "reports-cache"
SEED = 7
PER_MONTH = 5_000  # docs/scale.md: Gowa, 60,000 cases a year
LAST_MONTH = date(2026, 10, 1)
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 WITA
ZONE = ZoneInfo("Asia/Makassar")
YEAR = (date(2025, 11, 1), date(2026, 10, 31))
MONTH = (date(2026, 10, 1), date(2026, 10, 31))
SIZES = ((10_000, 2), (60_000, 12), (120_000, 24))  # (cases, months ending LAST_MONTH)
QUICK_SIZES = ((2_000, 1),)
FIRESTORE_SIZES, QUICK_FIRESTORE_SIZES = (2_000, 5_000), (40, 120)
RUNS, QUICK_RUNS = 5, 3
FIRESTORE_ATTEMPTS = 2  # a fresh emulator for the second
SWEEP_REPEATS = 3
CATCH_UP_RUNS = 15  # at most, before the steady runs
OFFICER = "kabid@sapa.test"
CSV_TABLE = "steps"
TARGET_MS = 500.0  # dashboard, CSV and XLSX of a full year at 60,000 cases
TARGET_RATIO = 20.0
TARGET_SIZE = 60_000
RSS_TARGET_MIB = 180.0
MIB = 1024 * 1024
# What the seeded store is made from: a change to any of it seeds the cache again.
SEED_SOURCES = (
    "shared/sapa/dev/seed.py",
    "shared/sapa/domain",
    "shared/sapa/adapters/embedded/sqlite_store.py",
    "shared/sapa/adapters/embedded/sqlite_db.py",
    "shared/sapa/adapters/staff_store.py",
    "shared/sapa/data",
)


# ---- the seeded store ---------------------------------------------------------------------------


def code_version() -> str:
    """A short hash of the code and data that decide what the seed writes."""
    h = hashlib.sha256()
    for name in SEED_SOURCES:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if f.suffix in (".pyc",) or "__pycache__" in f.parts:
                continue
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def months_back(last: date, n: int) -> list[date]:
    """The first days of the `n` months ending with `last`, oldest first."""
    out = [last]
    while len(out) < n:
        out.append((out[-1] - timedelta(days=1)).replace(day=1))
    return out[::-1]


@dataclass(frozen=True)
class Plan:
    cases: int
    months: int

    @property
    def per_month(self) -> int:
        return self.cases // self.months

    @property
    def label(self) -> str:
        return f"{self.cases // 1000}k" if self.cases >= 1000 else str(self.cases)


def cache_dir(per_month: int, version: str, root: Path = CACHE) -> Path:
    return root / f"{per_month}pm-seed{SEED}-{version}"


def seed_months(data_dir: Path, months: list[date], per_month: int) -> float:
    """Seed `per_month` cases in each month into the store under `data_dir`; seconds taken."""
    from sapa.bootstrap import Container
    from sapa.dev.seed import SeedParams, seed_store
    from sapa.settings import load_settings

    c = Container(load_settings(sapa_data_dir=data_dir))
    t0 = time.perf_counter()
    for month in months:
        seed_store(c, SeedParams(month, per_month, SEED, NOW))
    took = time.perf_counter() - t0
    _close(c)
    return took


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _close(c: Any) -> None:
    """Close the container's store connection of this thread and fold its WAL into the file."""
    store = c.__dict__.get("store")
    inner = getattr(store, "inner", store)
    db = getattr(inner, "db", None)
    if db is None:
        return
    path = db.path
    db.close()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def seeded(ctx: Context, plan: Plan, work: Path, *, cache: Path | None) -> dict[str, Any]:
    """A data directory `work` holding `plan`'s cases: copied from the cache (seeded there
    first when missing, continuing from its largest smaller size), or seeded in place when
    `cache` is None. What it took, for the notes."""
    months = months_back(LAST_MONTH, plan.months)
    if cache is None:
        seconds = seed_months(work, months, plan.per_month)
        return {"cached": False, "seed_seconds": round(seconds, 1), "months": len(months)}
    done = cache / str(plan.cases)
    meta_file = done / "meta.json"
    if not meta_file.is_file():
        # the stores of other versions of the code (3.4 GB each) would only pile up
        for stale in cache.parent.glob(f"{plan.per_month}pm-seed{SEED}-*"):
            if stale != cache and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        cache.mkdir(parents=True, exist_ok=True)
        for left in cache.glob("building-*"):  # by a run that was stopped
            if not _alive(int(left.name.rsplit("-", 1)[1])):
                shutil.rmtree(left, ignore_errors=True)
        smaller = sorted(
            (int(p.name) for p in cache.iterdir() if p.name.isdigit() and int(p.name) < plan.cases),
            reverse=True,
        )
        building = cache / f"building-{plan.cases}-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        base_seconds, have = 0.0, 0
        if smaller and (cache / str(smaller[0]) / "meta.json").is_file():
            base = cache / str(smaller[0])
            shutil.copytree(base, building)
            (building / "meta.json").unlink()
            base_meta = json.loads((base / "meta.json").read_text("utf-8"))
            base_seconds, have = float(base_meta["seed_seconds"]), int(base_meta["months"])
        todo = months[: len(months) - have]
        ctx.log(
            f"seeding {len(todo) * plan.per_month:,} cases ({len(todo)} months) into the cache"
            + (f", on top of the cached {smaller[0]:,}" if have else "")
        )
        seconds = seed_months(building, todo, plan.per_month)
        meta = {
            "cases": plan.cases,
            "months": len(months),
            "first_month": months[0].isoformat(),
            "last_month": months[-1].isoformat(),
            "per_month": plan.per_month,
            "seed": SEED,
            "seed_seconds": round(base_seconds + seconds, 1),
            "seeded_now_seconds": round(seconds, 1),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (building / "meta.json").write_text(json.dumps(meta, indent=2), "utf-8")
        building.rename(done)
        fresh = True
    else:
        meta = json.loads(meta_file.read_text("utf-8"))
        fresh = False
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(done, work, ignore=shutil.ignore_patterns("meta.json"))
    return {
        "cached": not fresh,
        "seed_seconds": meta["seed_seconds"],
        "seeded_now_seconds": meta.get("seeded_now_seconds") if fresh else 0.0,
        "months": meta["months"],
        "built_at": meta["built_at"],
        "cache": str(done.relative_to(ROOT)) if done.is_relative_to(ROOT) else str(done),
    }


# ---- counting what the store hands out ----------------------------------------------------------


class CountingStore:
    """A proxy of a CaseStore that counts the `Case` objects and the rollup cells its methods
    return (alone, in a list, tuple or set, as dict values, in a dataclass, or yielded by an
    iterator), whatever the method."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cases = 0
        self.cells = 0
        self.calls: Counter[str] = Counter()  # cases returned, per method
        self.methods: Counter[str] = Counter()  # calls, per method

    def reset(self) -> None:
        self.cases = self.cells = 0
        self.calls.clear()
        self.methods.clear()

    @property
    def writes(self) -> int:
        """Cases written: the port's `create`, `save` and `recount` (a case counted again,
        its due times put right)."""
        return sum(self.methods[m] for m in ("create", "save", "recount"))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.methods[name] += 1
            value = attr(*args, **kwargs)
            if isinstance(value, Iterator):
                return self._iterate(value, name)
            self._add(value, name)
            return value

        return counted

    def _add(self, value: Any, name: str) -> None:
        cases, cells = _count(value)
        self.cases += cases
        self.cells += cells
        if cases:
            self.calls[name] += cases

    def _iterate(self, values: Iterator[Any], name: str) -> Iterator[Any]:
        for v in values:
            self._add(v, name)
            yield v


def _count(value: Any, depth: int = 3) -> tuple[int, int]:
    """(cases, rollup cells) in `value`: itself, or inside a list, tuple, set, dict or
    dataclass (a case found by its due time comes wrapped), a few levels down."""
    if isinstance(value, Case):
        return 1, 0
    if isinstance(value, RollupCell):
        return 0, 1
    if depth == 0:
        return 0, 0
    if isinstance(value, dict):
        value = list(value.values())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = [getattr(value, f.name) for f in dataclasses.fields(value)]
    if isinstance(value, list | tuple | set | frozenset):
        found = [_count(v, depth - 1) for v in value]
        return sum(f[0] for f in found), sum(f[1] for f in found)
    return 0, 0


# ---- the views ----------------------------------------------------------------------------------


def _container(data_dir: Path, *, counting: bool) -> Any:
    from tests.fakes import FakeWhatsApp

    from sapa import bootstrap
    from sapa.adapters.clock import FixedClock
    from sapa.bootstrap import Container
    from sapa.settings import load_settings

    c = Container(load_settings(sapa_data_dir=data_dir))
    c.clock = FixedClock(NOW)  # type: ignore[misc]
    c.whatsapp = FakeWhatsApp()  # type: ignore[misc]  # the expiry notices of the sweep
    if counting:
        c.store = CountingStore(c.store)  # type: ignore[misc]
    bootstrap.install(c)
    return c


_APP: Any = None


def staff_client() -> Any:
    """A test client of the staff function (one app per process), logged in as the head of
    division."""
    global _APP
    from functions_framework import create_app

    if _APP is None:
        _APP = create_app(target="staff", source=str(ROOT / "functions" / "main.py"))
    client = _APP.test_client()
    r = client.post("/login", data={"email": OFFICER}, headers={"Accept": "application/json"})
    if r.status_code != 200:
        raise RuntimeError(f"login as {OFFICER}: {r.status_code} {r.get_data(as_text=True)[:200]}")
    return client


def _query(period: tuple[date, date]) -> dict[str, str]:
    return {"from": period[0].isoformat(), "to": period[1].isoformat()}


def report_views(client: Any) -> dict[str, Callable[[tuple[date, date]], tuple[int, int]]]:
    """The report views by name: each takes a period and answers (status, body bytes)."""

    def get(path: str, query: dict[str, str]) -> tuple[int, int]:
        r = client.get(path, query_string=query, headers={"Accept": "text/html"})
        return r.status_code, len(r.get_data())

    return {
        "dashboard page": lambda p: get("/dashboard", _query(p)),
        "CSV": lambda p: get("/dashboard.csv", {"table": CSV_TABLE, **_query(p)}),
        "XLSX": lambda p: get("/dashboard.xlsx", _query(p)),
        "monthly PDF": lambda p: get("/reports/monthly.pdf", {"month": f"{p[0]:%Y-%m}"}),
    }


def status_case(c: Any) -> Case | None:
    """An open case of the last month waiting on an officer, whose remaining steps the
    estimate lays out."""
    from sapa.services import estimate

    store = getattr(c.store, "inner", c.store)
    waiting = sorted(
        s for s in c.sop.states - c.sop.terminal_states if s not in ("greeted", "link_sent")
    )
    for case in store.list_cases(states=waiting, limit=200, newest_first=True):
        if estimate.remaining_steps(c.sop, case):
            return case  # type: ignore[no-any-return]
    return None


def status_estimate(c: Any, case: Case) -> Callable[[], tuple[int, int]]:
    from sapa.services import estimate

    def run() -> tuple[int, int]:
        cache = getattr(estimate, "_cache", None)
        if cache is not None:
            cache.clear()  # a cold estimate: the first STATUS after the cache's lifetime
        reply = estimate.status_reply(c, case)
        return 200, len(reply.encode())

    return run


# ---- the floor ----------------------------------------------------------------------------------


FLOOR_SQL = """
SELECT kecamatan, json_extract(doc, '$.service') AS service, state, COUNT(*), SUM(is_open)
FROM cases
WHERE json_extract(doc, '$.created_at') >= ? AND json_extract(doc, '$.created_at') < ?
GROUP BY kecamatan, service, state
"""


def utc_bounds(period: tuple[date, date]) -> tuple[str, str]:
    """The period's local days as a half-open interval of UTC times, as the documents write
    them."""
    first = datetime.combine(period[0], datetime.min.time(), ZONE).astimezone(UTC)
    end = datetime.combine(period[1] + timedelta(days=1), datetime.min.time(), ZONE)
    return (
        first.strftime("%Y-%m-%dT%H:%M:%S"),
        end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    )


def sql_floor(conn: sqlite3.Connection, period: tuple[date, date]) -> int:
    """The floor's aggregate for the period; the number of cases opened in it."""
    rows = conn.execute(FLOOR_SQL, utc_bounds(period)).fetchall()
    return sum(int(r[3]) for r in rows)


def cell_bound(c: Any, period: tuple[date, date]) -> int:
    """Days × kecamatan × services of the period: what a report may read at most, however
    many cases there are."""
    days = (period[1] - period[0]).days + 1
    return days * len(c.region.kecamatan) * len(c.catalogue.services)


# ---- timing -------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], runs: int, *, warm: bool = True) -> tuple[list[float], Any]:
    """Seconds of each of `runs` calls (after one untimed call with `warm`); the last result."""
    result = fn() if warm else None
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def profile(fn: Callable[[], Any], top: int = 10) -> dict[str, Any]:
    """One call under cProfile: its wall time, the functions with the most time of their own,
    and our own functions (shared/sapa, functions/) with the most time including callees."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fn()
    prof.disable()
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, func), (_, calls, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = file.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")
        rows.append(
            {
                "function": f"{where}:{line}({func})",
                "ours": where.startswith(("shared/sapa/", "functions/")),
                "calls": calls,
                "self_ms": round(tt * 1000, 1),
                "cumulative_ms": round(ct * 1000, 1),
            }
        )
    by_self = sorted(rows, key=lambda r: -r["self_ms"])[:top]
    ours = sorted((r for r in rows if r["ours"]), key=lambda r: -r["cumulative_ms"])[:top]
    return {"total_ms": round(total * 1000, 1), "by_self_time": by_self, "ours_cumulative": ours}


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


# ---- one size ---------------------------------------------------------------------------------


def measure_size(
    ctx: Context, plan: Plan, work: Path, *, runs: int, rss: bool
) -> tuple[list[Row], dict[str, Any]]:
    from sapa import bootstrap
    from sapa.services import dashboard as dash
    from sapa.services import retention, sla_sweep

    db = work / "sapa.db"
    info: dict[str, Any] = {}
    rows: list[Row] = []
    tag = plan.label

    # the floor, on its own read-only connection
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        floor_s = {}
        period_cases = {}
        for name, period in (("year", YEAR), ("month", MONTH)):
            times, count = timed(lambda period=period: sql_floor(conn, period), runs)
            floor_s[name] = times
            period_cases[name] = count
        (open_cases,) = conn.execute("SELECT COUNT(*) FROM cases WHERE is_open = 1").fetchone()
        (all_cases,) = conn.execute("SELECT COUNT(*) FROM cases").fetchone()
    finally:
        conn.close()
    floor_ms = {k: _ms(v) for k, v in floor_s.items()}
    info["floor_ms"] = {k: [round(x * 1000, 2) for x in v] for k, v in floor_s.items()}
    info["cases"] = {"stored": all_cases, "open": open_cases, "opened_in": period_cases}

    c = _container(work, counting=True)
    store: CountingStore = c.store
    try:
        client = staff_client()
        views = report_views(client)
        measured: dict[str, dict[str, Any]] = {}
        bad: list[str] = []

        def run_view(name: str, period_name: str, fn: Callable[[], tuple[int, int]]) -> None:
            reads: list[tuple[int, int]] = []

            def call() -> tuple[int, int]:
                store.reset()
                out = fn()
                reads.append((store.cases, store.cells))
                return out

            times, (status, size) = timed(call, runs)
            if status != 200:
                bad.append(f"{name} {period_name}: {status}")
            measured[f"{name}, {period_name}"] = {
                "ms": [round(t * 1000, 2) for t in times],
                "median_ms": round(_ms(times), 2),
                "bytes": size,
                "status": status,
                "cases_read": max(r[0] for r in reads),
                "cells_read": max(r[1] for r in reads),
                "floor": period_name if period_name in floor_ms else "year",
                "fn": fn,
            }

        for period_name, period in (("year", YEAR), ("month", MONTH)):
            for view in ("dashboard page", "CSV", "XLSX"):
                ctx.log(f"{tag}: {view}, {period_name}")
                run_view(view, period_name, lambda v=view, p=period: views[v](p))
        ctx.log(f"{tag}: monthly PDF")
        run_view("monthly PDF", "month", lambda: views["monthly PDF"](MONTH))
        case = status_case(c)
        if case is not None:
            ctx.log(f"{tag}: STATUS estimate")
            run_view("STATUS estimate", "30 days", status_estimate(c, case))
        else:
            bad.append("STATUS estimate: no open case waiting on an officer")

        # rollups and cases agree on how many cases the year had
        year = dash.load(c, dash.Filters(*YEAR))
        info["dashboard_year_cases"] = year.cases

        for label, m in measured.items():
            fl = floor_ms[m["floor"]]
            name = f"{tag}: {label}"
            rows.append(vs_floor(name, m["median_ms"], fl, "ms"))
            if plan.cases == TARGET_SIZE and label in (
                "dashboard page, year",
                "CSV, year",
                "XLSX, year",
            ):
                rows[-1] = vs_floor(name, m["median_ms"], fl, "ms", target=TARGET_MS, absolute=True)
                rows.append(
                    vs_floor(f"{name} (vs floor)", m["median_ms"], fl, "ms", target=TARGET_RATIO)
                )
                missed = rows[-1].ok is False or rows[-2].ok is False
                if missed or label == "dashboard page, year":
                    prof = profile(m["fn"])
                    info.setdefault("profiles", {})[label] = prof
                    top = ", ".join(
                        f"{p['function'].rsplit('/', 1)[-1]} {p['self_ms']:.0f} ms"
                        for p in prof["by_self_time"][:3]
                    )
                    ctx.note(
                        f"{name}{' missed its target' if missed else ''}: under cProfile"
                        f" ({prof['total_ms']:.0f} ms) the most time of their own is in {top};"
                        " the profile is in the JSON."
                    )
        rows.append(
            check(
                f"{tag}: cases read by the report views",
                sum(m["cases_read"] for m in measured.values()),
                "cases",
            )
        )
        rows.append(
            check(f"{tag}: year's cases, dashboard − SQL", year.cases - period_cases["year"])
        )
        page = measured["dashboard page, year"]
        rows.append(
            vs_floor(
                f"{tag}: rollup cells read, dashboard page, year",
                page["cells_read"],
                cell_bound(c, YEAR),
                "cells",
                target=1.0,
            )
        )
        info["views"] = {
            k: {kk: vv for kk, vv in v.items() if kk != "fn"} for k, v in measured.items()
        }

        if rss:
            ctx.log(f"{tag}: peak RSS of the year's page, CSV and XLSX in a subprocess")
            peak = {mode: peak_rss(work, mode) for mode in ("floor", "views")}
            info["peak_rss"] = peak
            rows.append(
                vs_floor(
                    f"{tag}: peak RSS, year page + CSV + XLSX",
                    peak["views"]["vmhwm_kib"] / 1024,
                    peak["floor"]["vmhwm_kib"] / 1024,
                    "MiB",
                    target=RSS_TARGET_MIB,
                    absolute=True,
                )
            )
            bad += [f"rss {s}" for s in peak["views"]["statuses"] if s != 200]

        # the sweeps: the first run on the seeded store, the runs until one writes no case
        # (catching up with the seeded history), then the steady runs, all at the same clock
        sweeps: dict[str, Any] = {}
        for name, sweep in (
            ("SLA sweep", lambda: sla_sweep.sweep(c)),
            ("retention sweep", lambda: retention.sweep(c)),
        ):
            ctx.log(f"{tag}: {name}")

            def once(sweep: Callable[[], Any] = sweep) -> dict[str, Any]:
                store.reset()
                t0 = time.perf_counter()
                did = sweep()
                return {
                    "ms": round((time.perf_counter() - t0) * 1000, 1),
                    "did": did,
                    "cases_read": store.cases,
                    "cases_written": store.writes,
                    "cases_by_method": dict(store.calls),
                    "calls": dict(store.methods),
                }

            first = once()
            catch_up = [first]
            while catch_up[-1]["cases_written"] and len(catch_up) < CATCH_UP_RUNS:
                catch_up.append(once())
            caught_up = not catch_up[-1]["cases_written"]
            steady = [once() for _ in range(SWEEP_REPEATS)]
            sweeps[name] = {
                "first": first,
                "catch_up_runs": len(catch_up),
                "catch_up_ms": round(sum(r["ms"] for r in catch_up), 1),
                "caught_up": caught_up,
                "catch_up": catch_up[1:],
                "steady": steady,
            }
            steady_ms = statistics.median(r["ms"] for r in steady)
            steady_read = max(r["cases_read"] for r in steady)
            label = "steady" if caught_up else "still catching up"
            year_floor = floor_ms["year"]
            rows += [
                vs_floor(f"{tag}: {name}, first run", first["ms"], year_floor, "ms"),
                vs_floor(
                    f"{tag}: {name}, {label} (median of {SWEEP_REPEATS})",
                    steady_ms,
                    year_floor,
                    "ms",
                ),
                vs_floor(
                    f"{tag}: {name}, first run: cases read vs open",
                    first["cases_read"],
                    open_cases,
                    "cases",
                ),
                vs_floor(
                    f"{tag}: {name}, {label}: cases read vs open",
                    steady_read,
                    open_cases,
                    "cases",
                ),
            ]
            if len(catch_up) > 1 or not caught_up:
                ctx.note(
                    f"{tag}: the {name} took {len(catch_up)} runs"
                    f" ({sweeps[name]['catch_up_ms'] / 1000:.1f} s) to catch up with the seeded"
                    " history"
                    + ("" if caught_up else f" and was still writing cases after {CATCH_UP_RUNS}")
                    + "."
                )
        info["sweeps"] = sweeps
        rows.append(check(f"{tag}: report requests not answered 200", len(bad)))
        info["not_ok"] = bad
    finally:
        bootstrap.install(None)
        _close(c)
    return rows, info


# ---- peak RSS in a subprocess -------------------------------------------------------------------


def peak_rss(work: Path, mode: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "shared"), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.reports", "--rss", str(work), mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"rss child ({mode}) exited {out.returncode}: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _vmhwm_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def rss_child(work: Path, mode: str) -> dict[str, Any]:
    """In the subprocess: the year's page, CSV and XLSX (`views`), or all but them (`floor`)."""
    _container(work, counting=False)
    client = staff_client()
    conn = sqlite3.connect(f"file:{work / 'sapa.db'}?mode=ro", uri=True)
    sql_floor(conn, YEAR)
    conn.close()
    statuses = []
    if mode == "views":
        views = report_views(client)
        for name in ("dashboard page", "CSV", "XLSX"):
            statuses.append(views[name](YEAR)[0])
    return {"mode": mode, "vmhwm_kib": _vmhwm_kib(), "statuses": statuses}


# ---- Firestore: documents read per view ---------------------------------------------------------


class DocCounter:
    """Counts the documents a Firestore client reads (RunQuery and BatchGetDocuments answers,
    each document found or missing), per top-level collection."""

    def __init__(self) -> None:
        self.docs: Counter[str] = Counter()

    def install(self, client: Any) -> None:
        api = client._firestore_api  # the GAPIC client every read goes through
        counter = self

        class Counted:
            def __getattr__(self, name: str) -> Any:
                return getattr(api, name)

            def run_query(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
                for r in api.run_query(*args, **kwargs):
                    if r._pb.HasField("document"):
                        counter.add(r.document.name)
                    yield r

            def batch_get_documents(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
                for r in api.batch_get_documents(*args, **kwargs):
                    if r._pb.HasField("found"):
                        counter.add(r.found.name)
                    elif r.missing:
                        counter.add(r.missing)
                    yield r

        client._firestore_api_internal = Counted()

    def add(self, name: str) -> None:
        path = name.split("/documents/", 1)[-1].split("/")
        self.docs[path[0] if len(path) < 3 else f"{path[0]}/{path[2]}"] += 1

    @property
    def total(self) -> int:
        return sum(self.docs.values())


def firestore_docs(ctx: Context, sizes: tuple[int, int]) -> tuple[list[Row], dict[str, Any]]:
    """Documents read by October's page and CSV on the emulator, October seeded at two sizes."""
    try:
        from tests.contract.firestore_emulator import PROJECT, FirestoreEmulator, find_jar
    except ImportError as exc:  # pytest is a development dependency
        ctx.note(f"Firestore rows skipped: the emulator helper cannot be imported ({exc}).")
        return [], {"skipped": str(exc)}
    java, jar = shutil.which("java"), find_jar()
    reason = (
        "java is not installed"
        if java is None
        else "the Firestore emulator jar is not found (gcloud component cloud-firestore-emulator,"
        " or FIRESTORE_EMULATOR_JAR)"
        if jar is None
        else None
    )
    if reason is None:
        try:
            import google.cloud.firestore  # noqa: F401
        except ImportError:
            reason = "google-cloud-firestore is not installed"
    if reason is not None or java is None or jar is None:
        ctx.note(f"Firestore rows skipped: {reason}.")
        return [], {"skipped": reason}

    failures: list[str] = []
    for _ in range(FIRESTORE_ATTEMPTS):
        emulator = FirestoreEmulator(java, jar)
        try:
            return _firestore_run(ctx, emulator, PROJECT, sizes)
        except Exception as exc:  # the emulator died or refused: say so, keep the other rows
            alive = emulator.proc.poll() is None
            failures.append(
                f"{type(exc).__name__}: {exc} (emulator {'running' if alive else 'exited'};"
                f" its log ends: {emulator.output()[-300:]!r})"
            )
            ctx.log(f"Firestore attempt failed: {failures[-1]}")
        finally:
            from sapa import bootstrap

            bootstrap.install(None)
            emulator.stop()
    ctx.note(f"Firestore rows skipped after {FIRESTORE_ATTEMPTS} attempts: {failures[-1]}")
    return [], {"skipped": failures}


def _firestore_run(
    ctx: Context, emulator: Any, project: str, sizes: tuple[int, int]
) -> tuple[list[Row], dict[str, Any]]:
    from sapa import bootstrap
    from sapa.adapters.cloud.firestore_store import FirestoreCaseStore
    from sapa.dev.seed import SeedParams, seed_store

    emulator.wait_ready()
    info: dict[str, Any] = {}
    docs: dict[tuple[int, str], int] = {}
    bound = 0
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="sapa-bench-reports-fs-") as tmp:
            c = _container(Path(tmp), counting=False)
            fs = FirestoreCaseStore(
                project, client=emulator.client(), tracker=c.rollup_tracker, prefix=f"b{n}_"
            )
            c.store = fs
            ctx.log(f"Firestore: seeding {n:,} cases into the emulator")
            t0 = time.perf_counter()
            seed_store(c, SeedParams(LAST_MONTH, n, SEED, NOW))
            seconds = time.perf_counter() - t0
            counter = DocCounter()
            counter.install(fs.client)
            views = report_views(staff_client())
            per: dict[str, Any] = {"seed_seconds": round(seconds, 1)}
            bound = cell_bound(c, MONTH)
            for view in ("dashboard page", "CSV"):
                counter.docs.clear()
                t0 = time.perf_counter()
                status, _ = views[view](MONTH)
                per[view] = {
                    "docs": counter.total,
                    "by_collection": dict(counter.docs),
                    "status": status,
                    "seconds": round(time.perf_counter() - t0, 2),
                }
                if status != 200:
                    raise RuntimeError(f"{view} on Firestore answered {status}")
                docs[(n, view)] = counter.total
            info[str(n)] = per
            bootstrap.install(None)
    info["bound"] = bound
    rows = [
        vs_floor(
            f"Firestore docs read, {view}, month, {n:,} cases",
            docs[(n, view)],
            bound,
            "docs",
            target=1.0,
        )
        for n in sizes
        for view in ("dashboard page", "CSV")
    ]
    small, large = sizes
    rows += [
        vs_floor(
            f"Firestore docs read, {view}, month, {large:,} vs {small:,} cases",
            docs[(large, view)],
            docs[(small, view)],
            "docs",
        )
        for view in ("dashboard page", "CSV")
    ]
    return rows, info


# ---- the benchmark ------------------------------------------------------------------------------


@benchmark(
    "reports",
    "dashboard, CSV, XLSX, monthly PDF, STATUS and the sweeps over 10k-120k seeded cases",
)
def reports(ctx: Context) -> list[Row]:
    plans = [Plan(n, m) for n, m in (QUICK_SIZES if ctx.quick else SIZES)]
    runs = QUICK_RUNS if ctx.quick else RUNS
    cache = None if ctx.quick else cache_dir(PER_MONTH, code_version())
    rows: list[Row] = []
    details: dict[str, Any] = {"sizes": {}}
    ctx.details["reports"] = details
    largest = max(p.cases for p in plans)
    with tempfile.TemporaryDirectory(prefix="sapa-bench-reports-") as tmp:
        for plan in plans:
            work = Path(tmp) / plan.label
            seeding = seeded(ctx, plan, work, cache=cache)
            load = _load()
            size_rows, info = measure_size(ctx, plan, work, runs=runs, rss=plan.cases == largest)
            info["seeding"] = seeding
            info["loadavg"] = {"before": load, "after": _load()}
            details["sizes"][plan.label] = info
            rows += size_rows
            shutil.rmtree(work, ignore_errors=True)
            rate = plan.cases / seeding["seed_seconds"] if seeding["seed_seconds"] else 0
            ctx.note(
                f"{plan.label}: {plan.cases:,} cases over {seeding['months']} month(s) ending"
                f" {LAST_MONTH:%Y-%m}, seeded in {seeding['seed_seconds']:.0f} s"
                f" ({rate:.0f} cases/s)"
                + (f", reused from {seeding['cache']}" if seeding.get("cached") else "")
                + f"; {info['cases']['open']:,} open at the clock; 1-min load average"
                f" {load:.1f} before its views, {info['loadavg']['after']:.1f} after its sweeps."
            )
    fs_rows, fs_info = firestore_docs(ctx, QUICK_FIRESTORE_SIZES if ctx.quick else FIRESTORE_SIZES)
    rows += fs_rows
    details["firestore"] = fs_info
    ctx.note(
        f"Views through the staff function's test client as {OFFICER}, median of {runs} after one"
        f" warm-up; year {YEAR[0]}..{YEAR[1]}, month {MONTH[0]:%Y-%m}, clock {NOW.isoformat()}"
        f" (09:00 WITA); CSV = the '{CSV_TABLE}' table. FLOOR: SQL GROUP BY kecamatan, service,"
        " state over the cases opened in the period (json_extract from the case document), own"
        " read-only connection; STATUS and sweeps against the year's floor. Sweeps: first run on"
        " the seeded store, runs until one writes no case, then the median of"
        f" {SWEEP_REPEATS} steady runs, all at the same clock; cases read vs open cases."
        " Targets: year page/CSV/XLSX at 60k ≤ 500 ms and ≤ 20× the floor; peak RSS ≤ 180 MiB;"
        " Firestore docs ≤ days × kecamatan × services."
    )
    return rows


def _load() -> float:
    """The 1-minute load average: other work on the 2 cores here moves every figure."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--rss":
        print(json.dumps(rss_child(Path(argv[1]), argv[2])))
        return 0
    print("usage: python -m bench.reports --rss DATA_DIR floor|views", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
