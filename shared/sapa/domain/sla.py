"""SLA arithmetic: handling time against the mutu baku, waiting time and lead time, on raw
clock time and on the office's working hours (opening hours, weekends, public holidays)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sapa.domain.case import Case, StepRun
from sapa.domain.sop import Sop, Step
from sapa.domain.texts import text

RAW = "raw"  # wall-clock time: nights, weekends and holidays count
WORKING = "working"  # only the office's opening hours count
CLOCKS = (RAW, WORKING)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SYSTEM_ACTOR = "system"  # Actor.system().id: the runs SAPA performs itself
HOLIDAY_KINDS = ("libur_nasional", "cuti_bersama", "lokal")
MAX_SEARCH_DAYS = 3660  # add_working_seconds gives up after ten years without an open hour


# ---- the office's working calendar ------------------------------------------------------------


@dataclass(frozen=True)
class Holiday:
    day: date
    name: str
    kind: str = "libur_nasional"  # libur_nasional | cuti_bersama | lokal


@dataclass(frozen=True)
class WorkingCalendar:
    """When the office is open: per weekday (Monday first) its opening intervals in the
    office's time zone, and the days it is closed (public holidays, cuti bersama, local ones)."""

    timezone: str
    week: tuple[tuple[tuple[time, time], ...], ...]
    holidays: tuple[Holiday, ...] = ()
    _closed: frozenset[date] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        try:  # an unknown zone fails here, not in the first sweep
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"working hours: unknown time zone {self.timezone!r}") from None
        if len(self.week) != 7:
            raise ValueError("working hours: one entry per weekday, Monday first")
        for name, intervals in zip(WEEKDAYS, self.week, strict=True):
            last = time.min
            for i, (start, end) in enumerate(intervals):
                if not start < end:
                    raise ValueError(f"working hours: {name} opens at {start} after {end}")
                if i and start < last:
                    raise ValueError(f"working hours: {name} has overlapping or unsorted hours")
                last = end
        if not any(self.week):
            raise ValueError("working hours: the office is never open")
        object.__setattr__(self, "_closed", frozenset(h.day for h in self.holidays))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def holiday(self, day: date) -> Holiday | None:
        return next((h for h in self.holidays if h.day == day), None)

    def open_on(self, day: date) -> bool:
        return day not in self._closed and bool(self.week[day.weekday()])

    def segments(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The open intervals of one local day, as UTC datetimes (none on a holiday)."""
        if day in self._closed:
            return
        zone = self.zone
        for start, end in self.week[day.weekday()]:
            yield (
                datetime.combine(day, start, zone).astimezone(UTC),
                datetime.combine(day, end, zone).astimezone(UTC),
            )


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("working hours need timezone-aware datetimes")
    return at.astimezone(UTC)


def working_seconds(start: datetime, end: datetime, calendar: WorkingCalendar) -> float:
    """Seconds between `start` and `end` that fall in the office's opening hours (0 when end
    is not after start). Both may carry any UTC offset."""
    a, b = _utc(start), _utc(end)
    if b <= a:
        return 0.0
    zone = calendar.zone
    day, last = a.astimezone(zone).date(), b.astimezone(zone).date()
    total = timedelta(0)
    while day <= last:
        for open_, close in calendar.segments(day):
            lo, hi = max(open_, a), min(close, b)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total.total_seconds()


def add_working_seconds(start: datetime, seconds: float, calendar: WorkingCalendar) -> datetime:
    """The moment `seconds` of opening hours after `start` have passed: when a step that
    started at `start` is due. Returned in `start`'s time zone. The inverse of
    `working_seconds`: working_seconds(start, add_working_seconds(start, s)) == s."""
    if seconds < 0:
        raise ValueError("working seconds to add must not be negative")
    a = _utc(start)
    left = timedelta(seconds=seconds)
    if not left:
        return start
    day = a.astimezone(calendar.zone).date()
    for _ in range(MAX_SEARCH_DAYS):
        for open_, close in calendar.segments(day):
            lo = max(open_, a)
            if close <= lo:
                continue
            if left <= close - lo:
                return (lo + left).astimezone(start.tzinfo)
            left -= close - lo
        day += timedelta(days=1)
    raise ValueError(f"working hours: no opening hours within {MAX_SEARCH_DAYS} days")


# ---- which clock a step is measured on ---------------------------------------------------------


@dataclass(frozen=True)
class SlaClocks:
    """The clock each step is measured on (sla.toml [clocks]) and the working calendar
    ([working_hours] + the holidays file). Without a calendar every clock is raw."""

    calendar: WorkingCalendar | None = None
    default: str = RAW
    roles: Mapping[str, str] = field(default_factory=dict)
    steps: Mapping[str, str] = field(default_factory=dict)
    system: str = RAW  # a run SAPA performed itself (e.g. the automatic guest-book link)
    lead_time: str = RAW

    def __post_init__(self) -> None:
        named = {"default": self.default, "system": self.system, "lead_time": self.lead_time}
        named |= {f"roles.{k}": v for k, v in self.roles.items()}
        named |= {f"steps.{k}": v for k, v in self.steps.items()}
        for where, clock in named.items():
            if clock not in CLOCKS:
                raise ValueError(f"sla clocks: {where} = {clock!r} (use {' or '.join(CLOCKS)})")

    def clock_of(self, step: Step, run: StepRun | None = None) -> str:
        if self.calendar is None:
            return RAW
        if run is not None and SYSTEM_ACTOR in (run.done_by, run.claimed_by):
            return self.system
        return self.steps.get(step.key) or self.roles.get(step.role) or self.default

    def measure(self, start: datetime, end: datetime, clock: str) -> float:
        """Seconds from start to end on `clock` (never negative)."""
        if clock == WORKING and self.calendar is not None:
            return working_seconds(start, end, self.calendar)
        return _seconds(start, end)

    def working(self, start: datetime, end: datetime) -> float | None:
        """Working-hours seconds from start to end; None without a calendar."""
        if self.calendar is None:
            return None
        return working_seconds(start, end, self.calendar)

    def due(self, start: datetime, seconds: float, clock: str) -> datetime:
        """When `seconds` on `clock` will have passed since `start`."""
        if clock == WORKING and self.calendar is not None:
            return add_working_seconds(start, seconds, self.calendar)
        return start + timedelta(seconds=max(seconds, 0.0))


RAW_CLOCKS = SlaClocks()


def _interval(spec: object, where: str) -> tuple[time, time]:
    try:
        a, b = str(spec).split("-")
        return time.fromisoformat(a.strip()), time.fromisoformat(b.strip())
    except ValueError:
        raise ValueError(f"working hours: {where}: {spec!r} is not like '08:00-12:00'") from None


def _day(value: object, where: str) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"holidays: {where}: {value!r} is a time, not a date")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"holidays: {where}: {value!r} is not a date (YYYY-MM-DD)") from None


def parse_holidays(data: Mapping[str, Any]) -> tuple[Holiday, ...]:
    """The [[holidays]] of a holidays file (date, name, kind)."""
    out = []
    for i, h in enumerate(data.get("holidays", [])):
        where = f"holiday #{i + 1}"
        if not str(h.get("name", "")).strip():
            raise ValueError(f"holidays: {where} has no name")
        kind = str(h.get("kind", "libur_nasional"))
        if kind not in HOLIDAY_KINDS:
            raise ValueError(f"holidays: {where}: kind {kind!r} (use {', '.join(HOLIDAY_KINDS)})")
        out.append(Holiday(_day(h.get("date"), where), str(h["name"]), kind))
    return tuple(sorted(out, key=lambda h: h.day))


def parse_calendar(table: Mapping[str, Any], holidays: tuple[Holiday, ...] = ()) -> WorkingCalendar:
    """A [working_hours] table: `timezone` and one list of "HH:MM-HH:MM" per weekday."""
    unknown = set(table) - set(WEEKDAYS) - {"timezone", "holidays_file"}
    if unknown:
        raise ValueError(f"working hours: unknown keys {sorted(unknown)}")
    week = tuple(tuple(_interval(spec, name) for spec in table.get(name, [])) for name in WEEKDAYS)
    return WorkingCalendar(str(table.get("timezone", "Asia/Makassar")), week, holidays)


def parse_clocks(data: Mapping[str, Any], holidays: tuple[Holiday, ...] = ()) -> SlaClocks:
    """The clocks of an sla.toml: [working_hours] and [clocks]; no [working_hours], all raw."""
    hours = data.get("working_hours")
    calendar = parse_calendar(hours, holidays) if hours is not None else None
    clocks = data.get("clocks", {})
    unknown = set(clocks) - {"default", "system", "lead_time", "roles", "steps"}
    if unknown:
        raise ValueError(f"sla clocks: unknown keys {sorted(unknown)}")
    return SlaClocks(
        calendar=calendar,
        default=str(clocks.get("default", RAW)),
        roles={str(k): str(v) for k, v in clocks.get("roles", {}).items()},
        steps={str(k): str(v) for k, v in clocks.get("steps", {}).items()},
        system=str(clocks.get("system", RAW)),
        lead_time=str(clocks.get("lead_time", RAW)),
    )


@cache
def load_sla_data(path: str | None = None) -> dict[str, Any]:
    """An sla.toml as data; without a path, the bundled one."""
    if path is None:
        raw = resources.files("sapa.data").joinpath("sla.toml").read_text("utf-8")
    else:
        raw = Path(path).read_text("utf-8")
    return tomllib.loads(raw)


@cache
def load_sla_clocks(path: str | None = None) -> SlaClocks:
    """The clocks of an sla.toml (bundled without a path). Its `holidays_file` is read next
    to it (a relative name) or from the bundled data for the bundled sla.toml."""
    data = load_sla_data(path)
    name = data.get("working_hours", {}).get("holidays_file")
    holidays: tuple[Holiday, ...] = ()
    if name:
        if path is None and not Path(name).is_absolute():
            raw = resources.files("sapa.data").joinpath(name).read_text("utf-8")
        else:
            base = Path(path).parent if path is not None else Path()
            raw = (base / name).read_text("utf-8")
        holidays = parse_holidays(tomllib.loads(raw))
    return parse_clocks(data, holidays)


# ---- the office's SLA policy: sla.toml read once -------------------------------------------------

RESIDENT_WAITS = ("guestbook", "correction")  # the [residents.*] tables texts exist for


@dataclass(frozen=True)
class ResidentWait:
    """A state in which the case waits on the resident: remind once, then expire."""

    name: str  # guestbook | correction
    state: str
    remind_after: timedelta
    expire_after: timedelta

    @property
    def reminder_kind(self) -> str:
        return f"reminder_{self.name}"

    def expiry_reason(self) -> str:
        days = self.expire_after / timedelta(days=1)
        return text(f"expired_reason_{self.name}", days=f"{days:g}")


@dataclass(frozen=True)
class SlaConfig:
    grace: timedelta
    escalate_to: str
    escalate_to_for_step_role: dict[str, str] = field(default_factory=dict)
    residents: tuple[ResidentWait, ...] = ()
    officer_whatsapp: bool = True

    def escalation_role(self, step_role: str) -> str:
        return self.escalate_to_for_step_role.get(step_role, self.escalate_to)

    def resident_wait(self, state: str) -> ResidentWait | None:
        return next((w for w in self.residents if w.state == state), None)


def parse_sweep(data: Mapping[str, Any]) -> SlaConfig:
    """sla.toml's [escalation] and [residents.*] tables."""
    esc = data.get("escalation", {})
    residents = []
    for name, r in data.get("residents", {}).items():
        if name not in RESIDENT_WAITS:
            raise ValueError(
                f"sla: unknown [residents.{name}] (known: {', '.join(RESIDENT_WAITS)})"
            )
        wait = ResidentWait(
            name=name,
            state=str(r["state"]),
            remind_after=timedelta(hours=float(r["remind_after_hours"])),
            expire_after=timedelta(days=float(r["expire_after_days"])),
        )
        if wait.remind_after >= wait.expire_after:
            raise ValueError(f"sla: [residents.{name}] reminds only after it expires")
        residents.append(wait)
    return SlaConfig(
        grace=timedelta(minutes=float(esc.get("grace_minutes", 30))),
        escalate_to=str(esc.get("to_role", "kabid")),
        escalate_to_for_step_role=dict(esc.get("to_role_for_step_role", {})),
        residents=tuple(residents),
        officer_whatsapp=bool(esc.get("officer_whatsapp", True)),
    )


@dataclass(frozen=True)
class EstimateConfig:
    """sla.toml [estimate]: how far back to look, how many runs make a figure, the cache."""

    window: timedelta = timedelta(days=30)
    min_samples: int = 5
    max_cases: int = 2000  # no longer used (the estimate reads rollups); older files set it
    cache_ttl: timedelta = timedelta(minutes=5)


def parse_estimate(data: Mapping[str, Any]) -> EstimateConfig:
    raw = data.get("estimate", {})
    unknown = set(raw) - {"window_days", "min_samples", "max_cases", "cache_minutes"}
    if unknown:
        raise ValueError(f"sla: unknown keys in [estimate]: {sorted(unknown)}")
    cfg = EstimateConfig(
        window=timedelta(days=float(raw.get("window_days", 30))),
        min_samples=int(raw.get("min_samples", 5)),
        max_cases=int(raw.get("max_cases", 2000)),
        cache_ttl=timedelta(minutes=float(raw.get("cache_minutes", 5))),
    )
    if cfg.window <= timedelta(0) or cfg.min_samples < 1 or cfg.max_cases < 1:
        raise ValueError("sla: [estimate] needs window_days > 0, min_samples >= 1, max_cases >= 1")
    if cfg.cache_ttl < timedelta(0):
        raise ValueError("sla: [estimate] cache_minutes must not be negative")
    return cfg


@dataclass(frozen=True)
class SlaPolicy:
    """Everything sla.toml says, parsed once: the clocks (working hours, holidays), escalation
    and resident waits (the SLA sweep), and the STATUS estimate's settings. A parse error of
    any table surfaces when the policy is first read."""

    clocks: SlaClocks
    sweep: SlaConfig
    estimate: EstimateConfig
    # how long the office has to answer a resident's complaint ([complaints] response_days)
    complaint_response: timedelta = timedelta(days=5)

    def resident_wait(self, state: str) -> ResidentWait | None:
        return self.sweep.resident_wait(state)


@cache
def load_sla_policy(path: str | None = None) -> SlaPolicy:
    """The SLA policy of an sla.toml (bundled without a path)."""
    data = load_sla_data(path)
    days = float(data.get("complaints", {}).get("response_days", 5))
    if not 0 < days <= 60:
        raise ValueError("sla: [complaints] response_days runs from more than 0 to 60")
    return SlaPolicy(
        clocks=load_sla_clocks(path),
        sweep=parse_sweep(data),
        estimate=parse_estimate(data),
        complaint_response=timedelta(days=days),
    )


# ---- timings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepTiming:
    """The numbers of one step run. Seconds; None where the run has not got that far.

    `waiting_seconds`/`handling_seconds` are raw clock time; the `working_*` ones count only
    the office's opening hours (None when no calendar was given). `clock` says which of the two
    the step is measured on against its mutu baku (`breached`, `ratio`)."""

    step: Step
    run: StepRun
    waiting_seconds: float | None  # ready → claimed (or → now while unclaimed)
    handling_seconds: float | None  # claimed → done (or → now while open)
    mutu_baku_seconds: float
    done: bool
    working_waiting_seconds: float | None = None
    working_handling_seconds: float | None = None
    clock: str = RAW

    @property
    def elapsed_seconds(self) -> float:
        """Ready → done (or now): the step's own lead time, raw."""
        return (self.waiting_seconds or 0.0) + (self.handling_seconds or 0.0)

    @property
    def working_elapsed_seconds(self) -> float | None:
        if self.working_waiting_seconds is None:
            return None
        return self.working_waiting_seconds + (self.working_handling_seconds or 0.0)

    def _on_clock(self, raw: float | None, working: float | None) -> float | None:
        return working if self.clock == WORKING and raw is not None else raw

    @property
    def sla_waiting_seconds(self) -> float | None:
        """Waiting time on the step's clock."""
        return self._on_clock(self.waiting_seconds, self.working_waiting_seconds)

    @property
    def sla_handling_seconds(self) -> float | None:
        """Handling time on the step's clock: what the mutu baku is compared with."""
        return self._on_clock(self.handling_seconds, self.working_handling_seconds)

    @property
    def sla_elapsed_seconds(self) -> float:
        working = self.working_elapsed_seconds
        return working if self.clock == WORKING and working is not None else self.elapsed_seconds

    @property
    def breached(self) -> bool:
        handling = self.sla_handling_seconds
        return handling is not None and handling > self.mutu_baku_seconds

    @property
    def ratio(self) -> float | None:
        """Handling time as a multiple of the mutu baku (1.0 = exactly on standard)."""
        handling = self.sla_handling_seconds
        if handling is None or not self.mutu_baku_seconds:
            return None
        return handling / self.mutu_baku_seconds


@dataclass(frozen=True)
class Timeline:
    steps: tuple[StepTiming, ...]
    lead_time_seconds: float
    lead_time_target_seconds: float
    standard_total_seconds: float
    finished: bool
    working_lead_time_seconds: float | None = None
    lead_time_clock: str = RAW

    @property
    def breaches(self) -> tuple[StepTiming, ...]:
        return tuple(s for s in self.steps if s.breached)

    @property
    def sla_lead_time_seconds(self) -> float:
        """The lead time on the clock the office's target is set on (sla.toml [clocks])."""
        working = self.working_lead_time_seconds
        if self.lead_time_clock == WORKING and working is not None:
            return working
        return self.lead_time_seconds

    @property
    def lead_time_breached(self) -> bool:
        return self.sla_lead_time_seconds > self.lead_time_target_seconds


def _seconds(a: datetime, b: datetime) -> float:
    return max((b - a).total_seconds(), 0.0)


def step_timing(
    sop: Sop, run: StepRun, now: datetime, clocks: SlaClocks | None = None
) -> StepTiming:
    """One run's times. Without `clocks` only raw time (the working figures are None)."""
    clocks = clocks or RAW_CLOCKS
    step = sop.step(run.step)
    end = run.done_at or now
    if run.claimed_at is not None:
        waiting: float | None = _seconds(run.ready_at, run.claimed_at)
        handling: float | None = _seconds(run.claimed_at, end)
        w_waiting = clocks.working(run.ready_at, run.claimed_at)
        w_handling = clocks.working(run.claimed_at, end)
    else:
        waiting, handling = _seconds(run.ready_at, end), None
        w_waiting, w_handling = clocks.working(run.ready_at, end), None
    return StepTiming(
        step,
        run,
        waiting,
        handling,
        step.mutu_baku_seconds,
        run.done_at is not None,
        working_waiting_seconds=w_waiting,
        working_handling_seconds=w_handling,
        clock=clocks.clock_of(step, run),
    )


def timeline(sop: Sop, case: Case, now: datetime, clocks: SlaClocks | None = None) -> Timeline:
    """Every step run of the case in order, and the lead time from greeting to the end.

    The lead time stops at delivery (or at the case's closing for rejected/cancelled/expired
    cases); an open case's lead time runs until `now`. With `clocks`, every duration is also
    given in working hours and each step is measured on its own clock.
    """
    clocks = clocks or RAW_CLOCKS
    runs = sorted(case.steps, key=lambda r: (r.ready_at, sop.step(r.step).number))
    finished = not case.is_open(sop)
    end = (case.closed_at or case.updated_at) if finished else now
    return Timeline(
        steps=tuple(step_timing(sop, r, now, clocks) for r in runs),
        lead_time_seconds=_seconds(case.created_at, end),
        lead_time_target_seconds=sop.lead_time_target_seconds,
        standard_total_seconds=sop.standard_total_seconds,
        finished=finished,
        working_lead_time_seconds=clocks.working(case.created_at, end),
        lead_time_clock=clocks.lead_time if clocks.calendar is not None else RAW,
    )


# ---- display -----------------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """A duration as officers read it: '16 dtk', '2 mnt', '2 mnt 5 dtk', '1 j 5 mnt'; '-' when
    unknown. Indonesian abbreviations that cannot be misread ("d" for detik was read as days);
    from one hour up to the nearest minute. Sub-second work (the system's own steps) shows
    its tenths, with the Indonesian decimal comma."""
    if seconds is None:
        return "-"
    tenths = round(seconds, 1)
    if tenths < 10 and tenths != int(tenths):
        return f"{tenths:.1f} dtk".replace(".", ",")
    s = round(seconds)
    if s >= 3600:
        h, m = divmod(round(seconds / 60), 60)
        return f"{h} j {m} mnt" if m else f"{h} j"
    m, sec = divmod(s, 60)
    if m:
        return f"{m} mnt {sec} dtk" if sec else f"{m} mnt"
    return f"{sec} dtk"


def clock_parts(raw: float | None, working: float | None, clock: str) -> tuple[str, str | None]:
    """A duration as staff read it, in two parts: on a working-hours clock the working figure
    ('2 j 10 mnt kerja') and the raw one beside it ('18 j 10 mnt total'); on raw time, or when
    both read the same, the one figure and None."""
    total = format_duration(raw)
    if clock != WORKING or working is None or raw is None:
        return total, None
    main = format_duration(working)
    if main == total:
        return total, None
    return f"{main} kerja", f"{total} total"


def format_on_clock(raw: float | None, working: float | None, clock: str) -> str:
    """Both parts of `clock_parts` on one line: '2 j 10 mnt kerja · 18 j 10 mnt total'."""
    main, total = clock_parts(raw, working, clock)
    return main if total is None else f"{main} · {total}"
