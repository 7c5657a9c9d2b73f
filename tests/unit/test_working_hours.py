"""Working hours and public holidays: counting open seconds and finding when a step is due."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sapa.domain.sla import (
    Holiday,
    WorkingCalendar,
    add_working_seconds,
    load_sla_clocks,
    parse_calendar,
    parse_clocks,
    parse_holidays,
    working_seconds,
)

WITA = ZoneInfo("Asia/Makassar")
HOUR = 3600.0
MON_THU = ((time(8), time(12)), (time(13), time(16)))
FRI = ((time(8), time(11, 30)), (time(13), time(16, 30)))
CHRISTMAS = (
    Holiday(date(2026, 12, 24), "Cuti bersama Natal", "cuti_bersama"),
    Holiday(date(2026, 12, 25), "Natal"),
)
CAL = WorkingCalendar("Asia/Makassar", (MON_THU,) * 4 + (FRI, (), ()), CHRISTMAS)


def w(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A WITA wall-clock time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=WITA)


# ---- working_seconds -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (w(2026, 11, 30, 9), w(2026, 11, 30, 11), 2),  # inside the morning
        (w(2026, 11, 30, 11), w(2026, 11, 30, 14), 2),  # across the lunch break
        (w(2026, 11, 30, 6), w(2026, 11, 30, 9), 1),  # starts before opening
        (w(2026, 11, 30, 15), w(2026, 11, 30, 21), 1),  # ends after closing
        (w(2026, 11, 30, 17), w(2026, 12, 1, 7), 0),  # a night
        (w(2026, 11, 30, 15), w(2026, 12, 1, 9), 2),  # overnight
        (w(2026, 12, 4, 16), w(2026, 12, 7, 8, 30), 1),  # Friday 16:00 to Monday 08:30
        (w(2026, 12, 5, 9), w(2026, 12, 6, 18), 0),  # a weekend
        (w(2026, 12, 23, 15), w(2026, 12, 28, 9), 2),  # Christmas: holiday, cuti bersama
        (w(2026, 11, 30, 8), w(2026, 12, 7, 8), 35),  # a whole week: 4 × 7 h + 7 h
        (w(2026, 11, 30, 12), w(2026, 11, 30, 12), 0),  # empty
        (w(2026, 11, 30, 12), w(2026, 11, 30, 9), 0),  # backwards
    ],
)
def test_working_seconds_counts_only_open_hours(
    start: datetime, end: datetime, hours: float
) -> None:
    assert working_seconds(start, end, CAL) == hours * HOUR


def test_working_seconds_reads_any_utc_offset() -> None:
    # GIVEN Monday 09:00–10:00 WITA written in UTC and in WIB (UTC+7)
    utc = (datetime(2026, 11, 30, 1, tzinfo=UTC), datetime(2026, 11, 30, 2, tzinfo=UTC))
    wib = timezone(timedelta(hours=7))
    jakarta = (datetime(2026, 11, 30, 8, tzinfo=wib), datetime(2026, 11, 30, 9, tzinfo=wib))
    # THEN both are the same open hour
    assert working_seconds(*utc, CAL) == working_seconds(*jakarta, CAL) == HOUR
    # AND midnight UTC is 08:00 WITA: the office has just opened
    assert working_seconds(datetime(2026, 11, 29, 23, tzinfo=UTC), utc[0], CAL) == HOUR


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        working_seconds(datetime(2026, 11, 30, 9), w(2026, 11, 30, 10), CAL)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_seconds(datetime(2026, 11, 30, 9), 60, CAL)


# ---- add_working_seconds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "seconds", "due"),
    [
        (w(2026, 11, 30, 9), 600, w(2026, 11, 30, 9, 10)),
        (w(2026, 11, 30, 11, 55), 600, w(2026, 11, 30, 13, 5)),  # over the lunch break
        (w(2026, 11, 30, 6), 60, w(2026, 11, 30, 8, 1)),  # before opening
        (w(2026, 11, 30, 12, 30), 60, w(2026, 11, 30, 13, 1)),  # during the break
        (w(2026, 12, 4, 16, 25), 600, w(2026, 12, 7, 8, 5)),  # Friday evening → Monday
        (w(2026, 12, 5, 10), 60, w(2026, 12, 7, 8, 1)),  # on a Saturday
        (w(2026, 12, 23, 15, 59, 30), 60, w(2026, 12, 28, 8, 0, 30)),  # over Christmas
        (w(2026, 11, 30, 15), 4 * HOUR, w(2026, 12, 1, 11)),  # several days' work
        (w(2026, 11, 30, 8), 35 * HOUR, w(2026, 12, 4, 16, 30)),  # exactly a week's hours
        (w(2026, 11, 30, 15, 59), 60, w(2026, 11, 30, 16)),  # ends on closing time
        (w(2026, 11, 30, 20), 0, w(2026, 11, 30, 20)),  # nothing to add
    ],
)
def test_add_working_seconds_finds_when_a_step_is_due(
    start: datetime, seconds: float, due: datetime
) -> None:
    got = add_working_seconds(start, seconds, CAL)
    assert got == due
    assert got.tzinfo is start.tzinfo


def test_add_working_seconds_refuses_negative_time_and_a_never_open_office() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_working_seconds(w(2026, 11, 30, 9), -1, CAL)
    with pytest.raises(ValueError, match="never open"):
        WorkingCalendar("Asia/Makassar", ((),) * 7)
    # an office closed for a long time: the search ends with an error, not a hang
    every_day = tuple(Holiday(date(2026, 1, 1) + timedelta(days=i), "tutup") for i in range(3700))
    closed = WorkingCalendar("Asia/Makassar", (MON_THU,) * 7, every_day)
    with pytest.raises(ValueError, match="no opening hours"):
        add_working_seconds(w(2026, 1, 1, 9), 60, closed)


# ---- properties ------------------------------------------------------------------------------

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
moments = st.integers(min_value=0, max_value=400 * 24 * 3600).map(
    lambda s: EPOCH + timedelta(seconds=s)
)
offsets = st.sampled_from([UTC, WITA, timezone(timedelta(hours=7)), timezone(timedelta(hours=-5))])


@settings(max_examples=200, deadline=None)
@given(moments, moments, moments)
def test_working_seconds_is_additive_over_a_split_point(
    a: datetime, b: datetime, c: datetime
) -> None:
    start, mid, end = sorted((a, b, c))
    whole = working_seconds(start, end, CAL)
    assert whole == working_seconds(start, mid, CAL) + working_seconds(mid, end, CAL)


@settings(max_examples=200, deadline=None)
@given(moments, moments, offsets)
def test_working_seconds_is_never_more_than_raw_time(
    a: datetime, b: datetime, zone: timezone | ZoneInfo
) -> None:
    start, end = sorted((a, b))
    got = working_seconds(start.astimezone(zone), end.astimezone(zone), CAL)
    assert 0 <= got <= (end - start).total_seconds()
    assert got == working_seconds(start, end, CAL)  # the offset the times carry changes nothing


@settings(max_examples=200, deadline=None)
@given(moments, st.integers(min_value=0, max_value=200 * 3600), offsets)
def test_add_working_seconds_inverts_working_seconds(
    start: datetime, seconds: int, zone: timezone | ZoneInfo
) -> None:
    due = add_working_seconds(start.astimezone(zone), seconds, CAL)
    assert due >= start
    assert working_seconds(start, due, CAL) == seconds


@settings(max_examples=200, deadline=None)
@given(moments, moments)
def test_due_time_of_the_worked_seconds_is_never_after_the_end(a: datetime, b: datetime) -> None:
    start, end = sorted((a, b))
    worked = working_seconds(start, end, CAL)
    due = add_working_seconds(start, worked, CAL)
    assert due <= end
    assert working_seconds(due, end, CAL) == 0  # what is left is closed time


# ---- configuration ---------------------------------------------------------------------------


def test_the_bundled_calendar_is_wita_with_weekends_and_2026_holidays() -> None:
    clocks = load_sla_clocks()
    cal = clocks.calendar
    assert cal is not None and cal.timezone == "Asia/Makassar"
    assert cal.week[5] == cal.week[6] == ()
    assert cal.week[0] and cal.week[4]
    # the SKB 3 Menteri 2026: Idul Fitri with its cuti bersama, and Christmas
    for day in ("2026-03-20", "2026-03-21", "2026-03-23", "2026-03-24", "2026-12-24"):
        assert cal.holiday(date.fromisoformat(day)) is not None, day
    assert all(h.name for h in cal.holidays)
    assert not cal.open_on(date(2026, 12, 25)) and cal.open_on(date(2026, 11, 30))
    # the officers' steps are on working hours; the system's and the lead time on raw time
    assert {clocks.roles[r] for r in ("loket", "verifikator", "operator_siak", "kabid", "kadis")}
    assert set(clocks.roles.values()) == {"working"}
    assert (clocks.default, clocks.system, clocks.lead_time) == ("raw", "raw", "raw")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"monday": ["8-12"]}, "not like"),
        ({"monday": ["12:00-08:00"]}, "opens at"),
        ({"monday": ["08:00-12:00", "11:00-13:00"]}, "overlapping"),
        ({"mondays": ["08:00-12:00"]}, "unknown keys"),
        ({"timezone": "Mars/Olympus", "monday": ["08:00-12:00"]}, "unknown time zone"),
        ({}, "never open"),
    ],
)
def test_a_bad_working_hours_table_is_refused(table: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_calendar(table)


def test_bad_holidays_and_clocks_are_refused() -> None:
    with pytest.raises(ValueError, match="not a date"):
        parse_holidays({"holidays": [{"date": "30-11-2026", "name": "x"}]})
    with pytest.raises(ValueError, match="no name"):
        parse_holidays({"holidays": [{"date": date(2026, 11, 30)}]})
    with pytest.raises(ValueError, match="kind"):
        parse_holidays({"holidays": [{"date": date(2026, 11, 30), "name": "x", "kind": "?"}]})
    with pytest.raises(ValueError, match=r"roles\.loket"):
        parse_clocks({"clocks": {"roles": {"loket": "office"}}})
    with pytest.raises(ValueError, match="unknown keys"):
        parse_clocks({"clocks": {"role": {}}})
    # no [working_hours]: every clock is raw, whatever [clocks] says
    clocks = parse_clocks({"clocks": {"default": "working"}})
    assert clocks.calendar is None


def test_holidays_file_is_read_next_to_the_sla_file(tmp_path: Path) -> None:
    (tmp_path / "libur.toml").write_text(
        '[[holidays]]\ndate = 2026-11-30\nname = "Hari Jadi Kabupaten (contoh)"\nkind = "lokal"\n',
        "utf-8",
    )
    (tmp_path / "sla.toml").write_text(
        '[working_hours]\nholidays_file = "libur.toml"\nmonday = ["08:00-16:00"]\n', "utf-8"
    )
    clocks = load_sla_clocks(str(tmp_path / "sla.toml"))
    assert clocks.calendar is not None
    assert clocks.calendar.holidays == (
        Holiday(date(2026, 11, 30), "Hari Jadi Kabupaten (contoh)", "lokal"),
    )
    # the local holiday closes the office that Monday
    assert working_seconds(w(2026, 11, 30, 0), w(2026, 12, 1, 0), clocks.calendar) == 0
