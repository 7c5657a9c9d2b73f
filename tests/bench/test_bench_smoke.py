"""The benchmark harness and the webhook benchmark in --quick mode.

Only the shape of the rows and the correctness figures are asserted here: speed is reported by
`make bench`, never asserted in a test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench import harness
from bench import run as bench_run

ROW_KEYS = {"name", "value", "unit", "floor", "ratio", "target", "ok"}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return bench_run.run(["webhook"], quick=True, verbose=False)


@pytest.mark.e2e
def test_quick_webhook_benchmark_rows_have_the_harness_shape(report: dict[str, Any]) -> None:
    entry = report["benchmarks"]["webhook"]
    assert "error" not in entry, entry.get("traceback")
    rows = entry["rows"]
    assert rows
    for row in rows:
        assert row.keys() >= ROW_KEYS
        assert row["benchmark"] == "webhook"
        assert isinstance(row["value"], int | float) and row["unit"]
        if row["kind"] == "perf":
            # every performance figure sits next to its floor, as a ratio
            assert row["floor"] > 0
            assert row["ratio"] == pytest.approx(row["value"] / row["floor"])
            assert row["ok"] is None or isinstance(row["ok"], bool)
        else:
            assert row["target"] is not None and row["ok"] is (row["value"] == row["target"])
    names = {r["name"] for r in rows}
    assert {
        "ack latency p50, 1 sender",
        "ack latency p99, 1 sender",
        "throughput, 1 sender",
        "throughput, 8 senders",
        "throughput, 64 senders",
    } <= names
    median = next(r for r in rows if r["name"] == "ack latency p50, 1 sender")
    assert median["unit"] == "ms" and median["target"] == 2.0 and median["cmp"] == "<="
    assert any("worker=False" in n for n in entry["notes"])


@pytest.mark.e2e
def test_quick_webhook_benchmark_loses_and_duplicates_nothing(report: dict[str, Any]) -> None:
    rows = {r["name"]: r for r in report["benchmarks"]["webhook"]["rows"]}
    lost = rows["lost inbound messages"]
    duplicated = rows["duplicated (messages + cases per kecamatan, wa_id)"]
    assert lost["value"] == 0 and lost["ok"] is True
    assert duplicated["value"] == 0 and duplicated["ok"] is True
    details = report["benchmarks"]["webhook"]["details"]["correctness"]
    assert details["inbound_messages"] == details["posts"] == 200
    assert details["cases"] == details["residents"]


@pytest.mark.e2e
def test_report_prints_as_a_table_and_is_written_as_json(
    report: dict[str, Any], tmp_path: Path
) -> None:
    table = bench_run.format_table(report)
    assert "ack latency p50, 1 sender" in table and "ratio" in table
    (path,) = bench_run.write(report, tmp_path / "out" / "bench.json")
    assert json.loads(path.read_text("utf-8"))["benchmarks"]["webhook"]["rows"]


def test_rows_judge_ratios_and_exact_values() -> None:
    slow = harness.vs_floor("latency", 3.0, 1.0, "ms", target=2.0)
    assert (slow.ratio, slow.ok) == (3.0, False)
    assert harness.vs_floor("latency", 1.5, 1.0, "ms", target=2.0).ok is True
    assert harness.vs_floor("throughput", 50.0, 100.0, "req/s", target=0.4, cmp=">=").ok is True
    assert harness.vs_floor("informational", 5.0, 1.0, "ms").ok is None
    assert harness.check("lost", 0).ok is True and harness.check("lost", 1).ok is False
    report = {"benchmarks": {"b": {"rows": [slow.to_dict()]}}}
    assert bench_run.failed(report, strict=False) is False  # a missed speed target is reported
    assert bench_run.failed(report, strict=True) is True


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert harness.percentile(values, 50) == 50.0
    assert harness.percentile(values, 99) == 99.0
    assert harness.percentile([7.0], 99) == 7.0
    assert math.isnan(harness.percentile([], 50))
