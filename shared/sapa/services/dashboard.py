"""SOP compliance statistics for the heads of office: per step, kecamatan, service, officer and
ISO week, over the cases opened in a period; the tables behind every chart, and the charts as
inline SVG (no script, no external resource).

Definitions (the same everywhere: page, CSV, XLSX and the monthly PDF):

- The cases counted are those *opened* (greeted) in the period, in office time (the region's
  time zone), narrowed by kecamatan and service. Each case contributes every step run it has,
  whenever the run was done.
- A step run is *handled* when it is done by the step's own event or by an officer's decision
  on it (a correction request, a return, a rejection); runs closed by the resident's
  cancellation or by expiry are not. Its handling time is claimed → done, its waiting time
  ready → claimed, as in `sapa.domain.sla.timeline`.
- *Within standard*: the run is not breached (`StepTiming.breached`, handling ≤ mutu baku).
  The office's overall compliance counts runs done by officers only (the resident's greeting
  and the system's own steps take no time and would flatter it).
- Median: the middle value (the mean of the two middle ones for an even count). 90th
  percentile: nearest rank (the smallest value with at least 90 % of the values at or below).
- Handling, waiting and lead times are on the clock each is measured on (sla.toml: officers'
  steps on working hours); where that is not wall-clock time the wall-clock handling time is
  given besides. Lead time: greeting → delivery, for delivered cases. Backlog: open now.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sapa.domain.case import Case
from sapa.domain.errors import ValidationFailed
from sapa.domain.reference import Catalogue, Region
from sapa.domain.sla import StepTiming, format_duration, timeline
from sapa.domain.sop import Sop
from sapa.domain.texts import ROLE_LABELS

if TYPE_CHECKING:
    from sapa.bootstrap import Container

MAX_DAYS = 366
CASE_LIMIT = 100_000  # more cases than this in one period: the page says the numbers are cut
NOT_HANDLED = frozenset({"cancel", "expire"})
NO_SERVICE = "-"
NO_SERVICE_NAME = "(belum memilih layanan)"

# Indonesian texts of this module (the dashboard's own; shared texts live in domain/texts.py)
T = {
    "bad_date": "Tanggal harus berbentuk TTTT-BB-HH, misalnya 2026-10-01.",
    "order": "Tanggal akhir tidak boleh sebelum tanggal awal.",
    "too_long": "Rentang tanggal paling panjang {days} hari.",
    "future": "Tanggal awal tidak boleh setelah hari ini.",
    "kecamatan": "Kecamatan tidak dikenal.",
    "service": "Jenis layanan tidak dikenal.",
    "summary": "Periksa kembali saringan dasbor.",
    "bad_month": "Bulan harus berbentuk TTTT-BB, misalnya 2026-10.",
    "month_future": "Laporan bulan yang belum dimulai tidak dapat dibuat.",
}


# ---- filters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """A period of local dates (both ends included) and optional kecamatan/service."""

    start: date
    end: date
    kecamatan: str | None = None
    service: str | None = None

    def query(self) -> dict[str, str]:
        """The filters as GET parameters (for the download links)."""
        out = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        if self.kecamatan:
            out["kecamatan"] = self.kecamatan
        if self.service:
            out["service"] = self.service
        return out


def default_filters(today: date) -> Filters:
    """From the first day of the previous month to today: the last full month and this one."""
    first = today.replace(day=1)
    return Filters((first - timedelta(days=1)).replace(day=1), today)


def parse_filters(
    args: Mapping[str, str], *, today: date, region: Region, catalogue: Catalogue
) -> Filters:
    """The dashboard's GET parameters (`from`, `to`, `kecamatan`, `service`), checked; raises
    ValidationFailed with an Indonesian message per field. Empty means the default."""
    default = default_filters(today)
    errors: dict[str, str] = {}

    def day(name: str, fallback: date) -> date:
        raw = (args.get(name) or "").strip()
        if not raw:
            return fallback
        try:
            when = date.fromisoformat(raw) if len(raw) == 10 else _bad_date()
            return when if 2000 <= when.year <= 2100 else _bad_date()
        except ValueError:
            errors[name] = T["bad_date"]
            return fallback

    start, end = day("from", default.start), day("to", default.end)
    if not errors:
        if end < start:
            errors["to"] = T["order"]
        elif (end - start).days + 1 > MAX_DAYS:
            errors["to"] = T["too_long"].format(days=MAX_DAYS)
        elif start > today:
            errors["from"] = T["future"]
    kecamatan = (args.get("kecamatan") or "").strip() or None
    if kecamatan and kecamatan not in {k.code for k in region.kecamatan}:
        errors["kecamatan"] = T["kecamatan"]
    service = (args.get("service") or "").strip() or None
    if service and service not in {s.code for s in catalogue.services}:
        errors["service"] = T["service"]
    if errors:
        raise ValidationFailed(" ".join(dict.fromkeys(errors.values())), errors)
    return Filters(start, end, kecamatan, service)


def _bad_date() -> date:
    raise ValueError("not YYYY-MM-DD")


def month_filters(raw: str, *, today: date) -> Filters:
    """`2026-10` → the whole of October 2026 (up to today while the month runs)."""
    try:
        year, month = (int(p) for p in raw.strip().split("-"))
        if not (len(raw.strip()) == 7 and 2000 <= year <= 2100):
            raise ValueError(raw)
        first = date(year, month, 1)
    except ValueError:
        raise ValidationFailed(T["bad_month"], {"month": T["bad_month"]}) from None
    if first > today:
        raise ValidationFailed(T["month_future"], {"month": T["month_future"]})
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return Filters(first, min(last, today))


# ---- arithmetic -------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): an observed value, never an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return float(ordered[rank - 1])


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# ---- the numbers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepStat:
    number: int
    key: str
    kegiatan: str
    role: str
    mutu_baku_seconds: float
    handled: int  # sample size of the handling figures
    median_handling: float | None
    p90_handling: float | None
    within: int
    waited: int  # sample size of the waiting figure
    median_waiting: float | None
    # wall-clock handling, shown besides when some runs are measured on working hours
    median_raw_handling: float | None = None
    p90_raw_handling: float | None = None

    @property
    def compliance(self) -> float | None:
        return share(self.within, self.handled)


@dataclass(frozen=True)
class GroupStat:
    """One kecamatan or one service."""

    code: str
    name: str
    volume: int
    delivered: int
    median_lead_time: float | None  # over the delivered cases
    backlog: int
    officer_runs: int
    within: int

    @property
    def compliance(self) -> float | None:
        return share(self.within, self.officer_runs)


@dataclass(frozen=True)
class OfficerStat:
    officer: str
    name: str
    roles: str
    handled: int
    within: int
    median_handling_ratio: float | None  # handling as a multiple of the step's mutu baku

    @property
    def compliance(self) -> float | None:
        return share(self.within, self.handled)


@dataclass(frozen=True)
class WeekStat:
    week: str  # ISO week, e.g. 2026-W40
    monday: date
    volume: int
    officer_runs: int
    within: int
    median_lead_time: float | None

    @property
    def compliance(self) -> float | None:
        return share(self.within, self.officer_runs)


@dataclass(frozen=True)
class Dashboard:
    filters: Filters
    generated_at: datetime
    cases: int
    delivered: int
    open: int
    rejected: int
    cancelled: int
    expired: int
    officer_runs: int
    within: int
    median_lead_time: float | None
    lead_time_target_seconds: float
    within_lead_time_target: int
    steps: tuple[StepStat, ...]
    kecamatan: tuple[GroupStat, ...]
    services: tuple[GroupStat, ...]
    officers: tuple[OfficerStat, ...]
    weeks: tuple[WeekStat, ...]
    working_hours: bool = False  # some steps are measured on the office's working hours
    truncated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def compliance(self) -> float | None:
        return share(self.within, self.officer_runs)

    @property
    def lead_time_compliance(self) -> float | None:
        return share(self.within_lead_time_target, self.delivered)


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

    monday = filters.start - timedelta(days=filters.start.weekday())
    while monday <= filters.end:
        iso = monday.isocalendar()
        weeks[(iso.year, iso.week)] = {"monday": monday, "volume": 0, "runs": 0, "within": 0}
        weeks[(iso.year, iso.week)]["lead"] = []
        monday += timedelta(days=7)

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

    kec_list = [(k.code, k.name) for k in region.kecamatan]
    if filters.kecamatan:
        kec_list = [(c, n) for c, n in kec_list if c == filters.kecamatan]
    svc_list = [(s.code, s.name) for s in catalogue.services]
    if filters.service:
        svc_list = [(c, n) for c, n in svc_list if c == filters.service]
    elif NO_SERVICE in groups["service"]:
        svc_list.append((NO_SERVICE, NO_SERVICE_NAME))

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


def load(c: Container, filters: Filters) -> Dashboard:
    """The dashboard of the cases opened in the period, read from the store.

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
        staff_names={s.email: s.name for s in c.staff.all()},
        truncated=len(cases) >= CASE_LIMIT,
        clocks=getattr(c, "sla_clocks", None),
    )


# ---- tables (the numbers behind every chart: page, CSV, XLSX, PDF) ------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str  # text | int | seconds | share | ratio


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]


def _step_rows(d: Dashboard) -> Table:
    cols = [
        Column("number", "Langkah", "int"),
        Column("kegiatan", "Kegiatan", "text"),
        Column("pelaksana", "Pelaksana", "text"),
        Column("mutu_baku_s", "Mutu baku (detik)", "seconds"),
        Column("handled", "Jumlah ditangani", "int"),
        Column("median_s", "Median waktu penanganan (detik)", "seconds"),
        Column("p90_s", "Persentil 90 waktu penanganan (detik)", "seconds"),
        Column("within", "Dalam mutu baku", "int"),
        Column("compliance", "Kepatuhan", "share"),
        Column("waited", "Jumlah diukur waktu tunggu", "int"),
        Column("median_wait_s", "Median waktu tunggu (detik)", "seconds"),
    ]
    if d.working_hours:
        cols += [
            Column("median_raw_s", "Median penanganan waktu kalender (detik)", "seconds"),
            Column("p90_raw_s", "Persentil 90 penanganan waktu kalender (detik)", "seconds"),
        ]
    rows = []
    for s in d.steps:
        row: list[Any] = [
            s.number,
            s.kegiatan,
            ROLE_LABELS.get(s.role, s.role),
            s.mutu_baku_seconds,
            s.handled,
            s.median_handling,
            s.p90_handling,
            s.within,
            s.compliance,
            s.waited,
            s.median_waiting,
        ]
        if d.working_hours:
            row += [s.median_raw_handling, s.p90_raw_handling]
        rows.append(tuple(row))
    return Table("steps", "Per langkah SOP", tuple(cols), tuple(rows))


def _group_rows(name: str, title: str, label: str, groups: Sequence[GroupStat]) -> Table:
    cols = (
        Column("code", "Kode", "text"),
        Column("name", label, "text"),
        Column("volume", "Permohonan", "int"),
        Column("delivered", "Selesai terkirim", "int"),
        Column("median_lead_s", "Median waktu selesai (detik)", "seconds"),
        Column("backlog", "Masih terbuka", "int"),
        Column("officer_runs", "Langkah petugas", "int"),
        Column("compliance", "Kepatuhan", "share"),
    )
    rows = tuple(
        (
            g.code,
            g.name,
            g.volume,
            g.delivered,
            g.median_lead_time,
            g.backlog,
            g.officer_runs,
            g.compliance,
        )
        for g in groups
    )
    return Table(name, title, cols, rows)


TABLE_NAMES = ("steps", "kecamatan", "service", "officers", "weeks")


def tables(d: Dashboard) -> dict[str, Table]:
    """Every table by its download name: steps, kecamatan, service, officers, weeks."""
    return {
        "steps": _step_rows(d),
        "kecamatan": _group_rows("kecamatan", "Per kecamatan", "Kecamatan", d.kecamatan),
        "service": _group_rows("service", "Per layanan", "Layanan", d.services),
        "officers": Table(
            "officers",
            "Per petugas",
            (
                Column("officer", "Petugas", "text"),
                Column("name", "Nama", "text"),
                Column("roles", "Peran", "text"),
                Column("handled", "Langkah ditangani", "int"),
                Column("within", "Dalam mutu baku", "int"),
                Column("compliance", "Kepatuhan", "share"),
                Column("median_ratio", "Median penanganan / mutu baku", "ratio"),
            ),
            tuple(
                (
                    o.officer,
                    o.name,
                    o.roles,
                    o.handled,
                    o.within,
                    o.compliance,
                    o.median_handling_ratio,
                )
                for o in d.officers
            ),
        ),
        "weeks": Table(
            "weeks",
            "Per minggu (ISO)",
            (
                Column("week", "Minggu", "text"),
                Column("monday", "Mulai (Senin)", "text"),
                Column("volume", "Permohonan", "int"),
                Column("officer_runs", "Langkah petugas", "int"),
                Column("within", "Dalam mutu baku", "int"),
                Column("compliance", "Kepatuhan", "share"),
                Column("median_lead_s", "Median waktu selesai (detik)", "seconds"),
            ),
            tuple(
                (
                    w.week,
                    w.monday.isoformat(),
                    w.volume,
                    w.officer_runs,
                    w.within,
                    w.compliance,
                    w.median_lead_time,
                )
                for w in d.weeks
            ),
        ),
    }


def fmt_share(value: float | None) -> str:
    """0.8234 → '82,3 %' (Indonesian decimal comma); '-' without a sample."""
    return "-" if value is None else f"{value * 100:.1f} %".replace(".", ",")


def fmt_cell(kind: str, value: Any) -> str:
    """A table cell for people (the page and the PDF)."""
    if value is None:
        return "-"
    if kind == "seconds":
        return format_duration(float(value))
    if kind == "share":
        return fmt_share(float(value))
    if kind == "ratio":
        return f"{float(value):.2f}×".replace(".", ",")
    if kind == "int":
        return f"{int(value):,}".replace(",", ".")
    return str(value)


# ---- charts (inline SVG: presentation attributes only, so fpdf2 draws them too) ----------------

GREEN, AMBER, RED, GREY, INK, LIGHT = (
    "#0b5d3b",
    "#c98a00",
    "#a4262c",
    "#8a9099",
    "#1b1b1b",
    "#cfe8da",
)
FONT = 'font-family="Helvetica, Arial, sans-serif"'


def _svg(width: int, height: int, title: str, desc: str, body: list[str], ident: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{ident}-t {ident}-d" '
        f'id="{ident}">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _text(
    x: float, y: float, s: str, *, size: int = 11, anchor: str = "start", fill: str = INK
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" {FONT} text-anchor="{anchor}" '
        f'fill="{fill}">{escape(s)}</text>'
    )


def _bar(
    x: float, y: float, w: float, h: float, fill: str, cls: str, value: float, tip: str
) -> str:
    return (
        f'<rect class="bar {cls}" x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" '
        f'height="{max(h, 0):.1f}" fill="{fill}" data-value="{value:.3f}">'
        f"<title>{escape(tip)}</title></rect>"
    )


def steps_chart(d: Dashboard, width: int = 720) -> str:
    """Per step: median and 90th percentile of handling time as a share of the mutu baku, with
    the 100 % line (the standard). Bar lengths are proportional to the ratio."""
    rows = [s for s in d.steps if s.handled]
    left, right, row_h, top = 210, 70, 34, 28
    height = top + row_h * max(len(rows), 1) + 30
    ratios = [
        (v or 0.0) / s.mutu_baku_seconds
        for s in rows
        for v in (s.median_handling, s.p90_handling)
        if s.mutu_baku_seconds
    ]
    scale_max = max([1.25, *ratios])
    plot = width - left - right

    def x_of(r: float) -> float:
        return left + plot * min(r, scale_max) / scale_max

    body = [
        _text(left, 16, "Waktu penanganan sebagai % mutu baku", size=12),
    ]
    for i, s in enumerate(rows):
        y = top + i * row_h
        label = f"{s.number}. {s.kegiatan}"
        body.append(
            _text(left - 6, y + 15, label[:34] + ("…" if len(label) > 34 else ""), anchor="end")
        )
        for j, (value, cls, fill, name) in enumerate(
            (
                (s.median_handling, "bar-median", GREEN, "median"),
                (s.p90_handling, "bar-p90", AMBER, "persentil 90"),
            )
        ):
            ratio = (value or 0.0) / s.mutu_baku_seconds if s.mutu_baku_seconds else 0.0
            tip = (
                f"Langkah {s.number} {name}: {format_duration(value)} "
                f"({fmt_share(ratio)} dari mutu baku {format_duration(s.mutu_baku_seconds)}; "
                f"n={s.handled})"
            )
            by = y + 3 + j * 13
            body.append(_bar(left, by, x_of(ratio) - left, 11, fill, cls, ratio, tip))
            body.append(_text(x_of(ratio) + 4, by + 10, fmt_share(ratio), size=10))
    x100 = x_of(1.0)
    bottom = top + row_h * max(len(rows), 1)
    body.append(
        f'<line class="standard" x1="{x100:.1f}" y1="{top - 4}" x2="{x100:.1f}" y2="{bottom}" '
        f'stroke="{RED}" stroke-width="1.5" stroke-dasharray="4 3"/>'
    )
    body.append(_text(x100, bottom + 14, "100 % = mutu baku", size=10, anchor="middle", fill=RED))
    body.append(f'<rect x="{left}" y="{bottom + 20}" width="10" height="8" fill="{GREEN}"/>')
    body.append(_text(left + 14, bottom + 28, "median", size=10))
    body.append(f'<rect x="{left + 70}" y="{bottom + 20}" width="10" height="8" fill="{AMBER}"/>')
    body.append(_text(left + 84, bottom + 28, "persentil 90", size=10))
    desc = "; ".join(
        f"langkah {s.number}: median {format_duration(s.median_handling)}, persentil 90 "
        f"{format_duration(s.p90_handling)}, mutu baku {format_duration(s.mutu_baku_seconds)}"
        for s in rows
    )
    return _svg(
        width,
        height + 14,
        "Waktu penanganan per langkah dibanding mutu baku",
        desc,
        body,
        "chart-steps",
    )


def weeks_chart(d: Dashboard, width: int = 720, height: int = 240) -> str:
    """Per ISO week: volume (bars, left scale) and compliance (line, 0-100 %, right scale)."""
    left, right, top, bottom = 50, 50, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(d.weeks), 1)
    slot = plot_w / n
    vmax = max([1, *(w.volume for w in d.weeks)])
    body = [_text(left, 14, "Volume (batang) dan kepatuhan (garis) per minggu", size=12)]
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#dde1e6"/>'
        )
        body.append(_text(left - 4, y + 4, f"{round(vmax * frac)}", size=10, anchor="end"))
        body.append(_text(width - right + 4, y + 4, f"{round(frac * 100)} %", size=10))
    points = []
    for i, w in enumerate(d.weeks):
        x = left + i * slot
        h = plot_h * w.volume / vmax
        tip = f"{w.week}: {w.volume} permohonan, kepatuhan {fmt_share(w.compliance)}"
        body.append(
            _bar(x + slot * 0.15, top + plot_h - h, slot * 0.7, h, LIGHT, "bar-week", w.volume, tip)
        )
        body.append(
            _text(x + slot / 2, height - bottom + 14, w.week[-3:], size=10, anchor="middle")
        )
        if w.compliance is not None:
            points.append((x + slot / 2, top + plot_h * (1 - w.compliance), w))
    if points:
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        body.append(
            f'<polyline class="trend" points="{coords}" fill="none" stroke="{GREEN}" '
            'stroke-width="2"/>'
        )
        for x, y, w in points:
            body.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{GREEN}" '
                f'data-value="{w.compliance or 0:.4f}"><title>{escape(w.week)}: '
                f"{fmt_share(w.compliance)}</title></circle>"
            )
    body.append(_text(left, height - 6, "Minggu ISO", size=10))
    desc = "; ".join(
        f"{w.week}: {w.volume} permohonan, kepatuhan {fmt_share(w.compliance)}" for w in d.weeks
    )
    return _svg(width, height, "Tren mingguan: volume dan kepatuhan", desc, body, "chart-weeks")


def kecamatan_chart(d: Dashboard, width: int = 720) -> str:
    """Per kecamatan: volume (light bar) with the part still open (backlog, dark)."""
    rows = list(d.kecamatan)
    left, right, row_h, top = 150, 80, 20, 24
    height = top + row_h * max(len(rows), 1) + 26
    vmax = max([1, *(g.volume for g in rows)])
    plot = width - left - right
    body = [_text(left, 14, "Permohonan per kecamatan (gelap: masih terbuka)", size=12)]
    for i, g in enumerate(rows):
        y = top + i * row_h
        body.append(_text(left - 6, y + 13, g.name, anchor="end"))
        w = plot * g.volume / vmax
        b = plot * g.backlog / vmax
        body.append(
            _bar(
                left,
                y + 2,
                w,
                14,
                LIGHT,
                "bar-volume",
                g.volume,
                f"{g.name}: {g.volume} permohonan",
            )
        )
        body.append(
            _bar(
                left,
                y + 2,
                b,
                14,
                GREEN,
                "bar-backlog",
                g.backlog,
                f"{g.name}: {g.backlog} masih terbuka",
            )
        )
        body.append(_text(left + w + 4, y + 13, f"{g.volume} / {g.backlog}", size=10))
    desc = "; ".join(f"{g.name}: {g.volume} permohonan, {g.backlog} masih terbuka" for g in rows)
    return _svg(width, height, "Volume dan tunggakan per kecamatan", desc, body, "chart-kecamatan")


Renderer = Callable[[Dashboard], str]
CHARTS: dict[str, Renderer] = {
    "steps": steps_chart,
    "weeks": weeks_chart,
    "kecamatan": kecamatan_chart,
}
