"""The dashboard's figures read from the rollups (`sapa.domain.rollup`), which is what the page,
the downloads and the monthly PDF show: `load` reads the cells of the period and `from_cells`
turns them into the same `Dashboard` that `stats.compute` gives from the cases. Counts, totals
and compliance are equal to it; medians and 90th percentiles lie within one bucket of it
(within a factor 2^(1/8)), exact where the values of that bucket are equal."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from sapa.domain.reference import Catalogue, Region
from sapa.domain.rollup import (
    ALL,
    CASE,
    NANOS,
    NO_SERVICE,
    STEP,
    Distribution,
    RollupCell,
    distributions,
    merged,
    officer_id,
)
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

SCALES = {"x": float(NANOS)}  # the officers' handling ratios are counted in billionths


def load(c: Container, filters: Filters) -> Dashboard:
    """The dashboard of the cases opened in the period, from the rollup cells of its days:
    with no filter the all-kecamatan cells per service and the all-service cells per
    kecamatan; with a kecamatan (or service) only that one's cells."""
    first, last = filters.start, filters.end
    kec, svc = filters.kecamatan, filters.service
    store = c.store
    if kec and svc:
        by_kec = by_svc = main = store.rollups(CASE, first, last, kecamatan=kec, service=svc)
    elif kec:
        cells = store.rollups(CASE, first, last, kecamatan=kec)
        main = by_kec = [x for x in cells if x.key.service == ALL]
        by_svc = [x for x in cells if x.key.service != ALL]
    elif svc:
        cells = store.rollups(CASE, first, last, service=svc)
        main = by_svc = [x for x in cells if x.key.kecamatan == ALL]
        by_kec = [x for x in cells if x.key.kecamatan != ALL]
    else:
        per_kec = store.rollups(CASE, first, last, service=ALL)
        main = [x for x in per_kec if x.key.kecamatan == ALL]
        by_kec = [x for x in per_kec if x.key.kecamatan != ALL]
        per_svc = store.rollups(CASE, first, last, kecamatan=ALL)
        by_svc = [x for x in per_svc if x.key.service != ALL]
    # a year of the step cells is the bulk of the data: added up as it is read
    steps = store.rollup_total(STEP, first, last, kecamatan=kec or ALL, service=svc or ALL)
    return from_cells(
        main,
        [steps],
        by_kec,
        by_svc,
        c.sop,
        filters=filters,
        region=c.region,
        catalogue=c.catalogue,
        now=c.clock.now(),
        staff_names=people.staff_names(c),
    )


def _open(sop: Sop, counters: Mapping[str, int]) -> int:
    ended = sum(counters.get(f"end|{state}", 0) for state in sop.terminal_states)
    return counters.get("cases", 0) - ended


def _dist(found: Mapping[str, Distribution], name: str) -> Distribution:
    return found.get(name) or Distribution()


def from_cells(
    main: Iterable[RollupCell],
    steps: Iterable[RollupCell | Mapping[str, int]],
    by_kecamatan: Iterable[RollupCell],
    by_service: Iterable[RollupCell],
    sop: Sop,
    *,
    filters: Filters,
    region: Region,
    catalogue: Catalogue,
    now: datetime,
    staff_names: Mapping[str, str] | None = None,
) -> Dashboard:
    """The dashboard from cells: `main` the period's `case` cells of the filters' kecamatan
    and service (or `*`), `steps` their `step` cells, `by_kecamatan` and `by_service` the
    `case` cells of each kecamatan (each service) within the other filter."""
    names = dict(staff_names or {})
    main = list(main)
    total = merged(main)
    total_dists = distributions(total)
    step_counters = merged(steps)
    step_dists = distributions(step_counters, scales=SCALES)

    # ---- per step
    working_hours = any(step_counters.get(f"s|{s.key}|wk", 0) for s in sop.steps)
    stats = []
    for s in sop.steps:
        handling = _dist(step_dists, f"s|{s.key}|h")
        raw = _dist(step_dists, f"s|{s.key}|r")
        waiting = _dist(step_dists, f"s|{s.key}|w")
        stats.append(
            StepStat(
                number=s.number,
                key=s.key,
                kegiatan=s.kegiatan,
                role=s.role,
                mutu_baku_seconds=s.mutu_baku_seconds,
                handled=handling.n,
                median_handling=handling.median(),
                p90_handling=handling.percentile(90),
                within=step_counters.get(f"s|{s.key}|ok", 0),
                waited=waiting.n,
                median_waiting=waiting.median(),
                median_raw_handling=raw.median() if working_hours else None,
                p90_raw_handling=raw.percentile(90) if working_hours else None,
            )
        )

    # ---- per kecamatan and per service
    def groups(
        cells: Iterable[RollupCell], field: str, listing: Sequence[tuple[str, str]]
    ) -> tuple[GroupStat, ...]:
        per: dict[str, list[RollupCell]] = defaultdict(list)
        for cell in cells:
            per[getattr(cell.key, field)].append(cell)
        out = []
        for code, name in listing:
            counters = merged(per.get(code, ()))
            lead = _dist(distributions(counters), "lead")
            out.append(
                GroupStat(
                    code=code,
                    name=name,
                    volume=counters.get("cases", 0),
                    delivered=counters.get("end|delivered", 0),
                    median_lead_time=lead.median(),
                    backlog=_open(sop, counters),
                    officer_runs=counters.get("on", 0),
                    within=counters.get("ook", 0),
                )
            )
        return tuple(out)

    by_service = list(by_service)
    unchosen = any(c.key.service == NO_SERVICE and c.counters.get("cases") for c in by_service)
    kec_list, svc_list = group_listings(filters, region, catalogue, unchosen=unchosen)

    # ---- per officer
    officers: dict[str, dict[str, int]] = defaultdict(dict)
    for name, value in step_counters.items():
        if name.startswith("o|"):
            token, _, rest = name[2:].partition("|")
            officers[token][rest] = value
    officer_stats = []
    for token, values in officers.items():
        ratio = _dist(step_dists, f"o|{token}|x")
        if not ratio.n:
            continue
        who = officer_id(token)
        steps_done = {
            rest[: -len("|runs")]
            for rest, count in values.items()
            if rest.endswith("|runs") and count
        }
        roles = {s.role for s in sop.steps if s.key in steps_done}
        officer_stats.append(
            OfficerStat(
                officer=who,
                name=names.get(who, who),
                roles=", ".join(ROLE_LABELS.get(r, r) for r in sorted(roles)),
                handled=ratio.n,
                within=values.get("ok", 0),
                median_handling_ratio=ratio.median(),
            )
        )
    officer_stats.sort(key=lambda o: (-o.handled, o.officer))

    # ---- per ISO week (of the opening day)
    weeks: dict[tuple[int, int], list[RollupCell]] = {}
    for monday in filters.mondays():
        iso = monday.isocalendar()
        weeks[(iso.year, iso.week)] = []
    for cell in main:
        iso = date.fromisoformat(cell.key.day).isocalendar()
        weeks.setdefault((iso.year, iso.week), []).append(cell)
    week_stats = []
    for (y, w), cells in sorted(weeks.items()):
        counters = merged(cells)
        week_stats.append(
            WeekStat(
                week=f"{y}-W{w:02d}",
                monday=date.fromisocalendar(y, w, 1),
                volume=counters.get("cases", 0),
                officer_runs=counters.get("on", 0),
                within=counters.get("ook", 0),
                median_lead_time=_dist(distributions(counters), "lead").median(),
            )
        )

    return Dashboard(
        filters=filters,
        generated_at=now,
        cases=total.get("cases", 0),
        delivered=total.get("end|delivered", 0),
        open=_open(sop, total),
        rejected=total.get("end|rejected", 0),
        cancelled=total.get("end|cancelled", 0),
        expired=total.get("end|expired", 0),
        officer_runs=total.get("on", 0),
        within=total.get("ook", 0),
        median_lead_time=_dist(total_dists, "lead").median(),
        lead_time_target_seconds=sop.lead_time_target_seconds,
        within_lead_time_target=total.get("lead|ok", 0),
        steps=tuple(stats),
        kecamatan=groups(by_kecamatan, "kecamatan", kec_list),
        services=groups(by_service, "service", svc_list),
        officers=tuple(officer_stats),
        weeks=tuple(week_stats),
        working_hours=working_hours,
    )
