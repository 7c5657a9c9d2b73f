"""The SLA sweep: breaches and escalations once per step run, the lead-time target, and the
resident who keeps a case waiting (one reminder, then expiry) — however often it runs."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.domain import agenda
from sapa.domain.case import Case
from sapa.services import guestbook, intake, notify, sla_sweep, views
from tests.fakes import FakeWhatsApp, Sent
from tests.services.conftest import Runner, greet, inbound
from tests.services.test_pipeline import LOKET, act, link_sent, submission, to_submitted, token_from

HOUR = 3600
DAY = 24 * HOUR
ZERO = {
    "breaches": 0,
    "escalations": 0,
    "lead_time_breaches": 0,
    "reminders": 0,
    "expired": 0,
    "claims_returned": 0,
    "complaints_late": 0,
}


# Monday 30 November 2026, 09:00 WITA: the office is open (officers' steps run on working
# hours; the tests on nights, weekends and holidays set their own times).
MONDAY_9 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY_9)


def templates(wa: FakeWhatsApp, name: str) -> list[Sent]:
    return [m for m in wa.sent if m.kind == "template" and m.body == name]


def events(c: Container, case_id: str) -> Counter[str]:
    return Counter(e.event for e in c.store.events(case_id))


def detail(c: Container, case_id: str, event: str) -> list[dict[str, Any]]:
    return [e.detail for e in c.store.events(case_id) if e.event == event]


def counts(**over: int) -> dict[str, int]:
    return {**ZERO, **over}


def sweep(c: Container) -> dict[str, int]:
    return sla_sweep.sweep(c)


def with_sla_file(c: Container, tmp_path: Path, body: str) -> None:
    path = tmp_path / "sla.toml"
    path.write_text(body, "utf-8")
    c.settings = c.settings.model_copy(update={"sla_file": path})  # type: ignore[misc]


# ---- officers' steps --------------------------------------------------------------------------


def test_a_breach_is_recorded_once_per_run(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    # GIVEN a submitted guest book whose check (mutu baku 1 minute) nobody has taken
    case_id = to_submitted(c, runner, wa, clock)
    clock.advance(59)
    assert sweep(c) == ZERO
    # WHEN the sweep runs three times after the minute is up
    clock.advance(61)
    assert sweep(c) == counts(breaches=1)
    clock.advance(30)
    assert sweep(c) == ZERO
    assert sweep(c) == ZERO
    # THEN one breach is recorded, with the step and how far past its mutu baku it was
    assert events(c, case_id)["sla_breach"] == 1
    (breach,) = detail(c, case_id, "sla_breach")
    assert breach["step"] == "periksa" and breach["seconds_over"] == 60
    assert breach["measured"] == "waiting" and breach["mutu_baku_seconds"] == 60
    case = c.store.get(case_id)
    assert f"breach:{breach['run']}" in case.sla_flags
    # AND taking the step (its handling clock starts) does not breach the same run again
    act(c, case_id, LOKET, "claim")
    clock.advance(120)
    assert sweep(c) == ZERO
    # BUT the next run of the step (after a correction) is measured on its own
    act(c, case_id, LOKET, "request_correction", reason="Foto KK buram")
    runner.drain()
    guestbook.submit(c, token_from(wa), submission())
    runner.drain()
    clock.advance(61)
    assert sweep(c) == counts(breaches=1)
    assert sweep(c) == ZERO
    runs = [d["run"] for d in detail(c, case_id, "sla_breach")]
    assert len(runs) == 2 and len(set(runs)) == 2


def test_a_claimed_step_is_measured_by_its_handling_time(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "claim")
    clock.advance(50)
    act(c, case_id, LOKET, "check")  # the contact step: 10 minutes
    act(c, case_id, LOKET, "claim")
    clock.advance(600)
    assert sweep(c) == ZERO
    clock.advance(5)
    assert sweep(c) == counts(breaches=1)
    (breach,) = detail(c, case_id, "sla_breach")
    assert breach["step"] == "hubungi" and breach["measured"] == "handling"
    assert breach["seconds_over"] == 5 and breach["claimed_by"] == LOKET.email


def test_escalation_comes_only_after_the_grace(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    # GIVEN a breached step (grace: 30 minutes past its mutu baku)
    clock.advance(61)
    assert sweep(c) == counts(breaches=1)
    clock.advance(30 * 60 - 2)  # 30 minutes past the mutu baku, less one second
    assert sweep(c) == ZERO
    assert events(c, case_id)["sla_escalated"] == 0
    # WHEN the grace is over
    clock.advance(1)
    assert sweep(c) == counts(escalations=1)
    # THEN the head of division is named, once however often the sweep runs
    clock.advance(600)
    assert sweep(c) == ZERO
    (esc,) = detail(c, case_id, "sla_escalated")
    assert esc["escalate_to"] == "kabid" and esc["step"] == "periksa"
    assert esc["seconds_over"] == 30 * 60 and esc["grace_minutes"] == 30


def test_the_grace_and_whom_to_escalate_to_are_configurable(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    c = container
    with_sla_file(
        c,
        tmp_path,
        '[escalation]\ngrace_minutes = 0\nto_role = "kadis"\n'
        '[residents.guestbook]\nstate = "link_sent"\nremind_after_hours = 1\n'
        "expire_after_days = 2\n",
    )
    case_id = to_submitted(c, runner, wa, clock)
    clock.advance(61)
    assert sweep(c) == counts(breaches=1, escalations=1)
    assert detail(c, case_id, "sla_escalated")[0]["escalate_to"] == "kadis"
    # AND the resident's times come from the same file
    other = link_sent(c, runner, wa_id="6281111111111", wamid="wamid.O")
    clock.advance(HOUR)
    assert sweep(c)["reminders"] == 1
    clock.advance(2 * DAY)
    assert sweep(c)["expired"] == 1
    assert c.store.get(other).state == "expired"


def test_a_case_past_the_lead_time_target_is_recorded_once(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "check")
    act(c, case_id, LOKET, "contact")
    runner.drain()
    created = c.store.get(case_id).created_at
    clock.advance(DAY - (clock.now() - created).total_seconds())  # exactly on the target
    before = sweep(c)
    assert before["lead_time_breaches"] == 0
    clock.advance(1)
    assert sweep(c)["lead_time_breaches"] == 1
    assert sweep(c)["lead_time_breaches"] == 0
    (lead,) = detail(c, case_id, "lead_time_breach")
    assert lead["seconds_over"] == 1 and lead["target_seconds"] == DAY


def test_closed_cases_are_left_alone(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "reject", reason="Bukan warga Gowa")
    runner.drain()
    before = events(c, case_id)
    clock.advance(30 * DAY)
    assert sweep(c) == ZERO
    assert events(c, case_id) == before


# ---- residents --------------------------------------------------------------------------------


def test_a_resident_who_has_not_filled_the_guest_book_is_reminded_once(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = link_sent(c, runner)
    sent = len(wa.sent)
    clock.advance(24 * HOUR - 1)
    assert sweep(c)["reminders"] == 0
    # WHEN the sweep runs after 24 hours, and again, and again
    clock.advance(1)
    assert sweep(c)["reminders"] == 1
    runner.drain()
    for _ in range(3):
        clock.advance(HOUR)
        assert sweep(c)["reminders"] == 0
        runner.drain()
    # THEN one reminder went out: the template (outside the 24-hour window) with the link
    case = c.store.get(case_id)
    (reminder,) = wa.sent[sent:]
    assert reminder.kind == "template" and reminder.body == "sapa_pengingat_buku_tamu"
    assert reminder.params[0] == case.reg_no
    assert reminder.params[1].startswith(f"{c.settings.guestbook_base}/f/")
    assert events(c, case_id)["sla_reminder"] == 1
    assert case.state == "link_sent"


def test_a_reminder_inside_the_window_is_free_text(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    link_sent(c, runner)
    clock.advance(23 * HOUR)
    intake.receive(c, [inbound("status", wamid="wamid.S", at=clock.now())], [])
    runner.drain()
    clock.advance(HOUR)
    assert sweep(c)["reminders"] == 1
    runner.drain()
    assert wa.sent[-1].kind == "text"
    assert "Buku Tamu" in wa.sent[-1].body and "HALO" in wa.sent[-1].body


def test_a_resident_asked_for_corrections_is_reminded_with_the_items(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "request_correction", reason="Foto KK buram")
    runner.drain()
    # the resident answers the correction message, then goes quiet
    clock.advance(HOUR)
    intake.receive(c, [inbound("ok", wamid="wamid.OK", at=clock.now())], [])
    runner.drain()
    clock.advance(23 * HOUR)
    assert sweep(c)["reminders"] == 1
    runner.drain()
    assert sweep(c)["reminders"] == 0
    body = wa.sent[-1].body
    assert wa.sent[-1].kind == "text" and "Foto KK buram" in body and "perbaikan" in body
    assert detail(c, case_id, "sla_reminder")[0]["kind"] == "reminder_correction"


def test_a_guest_book_never_filled_expires_after_seven_days(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = link_sent(c, runner)
    clock.advance(7 * DAY - 1)
    assert sweep(c)["expired"] == 0
    runner.drain()  # the reminder
    sent = len(wa.sent)
    # WHEN the seventh day is over
    clock.advance(1)
    assert sweep(c)["expired"] == 1
    # THEN the case is expired by the system and the resident told how to start again, once
    case = c.store.get(case_id)
    assert case.state == "expired" and case.closed_at == clock.now()
    (expire,) = [e for e in c.store.events(case_id) if e.event == "expire"]
    assert expire.actor_id == "system" and expire.from_state == "link_sent"
    assert case.closed_reason == "Buku Tamu tidak diisi dalam 7 hari"
    (notice,) = wa.sent[sent:]
    assert notice.kind == "template" and notice.body == "sapa_permohonan_kedaluwarsa"
    assert notice.params == [case.reg_no, "Buku Tamu tidak diisi dalam 7 hari"]
    for _ in range(3):
        clock.advance(HOUR)
        assert sweep(c) == ZERO
        runner.drain()
    assert len(wa.sent) == sent + 1
    outs = [m.body for m in c.store.messages(case_id) if m.direction == "out"]
    assert sum("sapa_permohonan_kedaluwarsa" in body for body in outs) == 1
    # AND a new greeting opens a new request
    assert greet(c, wamid="wamid.AGAIN", at=clock.now()) != case_id


def test_the_expiry_notice_inside_the_window_says_send_halo(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    link_sent(c, runner)
    clock.advance(7 * DAY - HOUR)
    intake.receive(c, [inbound("bantuan", wamid="wamid.H", at=clock.now())], [])
    runner.drain()
    clock.advance(HOUR)
    assert sweep(c)["expired"] == 1
    body = wa.sent[-1].body
    assert wa.sent[-1].kind == "text" and "HALO" in body and "ditutup" in body


def test_a_correction_never_sent_expires_after_fourteen_days(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "request_correction", reason="Foto KK buram")
    runner.drain()
    clock.advance(8 * DAY)
    assert sweep(c)["expired"] == 0  # the guest book's seven days do not apply here
    clock.advance(6 * DAY)
    assert sweep(c)["expired"] == 1
    case = c.store.get(case_id)
    assert case.state == "expired"
    assert case.closed_reason == "perbaikan tidak dikirim dalam 14 hari"


def test_a_resident_who_submits_after_the_reminder_is_not_expired(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = link_sent(c, runner)
    token = token_from(wa)
    clock.advance(25 * HOUR)
    assert sweep(c)["reminders"] == 1
    runner.drain()
    # WHEN the resident fills the guest book after the reminder
    guestbook.submit(c, token, submission())
    runner.drain()
    # THEN no sweep expires the case that moved on, nor reminds again
    clock.advance(10 * DAY)
    result = sweep(c)
    assert result["expired"] == 0 and result["reminders"] == 0
    assert c.store.get(case_id).state == "form_submitted"
    assert "expired" not in [m.body for m in wa.sent if m.kind == "template"]


def test_a_resident_who_submits_while_the_sweep_runs_is_not_expired(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = container
    case_id = link_sent(c, runner)
    token = token_from(wa)
    clock.advance(25 * HOUR)
    sweep(c)
    runner.drain()
    clock.advance(6 * DAY)
    # GIVEN a sweep that read the case while it still waited on the guest book ...
    stale = c.store.get(case_id)
    real = c.store.list_cases

    def listed(**kw: Any) -> list[Case]:
        if "expired" in (kw.get("states") or []):
            return real(**kw)
        return [stale]

    monkeypatch.setattr(c.store, "list_cases", listed)
    # ... and a resident who submits before the sweep writes
    guestbook.submit(c, token, submission())
    runner.drain()
    sent = len(wa.sent)
    # WHEN the sweep goes on: its write sees the submitted case and expires nothing
    assert sweep(c)["expired"] == 0
    case = c.store.get(case_id)
    assert case.state == "form_submitted" and "expiry_notice" not in case.sla_flags
    assert events(c, case_id)["expire"] == 0
    assert len(wa.sent) == sent


def test_an_expiry_notice_that_failed_is_sent_by_a_later_sweep(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = link_sent(c, runner)
    clock.advance(7 * DAY)
    wa.fail_next = 1  # WhatsApp is down while the case expires
    assert sweep(c)["expired"] == 1
    sent = len(wa.sent)
    assert c.store.get(case_id).sla_flags["expiry_notice"].startswith("sending@")
    clock.advance(60)
    sweep(c)  # within the lease: the first sweep might still be at it
    assert len(wa.sent) == sent
    clock.advance(agenda.NOTICE_LEASE.total_seconds())
    sweep(c)
    sweep(c)
    (notice,) = wa.sent[sent:]
    assert notice.body == "sapa_permohonan_kedaluwarsa"
    assert c.store.get(case_id).sla_flags["expiry_notice"].startswith("sent_template@")


# ---- two sweeps at once -----------------------------------------------------------------------


def test_two_sweeps_at_once_do_each_thing_once(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    # GIVEN a guest book never filled (to expire), a step never taken (breached and past the
    # grace), and a guest book a day and a half old (to remind), all past the lead-time target
    abandoned = link_sent(c, runner, wa_id="6281000000001", wamid="wamid.A")
    untaken = link_sent(c, runner, wa_id="6281000000002", wamid="wamid.B")
    guestbook.submit(c, token_from(wa), submission())
    runner.drain()
    clock.advance(6 * DAY)
    waiting = link_sent(c, runner, wa_id="6281000000003", wamid="wamid.C", at=clock.now())
    clock.advance(DAY + 12 * HOUR)
    sent = len(wa.sent)
    # WHEN two sweeps run at the same moment
    barrier = threading.Barrier(2)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(sweep(c))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # THEN together they did each thing once
    total = Counter[str]()
    for r in results:
        total.update(r)
    assert dict(total) == counts(
        breaches=1, escalations=1, lead_time_breaches=3, reminders=1, expired=1
    )
    runner.drain()
    assert c.store.get(abandoned).state == "expired"
    for case_id in (abandoned, untaken, waiting):
        assert events(c, case_id)["lead_time_breach"] == 1
    assert events(c, untaken)["sla_breach"] == 1
    assert events(c, untaken)["sla_escalated"] == 1
    assert events(c, waiting)["sla_reminder"] == 1
    assert events(c, abandoned)["expire"] == 1
    names = sorted(m.body for m in wa.sent[sent:])
    assert names == ["sapa_pengingat_buku_tamu", "sapa_permohonan_kedaluwarsa"]
    # AND a third sweep afterwards finds nothing left to do
    assert sweep(c) == ZERO


# ---- working hours, weekends and holidays -----------------------------------------------------

WITA = ZoneInfo("Asia/Makassar")


def set_clock(clock: FixedClock, at: datetime) -> None:
    assert at >= clock.now(), "the clock only moves forward"
    clock.advance((at - clock.now()).total_seconds())


def wita(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=WITA)


def test_a_step_taken_late_on_friday_is_not_breached_over_the_weekend(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    # GIVEN the counter officer takes the contact step (10 minutes) at 16:25 on a Friday;
    # the office closes at 16:30
    set_clock(clock, wita(2026, 12, 4, 16, 23))
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "check")
    act(c, case_id, LOKET, "claim")
    assert clock.now() == wita(2026, 12, 4, 16, 25)
    # WHEN the sweep runs after closing, all weekend, and early on Monday
    for at in (
        wita(2026, 12, 4, 16, 40),
        wita(2026, 12, 5, 12, 0),
        wita(2026, 12, 6, 23, 0),
        wita(2026, 12, 7, 8, 5),  # 5 minutes on Friday + 5 on Monday: exactly the mutu baku
    ):
        set_clock(clock, at)
        result = sweep(c)
        # THEN no step breach (the lead time, on raw time, passes its 24 hours on Saturday)
        assert result["breaches"] == 0 and result["escalations"] == 0, at
    assert events(c, case_id)["sla_breach"] == 0
    assert events(c, case_id)["lead_time_breach"] == 1
    # WHEN one more working second passes, THEN it is breached, once
    set_clock(clock, wita(2026, 12, 7, 8, 5, 1))
    assert sweep(c) == counts(breaches=1)
    assert sweep(c) == ZERO
    (breach,) = detail(c, case_id, "sla_breach")
    assert breach["seconds_over"] == 1 and breach["clock"] == "working"
    assert breach["measured"] == "handling"
    # AND the grace is counted on the same clock: 30 working minutes past the mutu baku
    set_clock(clock, wita(2026, 12, 7, 8, 34, 59))
    assert sweep(c) == ZERO
    set_clock(clock, wita(2026, 12, 7, 8, 35))
    assert sweep(c) == counts(escalations=1)
    assert sweep(c) == ZERO
    (esc,) = detail(c, case_id, "sla_escalated")
    assert esc["seconds_over"] == 30 * 60 and esc["clock"] == "working"


def test_a_step_waiting_over_christmas_counts_only_the_open_hours(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    # GIVEN a guest book submitted at 15:59:30 on Wednesday 23 December 2026: the check
    # (1 minute) waits; Thursday 24th is cuti bersama, Friday 25th Christmas, then a weekend
    set_clock(clock, wita(2026, 12, 23, 15, 57, 30))
    case_id = to_submitted(c, runner, wa, clock)
    assert clock.now() == wita(2026, 12, 23, 15, 59, 30)
    # WHEN the sweep runs through the holidays and the weekend
    for at in (
        wita(2026, 12, 24, 10, 0),
        wita(2026, 12, 25, 10, 0),
        wita(2026, 12, 27, 10, 0),
        wita(2026, 12, 28, 8, 0, 30),  # 30 s on Wednesday + 30 s on Monday
    ):
        set_clock(clock, at)
        # THEN nothing is breached
        assert sweep(c)["breaches"] == 0, at
    # UNTIL the office has been open a minute since the guest book came in
    set_clock(clock, wita(2026, 12, 28, 8, 0, 31))
    assert sweep(c)["breaches"] == 1
    (breach,) = detail(c, case_id, "sla_breach")
    assert breach["step"] == "periksa" and breach["seconds_over"] == 1
    assert breach["measured"] == "waiting" and breach["clock"] == "working"


def test_the_lunch_break_does_not_count(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    # GIVEN a contact step (10 minutes) taken at 11:55 on a Tuesday (break 12:00–13:00)
    set_clock(clock, wita(2026, 12, 1, 11, 53))
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "check")
    act(c, case_id, LOKET, "claim")
    # THEN at 13:05 it has used exactly its 10 minutes, and one second later it is breached
    set_clock(clock, wita(2026, 12, 1, 13, 5))
    assert sweep(c)["breaches"] == 0
    set_clock(clock, wita(2026, 12, 1, 13, 5, 1))
    assert sweep(c)["breaches"] == 1
    assert detail(c, case_id, "sla_breach")[0]["seconds_over"] == 1


def test_a_step_configured_on_raw_time_breaches_over_the_weekend(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    c = container
    # GIVEN the office measures the check on raw time (a step's entry beats its role's)
    body = "".join(
        [
            '[escalation]\ngrace_minutes = 30\nto_role = "kabid"\n',
            '[working_hours]\ntimezone = "Asia/Makassar"\n',
            'monday = ["08:00-16:00"]\nfriday = ["08:00-16:30"]\n',
            '[clocks]\ndefault = "raw"\n[clocks.roles]\nloket = "working"\n',
            '[clocks.steps]\nperiksa = "raw"\n',
        ]
    )
    with_sla_file(c, tmp_path, body)
    set_clock(clock, wita(2026, 12, 4, 16, 20))
    case_id = to_submitted(c, runner, wa, clock)
    # WHEN the sweep runs on Saturday
    set_clock(clock, wita(2026, 12, 5, 9, 0))
    # THEN the check is breached and escalated, on raw time
    assert sweep(c) == counts(breaches=1, escalations=1)
    (breach,) = detail(c, case_id, "sla_breach")
    assert breach["clock"] == "raw"
    # AND a clock the SOP does not know is refused
    (tmp_path / "other").mkdir()
    with_sla_file(c, tmp_path / "other", body.replace("periksa =", "no_such_step ="))
    with pytest.raises(ValueError, match="no_such_step"):
        sweep(c)


def test_without_working_hours_every_step_is_on_raw_time(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    c = container
    with_sla_file(c, tmp_path, '[escalation]\ngrace_minutes = 30\nto_role = "kabid"\n')
    set_clock(clock, wita(2026, 12, 5, 22, 0))  # a Saturday night
    to_submitted(c, runner, wa, clock)
    clock.advance(61)
    assert sweep(c) == counts(breaches=1)


def test_a_resident_is_reminded_on_raw_time_over_the_weekend(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    # GIVEN a guest-book link sent on Friday evening
    set_clock(clock, wita(2026, 12, 4, 19, 0))
    case_id = link_sent(c, runner)
    # WHEN 24 hours pass (a Saturday, the office closed)
    set_clock(clock, wita(2026, 12, 5, 19, 0))
    # THEN the resident is reminded: residents' waits are wall-clock time
    assert sweep(c) == counts(reminders=1)
    assert sweep(c) == ZERO
    assert events(c, case_id)["sla_reminder"] == 1


def test_staff_see_the_working_hours_first_and_the_wall_clock_beside_them(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    # GIVEN a guest book that came in at 15:00 on Friday 4 December 2026, its check not taken
    set_clock(clock, wita(2026, 12, 4, 14, 58))
    case_id = to_submitted(c, runner, wa, clock)
    # WHEN the counter officer looks on Monday at 09:10
    set_clock(clock, wita(2026, 12, 7, 9, 10))
    case = c.store.get(case_id)
    row = views.sla_clock(c, case)
    # THEN the worklist clock is 2 h 40 min of working hours (Friday 15:00–16:30, Monday
    # 08:00–09:10) beside 66 h 10 min of wall-clock time, amber past the check's minute
    assert (row["elapsed_main"], row["elapsed_total"]) == ("2 j 40 mnt kerja", "66 j 10 mnt total")
    assert row["elapsed"] == "2 j 40 mnt kerja · 66 j 10 mnt total"
    assert row["working_elapsed_seconds"] == (90 + 70) * 60 and row["clock"] == "working"
    assert row["color"] == "red"  # 66 hours of wall-clock time: past the office's 24-hour target
    # AND the case timeline shows the same for the waiting check
    tl = views.case_timeline(c, case)
    check = tl["steps"][-1]
    assert check["key"] == "periksa" and check["clock"] == "working"
    assert check["waiting"] == "2 j 40 mnt kerja · 66 j 10 mnt total"
    assert check["working_waiting_seconds"] == (90 + 70) * 60
    assert tl["working_lead_time_seconds"] == (90 + 70 + 2) * 60  # greeted at 14:58
    assert tl["lead_time"] == "66 j 12 mnt"


# ---- officers told on WhatsApp ------------------------------------------------------------------

STAFF_WITH_NUMBERS = """
[[staff]]
email = "loket.sombaopu@sapa.test"
name = "Loket Somba Opu"
roles = ["loket"]
kecamatan = "730608"
wa = "0812 1111 0001"

[[staff]]
email = "loket2.sombaopu@sapa.test"
name = "Loket 2 Somba Opu"
roles = ["loket"]
kecamatan = "730608"
wa = "+62 812 1111 0002"

[[staff]]
email = "loket3.sombaopu@sapa.test"
name = "Loket 3 Somba Opu (tanpa nomor)"
roles = ["loket"]
kecamatan = "730608"

[[staff]]
email = "loket.bajeng@sapa.test"
name = "Loket Bajeng"
roles = ["loket"]
kecamatan = "730602"
wa = "081211110003"

[[staff]]
email = "kabid@sapa.test"
name = "Kabid"
roles = ["kabid"]
wa = "081211110009"

[[staff]]
email = "kadis@sapa.test"
name = "Kadis"
roles = ["kadis"]
"""


def with_staff_file(c: Container, tmp_path: Path, body: str = STAFF_WITH_NUMBERS) -> None:
    path = tmp_path / "staff.toml"
    path.write_text(body, "utf-8")
    c.settings = c.settings.model_copy(update={"staff_file": path})  # type: ignore[misc]
    c.__dict__.pop("staff", None)  # built again from the new file


def test_a_breach_is_sent_once_to_every_officer_who_may_take_the_step(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    c = container
    with_staff_file(c, tmp_path)
    case_id = to_submitted(c, runner, wa, clock)
    reg_no = c.store.get(case_id).reg_no
    # WHEN the check (nobody took it) runs past its mutu baku and the sweep runs three times
    clock.advance(61)
    assert sweep(c) == counts(breaches=1)
    runner.drain()
    assert sweep(c) == ZERO
    runner.drain()
    clock.advance(60)
    assert sweep(c) == ZERO
    runner.drain()
    # THEN each counter officer of that kecamatan with a number got the template once, from
    # the kecamatan's number; not the one without a number, not Bajeng's officer
    alerts = templates(wa, "sapa_petugas_lewat_mutu_baku")
    assert sorted(m.to for m in alerts) == ["6281211110001", "6281211110002"]
    assert {m.phone_number_id for m in alerts} == {"demo-730608"}
    step = c.sop.step("periksa").kegiatan
    assert {tuple(m.params) for m in alerts} == {(reg_no, step, "1 dtk")}  # 61 s of 60
    # AND the case says who was told; the resident's conversation holds none of it
    told = sorted(d["to"] for d in detail(c, case_id, "officer_alerted"))
    assert told == ["loket.sombaopu@sapa.test", "loket2.sombaopu@sapa.test"]
    kinds = [str((m.data or {}).get("kind", "")) for m in c.store.messages(case_id)]
    assert kinds and not [k for k in kinds if k.startswith("officer_")]


def claimed_and_breached(
    c: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock, tmp_path: Path
) -> str:
    """Staff with numbers; a check taken by the counter officer and one second past its mutu
    baku, the breach recorded by the sweep (its alert task queued, not run)."""
    with_staff_file(c, tmp_path)
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "claim")
    clock.advance(61)
    assert sweep(c) == counts(breaches=1)
    return case_id


def test_a_claimed_step_alerts_its_officer_and_the_escalation_the_head_of_division(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    c = container
    claimed_and_breached(c, runner, wa, clock, tmp_path)
    runner.drain()
    clock.advance(30 * 60)
    assert sweep(c) == counts(escalations=1)
    runner.drain()
    assert sweep(c) == ZERO
    runner.drain()
    sent = [(m.to, m.body) for m in wa.sent if m.kind == "template"]
    assert sent == [
        ("6281211110001", "sapa_petugas_lewat_mutu_baku"),  # only the officer who took it
        ("6281211110009", "sapa_eskalasi_mutu_baku"),  # the kabid; the kadis has no number
    ]


def test_an_alert_that_fails_for_a_while_is_sent_once_when_whatsapp_is_back(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    from sapa.domain.errors import TransientError

    c = container
    case_id = claimed_and_breached(c, runner, wa, clock, tmp_path)
    (task,) = runner.queue.take()
    wa.fail_next = 1
    with pytest.raises(TransientError):
        runner_handler(c, task)
    # the retry (twice, as a replayed task would be) sends it once
    runner_handler(c, task)
    runner_handler(c, task)
    alerts = templates(wa, "sapa_petugas_lewat_mutu_baku")
    assert [m.to for m in alerts] == ["6281211110001"]
    assert len(detail(c, case_id, "officer_alerted")) == 1


def runner_handler(c: Container, task: Any) -> Any:

    return notify.notify(c, task.payload, task.name or "")


def test_officer_alerts_can_be_switched_off_and_staff_without_numbers_get_none(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    c = container
    with_sla_file(c, tmp_path, "[escalation]\nofficer_whatsapp = false\n")
    with_staff_file(c, tmp_path)
    to_submitted(c, runner, wa, clock)
    clock.advance(61)
    assert sweep(c) == counts(breaches=1)
    assert runner.queue.tasks == []
    # and with the bundled settings but nobody with a number: no task either
    c.settings = c.settings.model_copy(update={"sla_file": None})  # type: ignore[misc]
    with_staff_file(c, tmp_path, STAFF_WITH_NUMBERS.replace('wa = "', 'note = "'))
    other = to_submitted(c, runner, wa, clock, wa_id="6281299990001")
    clock.advance(61)
    assert sweep(c)["breaches"] == 1
    assert [t for t in runner.queue.tasks if t.payload.get("case_id") == other] == []


def test_a_staff_file_with_a_bad_number_is_refused_naming_the_entry(tmp_path: Path) -> None:
    from sapa.adapters.embedded.staff_file import FileStaffDirectory

    path = tmp_path / "staff.toml"
    path.write_text(STAFF_WITH_NUMBERS.replace("081211110009", "12345"), "utf-8")
    with pytest.raises(ValueError, match=r"kabid@sapa\.test: wa"):
        FileStaffDirectory(path)
    path.write_text(STAFF_WITH_NUMBERS, "utf-8")
    assert FileStaffDirectory(path).get("kabid@sapa.test").wa_number == "6281211110009"  # type: ignore[union-attr]
    assert FileStaffDirectory(path).get("kadis@sapa.test").wa_number is None  # type: ignore[union-attr]
