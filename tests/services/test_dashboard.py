"""The dashboard's statistics over hand-built cases with known durations (every figure exact),
its filters, its charts, and the seeded month generator (deterministic, realistic, valid)."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sapa.adapters.embedded.staff_file import FileStaffDirectory
from sapa.bootstrap import Container
from sapa.dev.seed import SeedError, SeedParams, generate, generate_for, parse_month, seed_store
from sapa.domain.case import Actor, Case
from sapa.domain.errors import ValidationFailed
from sapa.domain.reference import default_catalogue, default_region
from sapa.domain.sop import default_sop
from sapa.domain.values import KkNumber, Nik, normalize_phone
from sapa.services import dashboard as dash

SOP = default_sop()
REGION = default_region()
CATALOGUE = default_catalogue()
WITA = ZoneInfo("Asia/Makassar")
MONDAY = datetime(2026, 10, 5, 9, 0, tzinfo=WITA)  # office hours: raw time = working time
OCTOBER = dash.Filters(date(2026, 10, 1), date(2026, 10, 31))
NOW = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
SOMBA_OPU, BONTONOMPO = "730608", "730601"

OFFICERS = {
    "verifikator": Actor(id="verifikasi@sapa.test", role="verifikator"),
    "operator_siak": Actor(id="operator.siak@sapa.test", role="operator_siak"),
    "kabid": Actor(id="kabid@sapa.test", role="kabid"),
    "kadis": Actor(id="kadis@sapa.test", role="kadis"),
}
LOKET = {
    SOMBA_OPU: Actor(id="loket.sombaopu@sapa.test", role="loket", kecamatan=SOMBA_OPU),
    BONTONOMPO: Actor(id="loket.bontonompo@sapa.test", role="loket", kecamatan=BONTONOMPO),
}
# Officer steps 3..8 with a default handling/waiting time well within each mutu baku.
STANDARD_HANDLING = {
    "periksa": 40.0,
    "hubungi": 300.0,
    "teruskan": 40.0,
    "input_siak": 400.0,
    "persetujuan": 20.0,
    "tte": 20.0,
}


def build(
    n: int,
    *,
    kecamatan: str = SOMBA_OPU,
    service: str = "ktp_el",
    start: datetime = MONDAY,
    handling: dict[str, float] | None = None,
    waiting: dict[str, float] | None = None,
    stop_before: str | None = None,
    cancel_before: str | None = None,
) -> tuple[Case, float]:
    """A case walked through the SOP with exact times; returns it and its lead time (s)."""
    hand = {**STANDARD_HANDLING, **(handling or {})}
    wait = waiting or {}
    case = Case.open(
        SOP,
        case_id=f"case-{n}",
        reg_no=f"{kecamatan}-20261005-{n:04d}",
        kecamatan=kecamatan,
        phone_number_id=f"demo-{kecamatan}",
        wa_id=f"6280000000{n:03d}",
        applicant_name="Warga Contoh",
        at=start,
    )
    t = start + timedelta(seconds=2)
    case.apply(SOP, "send_link", Actor.system(), t)
    t += timedelta(seconds=60)
    case.service = service
    case.apply(SOP, "submit_form", Actor.applicant(case.wa_id), t)
    for step in SOP.steps[2:]:
        if step.key == stop_before:
            return case, 0.0
        if step.key == cancel_before:
            t += timedelta(seconds=30)
            case.apply(SOP, "cancel", Actor.applicant(case.wa_id), t, reason="BATAL")
            return case, (t - start).total_seconds()
        actor = LOKET[kecamatan] if step.role == "loket" else OFFICERS[step.role]
        t += timedelta(seconds=wait.get(step.key, 10.0))
        case.claim(SOP, actor, t)
        t += timedelta(seconds=hand[step.key])
        case.apply(SOP, step.event, actor, t)
    t += timedelta(seconds=5)
    case.apply(SOP, "deliver", Actor.system(), t)
    return case, (t - start).total_seconds()


@pytest.fixture
def hand_built() -> tuple[list[Case], list[float]]:
    """Three delivered Somba Opu cases with known times, one open Bontonompo case, one
    cancelled case, and one opened in September (outside the period)."""
    a, lead_a = build(1, handling={"periksa": 30, "input_siak": 300}, waiting={"periksa": 100})
    b, lead_b = build(2, handling={"periksa": 50, "input_siak": 700}, waiting={"periksa": 200})
    c, lead_c = build(
        3,
        service="kk",
        handling={"periksa": 90, "input_siak": 500},
        waiting={"periksa": 300},
    )
    still_open, _ = build(4, kecamatan=BONTONOMPO, stop_before="input_siak")
    cancelled, _ = build(5, cancel_before="periksa")
    september, _ = build(6, start=datetime(2026, 9, 21, 9, 0, tzinfo=WITA))
    return [a, b, c, still_open, cancelled, september], [lead_a, lead_b, lead_c]


def compute(cases: list[Case], filters: dash.Filters = OCTOBER) -> dash.Dashboard:
    return dash.compute(
        cases,
        SOP,
        filters=filters,
        region=REGION,
        catalogue=CATALOGUE,
        now=NOW,
        staff_names={"kabid@sapa.test": "Kepala Bidang Pelayanan"},
    )


def step(d: dash.Dashboard, key: str) -> dash.StepStat:
    return next(s for s in d.steps if s.key == key)


# ---- arithmetic ------------------------------------------------------------------------------


def test_median_and_nearest_rank_percentile() -> None:
    assert dash.median([3.0, 1.0, 2.0]) == 2.0
    assert dash.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert dash.median([]) is None
    values = [float(v) for v in range(1, 11)]
    assert dash.percentile(values, 90) == 9.0
    assert dash.percentile(values, 100) == 10.0
    assert dash.percentile([30.0, 90.0, 50.0], 90) == 90.0
    assert dash.percentile([7.0], 90) == 7.0
    assert dash.percentile([], 90) is None


# ---- the numbers of hand-built cases ---------------------------------------------------------


def test_per_step_figures_are_exact(hand_built: tuple[list[Case], list[float]]) -> None:
    cases, _ = hand_built
    d = compute(cases)
    periksa = step(d, "periksa")
    # handling 30, 40 (the open case), 50, 90 against 60 s; the cancelled case's check was
    # closed by the resident, not handled
    assert periksa.handled == 4
    assert periksa.median_handling == 45.0
    assert periksa.p90_handling == 90.0
    assert periksa.within == 3
    assert periksa.compliance == pytest.approx(3 / 4)
    # waiting 100, 200, 300 (+ the open case's 10 s: it has been checked)
    assert periksa.waited == 4
    assert periksa.median_waiting == 150.0
    siak = step(d, "input_siak")
    assert (siak.handled, siak.median_handling, siak.p90_handling) == (3, 500.0, 700.0)
    assert siak.within == 2  # 700 s is past the 600 s mutu baku
    hubungi = step(d, "hubungi")
    assert (hubungi.handled, hubungi.within, hubungi.median_handling) == (4, 4, 300.0)
    # the resident's greeting and the system's link: counted per step, never as officer work
    assert step(d, "sapa").handled == 5
    assert step(d, "kirim_tautan").median_waiting == 2.0
    assert [s.number for s in d.steps] == list(range(1, 9))


def test_summary_kecamatan_service_and_weeks(hand_built: tuple[list[Case], list[float]]) -> None:
    cases, leads = hand_built
    d = compute(cases)
    assert d.cases == 5  # September's case is outside the period
    assert (d.delivered, d.open, d.cancelled, d.rejected, d.expired) == (3, 1, 1, 0, 0)
    # officer runs: 3 delivered x 6 steps + the open case's 3 = 21; two breaches
    assert d.officer_runs == 21
    assert d.within == 19
    assert d.compliance == pytest.approx(19 / 21)
    assert d.median_lead_time == sorted(leads)[1]
    assert d.within_lead_time_target == 3
    sombaopu = next(g for g in d.kecamatan if g.code == SOMBA_OPU)
    assert (sombaopu.volume, sombaopu.delivered, sombaopu.backlog) == (4, 3, 0)
    assert sombaopu.median_lead_time == sorted(leads)[1]
    bontonompo = next(g for g in d.kecamatan if g.code == BONTONOMPO)
    assert (bontonompo.volume, bontonompo.delivered, bontonompo.backlog) == (1, 0, 1)
    assert bontonompo.median_lead_time is None
    assert len(d.kecamatan) == 18  # every kecamatan, with or without requests
    kk = next(g for g in d.services if g.code == "kk")
    assert (kk.volume, kk.delivered, kk.median_lead_time) == (1, 1, leads[2])
    ktp = next(g for g in d.services if g.code == "ktp_el")
    assert (ktp.volume, ktp.backlog) == (4, 1)
    assert [w.week for w in d.weeks] == [f"2026-W{n}" for n in range(40, 45)]
    w41 = next(w for w in d.weeks if w.week == "2026-W41")
    assert (w41.volume, w41.officer_runs, w41.within) == (5, 21, 19)
    assert sum(w.volume for w in d.weeks) == 5


def test_officers(hand_built: tuple[list[Case], list[float]]) -> None:
    d = compute(hand_built[0])
    by = {o.officer: o for o in d.officers}
    assert by["loket.sombaopu@sapa.test"].handled == 6  # check + contact of three cases
    assert by["loket.sombaopu@sapa.test"].within == 5
    assert by["loket.bontonompo@sapa.test"].handled == 2
    assert by["operator.siak@sapa.test"].compliance == pytest.approx(2 / 3)
    assert by["kabid@sapa.test"].name == "Kepala Bidang Pelayanan"
    assert by["kabid@sapa.test"].median_handling_ratio == pytest.approx(20 / 30)
    assert "system" not in by and not any(k.startswith("wa:") for k in by)


def test_filters_narrow_by_kecamatan_and_service(
    hand_built: tuple[list[Case], list[float]],
) -> None:
    cases, leads = hand_built
    only_bontonompo = compute(cases, dash.Filters(OCTOBER.start, OCTOBER.end, BONTONOMPO))
    assert only_bontonompo.cases == 1
    assert [g.code for g in only_bontonompo.kecamatan] == [BONTONOMPO]
    assert step(only_bontonompo, "periksa").handled == 1
    only_kk = compute(cases, dash.Filters(OCTOBER.start, OCTOBER.end, service="kk"))
    assert only_kk.cases == 1
    assert step(only_kk, "periksa").median_handling == 90.0
    assert only_kk.median_lead_time == leads[2]
    nothing = compute(cases, dash.Filters(date(2026, 10, 20), date(2026, 10, 31)))
    assert nothing.cases == 0
    assert nothing.compliance is None
    assert step(nothing, "periksa").median_handling is None


def test_tables_carry_the_same_numbers(hand_built: tuple[list[Case], list[float]]) -> None:
    d = compute(hand_built[0])
    tables = dash.tables(d)
    assert set(tables) == {"steps", "kecamatan", "service", "officers", "weeks"}
    steps = tables["steps"]
    row = steps.rows[2]
    named = dict(zip((c.key for c in steps.columns), row, strict=True))
    assert named["number"] == 3
    assert named["mutu_baku_s"] == 60.0
    assert (named["handled"], named["median_s"], named["p90_s"]) == (4, 45.0, 90.0)
    assert named["compliance"] == pytest.approx(3 / 4)
    assert dash.fmt_share(2 / 3) == "66,7 %"
    assert dash.fmt_cell("int", 12345) == "12.345"


def test_steps_are_measured_on_their_sla_clock(container: Container) -> None:
    clocks = getattr(container, "sla_clocks", None)
    if clocks is None or getattr(clocks, "calendar", None) is None:
        pytest.skip("the SLA settings define no working hours: every step is on wall-clock time")
    # the check taken at 11:59:30 and done at 13:00:20, over the lunch break: 50 s of working
    # time (within the 60 s mutu baku), 3650 s of wall-clock time
    case, _ = build(7, waiting={"periksa": 10708}, handling={"periksa": 3650})
    run = next(r for r in case.steps if r.step == "periksa")
    assert run.claimed_at is not None
    assert run.claimed_at.astimezone(WITA).strftime("%H:%M:%S") == "11:59:30"
    d = dash.compute(
        [case], SOP, filters=OCTOBER, region=REGION, catalogue=CATALOGUE, now=NOW, clocks=clocks
    )
    periksa = step(d, "periksa")
    assert d.working_hours
    assert (periksa.median_handling, periksa.within) == (50.0, 1)
    assert periksa.median_raw_handling == 3650.0
    steps = dash.tables(d)["steps"]
    assert "Median penanganan waktu kalender (detik)" in [c.header for c in steps.columns]
    # without the clocks the same run is past its mutu baku
    raw = step(compute([case]), "periksa")
    assert (raw.median_handling, raw.within, raw.median_raw_handling) == (3650.0, 0, None)


# ---- filters ------------------------------------------------------------------------------


def parse(**args: str) -> dash.Filters:
    return dash.parse_filters(args, today=date(2026, 11, 29), region=REGION, catalogue=CATALOGUE)


def test_filters_default_to_last_month_until_today() -> None:
    assert parse() == dash.Filters(date(2026, 10, 1), date(2026, 11, 29))
    assert parse(**{"from": "2026-10-01", "to": "2026-10-31", "kecamatan": SOMBA_OPU}) == (
        dash.Filters(date(2026, 10, 1), date(2026, 10, 31), SOMBA_OPU)
    )


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        ({"from": "01-10-2026"}, "from", "TTTT-BB-HH"),
        ({"from": "2026-02-30"}, "from", "TTTT-BB-HH"),
        ({"from": "2026-10-31", "to": "2026-10-01"}, "to", "tidak boleh sebelum"),
        ({"from": "2024-01-01", "to": "2026-10-01"}, "to", "366 hari"),
        ({"from": "2026-12-01", "to": "2026-12-31"}, "from", "setelah hari ini"),
        ({"kecamatan": "999999"}, "kecamatan", "Kecamatan tidak dikenal"),
        ({"service": "paspor"}, "service", "layanan tidak dikenal"),
    ],
)
def test_bad_filters_are_refused_in_indonesian(
    args: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse(**args)
    assert message in err.value.fields[field]
    assert message in err.value.message


def test_month_filters() -> None:
    today = date(2026, 11, 29)
    assert dash.month_filters("2026-10", today=today) == OCTOBER
    assert dash.month_filters("2026-11", today=today).end == today
    for bad in ("2026-13", "10-2026", "2026-1", "x"):
        with pytest.raises(ValidationFailed, match="TTTT-BB"):
            dash.month_filters(bad, today=today)
    with pytest.raises(ValidationFailed, match="belum dimulai"):
        dash.month_filters("2027-01", today=today)


def test_a_report_month_lies_within_what_the_retention_schedule_keeps() -> None:
    today = date(2026, 11, 29)
    keep = timedelta(days=365)
    # the first month that began inside the kept year, up to this month, newest first
    months = dash.report_months(today, keep)
    assert months[0] == date(2026, 11, 1) and months[-1] == date(2025, 12, 1)
    assert len(months) == 12
    assert dash.month_filters("2025-12", today=today, keep=keep).start == date(2025, 12, 1)
    with pytest.raises(ValidationFailed) as err:
        dash.month_filters("2025-11", today=today, keep=keep)
    assert "Desember 2025 sampai November 2026" in err.value.fields["month"]
    # a kept period that starts on the first of a month includes that month
    assert dash.report_months(date(2026, 3, 1), timedelta(days=28))[-1] == date(2026, 2, 1)


# ---- charts -------------------------------------------------------------------------------


def bars(svg: str, cls: str) -> list[tuple[float, float, float]]:
    """(value, width, height) of each bar of a class."""
    out = []
    for m in re.finditer(r'<rect class="bar ' + cls + r'"([^>]*)>', svg):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
        out.append((float(attrs["data-value"]), float(attrs["width"]), float(attrs["height"])))
    return out


def test_charts_are_sized_by_the_data(hand_built: tuple[list[Case], list[float]]) -> None:
    d = compute(hand_built[0])
    svg = dash.steps_chart(d)
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title" in svg
    medians = bars(svg, "bar-median")
    assert len(medians) == 8  # every step has handled runs
    # periksa: median 45 s of 60 s → ratio 0.75; bar lengths are proportional to the ratios
    assert medians[2][0] == pytest.approx(45 / 60, abs=1e-3)
    longest = max(medians + bars(svg, "bar-p90"), key=lambda b: b[0])
    for value, width, _ in medians:
        assert width == pytest.approx(longest[1] * value / longest[0], abs=0.2)
    kec = dash.kecamatan_chart(d)
    volumes = bars(kec, "bar-volume")
    assert len(volumes) == 18
    top = max(volumes)
    assert top[0] == 4
    assert bars(kec, "bar-backlog")[0] == (1.0, pytest.approx(top[1] / 4, abs=0.2), 14.0)
    weeks = dash.weeks_chart(d)
    assert len(bars(weeks, "bar-week")) == 5
    assert 'class="trend"' in weeks
    assert "<script" not in svg + kec + weeks and "href" not in svg + kec + weeks


# ---- the seeded generator ----------------------------------------------------------------------


STAFF = FileStaffDirectory().all()
OFFICE_ROLES = {"loket", "verifikator", "operator_siak", "kabid", "kadis"}


def october(cases: int = 500, seed: int = 7) -> list[Case]:
    params = SeedParams(date(2026, 10, 1), cases, seed, NOW)
    return list(generate(SOP, REGION, CATALOGUE, STAFF, params))


@pytest.fixture(scope="module")
def seeded() -> list[Case]:
    return october()


def test_the_generator_is_deterministic_for_a_seed(seeded: list[Case]) -> None:
    again = october()
    assert [c.model_dump(mode="json") for c in again] == [c.model_dump(mode="json") for c in seeded]
    assert [e.model_dump(mode="json") for c in again for e in c.new_events] == [
        e.model_dump(mode="json") for c in seeded for e in c.new_events
    ]
    other = october(seed=8)
    assert [c.id for c in other] != [c.id for c in seeded]
    assert [c.created_at for c in other] != [c.created_at for c in seeded]


def test_every_generated_case_is_valid(seeded: list[Case]) -> None:
    moves = {(t.event, t.from_state, t.to_state) for t in SOP.transitions}
    ids, reg_nos = set(), set()
    for case in seeded:
        # the stored form reads back as the same case
        assert Case.model_validate_json(case.model_dump_json()).model_dump() == case.model_dump()
        assert case.state in SOP.states
        ids.add(case.id)
        reg_nos.add(case.reg_no)
        assert case.reg_no.startswith(case.kecamatan + "-")
        # the audit trail: numbered in order, in time order, every move one the SOP allows
        events = case.new_events
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert all(a.at <= b.at for a, b in itertools.pairwise(events))
        for e in events:
            if e.from_state != e.to_state and e.event != "greet":
                state = "returned" if e.from_state == "returned" else e.from_state
                step = SOP.step_for_event(e.event)
                assert (e.event, state, e.to_state) in moves or (
                    state == "returned" and step is not None and step.to_state == e.to_state
                ), (case.reg_no, e.event, e.from_state, e.to_state)
        assert (case.closed_at is not None) == (not case.is_open(SOP))
        # every run: ready <= claimed <= done, and officers only in office hours
        for run in case.steps:
            if run.claimed_at:
                assert run.ready_at <= run.claimed_at
            if run.done_at and run.claimed_at:
                assert run.claimed_at <= run.done_at
            if SOP.step(run.step).role in OFFICE_ROLES and run.claimed_at and run.claimed_by:
                local = run.claimed_at.astimezone(WITA)
                if run.claimed_by.startswith("wa:") or run.claimed_by == "system":
                    continue
                assert local.weekday() < 5, (case.reg_no, run.step, local)
                assert 8 <= local.hour < 17, (case.reg_no, run.step, local)
        # synthetic residents that the validators accept
        assert case.wa_id.startswith("62800") and normalize_phone(case.wa_id) == case.wa_id
        assert case.applicant_name.startswith("Warga Contoh")
        if case.form:
            nik = Nik.parse(case.form["nik"])
            assert nik.value[12] == "9"  # synthetic serials: 9000 and up
            assert nik.birth_matches(date.fromisoformat(case.form["birth_date"]))
            KkNumber.parse(case.form["kk"])
            assert "DATA CONTOH" in case.form["notes"]
            assert case.service in {s.code for s in CATALOGUE.services}
    assert len(ids) == len(reg_nos) == len(seeded)


def test_the_generated_month_has_a_realistic_shape(seeded: list[Case]) -> None:
    d = compute(seeded)
    assert d.cases == 500
    states = Counter(c.state for c in seeded)
    assert 0.65 < states["delivered"] / 500 < 0.92
    for ending in ("expired", "cancelled", "rejected"):
        assert states[ending] > 0, ending
    assert d.open > 0  # some still open at the month's end
    # volume by kecamatan follows population: Somba Opu and Pallangga lead, all 18 appear
    volumes = {g.code: g.volume for g in d.kecamatan}
    assert all(v > 0 for v in volumes.values())
    assert sorted(volumes, key=volumes.__getitem__)[-2:] in (
        ["730607", "730608"],
        ["730608", "730607"],
    )
    assert all(g.volume > 0 for g in d.services if g.code != dash.NO_SERVICE)
    # most officer steps within the mutu baku, with a tail past it at every officer step
    assert 0.6 < (d.compliance or 0) < 0.97
    for s in d.steps:
        if s.role in OFFICE_ROLES and not SOP.step(s.key).automatable:  # the link: the system
            assert s.handled > 100
            assert 0.35 < (s.compliance or 0) < 0.99, s.key
            assert (s.p90_handling or 0) > (s.median_handling or 0)
    # corrections, returns: runs closed by those decisions exist
    outcomes = Counter(r.outcome for c in seeded for r in c.steps)
    assert outcomes["request_correction"] > 10
    assert outcomes["return"] > 3
    # cases wait over nights and weekends: some waits are longer than a night
    assert max(s.median_waiting or 0 for s in d.steps) > 1800
    # arrivals: more on weekdays than at weekends, more by day than at night
    local = [c.created_at.astimezone(WITA) for c in seeded]
    assert sum(t.weekday() < 5 for t in local) > 0.8 * len(local)
    assert sum(7 <= t.hour < 18 for t in local) > 0.6 * len(local)


def test_seeding_a_store_is_repeatable(container: Container) -> None:
    # (how fast it seeds is measured by `make bench --only reports`, not here)
    params = SeedParams(date(2026, 10, 1), 3000, 7, NOW)
    states = seed_store(container, params)
    assert sum(states.values()) == 3000
    stored = container.store.list_cases(limit=10_000)
    assert len(stored) == 3000
    assert Counter(c.state for c in stored) == Counter(states)
    assert len(container.store.events(stored[0].id)) >= 2
    # the same seed and month again: nothing new
    assert seed_store(container, params) == {}
    assert len(container.store.list_cases(limit=10_000)) == 3000
    # and the dashboard reads them back from the store
    d = dash.load(container, OCTOBER)
    assert d.cases == 3000


def test_the_generator_refuses_bad_arguments() -> None:
    with pytest.raises(SeedError, match="TTTT-BB"):
        parse_month("Oktober")
    with pytest.raises(SeedError, match="belum dimulai"):
        list(generate(SOP, REGION, CATALOGUE, STAFF, SeedParams(date(2027, 1, 1), 5, 1, NOW)))
    with pytest.raises(SeedError, match="antara 1"):
        list(generate(SOP, REGION, CATALOGUE, STAFF, SeedParams(date(2026, 10, 1), 0, 1, NOW)))


def test_an_interrupted_seeding_resumes_with_the_same_cases(container: Container) -> None:
    params = SeedParams(date(2026, 10, 1), 60, 5, NOW)
    first = list(generate_for(container, params))
    whole = {c.id: c.model_dump(mode="json", exclude={"reg_no"}) for c in first}
    # GIVEN a run that stopped after the first 20 cases
    for case in first[:20]:
        container.store.create(case)
    # WHEN it is run again
    added = seed_store(container, params)
    # THEN the other 40 come, the same as in an uninterrupted run
    assert sum(added.values()) == 40
    stored = {c.id: c for c in container.store.list_cases(limit=1000)}
    assert set(stored) == set(whole)
    for case_id, case in stored.items():
        assert case.model_dump(mode="json", exclude={"reg_no", "version"}) == {
            k: v for k, v in whole[case_id].items() if k != "version"
        }


def test_the_seed_tool_refuses_a_real_store_or_real_whatsapp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sapa.dev import seed

    monkeypatch.setenv("SAPA_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("WA_API_BASE", "https://graph.facebook.com/v21.0")
    assert seed.main(["--cases", "5", "--month", "2026-10"]) == 2
    assert "--force-real-store" in capsys.readouterr().err
    assert not (tmp_path / "var" / "sapa.db").exists()
    # the local default (SQLite + the simulator) is what it is for
    monkeypatch.delenv("WA_API_BASE")
    assert seed.main(["--cases", "5", "--month", "2026-10"]) == 0
    assert (tmp_path / "var" / "sapa.db").exists()
