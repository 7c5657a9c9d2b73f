"""The benchmark harness: a registry of benchmark functions, each returning rows.

A row is one figure measured on the system under test next to a FLOOR measured in the same run
on the same machine with the same client (the least any implementation could cost), and their
ratio. A target, when there is one, is a bound on that ratio (performance rows) or an exact value
(correctness rows, kind "check"). Rows without a target are reported, never judged.

Add a benchmark by writing a module with::

    @benchmark("name", "what it measures")
    def name(ctx: Context) -> list[Row]: ...

and listing the module in `bench.run.BENCHMARK_MODULES`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Cmp = Literal["<=", ">=", "=="]


@dataclass
class Row:
    name: str
    value: float
    unit: str
    floor: float | None = None
    ratio: float | None = None
    target: float | None = None
    ok: bool | None = None
    # How the target is met: the ratio is "<=" / ">=" the target, or the value "==" it.
    cmp: Cmp | None = None
    kind: Literal["perf", "check"] = "perf"
    benchmark: str = ""
    # True: the target bounds the value itself (in `unit`), not the ratio (an absolute budget,
    # such as 250 ms of CPU per case); the floor and the ratio are still reported beside it.
    absolute: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def vs_floor(
    name: str,
    value: float,
    floor: float,
    unit: str,
    *,
    target: float | None = None,
    cmp: Cmp = "<=",
    absolute: bool = False,
) -> Row:
    """A performance figure next to its floor; ratio = value / floor. The target bounds the
    ratio, or with `absolute` the value itself."""
    ratio = value / floor if floor else None
    ok: bool | None = None
    judged = value if absolute else ratio
    if target is not None and judged is not None:
        ok = judged <= target if cmp == "<=" else judged >= target
    return Row(
        name,
        value,
        unit,
        floor,
        ratio,
        target,
        ok,
        cmp if target is not None else None,
        absolute=absolute,
    )


def check(name: str, value: float, unit: str = "count", *, target: float = 0) -> Row:
    """A correctness figure: ok only if it equals `target` (no floor: nothing to compare)."""
    return Row(name, value, unit, None, None, target, value == target, "==", "check")


@dataclass
class Context:
    """What a benchmark gets: the mode, and where to put notes and raw details for the JSON."""

    quick: bool = False
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    verbose: bool = True

    def note(self, text: str) -> None:
        """A sentence printed under the table and kept in the JSON (how it was measured)."""
        self.notes.append(text)

    def log(self, text: str) -> None:
        """Progress, on stderr."""
        if self.verbose:
            print(f"  … {text}", file=sys.stderr, flush=True)


BenchFn = Callable[[Context], list[Row]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    fn: BenchFn


REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str, description: str) -> Callable[[BenchFn], BenchFn]:
    def register(fn: BenchFn) -> BenchFn:
        if name in REGISTRY and REGISTRY[name].fn is not fn:
            raise ValueError(f"benchmark {name!r} registered twice")
        REGISTRY[name] = Benchmark(name, description, fn)
        return fn

    return register


# ---- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of `values`: a value that was actually observed."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
