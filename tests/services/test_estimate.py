"""The resident's STATUS: the step in words, and an expected completion time from the office's
recent step times (kecamatan → all kecamatan → mutu baku) laid onto its working hours."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case
from sapa.services import estimate, guestbook, intake
from tests.fakes import FakeWhatsApp
from tests.services.conftest import Runner, inbound
from tests.services.test_pipeline import LOKET, act, submission, token_from

WITA = ZoneInfo("Asia/Makassar")
SOMBA_OPU, BONTONOMPO = "730608", "730601"
MIN = 60.0

# Minutes (waiting, handling) of steps 3–8 in a typical recent case: 90 minutes in all.
TYPICAL = {
    "periksa": (2, 8),
    "hubungi": (5, 15),
    "teruskan": (1, 4),
    "input_siak": (10, 20),
    "persetujuan": (10, 5),
    "tte": (5, 5),
}


def wita(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=WITA)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(wita(2026, 11, 30, 11, 0))  # Monday, the office is open


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    estimate._cache.clear()


def officer(role: str, kecamatan: str) -> Actor:
    return Actor(id=f"{role}@sapa.test", role=role, kecamatan=kecamatan)


_seq = iter(range(1, 10_000))


def past_case(
    c: Container,
    kecamatan: str,
    start: datetime,
    minutes: dict[str, tuple[float, float]] | None = None,
    *,
    until: str | None = None,
) -> Case:
    """A case of `kecamatan` greeted and submitted at `start`, whose steps 3–8 took `minutes`
    (waiting, handling) each, delivered at the end (or left open before step `until`)."""
    sop, n = c.sop, next(_seq)
    wa_id = f"62811{n:07d}"
    case = Case.open(
        sop,
        case_id=f"past-{n}",
        reg_no=f"{kecamatan}-PAST-{n:04d}",
        kecamatan=kecamatan,
        phone_number_id=f"demo-{kecamatan}",
        wa_id=wa_id,
        applicant_name="Warga",
        at=start,
    )
    c.store.create(case)
    case = c.store.get(case.id)
    case.apply(sop, "send_link", Actor.system(), start)
    case.apply(sop, "submit_form", Actor.applicant(wa_id), start)
    t = start
    for key, (wait, handle) in (minutes or TYPICAL).items():
        if key == until:
            break
        step = sop.step(key)
        who = officer(step.role, kecamatan)
        t += timedelta(minutes=wait)
        case.claim(sop, who, t)
        t += timedelta(minutes=handle)
        case.apply(sop, step.event, who, t)
    else:
        case.apply(sop, "deliver", Actor.system(), t)
    c.store.save(case)
    return case


def history(c: Container, kecamatan: str, count: int, **changes: tuple[float, float]) -> None:
    """`count` delivered cases of last week (Tuesday 09:00 onwards), typical but for
    `changes`: all inside the office's morning hours, so raw and working time agree."""
    for i in range(count):
        past_case(c, kecamatan, wita(2026, 11, 24 + i % 3, 9, i), {**TYPICAL, **changes})


def waiting_case(c: Container, kecamatan: str = SOMBA_OPU, **kw: Any) -> Case:
    """A case submitted now: the check (step 3) waits."""
    return past_case(c, kecamatan, c.clock.now(), until="periksa", **kw)


def when(c: Container, case: Case) -> str | None:
    found = estimate.expected_completion(c, c.store.get(case.id))
    return None if found is None else estimate.format_when(found.at, "Asia/Makassar")


# ---- the figures -------------------------------------------------------------------------------


def test_the_median_of_the_kecamatan_is_laid_onto_the_working_hours(
    container: Container, clock: FixedClock
) -> None:
    c = container
    # GIVEN five recent Somba Opu cases whose check took 3, 10, 10, 40 and 60 minutes
    # (median 10) and whose other steps took 80 minutes in all
    for total in (3, 10, 10, 40, 60):
        history(c, SOMBA_OPU, 1, periksa=(0, total))
    # WHEN a resident's guest book comes in at 11:00 on Monday
    case = waiting_case(c)
    found = estimate.expected_completion(c, case)
    # THEN the 90 minutes run from 11:00 to 12:00, the lunch break does not count, and the
    # last 30 minutes end at 13:30
    assert found is not None
    assert found.at == wita(2026, 11, 30, 13, 30)
    assert [(s.step.key, s.seconds, s.source, s.samples) for s in found.steps] == [
        ("periksa", 10 * MIN, "kecamatan", 5),
        ("hubungi", 20 * MIN, "kecamatan", 5),
        ("teruskan", 5 * MIN, "kecamatan", 5),
        ("input_siak", 30 * MIN, "kecamatan", 5),
        ("persetujuan", 15 * MIN, "kecamatan", 5),
        ("tte", 10 * MIN, "kecamatan", 5),
    ]
    assert when(c, case) == "Senin, 30 November 2026 pukul 13.30 WITA"


def test_the_time_the_waiting_step_has_already_used_is_counted(
    container: Container, clock: FixedClock
) -> None:
    c = container
    history(c, SOMBA_OPU, 5)
    # GIVEN the check has been waiting since 10:56 (4 of its typical 10 minutes used)
    clock.advance(-4 * MIN)
    case = waiting_case(c)
    clock.advance(4 * MIN)
    # THEN 86 minutes are left: 11:00 → 12:00, then 13:00 → 13:26
    assert when(c, case) == "Senin, 30 November 2026 pukul 13.26 WITA"
    # AND a step already past its typical time adds nothing more of its own
    clock.advance(20 * MIN)  # 11:20, the check has waited 24 minutes
    estimate._cache.clear()
    assert when(c, case) == "Senin, 30 November 2026 pukul 13.40 WITA"  # 80 min from 11:20


def test_too_few_runs_in_the_kecamatan_fall_back_to_all_kecamatan(
    container: Container, clock: FixedClock
) -> None:
    c = container
    # GIVEN two Somba Opu cases whose check took an hour, and five of Bontonompo's 10 minutes
    history(c, SOMBA_OPU, 2, periksa=(0, 60))
    history(c, BONTONOMPO, 5)
    case = waiting_case(c)
    found = estimate.expected_completion(c, case)
    assert found is not None
    # THEN every step comes from all seven cases (the check: median of 10,10,10,10,10,60,60)
    assert {(s.source, s.samples) for s in found.steps} == {("all", 7)}
    assert found.steps[0].seconds == 10 * MIN
    assert found.at == wita(2026, 11, 30, 13, 30)


def test_no_recent_data_falls_back_to_the_mutu_baku_over_weekends_and_holidays(
    container: Container, clock: FixedClock
) -> None:
    c = container
    # GIVEN no recent cases at all, and a guest book that comes in at 15:50 on Wednesday
    # 23 December 2026 (Thursday cuti bersama, Friday Christmas, then a weekend)
    clock.advance((wita(2026, 12, 23, 15, 50) - clock.now()).total_seconds())
    case = waiting_case(c)
    found = estimate.expected_completion(c, case)
    assert found is not None
    # THEN the steps' mutu baku (23 minutes in all) take 10 minutes on Wednesday and 13 on
    # Monday the 28th
    assert {s.source for s in found.steps} == {"mutu_baku"}
    assert sum(s.seconds for s in found.steps) == 23 * MIN
    assert when(c, case) == "Senin, 28 Desember 2026 pukul 08.13 WITA"


def test_only_recent_runs_done_by_the_step_itself_count(
    container: Container, clock: FixedClock
) -> None:
    c = container
    # GIVEN five typical cases of last week, five slow ones two months ago, and checks that
    # ended in a correction request after three hours
    history(c, SOMBA_OPU, 5)
    for i in range(5):
        past_case(c, SOMBA_OPU, wita(2026, 10, 1 + i, 9), {**TYPICAL, "periksa": (0, 300)})
    for i in range(5):
        slow = past_case(c, SOMBA_OPU, wita(2026, 11, 25, 9, i), until="periksa")
        who = officer("loket", SOMBA_OPU)
        slow.claim(c.sop, who, wita(2026, 11, 25, 9, 10))
        slow.apply(c.sop, "request_correction", who, wita(2026, 11, 25, 12, 10), reason="x")
        c.store.save(slow)
    # THEN the check's figure comes from the five typical runs only
    found = estimate.expected_completion(c, waiting_case(c))
    assert found is not None
    assert (found.steps[0].seconds, found.steps[0].samples) == (10 * MIN, 5)


def test_no_estimate_while_the_case_waits_on_the_resident_or_is_closed(
    container: Container, clock: FixedClock
) -> None:
    c = container
    case = waiting_case(c)
    assert estimate.expected_completion(c, case) is not None
    case.apply(c.sop, "request_correction", officer("loket", SOMBA_OPU), clock.now(), reason="x")
    assert estimate.expected_completion(c, case) is None
    done = past_case(c, SOMBA_OPU, wita(2026, 11, 24, 9))
    assert estimate.expected_completion(c, done) is None


# ---- the cache -----------------------------------------------------------------------------


class CountingStore:
    """The container's store, counting the reads of recent step times an estimate makes (of
    the rollups; the cases themselves are never read for it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.scans = 0

    def rollups(self, *args: Any, **kw: Any) -> Any:
        self.scans += 1
        return self.inner.rollups(*args, **kw)

    def list_cases(self, **kw: Any) -> Any:
        raise AssertionError("an estimate reads the rollups, not the cases")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_flood_of_status_reads_the_recent_runs_once_per_cache_period(
    container: Container, clock: FixedClock
) -> None:
    c = container
    history(c, SOMBA_OPU, 5)
    case = waiting_case(c)
    counting = CountingStore(c.store)
    c.store = counting  # type: ignore[misc]
    # WHEN twenty residents ask within the cache period
    for _ in range(20):
        assert when(c, case) == "Senin, 30 November 2026 pukul 13.30 WITA"
        clock.advance(1)
    # THEN the recent runs were read once (the kecamatan had enough runs of every step)
    assert counting.scans == 1
    # AND new history shows only once the cache period (5 minutes) is over
    history(c, SOMBA_OPU, 10, periksa=(0, 70))
    clock.advance(5 * MIN - 21)
    assert counting.scans == 1 and estimate.expected_completion(c, case) is not None
    assert counting.scans == 1
    clock.advance(1)
    found = estimate.expected_completion(c, case)
    assert found is not None and counting.scans == 2
    assert found.steps[0].seconds == 70 * MIN


# ---- configuration ---------------------------------------------------------------------------


def with_sla_file(c: Container, path: Path, body: str) -> None:
    path.write_text(body, "utf-8")
    c.settings = c.settings.model_copy(update={"sla_file": path})  # type: ignore[misc]


def test_window_and_minimum_come_from_the_sla_file(
    container: Container, clock: FixedClock, tmp_path: Path
) -> None:
    c = container
    # GIVEN a one-sample minimum and a 3-day window
    with_sla_file(c, tmp_path / "sla.toml", "[estimate]\nwindow_days = 3\nmin_samples = 1\n")
    past_case(c, SOMBA_OPU, wita(2026, 11, 28, 9), {**TYPICAL, "periksa": (0, 20)})
    past_case(c, SOMBA_OPU, wita(2026, 11, 20, 9), {**TYPICAL, "periksa": (0, 500)})
    found = estimate.expected_completion(c, waiting_case(c))
    assert found is not None
    # THEN Saturday's run counts, the one of ten days ago is outside the window
    assert (found.steps[0].seconds, found.steps[0].samples) == (20 * MIN, 1)
    # AND without [working_hours] in that file, the time is laid on raw time: 100 minutes
    assert found.at == wita(2026, 11, 30, 12, 40)


@pytest.mark.parametrize(
    "body",
    [
        "[estimate]\nwindow_days = 0\n",
        "[estimate]\nmin_samples = 0\n",
        "[estimate]\ncache_minutes = -1\n",
        "[estimate]\nwindow = 30\n",
    ],
)
def test_a_bad_estimate_table_is_refused(container: Container, tmp_path: Path, body: str) -> None:
    with_sla_file(container, tmp_path / "bad.toml", body)
    with pytest.raises(ValueError, match="estimate"):
        estimate.config_for(container)


@pytest.mark.parametrize(
    ("at", "shown"),
    [
        (wita(2026, 11, 30, 10, 0), "Senin, 30 November 2026 pukul 10.00 WITA"),
        (wita(2026, 12, 4, 8, 5, 1), "Jumat, 4 Desember 2026 pukul 08.06 WITA"),
        (
            datetime(2027, 1, 3, 0, 0, tzinfo=ZoneInfo("UTC")),
            "Minggu, 3 Januari 2027 pukul 08.00 WITA",
        ),
    ],
)
def test_format_when(at: datetime, shown: str) -> None:
    assert estimate.format_when(at, "Asia/Makassar") == shown


# ---- STATUS on WhatsApp, end to end ------------------------------------------------------------


def replies(wa: FakeWhatsApp, wa_id: str = "6281234567890") -> list[str]:
    return [m.body for m in wa.sent if m.to == wa_id and m.kind == "text"]


def test_status_on_whatsapp_tells_the_step_and_the_expected_completion(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    history(c, SOMBA_OPU, 5)
    # GIVEN a resident who greeted the Somba Opu number at 10:58
    clock.advance(-2 * MIN)
    intake.receive(c, [inbound("Halo", at=clock.now())], [])
    runner.drain()
    case = c.store.find_open(SOMBA_OPU, "6281234567890")
    assert case is not None
    # WHEN they ask STATUS before filling in the guest book
    intake.receive(c, [inbound("STATUS", wamid="wamid.S1", at=clock.now())], [])
    runner.drain()
    # THEN they are told the request waits on them, and what to do
    first = replies(wa)[-1]
    assert first.startswith(f"Permohonan {case.reg_no}: Menunggu pengisian Buku Tamu.")
    assert "Anda (pemohon)" in first and "Buku Tamu" in first and "Perkiraan" not in first
    # WHEN the guest book comes in at 11:00, the counter officer takes the check at 11:05,
    # and the resident asks again at 11:05
    clock.advance(2 * MIN)
    guestbook.submit(c, token_from(wa), submission())
    runner.drain()
    clock.advance(5 * MIN)
    act(c, case.id, LOKET, "claim")
    intake.receive(c, [inbound("status", wamid="wamid.S2", at=clock.now())], [])
    runner.drain()
    # THEN the answer names the step in words and the expected completion: the check has
    # used 5 of its 10 minutes, 85 minutes are left (11:05 → 12:00, 13:00 → 13:30)
    answer = replies(wa)[-1]
    lines = answer.splitlines()
    assert lines[0] == f"Permohonan {case.reg_no}: Buku Tamu terkirim, menunggu pemeriksaan."
    assert lines[1] == (
        "Sedang ditangani: Petugas Loket Pelayanan, langkah 3 dari 8 "
        "(memeriksa data dan kelengkapan permohonan)."
    )
    assert lines[2] == "Perkiraan selesai: Senin, 30 November 2026 pukul 13.30 WITA."
    assert "30 hari terakhir" in lines[3]
    # AND no personal data beyond the registration number is in it
    assert not re.search(r"\d{16}", answer)
