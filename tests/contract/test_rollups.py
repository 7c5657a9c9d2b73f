"""Contract of the CaseStore's rollups (`sapa.domain.rollup`), run against every adapter: the
embedded SQLite store and the Firestore store on Google's emulator over a real socket.

A store given a tracker counts each case into the rollup cells in the same write as the case;
these tests check what lands in which cell, that nothing is counted twice (a stale save, the
same save repeated, a change of service, a recount), that a failed save adds nothing, and that
concurrent writers to one day's cells lose no count."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from sapa.domain.case import Actor, Case
from sapa.domain.errors import AlreadyExists, ConcurrentUpdate, NotFound, TransientError
from sapa.domain.rollup import ALL, CASE, DONE, NO_SERVICE, STEP, CellKey, RollupTracker, merged
from sapa.domain.sla import SlaClocks, load_sla_clocks
from sapa.domain.sop import default_sop
from sapa.ports import CaseStore
from tests.contract.conftest import MakeStore
from tests.contract.test_case_store import new_case as open_case

SOP = default_sop()
KEC, OTHER = "730608", "730601"
MONDAY = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 WITA, the office is open
DAY = date(2026, 11, 30)
LOKET = Actor(id="loket.sombaopu@sapa.test", role="loket", kecamatan=KEC)
TRACKER = RollupTracker(SOP, SlaClocks(), "Asia/Makassar")  # wall-clock time: plain sums

Build = Callable[[Callable[[], RollupTracker] | None], CaseStore]


@pytest.fixture
def build(make_store: MakeStore) -> Build:
    return lambda tracker: make_store(tracker=tracker)


@pytest.fixture
def store(build: Build) -> CaseStore:
    return build(lambda: TRACKER)


def new_case(*, kecamatan: str = KEC, at: datetime = MONDAY) -> Case:
    return open_case(kecamatan=kecamatan, at=at)


def submitted(service: str = "ktp_el", **kw: object) -> Case:
    """A case with the link sent by the system (2 s) and the guest book in (60 s later)."""
    case = new_case(**kw)  # type: ignore[arg-type]
    t = case.created_at
    case.apply(SOP, "send_link", Actor.system(), t + timedelta(seconds=2))
    case.service = service
    case.apply(SOP, "submit_form", Actor.applicant(case.wa_id), t + timedelta(seconds=62))
    return case


def check(case: Case, *, wait: float = 10, handle: float = 40) -> None:
    """Step 3 by the counter officer: waited `wait` s after the guest book, took `handle` s."""
    ready = case.updated_at
    case.claim(SOP, LOKET, ready + timedelta(seconds=wait))
    case.apply(SOP, "check", LOKET, ready + timedelta(seconds=wait + handle))


def cell(store: CaseStore, part: str, kec: str, svc: str, day: date = DAY) -> dict[str, int]:
    found = store.rollups(part, day, day, kecamatan=kec, service=svc)
    assert len(found) <= 1
    return dict(found[0].counters) if found else {}


def all_cells(
    store: CaseStore, first: date = DAY, last: date = DAY
) -> dict[CellKey, dict[str, int]]:
    return {
        c.key: dict(c.counters)
        for part in (CASE, STEP, DONE)
        for c in store.rollups(part, first, last)
    }


# ---- what is counted where --------------------------------------------------------------------


def test_a_new_case_is_counted_in_its_opening_day_under_each_combination(store: CaseStore) -> None:
    # GIVEN a case greeted on Monday morning, no service chosen yet
    case = new_case()
    # WHEN it is created
    store.create(case)
    # THEN its kecamatan and "no service", and every "all" combination, count one case
    for kec, svc in ((KEC, NO_SERVICE), (KEC, ALL), (ALL, NO_SERVICE), (ALL, ALL)):
        assert cell(store, CASE, kec, svc) == {"cases": 1}
        # the resident's greeting: one handled run of step 1, no time taken, no officer
        step = cell(store, STEP, kec, svc)
        assert step["s|sapa|h|n"] == 1 and step["s|sapa|h|z"] == 1
        assert not any(name.startswith("o|") for name in step)
    assert cell(store, CASE, OTHER, ALL) == {}
    # the greeting is done by its own event: a sample for the STATUS estimate of that day
    assert cell(store, DONE, KEC, ALL)["e|sapa|n"] == 1
    assert cell(store, DONE, ALL, ALL)["e|sapa|n"] == 1


def test_a_finished_step_adds_its_times_once(store: CaseStore) -> None:
    case = submitted()
    store.create(case)
    before = cell(store, STEP, KEC, "ktp_el")
    # WHEN the counter officer checks the case: waited 10 s, took 40 s (mutu baku 60 s)
    check(case, wait=10, handle=40)
    store.save(case)
    after = cell(store, STEP, KEC, "ktp_el")
    added = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    # THEN exactly that run: handling 40 s on its clock and on the wall clock, waiting 10 s,
    # within standard, one officer run, the officer's own counters
    officer = "o|loket.sombaopu@sapa.test"
    assert added["s|periksa|h|n"] == 1 and added["s|periksa|h|t"] == 40_000_000
    assert added["s|periksa|r|t"] == 40_000_000
    assert added["s|periksa|w|n"] == 1 and added["s|periksa|w|t"] == 10_000_000
    assert added["s|periksa|ok"] == 1 and added["s|periksa|on"] == 1
    assert added["s|periksa|ook"] == 1
    assert added[f"{officer}|periksa|runs"] == 1 and added[f"{officer}|ok"] == 1
    assert added[f"{officer}|ht"] == 40_000_000 and added[f"{officer}|x|n"] == 1
    assert cell(store, CASE, ALL, ALL)["on"] == 1
    # AND saving again without a change adds nothing
    store.save(case)
    assert cell(store, STEP, KEC, "ktp_el") == after


def test_a_stale_save_adds_nothing(build: Build) -> None:
    store = build(lambda: TRACKER)
    case = submitted()
    store.create(case)
    # GIVEN two copies of the case; the first officer's check is saved
    first, second = store.get(case.id), store.get(case.id)
    check(first)
    store.save(first)
    counted = all_cells(store)
    # WHEN the second copy, older, is saved with its own change (or the first retried)
    check(second, handle=500)
    with pytest.raises(ConcurrentUpdate):
        store.save(second)
    first.version -= 1  # a retry of a save that did succeed
    with pytest.raises(ConcurrentUpdate):
        store.save(first)
    # THEN the cells are as after the one successful save
    assert all_cells(store) == counted


def test_a_save_refused_for_another_reason_adds_nothing(store: CaseStore) -> None:
    # GIVEN an open case of a resident, and a second one created for the same resident
    case = new_case()
    store.create(case)
    counted = all_cells(store)
    twin = new_case()
    twin.wa_id = case.wa_id
    with pytest.raises(AlreadyExists):
        store.create(twin)
    # THEN the refused create counted nothing
    assert all_cells(store) == counted


def test_a_new_service_moves_what_the_case_counted(store: CaseStore) -> None:
    case = submitted(service="ktp_el")
    check(case)
    store.create(case)
    counted = cell(store, STEP, KEC, "ktp_el")
    all_of_day = cell(store, STEP, ALL, ALL)
    assert counted["s|periksa|h|n"] == 1
    # WHEN the service changes (a re-submitted guest book)
    case.service = "kk"
    store.save(case)
    # THEN everything the case counted is under the new service, nothing under the old,
    # and the all-service cells are unchanged
    assert cell(store, STEP, KEC, "ktp_el") == {}
    assert cell(store, CASE, ALL, "ktp_el") == {}
    assert cell(store, STEP, KEC, "kk") == counted
    assert cell(store, STEP, ALL, ALL) == all_of_day
    assert cell(store, CASE, KEC, "kk") == {"cases": 1, "on": 1, "ook": 1}


def test_the_end_of_a_case_is_counted_with_its_lead_time(store: CaseStore) -> None:
    case = submitted()
    store.create(case)
    at = case.updated_at + timedelta(minutes=5)
    case.apply(SOP, "cancel", Actor.applicant(case.wa_id), at, reason="BATAL")
    store.save(case)
    got = cell(store, CASE, KEC, "ktp_el")
    # cancelled: an end, no lead time (only delivered cases have one); the check the
    # cancellation closed is no handled run
    assert got == {"cases": 1, "end|cancelled": 1}
    assert "s|periksa|h|n" not in cell(store, STEP, KEC, "ktp_el")


def test_runs_finished_on_a_later_day_count_there_for_the_estimate(store: CaseStore) -> None:
    case = submitted()
    store.create(case)
    # GIVEN the check taken the next morning
    case.claim(SOP, LOKET, MONDAY + timedelta(days=1))
    case.apply(SOP, "check", LOKET, MONDAY + timedelta(days=1, seconds=30))
    store.save(case)
    tuesday = DAY + timedelta(days=1)
    # THEN its handling counts on the opening day, its ready → done on the day it was done
    assert cell(store, STEP, KEC, "ktp_el")["s|periksa|h|n"] == 1
    done = cell(store, DONE, KEC, ALL, tuesday)
    assert done["e|periksa|n"] == 1
    ready_to_done = (MONDAY + timedelta(days=1, seconds=30)) - (MONDAY + timedelta(seconds=62))
    assert done["e|periksa|t"] == round(ready_to_done.total_seconds() * 1_000_000)
    assert "e|periksa|n" not in cell(store, DONE, KEC, ALL)


def test_reads_filter_by_part_day_kecamatan_and_service(store: CaseStore) -> None:
    for at, kec, svc in (
        (MONDAY, KEC, "ktp_el"),
        (MONDAY, OTHER, "kk"),
        (MONDAY + timedelta(days=1), KEC, "kk"),
        (MONDAY + timedelta(days=3), KEC, "kk"),
    ):
        store.create(submitted(service=svc, kecamatan=kec, at=at))
    two_days = (DAY, DAY + timedelta(days=1))

    def keys(**kw: str | None) -> set[tuple[str, str, str]]:
        cells = store.rollups(CASE, *two_days, **kw)  # type: ignore[arg-type]
        return {(c.key.day[-2:], c.key.kecamatan, c.key.service) for c in cells}

    assert keys(kecamatan=KEC) == {
        ("30", KEC, "ktp_el"),
        ("30", KEC, ALL),
        ("01", KEC, "kk"),
        ("01", KEC, ALL),
    }
    assert keys(service="kk") == {
        ("30", OTHER, "kk"),
        ("30", ALL, "kk"),
        ("01", KEC, "kk"),
        ("01", ALL, "kk"),
    }
    assert keys(kecamatan=ALL, service=ALL) == {("30", ALL, ALL), ("01", ALL, ALL)}
    assert len(keys()) == 7 + 4  # day 30: two cases share the all-all cell
    assert cell(store, CASE, ALL, ALL) == {"cases": 2}
    assert store.rollups(STEP, DAY + timedelta(days=5), DAY + timedelta(days=9)) == []


def test_adjust_adds_and_drops_zeros(store: CaseStore) -> None:
    key = CellKey(CASE, DAY.isoformat(), KEC, "kk")
    store.adjust_rollups({key: {"cases": 2, "end|expired": 1}})
    assert cell(store, CASE, KEC, "kk") == {"cases": 2, "end|expired": 1}
    store.adjust_rollups({key: {"cases": -1, "end|expired": -1}})
    assert cell(store, CASE, KEC, "kk") == {"cases": 1}
    store.adjust_rollups({key: {"cases": -1}})
    assert store.rollups(CASE, DAY, DAY) == []


# ---- recounting ----------------------------------------------------------------------------------


def test_recount_counts_a_case_saved_without_rollups_once(build: Build) -> None:
    # GIVEN a case written by a store that kept no rollups (before they existed)
    plain = build(None)
    case = submitted()
    check(case)
    plain.create(case)
    assert plain.rollups(CASE, DAY, DAY) == []
    assert plain.recount(case.id) is None
    # WHEN a store with rollups recounts it, twice
    store = build(lambda: TRACKER)
    ledger = store.recount(case.id)
    first = all_cells(store)
    assert store.recount(case.id) == ledger
    # THEN it is counted once, and a save afterwards adds only what is new
    assert ledger is not None and ledger["svc"] == "ktp_el"
    assert all_cells(store) == first
    assert cell(store, CASE, ALL, ALL) == {"cases": 1, "on": 1, "ook": 1}
    stored = store.get(case.id)
    stored.note(Actor.system(), "noted", stored.updated_at)
    store.save(stored)
    assert all_cells(store) == first
    with pytest.raises(NotFound):
        store.recount(str(uuid.uuid4()))


def test_recount_rewrites_what_other_settings_counted(build: Build) -> None:
    # GIVEN a check over the lunch break counted on wall-clock time (3650 s, past standard)
    case = submitted(at=datetime(2026, 11, 30, 3, 0, tzinfo=UTC))  # 11:00 WITA
    ready = case.updated_at
    case.claim(SOP, LOKET, datetime(2026, 11, 30, 3, 59, 30, tzinfo=UTC))  # 11:59:30
    case.apply(SOP, "check", LOKET, datetime(2026, 11, 30, 5, 0, 20, tzinfo=UTC))  # 13:00:20
    assert ready < case.steps[-2].claimed_at  # type: ignore[operator]
    raw = build(lambda: TRACKER)
    raw.create(case)
    assert "s|periksa|ok" not in cell(raw, STEP, KEC, "ktp_el")  # breached: 0 within
    # WHEN the office's working hours are counted and the case recounted
    working = RollupTracker(SOP, load_sla_clocks(), "Asia/Makassar")
    store = build(lambda: working)
    store.recount(case.id)
    # THEN the check took 50 working seconds: within its 60 s mutu baku
    got = cell(store, STEP, KEC, "ktp_el")
    assert got["s|periksa|ok"] == 1 and got["s|periksa|h|t"] == 50_000_000
    assert got["s|periksa|r|t"] == 3_650_000_000 and got["s|periksa|wk"] == 1


# ---- concurrent writers ------------------------------------------------------------------------


def test_concurrent_saves_of_one_days_cases_lose_no_count(store: CaseStore) -> None:
    # GIVEN four cases of the same day, each checked by its own writer, and a second writer
    # racing on the first case
    cases = [submitted() for _ in range(4)]
    for case in cases:
        store.create(case)
    committed: list[str] = []
    lock = threading.Lock()

    def worker(case_id: str, rounds: int) -> None:
        for _ in range(rounds):
            for _attempt in range(30):
                case = store.get(case_id)
                if case.state != "form_submitted":
                    return
                try:
                    check(case)
                    store.save(case)
                except TransientError:  # lost a race (or the backend was busy): read again
                    continue
                with lock:
                    committed.append(case_id)
                break

    threads = [threading.Thread(target=worker, args=(c.id, 1)) for c in cases]
    threads.append(threading.Thread(target=worker, args=(cases[0].id, 1)))  # a racing twin
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN each case's check is counted exactly once, as many as commits succeeded
    assert sorted(committed) == sorted(c.id for c in cases)
    step = cell(store, STEP, ALL, ALL)
    assert step["s|periksa|h|n"] == len(committed) == 4
    assert cell(store, CASE, ALL, ALL) == {"cases": 4, "on": 4, "ook": 4}


# ---- what the reports read ---------------------------------------------------------------------


def test_the_dashboard_reads_the_exact_figures_from_either_store(
    build: Build, tmp_path: Path
) -> None:
    from sapa.adapters.clock import FixedClock
    from sapa.dev.seed import SeedParams, generate_for
    from sapa.services import dashboard as dash
    from tests.conftest import make_container
    from tests.services.test_dashboard_rollups import assert_same_figures, exact

    # GIVEN a seeded month stored, case by case, in this store with the container's tracker
    c = make_container(tmp_path / "c")
    c.clock = FixedClock(datetime(2026, 11, 29, 1, 0, tzinfo=UTC))  # type: ignore[misc]
    c.store = build(c.rollup_tracker)  # type: ignore[misc]
    cases = list(generate_for(c, SeedParams(date(2026, 10, 1), 60, 5, c.clock.now())))
    for case in cases:
        c.store.create(case)
    # THEN the dashboard read from its rollups is the exact one, for a filter or none
    for f in (
        dash.Filters(date(2026, 10, 1), date(2026, 10, 31)),
        dash.Filters(date(2026, 10, 5), date(2026, 10, 20), "730608"),
        dash.Filters(date(2026, 10, 1), date(2026, 10, 31), None, "ktp_el"),
    ):
        assert_same_figures(dash.load(c, f), exact(c, cases, f))


def test_the_total_of_cells_is_what_adding_them_up_gives(store: CaseStore) -> None:
    # GIVEN cases of two kecamatan over two days, those of Somba Opu checked
    for kec, at in ((KEC, MONDAY), (OTHER, MONDAY), (KEC, MONDAY + timedelta(days=1))):
        case = submitted(kecamatan=kec, at=at)
        if kec == KEC:
            check(case)
        store.create(case)
    last = DAY + timedelta(days=1)
    # THEN for every part and filter the store's running total equals the cells added up
    for part in (CASE, STEP, DONE):
        for kec, svc in ((None, None), (KEC, None), (ALL, ALL), (None, "ktp_el"), (OTHER, ALL)):
            cells = store.rollups(part, DAY, last, kecamatan=kec, service=svc)
            expected = {k: v for k, v in merged(cells).items() if v}
            assert store.rollup_total(part, DAY, last, kecamatan=kec, service=svc) == expected
    assert store.rollup_total(STEP, DAY, last, kecamatan=ALL, service=ALL)["s|periksa|h|n"] == 2
    assert store.rollup_total(CASE, last + timedelta(days=1), last + timedelta(days=9)) == {}
