"""The dashboard's figures computed exactly from a list of cases (`compute`), and from the store's
cases of the period (`load_from_cases`). The definitions are in the package's docstring.

What the reports serve is read from the rollups (`sapa.services.dashboard.rollups.load`); this
exact computation is the definition they are tested against, and what a rollup rebuild is
checked by."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sapa.domain.case import Case
from sapa.domain.reference import Catalogue, Region
from sapa.domain.rollup import NO_SERVICE
from sapa.domain.sla import StepTiming, timeline
from sapa.domain.sop import Sop
from sapa.domain.texts import ROLE_LABELS
from sapa.services import people
from sapa.services.dashboard.figures import (
    Dashboard,
    GroupStat,
    OfficerStat,
    StepStat,
    WeekStat,
)
from sapa.services.dashboard.filters import Filters, group_listings

if TYPE_CHECKING:
    from sapa.bootstrap import Container

CASE_LIMIT = 100_000  # more cases than this in one period: the page says the numbers are cut
NOT_HANDLED = frozenset({"cancel", "expire"})


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): an observed value, never an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return float(ordered[rank - 1])


def _handled(t: StepTiming) -> bool:
    return t.done and t.handling_seconds is not None and t.run.outcome not in NOT_HANDLED


def _by_officer(t: StepTiming) -> bool:
    who = t.run.done_by or ""
    return (
        t.step.role not in ("pemohon", "system") and who != "system" and not who.startswith("wa:")
    )


def _on_clock(t: StepTiming, what: str) -> float | None:
    """Handling or waiting time on the step's own SLA clock (working hours where the SLA
    settings say so; raw clock time where the SLA arithmetic knows no other)."""
    value = getattr(t, f"sla_{what}_seconds", None)
    if value is None:
        value = getattr(t, f"{what}_seconds", None)
    return float(value) if isinstance(value, int | float) else None


def _working_clock(t: StepTiming) -> bool:
    return getattr(t, "clock", "raw") == "working"


def in_period(case: Case, filters: Filters, tz: ZoneInfo) -> bool:
    opened = case.created_at.astimezone(tz).date()
    if not filters.start <= opened <= filters.end:
        return False
    if filters.kecamatan and case.kecamatan != filters.kecamatan:
        return False
    return not (filters.service and case.service != filters.service)


def compute(
    cases: Iterable[Case],
    sop: Sop,
    *,
    filters: Filters,
    region: Region,
    catalogue: Catalogue,
    now: datetime,
    staff_names: Mapping[str, str] | None = None,
    truncated: bool = False,
    clocks: Any = None,
) -> Dashboard:
    """Every figure of the dashboard from the cases (those outside the filters are ignored)."""
    tz = ZoneInfo(region.timezone)
    names = dict(staff_names or {})
    # the SLA clocks (working hours) where the SLA arithmetic takes them
    with_clocks: dict[str, Any] = {"clocks": clocks} if clocks is not None else {}
    step_handling: dict[str, list[float]] = defaultdict(list)
    step_raw: dict[str, list[float]] = defaultdict(list)
    working_hours = False
    step_waiting: dict[str, list[float]] = defaultdict(list)
    step_within: dict[str, int] = defaultdict(int)
    groups: dict[str, dict[str, dict[str, Any]]] = {"kecamatan": {}, "service": {}}
    officers: dict[str, dict[str, Any]] = {}
    weeks: dict[tuple[int, int], dict[str, Any]] = {}
    ends: dict[str, int] = defaultdict(int)
    lead_times: list[float] = []
    officer_runs = within = within_target = 0

    def bucket(kind: str, code: str) -> dict[str, Any]:
        return groups[kind].setdefault(
            code, {"volume": 0, "delivered": 0, "lead": [], "backlog": 0, "runs": 0, "within": 0}
        )

    for monday in filters.mondays():
        iso = monday.isocalendar()
        weeks[(iso.year, iso.week)] = {"monday": monday, "volume": 0, "runs": 0, "within": 0}
        weeks[(iso.year, iso.week)]["lead"] = []

    count = 0
    for case in cases:
        if not in_period(case, filters, tz):
            continue
        count += 1
        tl = timeline(sop, case, now, **with_clocks)
        # on the clock of the office's lead-time target
        lead = float(getattr(tl, "sla_lead_time_seconds", tl.lead_time_seconds))
        is_open = case.is_open(sop)
        delivered = case.state == "delivered"
        ends[case.state] += 1
        iso = case.created_at.astimezone(tz).date().isocalendar()
        week = weeks[(iso.year, iso.week)]
        week["volume"] += 1
        kec = bucket("kecamatan", case.kecamatan)
        svc = bucket("service", case.service or NO_SERVICE)
        for g in (kec, svc):
            g["volume"] += 1
            g["backlog"] += is_open
            g["delivered"] += delivered
            if delivered:
                g["lead"].append(lead)
        if delivered:
            within_target += not tl.lead_time_breached
            lead_times.append(lead)
            week["lead"].append(lead)
        for t in tl.steps:
            if not _handled(t):
                continue
            ok = not t.breached
            key = t.step.key
            handling = _on_clock(t, "handling") or 0.0
            step_handling[key].append(handling)
            step_raw[key].append(t.handling_seconds or 0.0)
            working_hours = working_hours or _working_clock(t)
            step_within[key] += ok
            waiting = _on_clock(t, "waiting")
            if t.run.claimed_at is not None and waiting is not None:
                step_waiting[key].append(waiting)
            if not _by_officer(t):
                continue
            officer_runs += 1
            within += ok
            week["runs"] += 1
            week["within"] += ok
            for g in (kec, svc):
                g["runs"] += 1
                g["within"] += ok
            who = t.run.done_by or "?"
            o = officers.setdefault(who, {"roles": set(), "ratios": [], "within": 0})
            o["roles"].add(t.step.role)
            o["within"] += ok
            o["ratios"].append(handling / (t.mutu_baku_seconds or 1.0))

    steps = tuple(
        StepStat(
            number=s.number,
            key=s.key,
            kegiatan=s.kegiatan,
            role=s.role,
            mutu_baku_seconds=s.mutu_baku_seconds,
            handled=len(step_handling[s.key]),
            median_handling=median(step_handling[s.key]),
            p90_handling=percentile(step_handling[s.key], 90),
            within=step_within[s.key],
            waited=len(step_waiting[s.key]),
            median_waiting=median(step_waiting[s.key]),
            median_raw_handling=median(step_raw[s.key]) if working_hours else None,
            p90_raw_handling=percentile(step_raw[s.key], 90) if working_hours else None,
        )
        for s in sop.steps
    )

    def group_stats(kind: str, listing: Sequence[tuple[str, str]]) -> tuple[GroupStat, ...]:
        out = []
        for code, name in listing:
            g = groups[kind].get(code)
            if g is None:
                g = {"volume": 0, "delivered": 0, "lead": [], "backlog": 0, "runs": 0, "within": 0}
            out.append(
                GroupStat(
                    code=code,
                    name=name,
                    volume=g["volume"],
                    delivered=g["delivered"],
                    median_lead_time=median(g["lead"]),
                    backlog=g["backlog"],
                    officer_runs=g["runs"],
                    within=g["within"],
                )
            )
        return tuple(out)

    kec_list, svc_list = group_listings(
        filters, region, catalogue, unchosen=NO_SERVICE in groups["service"]
    )

    officer_stats = tuple(
        sorted(
            (
                OfficerStat(
                    officer=who,
                    name=names.get(who, who),
                    roles=", ".join(ROLE_LABELS.get(r, r) for r in sorted(o["roles"])),
                    handled=len(o["ratios"]),
                    within=o["within"],
                    median_handling_ratio=median(o["ratios"]),
                )
                for who, o in officers.items()
            ),
            key=lambda o: (-o.handled, o.officer),
        )
    )
    week_stats = tuple(
        WeekStat(
            week=f"{y}-W{w:02d}",
            monday=v["monday"],
            volume=v["volume"],
            officer_runs=v["runs"],
            within=v["within"],
            median_lead_time=median(v["lead"]),
        )
        for (y, w), v in sorted(weeks.items())
    )
    return Dashboard(
        filters=filters,
        generated_at=now,
        cases=count,
        delivered=ends["delivered"],
        open=sum(n for state, n in ends.items() if state not in sop.terminal_states),
        rejected=ends["rejected"],
        cancelled=ends["cancelled"],
        expired=ends["expired"],
        officer_runs=officer_runs,
        within=within,
        median_lead_time=median(lead_times),
        lead_time_target_seconds=sop.lead_time_target_seconds,
        within_lead_time_target=within_target,
        steps=steps,
        kecamatan=group_stats("kecamatan", kec_list),
        services=group_stats("service", svc_list),
        officers=officer_stats,
        weeks=week_stats,
        working_hours=working_hours,
        truncated=truncated,
    )


def load_from_cases(c: Container, filters: Filters) -> Dashboard:
    """The dashboard of the cases opened in the period, computed exactly from every case.

    The store is asked for cases updated since the period's first day (every case opened in
    the period has been updated since); cases opened outside the period are dropped."""
    tz = ZoneInfo(c.region.timezone)
    since = datetime.combine(filters.start, time(0), tzinfo=tz).astimezone(UTC)
    cases = c.store.list_cases(updated_since=since, kecamatan=filters.kecamatan, limit=CASE_LIMIT)
    return compute(
        cases,
        c.sop,
        filters=filters,
        region=c.region,
        catalogue=c.catalogue,
        now=c.clock.now(),
        staff_names=people.staff_names(c),
        truncated=len(cases) >= CASE_LIMIT,
        clocks=getattr(c, "sla_clocks", None),
    )


def report_keep(c: Container) -> timedelta:
    """How far back a monthly report may go: as long as the retention schedule keeps any
    record of a case (its step times and audit trail outlive the documents and, anonymised,
    the personal data)."""
    schedule = c.agenda().schedule
    return max(schedule.requirement_documents, schedule.personal_data, schedule.signed_document)
