"""The dashboard read from the rollups against the exact computation from the cases
(`dashboard.compute`, the definition), on seeded months: every count, total and compliance
equal, every median and 90th percentile within one bucket (a factor 2^(1/8)), for any period
and filter, whether the cases were stored whole or saved change by change with repeats."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.dev.seed import SeedParams, generate_for, seed_store
from sapa.domain.case import Case
from sapa.domain.errors import ConcurrentUpdate
from sapa.domain.rollup import BUCKET_FACTOR
from sapa.domain.sop import Sop
from sapa.services import dashboard as dash
from tests.conftest import make_container

NOW = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
OCTOBER = date(2026, 10, 1)
KECAMATAN = ("730601", "730607", "730608", "730612")
SERVICES = ("kk", "ktp_el", "akta_kelahiran")
APPROXIMATE = ("median", "p90")  # field names of figures read from buckets
SLACK = 1e-9


def container_at(path: Path) -> Container:
    c = make_container(path)
    c.clock = FixedClock(NOW)  # type: ignore[misc]
    return c


def exact(c: Container, cases: list[Case], f: dash.Filters) -> dash.Dashboard:
    return dash.compute(
        cases,
        c.sop,
        filters=f,
        region=c.region,
        catalogue=c.catalogue,
        now=c.clock.now(),
        staff_names={s.email: s.name for s in c.staff.all()},
        clocks=c.sla_clocks,
    )


def within_a_bucket(got: float | None, want: float | None) -> bool:
    if want is None or got is None:
        return got is None and want is None
    if want == 0:
        return got == 0
    return want / BUCKET_FACTOR * (1 - SLACK) <= got <= want * BUCKET_FACTOR * (1 + SLACK)


def assert_same_figures(got: dash.Dashboard, want: dash.Dashboard) -> None:
    """Equal but for medians and percentiles, which are within one bucket."""
    problems: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(b, dict):
            assert isinstance(a, dict) and a.keys() == b.keys(), path
            for k in b:
                walk(a[k], b[k], f"{path}.{k}")
        elif isinstance(b, list | tuple):
            if len(a) != len(b):
                problems.append(f"{path}: {len(a)} rows, exactly {len(b)}")
                return
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{i}]")
        elif path.rsplit(".", 1)[-1].startswith(APPROXIMATE):
            if not within_a_bucket(a, b):
                problems.append(f"{path}: {a} not within a bucket of {b}")
        elif a != b:
            problems.append(f"{path}: {a!r}, exactly {b!r}")

    walk(dataclasses.asdict(got), dataclasses.asdict(want), "d")
    # the shares are computed from the counts: equal as well
    pairs = [(got, want), *zip(got.steps, want.steps, strict=True)]
    pairs += [*zip(got.kecamatan, want.kecamatan, strict=False)]
    pairs += [*zip(got.services, want.services, strict=False)]
    pairs += [*zip(got.weeks, want.weeks, strict=False)]
    pairs += [*zip(got.officers, want.officers, strict=False)]
    for a, b in pairs:
        if a.compliance != b.compliance:
            problems.append(f"compliance of {getattr(b, 'key', b)}: {a.compliance}")
    assert got.lead_time_compliance == want.lead_time_compliance
    assert not problems, "\n".join(problems[:30])


# ---- stored whole (as the seed writes them) ---------------------------------------------------


_kept: list[tempfile.TemporaryDirectory[str]] = []


@cache
def seeded(seed: int) -> tuple[Container, list[Case]]:
    """A seeded October and half a November in a store of its own (made once per seed, in a
    directory removed when the tests end)."""
    place = tempfile.TemporaryDirectory(prefix="sapa-rollup-")
    _kept.append(place)
    c = container_at(Path(place.name))
    cases: list[Case] = []
    for month, n in ((OCTOBER, 260), (date(2026, 11, 1), 140)):
        params = SeedParams(month, n, seed, NOW)
        cases += list(generate_for(c, params))
        seed_store(c, params)
    assert len(c.store.list_cases(limit=1000)) == len(cases)
    return c, cases


@st.composite
def filters(draw: st.DrawFn) -> dash.Filters:
    start = OCTOBER + timedelta(days=draw(st.integers(0, 50)))
    end = start + timedelta(days=draw(st.integers(0, 58)))
    kecamatan = draw(st.none() | st.sampled_from(KECAMATAN))
    service = draw(st.none() | st.sampled_from(SERVICES))
    return dash.Filters(start, min(end, date(2026, 11, 29)), kecamatan, service)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from((7, 11)), f=filters())
def test_the_dashboard_from_rollups_is_the_exact_one_within_a_bucket(
    seed: int, f: dash.Filters
) -> None:
    c, cases = seeded(seed)
    assert_same_figures(dash.load(c, f), exact(c, cases, f))


def test_a_whole_period_is_not_empty_and_is_what_the_store_holds() -> None:
    c, cases = seeded(7)
    f = dash.Filters(OCTOBER, date(2026, 11, 29))
    got = dash.load(c, f)
    # every case but those the seed opens after the period (it draws the whole November)
    assert got.cases == exact(c, cases, f).cases > 350 and got.officer_runs > 1000
    assert sum(1 for o in got.officers if o.handled) > 10
    assert_same_figures(got, dash.load_from_cases(c, f))


# ---- saved change by change, with repeats -------------------------------------------------------


def as_of(case: Case, at: datetime, sop: Sop) -> Case:
    """The case as it stood at `at`, rebuilt from its runs and audit trail."""
    events = [e for e in case.new_events if e.at <= at]
    then = case.model_copy(deep=True)
    then.new_events = []
    then.steps = []
    for run in case.steps:
        if run.ready_at > at:
            continue
        r = run.model_copy()
        if r.claimed_at is not None and r.claimed_at > at:
            r.claimed_at = r.claimed_by = None
        if r.done_at is not None and r.done_at > at:
            r.done_at = r.done_by = r.outcome = None
        then.steps.append(r)
    then.state = events[-1].to_state
    chose = any(e.event == "submit_form" for e in events)
    then.service = case.service if chose else None
    closed = case.closed_at is not None and case.closed_at <= at
    then.closed_at = case.closed_at if closed else None
    then.updated_at = events[-1].at
    return then


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(1, 10_000),
    repeats=st.lists(st.sampled_from(("again", "stale", "none")), min_size=8, max_size=8),
)
def test_rollups_kept_save_by_save_are_the_exact_figures(seed: int, repeats: list[str]) -> None:
    # GIVEN a seeded month whose cases are saved as they stood after each of their events, in
    # the order the events happened, some saves repeated and some stale copies saved too
    with tempfile.TemporaryDirectory(prefix="sapa-rollup-") as place:
        save_by_save(container_at(Path(place)), seed, repeats)


def save_by_save(c: Container, seed: int, repeats: list[str]) -> None:
    cases = list(generate_for(c, SeedParams(OCTOBER, 45, seed, NOW)))
    sop = c.sop
    moments = sorted(
        {(e.at, k.id) for k in cases for e in k.new_events}, key=lambda m: (m[0], m[1])
    )
    by_id = {k.id: k for k in cases}
    versions: dict[str, int] = {}
    for i, (at, case_id) in enumerate(moments):
        then = as_of(by_id[case_id], at, sop)
        if case_id not in versions:
            c.store.create(then)
            versions[case_id] = 1
            continue
        then.version = versions[case_id]
        c.store.save(then)
        versions[case_id] += 1
        what = repeats[i % len(repeats)]
        if what == "again":  # the same state saved once more (a change that changed nothing)
            c.store.save(then)
            versions[case_id] += 1
        elif what == "stale":  # a copy from before the last save (a lost race)
            then.version -= 1
            with pytest.raises(ConcurrentUpdate):
                c.store.save(then)
    # THEN the dashboard from the rollups is the exact one from the final cases
    for f in (
        dash.Filters(OCTOBER, date(2026, 11, 29)),
        dash.Filters(OCTOBER, date(2026, 10, 15), "730608"),
        dash.Filters(date(2026, 10, 10), date(2026, 10, 31), None, "ktp_el"),
    ):
        assert_same_figures(dash.load(c, f), exact(c, cases, f))


def test_the_bound_is_one_bucket() -> None:
    assert math.isclose(BUCKET_FACTOR, 2 ** (1 / 8))
    assert within_a_bucket(100.0, 100.0) and within_a_bucket(108.0, 100.0)
    assert not within_a_bucket(110.0, 100.0) and not within_a_bucket(0.1, 0.0)
