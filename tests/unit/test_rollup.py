"""The rollups' arithmetic: log-spaced buckets, medians and percentiles read back within one
bucket of the exact figure, and the ledger that counts every step run once."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sapa.domain.case import Actor, Case
from sapa.domain.rollup import (
    BUCKET_FACTOR,
    MICROS,
    Distribution,
    RollupTracker,
    bucket_bounds,
    bucket_of,
    counters,
    difference,
    dist,
    distributions,
    total,
)
from sapa.domain.sla import SlaClocks
from sapa.domain.sop import default_sop

SOP = default_sop()
TRACKER = RollupTracker(SOP, SlaClocks(), "Asia/Makassar")
T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
LOKET = Actor(id="loket@sapa.test", role="loket", kecamatan="730608")

# durations as the SLA arithmetic gives them: whole microseconds, up to a year
micros = st.integers(min_value=0, max_value=365 * 86_400 * MICROS)


def test_buckets_are_eight_per_doubling() -> None:
    assert bucket_of(0.0) is None and bucket_of(-1.0) is None
    assert bucket_of(1.0) == 0 and bucket_of(2.0) == 8 and bucket_of(0.5) == -8
    assert bucket_of(math.nextafter(2.0, 0)) == 7
    assert bucket_bounds(8) == (2.0, pytest.approx(2 * BUCKET_FACTOR))
    assert bucket_bounds(-1)[1] == 1.0


@given(st.floats(min_value=1e-9, max_value=1e12, allow_nan=False))
def test_every_value_lies_in_its_bucket(value: float) -> None:
    j = bucket_of(value)
    assert j is not None
    lo, hi = bucket_bounds(j)
    assert lo <= value < hi
    assert hi / lo == pytest.approx(BUCKET_FACTOR)


def from_values(values: list[int]) -> Distribution:
    c: Counter[str] = Counter()
    for us in values:
        dist(c, "x", us / MICROS, us)
    return distributions(c)["x"]


def within_a_bucket(got: float | None, exact: float) -> bool:
    if exact == 0:
        return got == 0
    assert got is not None
    return exact / BUCKET_FACTOR * (1 - 1e-12) <= got <= exact * BUCKET_FACTOR * (1 + 1e-12)


@given(st.lists(micros, min_size=1, max_size=60))
def test_median_and_p90_are_within_one_bucket_of_the_exact_figures(values: list[int]) -> None:
    d = from_values(values)
    seconds = sorted(v / MICROS for v in values)
    assert d.n == len(values) and d.total == sum(values)
    assert within_a_bucket(d.median(), statistics.median(seconds))
    rank = max(math.ceil(0.9 * len(seconds)), 1)
    assert within_a_bucket(d.percentile(90), seconds[rank - 1])


@given(micros, st.integers(min_value=1, max_value=20), st.lists(micros, max_size=5))
def test_a_bucket_of_equal_values_gives_them_exactly(
    value: int, count: int, others: list[int]
) -> None:
    # GIVEN a majority of one value and a few others in other buckets
    j = bucket_of(value / MICROS)
    others = [o for o in others if bucket_of(o / MICROS) != j]
    d = from_values([value] * (count + len(others) + 1) + others)
    # THEN the median is that value exactly
    assert d.median() == value / MICROS


def test_an_empty_distribution_has_no_figures() -> None:
    assert Distribution().median() is None and Distribution().percentile(90) is None


# ---- the ledger ---------------------------------------------------------------------------------


def checked_case() -> Case:
    case = Case.open(
        SOP,
        case_id="c-1",
        reg_no="R-1",
        kecamatan="730608",
        phone_number_id="demo-730608",
        wa_id="6281200000001",
        applicant_name="Warga",
        at=T0,
    )
    case.apply(SOP, "send_link", Actor.system(), T0 + timedelta(seconds=2))
    case.service = "kk"
    case.apply(SOP, "submit_form", Actor.applicant(case.wa_id), T0 + timedelta(seconds=62))
    case.claim(SOP, LOKET, T0 + timedelta(seconds=72))
    case.apply(SOP, "check", LOKET, T0 + timedelta(seconds=112))
    return case


def test_a_counted_run_is_kept_as_it_was_counted() -> None:
    case = checked_case()
    first = TRACKER.ledger(case)
    assert first["runs"]["2"]["k"] == "periksa" and first["runs"]["2"]["h"] == 40 * MICROS
    # WHEN the ledger is brought up to date under other clocks, nothing new having happened
    slow = RollupTracker(SOP, SlaClocks(), "Asia/Jakarta")  # another time zone
    again = slow.ledger(case, first)
    # THEN the runs are as counted; only the day follows the time zone
    assert again["runs"] == first["runs"]
    assert difference(counters(first), counters(first)) == {}
    # AND from nothing the same case is counted in full, as before
    assert TRACKER.ledger(case, None) == first


def test_a_ledger_of_another_layout_is_counted_again() -> None:
    case = checked_case()
    assert TRACKER.ledger(case, {"v": 0, "runs": {"2": {"k": "x"}}}) == TRACKER.ledger(case)


def test_total_of_changes_and_back_is_nothing() -> None:
    a = counters(TRACKER.ledger(checked_case()))
    minus = {k: {n: -v for n, v in cell.items()} for k, cell in a.items()}
    assert total([a, minus]) == {}
    assert total([a]) == a
