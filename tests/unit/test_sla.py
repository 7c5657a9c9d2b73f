"""SLA arithmetic with explicit datetimes: waiting, handling against the mutu baku, lead time."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sapa.domain.case import Actor, Case, StepRun
from sapa.domain.sla import (
    StepTiming,
    format_duration,
    format_on_clock,
    load_sla_clocks,
    step_timing,
    timeline,
)
from sapa.domain.sop import Sop

T = datetime(2026, 1, 5, 1, 0, 0, tzinfo=UTC)  # 09:00 WITA


def s(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def officer(role: str, n: int = 1) -> Actor:
    return Actor(id=f"{role}-{n}", role=role, kecamatan="730608" if role == "loket" else None)


def open_case(sop: Sop) -> Case:
    return Case.open(
        sop,
        case_id="c-1",
        reg_no="GWA-1",
        kecamatan="730608",
        phone_number_id="demo-730608",
        wa_id="6281234567890",
        applicant_name="Andi Baso",
        at=T,
    )


PEMOHON = Actor.applicant("6281234567890")


# ---- one step run -------------------------------------------------------------------------------


def test_given_a_done_run_then_waiting_is_ready_to_claimed_and_handling_claimed_to_done(
    sop: Sop,
) -> None:
    run = StepRun(step="periksa", ready_at=s(0), claimed_at=s(20), done_at=s(70), done_by="l")
    timing = step_timing(sop, run, now=s(10_000))
    assert timing.waiting_seconds == 20
    assert timing.handling_seconds == 50
    assert timing.mutu_baku_seconds == 60
    assert timing.done
    assert timing.step == sop.step("periksa")
    assert not timing.breached


@pytest.mark.parametrize(
    ("step", "handling", "breached"),
    [
        ("periksa", 59, False),
        ("periksa", 60, False),  # exactly the mutu baku is on standard, not a breach
        ("periksa", 61, True),
        ("hubungi", 600, False),
        ("hubungi", 600.5, True),
        ("persetujuan", 30, False),
        ("persetujuan", 31, True),
        ("input_siak", 0, False),
    ],
)
def test_given_handling_time_then_breached_iff_it_exceeds_the_mutu_baku(
    sop: Sop, step: str, handling: float, breached: bool
) -> None:
    run = StepRun(step=step, ready_at=s(0), claimed_at=s(5), done_at=s(5 + handling))
    timing = step_timing(sop, run, now=s(99_999))
    assert timing.handling_seconds == handling
    assert timing.breached is breached


def test_given_an_unclaimed_open_run_then_waiting_runs_to_now_and_handling_is_none(
    sop: Sop,
) -> None:
    run = StepRun(step="persetujuan", ready_at=s(0))
    timing = step_timing(sop, run, now=s(90))
    assert timing.waiting_seconds == 90
    assert timing.handling_seconds is None
    assert not timing.done
    assert not timing.breached  # nobody has started: waiting is not handling
    assert timing.ratio is None
    assert step_timing(sop, run, now=s(7200)).waiting_seconds == 7200


def test_given_a_claimed_open_run_then_handling_runs_to_now_and_may_already_breach(
    sop: Sop,
) -> None:
    run = StepRun(step="persetujuan", ready_at=s(0), claimed_at=s(10), claimed_by="kabid-1")
    early = step_timing(sop, run, now=s(40))
    assert (early.waiting_seconds, early.handling_seconds, early.breached) == (10, 30, False)
    late = step_timing(sop, run, now=s(41))
    assert (late.waiting_seconds, late.handling_seconds, late.breached) == (10, 31, True)
    assert not late.done


def test_given_clock_skew_then_durations_are_never_negative(sop: Sop) -> None:
    run = StepRun(step="periksa", ready_at=s(10), claimed_at=s(5), done_at=s(4))
    timing = step_timing(sop, run, now=s(0))
    assert timing.waiting_seconds == 0
    assert timing.handling_seconds == 0


@pytest.mark.parametrize(
    ("handling", "mutu_baku", "ratio"),
    [(30, 60, 0.5), (60, 60, 1.0), (1200, 600, 2.0), (None, 60, None), (10, 0, None)],
)
def test_given_handling_and_mutu_baku_then_ratio_is_their_quotient(
    sop: Sop, handling: float | None, mutu_baku: float, ratio: float | None
) -> None:
    run = StepRun(step="periksa", ready_at=s(0))
    timing = StepTiming(sop.step("periksa"), run, 0, handling, mutu_baku, False)
    assert timing.ratio == ratio


# ---- the case timeline --------------------------------------------------------------------------


@pytest.fixture
def delivered(sop: Sop) -> Case:
    """A case done along the happy path with known times (seconds after T)."""
    case = open_case(sop)
    case.apply(sop, "send_link", Actor.system(), s(5))
    case.apply(sop, "submit_form", PEMOHON, s(3600))
    case.claim(sop, officer("loket"), s(3620))
    case.apply(sop, "check", officer("loket"), s(3700))  # handling 80 > 60: breach
    case.apply(sop, "contact", officer("loket"), s(3800))  # unclaimed: claimed=done, handling 0
    case.claim(sop, officer("verifikator"), s(3900))
    case.apply(sop, "forward", officer("verifikator"), s(3960))  # 60 = 60: on standard
    case.claim(sop, officer("operator_siak"), s(4000))
    case.apply(sop, "enter_siak", officer("operator_siak"), s(4700))  # 700 > 600: breach
    case.claim(sop, officer("kabid"), s(5000))
    case.apply(sop, "approve", officer("kabid"), s(5010))
    case.claim(sop, officer("kadis"), s(6000))
    case.apply(sop, "sign", officer("kadis"), s(6020))
    case.apply(sop, "deliver", Actor.system(), s(6030))
    return case


def test_given_a_delivered_case_then_the_timeline_has_every_step_in_order(
    sop: Sop, delivered: Case
) -> None:
    tl = timeline(sop, delivered, now=s(100_000))
    assert [t.step.number for t in tl.steps] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [(t.waiting_seconds, t.handling_seconds) for t in tl.steps] == [
        (0, 0),  # step 1: the greeting itself
        (5, 0),  # step 2: the system sent the link 5 s after the greeting
        (20, 80),
        (100, 0),
        (100, 60),
        (40, 700),
        (300, 10),
        (990, 20),
    ]
    assert all(t.done for t in tl.steps)
    assert [t.step.key for t in tl.breaches] == ["periksa", "input_siak"]
    assert tl.standard_total_seconds == 1470
    assert tl.lead_time_target_seconds == 86400


def test_given_a_delivered_case_then_the_lead_time_stops_at_delivery(
    sop: Sop, delivered: Case
) -> None:
    for now in (s(6030), s(100_000), s(10**7)):
        tl = timeline(sop, delivered, now=now)
        assert tl.finished
        assert tl.lead_time_seconds == 6030
        assert not tl.lead_time_breached


def test_given_a_delivered_case_when_something_is_noted_later_then_the_lead_time_is_unchanged(
    sop: Sop, delivered: Case
) -> None:
    # GIVEN the signed document was delivered, WHEN the WhatsApp send is recorded an hour later
    delivered.note(Actor.system(), "wa_sent", s(6030 + 3600), message_id="wamid.1")
    # THEN the lead time still ends at the terminal state, not at the last note
    assert timeline(sop, delivered, now=s(100_000)).lead_time_seconds == 6030


@pytest.mark.parametrize(
    ("event", "actor"),
    [("cancel", PEMOHON), ("expire", Actor.system()), ("reject", Actor(id="a", role="admin"))],
)
def test_given_a_case_closed_early_then_the_lead_time_stops_at_the_closing(
    sop: Sop, event: str, actor: Actor
) -> None:
    case = open_case(sop)
    case.apply(sop, "send_link", Actor.system(), s(5))
    if event == "reject":
        case.apply(sop, "submit_form", PEMOHON, s(60))
    case.apply(sop, event, actor, s(900))
    tl = timeline(sop, case, now=s(50_000))
    assert tl.finished
    assert tl.lead_time_seconds == 900


def test_given_an_open_case_then_the_lead_time_runs_to_now(sop: Sop) -> None:
    case = open_case(sop)
    case.apply(sop, "send_link", Actor.system(), s(5))
    case.apply(sop, "submit_form", PEMOHON, s(600))
    tl = timeline(sop, case, now=s(1000))
    assert not tl.finished
    assert tl.lead_time_seconds == 1000
    assert timeline(sop, case, now=s(2000)).lead_time_seconds == 2000
    waiting_check = tl.steps[-1]
    assert waiting_check.step.key == "periksa"
    assert (waiting_check.waiting_seconds, waiting_check.handling_seconds) == (400, None)
    assert not waiting_check.done


def test_given_an_open_case_past_the_office_target_then_the_lead_time_is_breached(
    sop: Sop,
) -> None:
    case = open_case(sop)
    assert not timeline(sop, case, now=s(86400)).lead_time_breached  # exactly on target
    assert timeline(sop, case, now=s(86401)).lead_time_breached


def test_given_a_redone_step_then_both_runs_appear_in_ready_order(
    sop: Sop, delivered: Case
) -> None:
    case = open_case(sop)
    case.apply(sop, "send_link", Actor.system(), s(5))
    case.apply(sop, "submit_form", PEMOHON, s(60))
    case.apply(sop, "request_correction", officer("loket"), s(120))
    case.apply(sop, "submit_form", PEMOHON, s(600))
    tl = timeline(sop, case, now=s(700))
    assert [t.step.key for t in tl.steps] == ["sapa", "kirim_tautan", "periksa", "periksa"]
    first, second = tl.steps[2:]
    assert (first.done, first.run.outcome, first.handling_seconds) == (
        True,
        "request_correction",
        0,
    )
    assert (second.done, second.waiting_seconds) == (False, 100)


# ---- working hours ------------------------------------------------------------------------------

CLOCKS = load_sla_clocks()  # the bundled calendar: Mon–Thu 08–12, 13–16; Fri 08–11:30, 13–16:30


def w(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo("Asia/Makassar"))


def test_given_clocks_then_an_officer_step_carries_both_durations_and_is_measured_on_working_hours(
    sop: Sop,
) -> None:
    # GIVEN the contact step (10 minutes) ready at 15:50 on Friday 4 December 2026, taken at
    # 16:25 and done at 08:10 on Monday
    run = StepRun(
        step="hubungi",
        ready_at=w(2026, 12, 4, 15, 50),
        claimed_at=w(2026, 12, 4, 16, 25),
        claimed_by="loket-1",
        done_at=w(2026, 12, 7, 8, 10),
        done_by="loket-1",
    )
    timing = step_timing(sop, run, now=w(2026, 12, 8, 12), clocks=CLOCKS)
    # THEN raw and working figures are both there
    assert (timing.waiting_seconds, timing.working_waiting_seconds) == (35 * 60, 35 * 60)
    raw_handling = (w(2026, 12, 7, 8, 10) - w(2026, 12, 4, 16, 25)).total_seconds()
    assert timing.handling_seconds == raw_handling
    assert timing.working_handling_seconds == 15 * 60  # 5 min on Friday, 10 on Monday
    assert timing.elapsed_seconds == 35 * 60 + raw_handling
    assert timing.working_elapsed_seconds == 50 * 60
    # AND the mutu baku is compared with the working-hours handling time
    assert timing.clock == "working"
    assert timing.sla_handling_seconds == 15 * 60 and timing.sla_waiting_seconds == 35 * 60
    assert timing.breached and timing.ratio == 1.5
    # WHEN it had been done at 08:05 on Monday instead, THEN it was exactly on standard
    on_time = run.model_copy(update={"done_at": w(2026, 12, 7, 8, 5)})
    assert not step_timing(sop, on_time, now=w(2026, 12, 8, 12), clocks=CLOCKS).breached
    # AND without clocks the same run is measured on raw time, as before
    raw = step_timing(sop, on_time, now=w(2026, 12, 8, 12))
    assert raw.clock == "raw" and raw.working_handling_seconds is None and raw.breached


def test_given_a_step_spanning_several_days_and_a_holiday_then_only_open_hours_count(
    sop: Sop,
) -> None:
    # GIVEN SIAK entry (10 minutes) taken at 15:00 on Wednesday 23 December 2026 and still
    # open on Monday the 28th at 09:00 (Thursday cuti bersama, Friday Christmas, a weekend)
    run = StepRun(
        step="input_siak",
        ready_at=w(2026, 12, 23, 14),
        claimed_at=w(2026, 12, 23, 15),
        claimed_by="operator_siak-1",
    )
    timing = step_timing(sop, run, now=w(2026, 12, 28, 9), clocks=CLOCKS)
    # THEN it has used two working hours of its raw 4 days and 18 hours
    assert timing.working_handling_seconds == 2 * 3600
    assert timing.handling_seconds == (4 * 24 + 18) * 3600
    assert timing.working_waiting_seconds == 3600 and not timing.done
    assert timing.breached


def test_given_a_run_the_system_did_then_it_is_on_raw_time(sop: Sop) -> None:
    # The automatic guest-book link (a counter officer's step) sent at 22:00 on a Saturday
    run = StepRun(
        step="kirim_tautan",
        ready_at=w(2026, 12, 5, 22),
        done_at=w(2026, 12, 5, 22, 0, 2),
        done_by="system",
    )
    timing = step_timing(sop, run, now=w(2026, 12, 7, 9), clocks=CLOCKS)
    assert timing.clock == "raw" and timing.sla_waiting_seconds == 2
    assert timing.working_waiting_seconds == 0
    # while an officer's run of the same step is on working hours
    by_hand = run.model_copy(update={"done_by": "loket-1"})
    assert step_timing(sop, by_hand, now=w(2026, 12, 7, 9), clocks=CLOCKS).clock == "working"


def test_given_clocks_then_the_timeline_has_the_working_lead_time(sop: Sop) -> None:
    # GIVEN a case greeted at 15:00 on Friday 4 December 2026 and still open on Monday 09:00
    case = Case.open(
        sop,
        case_id="c-2",
        reg_no="GWA-2",
        kecamatan="730608",
        phone_number_id="demo-730608",
        wa_id="6281234567890",
        applicant_name="Andi Baso",
        at=w(2026, 12, 4, 15),
    )
    case.apply(sop, "send_link", Actor.system(), w(2026, 12, 4, 15, 0, 1))
    case.apply(sop, "submit_form", PEMOHON, w(2026, 12, 5, 10))  # on Saturday
    tl = timeline(sop, case, now=w(2026, 12, 7, 9), clocks=CLOCKS)
    # THEN the lead time is there on both clocks; the office's target is on raw time
    assert tl.lead_time_seconds == (2 * 24 + 18) * 3600
    assert tl.working_lead_time_seconds == 2.5 * 3600  # 15:00–16:30 Friday, 08–09 Monday
    assert tl.lead_time_clock == "raw" and tl.lead_time_breached
    # AND the check waiting since Saturday has used the Monday hour only
    check = tl.steps[-1]
    assert check.step.key == "periksa" and check.working_waiting_seconds == 3600
    assert check.waiting_seconds == (23 + 24) * 3600
    # AND with the target on working hours it is not breached
    working_target = dataclasses.replace(CLOCKS, lead_time="working")
    tl = timeline(sop, case, now=w(2026, 12, 7, 9), clocks=working_target)
    assert tl.sla_lead_time_seconds == 2.5 * 3600 and not tl.lead_time_breached


@pytest.mark.parametrize(
    ("raw", "working", "clock", "shown"),
    [
        (65_400, 7800, "working", "2 j 10 mnt kerja · 18 j 10 mnt total"),
        (600, 300, "working", "5 mnt kerja · 10 mnt total"),
        (65_400, 7800, "raw", "18 j 10 mnt"),
        (65_400, None, "working", "18 j 10 mnt"),
        (1200, 1200.2, "working", "20 mnt"),  # the same figure is shown once
        (None, None, "working", "-"),
    ],
)
def test_format_on_clock(raw: float | None, working: float | None, clock: str, shown: str) -> None:
    assert format_on_clock(raw, working, clock) == shown


# ---- format_duration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (0, "0 dtk"),
        (0.04, "0 dtk"),
        (0.4, "0,4 dtk"),
        (7, "7 dtk"),
        (7.25, "7,2 dtk"),
        (9.96, "10 dtk"),
        (16, "16 dtk"),
        (59.4, "59 dtk"),
        (59.6, "1 mnt"),
        (60, "1 mnt"),
        (61, "1 mnt 1 dtk"),
        (120, "2 mnt"),
        (600, "10 mnt"),
        (1470, "24 mnt 30 dtk"),
        (3599, "59 mnt 59 dtk"),
        (3599.6, "1 j"),
        (3600, "1 j"),
        (3900, "1 j 5 mnt"),
        (3929, "1 j 5 mnt"),  # from an hour up, to the nearest minute
        (3931, "1 j 6 mnt"),
        (86400, "24 j"),
        (90061, "25 j 1 mnt"),
    ],
)
def test_format_duration(seconds: float | None, shown: str) -> None:
    assert format_duration(seconds) == shown
