"""The performance benchmarks (cold start, machine time per case, memory, task queue, a regency
day, the reports) in --quick mode: each runs, produces every figure next to a floor, and loses
nothing.

Speed is never asserted here (`make bench` reports it); only the rows' shape and the counts that
must be zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bench import instances, reports
from bench import regency_day as day
from bench import run as bench_run


def _quick(name: str) -> dict[str, Any]:
    report = bench_run.run([name], quick=True, verbose=False)
    entry = report["benchmarks"][name]
    assert "error" not in entry, entry.get("traceback")
    assert entry["rows"] and entry["notes"]
    for row in entry["rows"]:
        if row["kind"] == "perf":
            assert row["floor"] and row["floor"] > 0, row  # every figure next to its floor
            assert row["ratio"] == pytest.approx(row["value"] / row["floor"])
        else:
            assert row["ok"] is True, row  # nothing lost, duplicated, stuck or refused
    assert bench_run.format_table(report)
    return entry


def _names(entry: dict[str, Any]) -> set[str]:
    return {r["name"] for r in entry["rows"]}


@pytest.mark.e2e
def test_cold_start_of_the_webhook_and_what_it_imports() -> None:
    entry = _quick("coldstart")
    assert {"cold start wa_webhook", "wa_webhook loads signer/image/storage clients"} <= _names(
        entry
    )
    cold = entry["details"]["coldstart"]
    assert cold["wa_webhook"]["statuses"] == [200]
    assert cold["wa_webhook"]["importtime_total_ms"] > 0 and cold["wa_webhook"]["importtime_top_ms"]
    assert cold["wa_webhook_forbidden_loaded"] == []


@pytest.mark.e2e
def test_machine_time_per_case_has_an_absolute_budget() -> None:
    entry = _quick("case")
    row = next(r for r in entry["rows"] if r["name"] == "server CPU per case, p50")
    assert row["absolute"] is True and row["target"] == 250 and row["unit"] == "ms"
    per_case = entry["details"]["per_case"]
    assert per_case["requests_per_case"] > 20
    assert {"wa_webhook", "guestbook", "staff", "task:esign_request"} <= set(
        per_case["cpu_ms_p50_by_function"]
    )


@pytest.mark.e2e
def test_peak_memory_of_instances() -> None:
    entry = _quick("memory")
    assert {"peak RSS wa_webhook", "peak RSS guestbook"} <= _names(entry)
    mem = entry["details"]["memory"]
    assert mem["floor_mib"] > 0
    assert all("→ 200" in r for r in mem["requests"]["guestbook"])


@pytest.mark.e2e
def test_task_queue_delivers_everything_once() -> None:
    entry = _quick("queue")
    assert "tasks delivered per second (burst)" in _names(entry)
    assert entry["details"]["queue"]["left_in_queue"] == 0


@pytest.mark.e2e
def test_regency_day_loses_duplicates_and_strands_nothing() -> None:
    entry = _quick("regency_day")
    assert {
        "lost (messages + steps)",
        "duplicated (cases + sends)",
        "stuck (cases + tasks)",
    } <= _names(entry)
    details = entry["details"]["regency_day"]
    assert details["sent_requests"] >= details["planned_requests"] * 0.9


def test_the_day_schedule_fits_the_office_hours_and_the_sop_order() -> None:
    kecamatan = [f"7306{n:02d}" for n in range(1, 19)]
    scripts = day.day_schedule(1500, kecamatan)
    assert 1500 <= sum(s.requests() for s in scripts) < 1550
    assert len({s.kecamatan for s in scripts}) == 18
    assert day.day_schedule(1500, kecamatan)[5].events == scripts[5].events  # seeded
    for s in scripts:
        times = [t for t, _ in s.events]
        assert times == sorted(times) and all(0 <= t < day.DAY_SECONDS for t in times)
        steps = [a for _, a in s.events if a in day.NEEDS]
        assert steps == list(day.NEEDS)[: len(steps)]  # officers follow the SOP's order
        if "sign" in steps:  # nobody writes after signing (a new case would be legitimate)
            sign = next(t for t, a in s.events if a == "sign")
            assert all(t < sign for t, a in s.events if a in ("chat", "status"))
        if steps:
            assert [a for _, a in s.events].index("submit") < [a for _, a in s.events].index(
                steps[0]
            )


def test_importtime_parsing_counts_nested_client_imports_once() -> None:
    text = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |     cryptography.x",
            "import time:       200 |        300 |   cryptography",
            "import time:       400 |        700 | pyhanko",
            "import time:        50 |         50 | sqlite3",
            "import time:      1050 |       1050 | flask",
            "import time:        30 |         30 |   annotated_types",
            "import time:        70 |        100 | pydantic._internal._model",
        ]
    )
    rows = instances.parse_importtime(text)
    assert [r[0] for r in rows][:5] == [
        "cryptography.x",
        "cryptography",
        "pyhanko",
        "sqlite3",
        "flask",
    ]
    assert instances.package_ms(rows, ("pyhanko", "cryptography")) == pytest.approx(0.7)
    assert instances.package_ms(rows, ("sqlite3",)) == pytest.approx(0.05)
    # a submodule loaded lazily elsewhere counts for its package, with what it pulled in
    assert instances.package_ms(rows, ("pydantic",)) == pytest.approx(0.1)
    summary = instances.importtime_summary(rows)
    assert summary["total_ms"] == pytest.approx(1.9)
    assert list(summary["top_ms"]) == ["flask", "pyhanko", "pydantic", "sqlite3"]


@pytest.mark.e2e
def test_reports_read_no_case_and_agree_with_the_cases() -> None:
    entry = _quick("reports")
    names = _names(entry)
    assert {
        "2k: dashboard page, year",
        "2k: CSV, year",
        "2k: XLSX, year",
        "2k: monthly PDF, month",
        "2k: STATUS estimate, 30 days",
        "2k: cases read by the report views",
        "2k: SLA sweep, steady: cases read vs open",
        "2k: retention sweep, steady: cases read vs open",
        "2k: peak RSS, year page + CSV + XLSX",
    } <= names
    info = entry["details"]["reports"]["sizes"]["2k"]
    assert info["cases"]["stored"] == 2000 and info["seeding"]["cached"] is False
    assert all(v["cases_read"] == 0 and v["status"] == 200 for v in info["views"].values())
    assert info["views"]["dashboard page, year"]["cells_read"] > 0
    assert info["peak_rss"]["views"]["statuses"] == [200, 200, 200]
    for sweep in ("SLA sweep", "retention sweep"):
        assert info["sweeps"][sweep]["first"]["cases_read"] > 0  # the proxy sees the sweep


def test_the_reports_store_proxy_counts_cases_and_cells_whatever_the_method() -> None:
    from dataclasses import dataclass
    from datetime import UTC, datetime

    from sapa.domain.case import Case
    from sapa.domain.rollup import CellKey, RollupCell

    at = datetime(2026, 10, 5, 2, 0, tzinfo=UTC)
    case = Case(
        id="c1",
        reg_no="r1",
        kecamatan="730608",
        phone_number_id="p",
        wa_id="6281",
        state="greeted",
        created_at=at,
        updated_at=at,
    )
    cell = RollupCell(CellKey("case", "2026-10-05", "*", "*"), {"cases": 1})

    @dataclass(frozen=True)
    class Wrapped:  # as a store hands out a case found by its due time
        at: datetime
        case: Case

    class Store:
        label = "inner"

        def get(self, case_id: str) -> Case:
            return case

        def list_cases(self, **kw: object) -> list[Case]:
            return [case, case]

        def mutated(self) -> tuple[Case, dict[str, int]]:
            return case, {"n": 1}

        def stream(self) -> Iterator[Case]:
            yield from (case, case, case)

        def rollups(self) -> list[RollupCell]:
            return [cell] * 4

        def due(self) -> list[Wrapped]:
            return [Wrapped(at, case), Wrapped(at, case)]

    store = reports.CountingStore(Store())
    assert store.label == "inner"
    store.get("c1")
    store.list_cases(states=["x"])
    store.mutated()
    assert store.cases == 4 and store.cells == 0
    assert list(store.stream()) == [case] * 3  # counted as the iterator is read
    store.rollups()
    assert (store.cases, store.cells) == (7, 4)
    store.due()
    assert store.cases == 9
    assert store.calls == {"get": 1, "list_cases": 2, "mutated": 1, "stream": 3, "due": 2}
    assert store.methods["rollups"] == 1 and store.writes == 0
    store.reset()
    assert (store.cases, store.cells, dict(store.calls)) == (0, 0, {})


def test_the_reports_seed_plan_counts_months_back_and_bounds_days_in_utc() -> None:
    from datetime import date

    assert reports.months_back(date(2026, 10, 1), 3) == [
        date(2026, 8, 1),
        date(2026, 9, 1),
        date(2026, 10, 1),
    ]
    assert len(reports.months_back(date(2026, 10, 1), 24)) == 24
    assert reports.months_back(date(2026, 10, 1), 24)[0] == date(2024, 11, 1)
    assert [reports.Plan(n, m).per_month for n, m in reports.SIZES] == [5000] * 3
    # October in WITA (UTC+8): from 30 September 16:00 UTC to 31 October 16:00 UTC
    assert reports.utc_bounds((date(2026, 10, 1), date(2026, 10, 31))) == (
        "2026-09-30T16:00:00",
        "2026-10-31T16:00:00",
    )
    assert reports.code_version() == reports.code_version()
    counter = reports.DocCounter()
    counter.add("projects/p/databases/(default)/documents/b40_rollups/case%7C2026")
    counter.add("projects/p/databases/(default)/documents/cases/abc/events/00000001")
    assert counter.docs == {"b40_rollups": 1, "cases/events": 1} and counter.total == 2
