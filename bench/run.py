"""Run the benchmarks, print one table, write the rows as JSON.

    python -m bench.run [--only NAME ...] [--quick] [--out PATH] [--strict]

Every figure is printed next to a floor measured in the same run, with their ratio. The exit
status is 1 if a benchmark failed or a correctness row (kind "check") missed its target; a
performance target that is missed is reported (ok = False) and only fails with --strict.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import REGISTRY, Context, Row

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "var" / "bench"
# Modules whose import registers benchmarks; add new ones here.
BENCHMARK_MODULES = (
    "bench.webhook",
    "bench.coldstart",
    "bench.per_case",
    "bench.memory",
    "bench.queue",
    "bench.regency_day",
    "bench.bombs",
    "bench.reports",
)


def load_benchmarks() -> None:
    for module in BENCHMARK_MODULES:
        importlib.import_module(module)


def run(
    names: list[str] | None = None, *, quick: bool = False, verbose: bool = True
) -> dict[str, Any]:
    """Run the named benchmarks (all by default); the report that is also written as JSON."""
    load_benchmarks()
    selected = names or list(REGISTRY)
    unknown = [n for n in selected if n not in REGISTRY]
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(REGISTRY)}"
        )
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    report: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_before": _loadavg(),
        },
        "benchmarks": {},
    }
    for name in selected:
        bench = REGISTRY[name]
        ctx = Context(quick=quick, verbose=verbose)
        if verbose:
            print(f"▶ {name}: {bench.description}", file=sys.stderr, flush=True)
        b0 = time.perf_counter()
        entry: dict[str, Any] = {"description": bench.description}
        try:
            rows = bench.fn(ctx)
            for row in rows:
                row.benchmark = name
            entry["rows"] = [r.to_dict() for r in rows]
        except Exception as exc:
            entry["rows"] = []
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = traceback.format_exc()
            if verbose:
                print(entry["traceback"], file=sys.stderr)
        entry["seconds"] = round(time.perf_counter() - b0, 2)
        entry["notes"] = ctx.notes
        entry["details"] = ctx.details
        report["benchmarks"][name] = entry
    report["seconds"] = round(time.perf_counter() - t0, 2)
    report["machine"]["loadavg_after"] = _loadavg()
    return report


def _loadavg() -> list[float] | None:
    """1/5/15-minute load averages: other work on the machine makes every figure noisier."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def rows_of(report: dict[str, Any]) -> list[Row]:
    return [Row(**r) for b in report["benchmarks"].values() for r in b["rows"]]


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _target(row: Row) -> str:
    if row.target is None:
        return ""
    if row.cmp == "==":
        return f"= {_num(row.target)}"
    if row.absolute:
        return f"{'≤' if row.cmp == '<=' else '≥'} {_num(row.target)} {row.unit}"
    return f"{'≤' if row.cmp == '<=' else '≥'} {row.target:g}×"


def format_table(report: dict[str, Any]) -> str:
    header = ("benchmark", "figure", "value", "unit", "floor", "ratio", "target", "ok")
    lines: list[tuple[str, ...]] = [header]
    for name, b in report["benchmarks"].items():
        if b.get("error"):
            lines.append((name, f"FAILED: {b['error']}", "", "", "", "", "", "NO"))
        for r in b["rows"]:
            row = Row(**r)
            lines.append(
                (
                    name,
                    row.name,
                    _num(row.value),
                    row.unit,
                    _num(row.floor) if row.floor is not None else "",
                    f"{row.ratio:.2f}×" if row.ratio is not None else "",
                    _target(row),
                    {True: "yes", False: "NO", None: ""}[row.ok],
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {2, 4, 5}
    out = []
    for k, line in enumerate(lines):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    out.append(
        "ratio = value / floor (latency, CPU: above 1 is slower than the floor; throughput:"
        " below 1 is slower); ok is judged only where there is a target."
    )
    for name, b in report["benchmarks"].items():
        for note in b["notes"]:
            out.append(f"[{name}] {note}")
    mode = "quick" if report["quick"] else "full"
    machine = report["machine"]
    load = machine.get("loadavg_before")
    out.append(
        f"{mode} run, {report['seconds']:.1f} s on {machine['cpus']} CPU(s),"
        f" Python {machine['python']}"
        + (f", 1-min load average {load[0]:.2f} before the run" if load else "")
    )
    return "\n".join(out)


def write(report: dict[str, Any], out: Path | None) -> list[Path]:
    """To `out`, or to var/bench/bench-<UTC time>.json and var/bench/latest.json."""
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    if out is not None:
        targets = [out]
    else:
        stamp = report["started_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
        targets = [DEFAULT_DIR / f"bench-{stamp}.json", DEFAULT_DIR / "latest.json"]
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return targets


def failed(report: dict[str, Any], *, strict: bool) -> bool:
    for b in report["benchmarks"].values():
        if b.get("error"):
            return True
        for r in b["rows"]:
            if r["ok"] is False and (strict or r["kind"] == "check"):
                return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run only NAME (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests (smoke test)")
    parser.add_argument("--out", type=Path, help="JSON file (default: var/bench/bench-<time>.json)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        load_benchmarks()
        for b in REGISTRY.values():
            print(f"{b.name}\t{b.description}")
        return 0
    report = run(args.only, quick=args.quick)
    print(format_table(report))
    for path in write(report, args.out):
        print(f"wrote {os.path.relpath(path)}")
    return 1 if failed(report, strict=args.strict) else 0


if __name__ == "__main__":
    raise SystemExit(main())
