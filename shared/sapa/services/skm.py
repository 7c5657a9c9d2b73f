"""The satisfaction index report (IKM, PermenPANRB 14/2017) for the heads of office: per quarter,
semester or year, narrowed by kecamatan, service and the officer role that handled the case,
read from the survey's rollup cells (`skm`, sapa.domain.rollup) and never from a named answer.

What it gives: each element's mean (NRR), its weighted value (NRR / 9) and how many residents gave
each answer; the index and its grade; the respondents against Krejcie and Morgan's minimum sample
for the period's population (the requests delivered, opened in the period); the three weakest
elements; the index per kecamatan, service and role; the respondents' profile. A group of fewer
than `SHOWN_FROM` respondents shows its count only: with so few, a figure could tell who
answered what."""

from __future__ import annotations

import calendar
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sapa.bootstrap import Container
from sapa.domain import ikm
from sapa.domain.case import COMPLAINT_OUTCOMES
from sapa.domain.errors import Conflict, Forbidden, ValidationFailed
from sapa.domain.rollup import ALL, CASE, COMPLAINTS, SURVEY, RollupCell, merged
from sapa.domain.texts import COMPLAINT_OUTCOME_LABELS, ROLE_LABELS
from sapa.ports import StaffMember
from sapa.services.dashboard.charts import AMBER, GREEN, RED, _bar, _svg, _text
from sapa.services.dashboard.tabular import Column, Table

log = logging.getLogger(__name__)

SHOWN_FROM = 5  # respondents: a smaller group's index is not shown
SUGGESTIONS_SHOWN = 300
ROMAN = ("I", "II", "III", "IV")
T = {
    "bad_period": (
        "Periode harus berbentuk TTTT-T1 s.d. TTTT-T4 (triwulan), TTTT-S1 atau TTTT-S2 "
        "(semester), atau TTTT (tahun), misalnya 2026-T4."
    ),
    "period_future": "Periode yang belum dimulai tidak dapat dilaporkan.",
    "kecamatan": "Kecamatan tidak dikenal.",
    "service": "Jenis layanan tidak dikenal.",
    "role": "Peran petugas tidak dikenal.",
    "summary": "Periksa kembali saringan laporan SKM.",
}


@dataclass(frozen=True)
class Period:
    """A quarter (2026-T4), a semester (2026-S2) or a year (2026) of local dates."""

    code: str
    label: str
    first: date
    last: date


def period(code: str) -> Period:
    """The period a code names. Raises ValueError for anything else."""
    raw = code.strip().upper()
    year_part, dash, part = raw.partition("-")
    if not (year_part.isdigit() and len(year_part) == 4) or (dash and not part):
        raise ValueError(code)
    year = int(year_part)
    if not part:
        return Period(raw, f"Tahun {year}", date(year, 1, 1), date(year, 12, 31))
    kind, number = part[:1], part[1:]
    months = {"T": 3, "S": 6}.get(kind)
    if months is None or number not in {str(n) for n in range(1, 12 // months + 1)}:
        raise ValueError(code)
    n = int(number)
    first = date(year, (n - 1) * months + 1, 1)
    end_month = n * months
    last = date(year, end_month, calendar.monthrange(year, end_month)[1])
    name = "Triwulan" if kind == "T" else "Semester"
    return Period(raw, f"{name} {ROMAN[n - 1]} {year}", first, last)


def quarter_of(day: date) -> Period:
    return period(f"{day.year}-T{(day.month - 1) // 3 + 1}")


@dataclass(frozen=True)
class SkmFilters:
    period: Period
    kecamatan: str | None = None
    service: str | None = None
    role: str | None = None

    def query(self) -> dict[str, str]:
        out = {"periode": self.period.code}
        for name in ("kecamatan", "service", "role"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out


def roles_surveyed(c: Container) -> list[str]:
    """The officer roles of the SOP's steps (those an answer can be about), in SOP order."""
    out: list[str] = []
    for step in c.sop.steps:
        if step.role not in ("pemohon", "system") and step.role not in out:
            out.append(step.role)
    return out


def parse_filters(c: Container, args: Mapping[str, str], today: date) -> SkmFilters:
    """The report's filters from GET parameters (default: this quarter, the whole office).
    Raises ValidationFailed with a message per parameter."""
    errors: dict[str, str] = {}
    raw = str(args.get("periode", "")).strip()
    chosen = quarter_of(today)
    if raw:
        try:
            chosen = period(raw)
        except ValueError:
            errors["periode"] = T["bad_period"]
        else:
            if chosen.first > today:
                errors["periode"] = T["period_future"]
    kecamatan = str(args.get("kecamatan", "")).strip() or None
    if kecamatan and kecamatan not in {k.code for k in c.region.kecamatan}:
        errors["kecamatan"] = T["kecamatan"]
    service = str(args.get("service", "")).strip() or None
    if service and service not in {s.code for s in c.catalogue.services}:
        errors["service"] = T["service"]
    role = str(args.get("role", "")).strip() or None
    if role and role not in roles_surveyed(c):
        errors["role"] = T["role"]
    if errors:
        raise ValidationFailed(T["summary"], errors)
    return SkmFilters(chosen, kecamatan, service, role)


@dataclass(frozen=True)
class ElementRow:
    code: str
    name: str
    answers: tuple[int, int, int, int]  # how many answered 1, 2, 3, 4
    nrr: Decimal | None  # None when not shown

    @property
    def weighted(self) -> Decimal | None:
        return None if self.nrr is None else self.nrr / Decimal(len(ikm.CODES))


@dataclass(frozen=True)
class GroupRow:
    """One kecamatan, service or role: its respondents and (when shown) index and grade."""

    key: str
    name: str
    respondents: int
    result: ikm.Result | None


@dataclass(frozen=True)
class ProfileRow:
    question: str
    counts: tuple[tuple[str, int], ...]  # each choice and how many chose it
    unanswered: int


@dataclass(frozen=True)
class ComplaintRow:
    """Complaints filed in the period by one group (services.complaints), and how they went."""

    group: str  # Semua | Kecamatan | Layanan
    name: str
    filed: int
    replied: int
    late: int  # answered after the response time
    closed: int
    outcomes: tuple[int, ...]  # closed with each of COMPLAINT_OUTCOMES


@dataclass
class SkmReport:
    filters: SkmFilters
    respondents: int
    population: int  # requests delivered, opened in the period (the surveyed population)
    minimum_sample: int
    result: ikm.Result | None  # None below SHOWN_FROM respondents
    elements: list[ElementRow] = field(default_factory=list)
    weakest: list[str] = field(default_factory=list)  # element codes, lowest first
    by_kecamatan: list[GroupRow] = field(default_factory=list)
    by_service: list[GroupRow] = field(default_factory=list)
    by_role: list[GroupRow] = field(default_factory=list)
    profile: list[ProfileRow] = field(default_factory=list)
    complaints: list[ComplaintRow] = field(default_factory=list)  # all, then per group
    # the residents' suggestions in their own words (masked), with the day, never the case
    suggestions: list[tuple[date, str]] = field(default_factory=list)
    more_suggestions: bool = False  # more than SUGGESTIONS_SHOWN in the period

    @property
    def sample_met(self) -> bool:
        return self.respondents >= self.minimum_sample


def _counts(counters: Mapping[str, int], prefix: str) -> tuple[int, dict[str, list[int]]]:
    """Respondents and, per element, how many gave each score, under `prefix` ("" for all,
    "r|<role>|" for a role)."""
    answers = {
        code: [int(counters.get(f"{prefix}u|{code}|{s}", 0)) for s in ikm.SCALE]
        for code in ikm.CODES
    }
    return int(counters.get(f"{prefix}n", 0)), answers


def _result(respondents: int, answers: Mapping[str, list[int]]) -> ikm.Result | None:
    if respondents < SHOWN_FROM:
        return None
    totals = {
        code: sum(s * n for s, n in zip(ikm.SCALE, answers[code], strict=True))
        for code in ikm.CODES
    }
    return ikm.from_totals(respondents, totals)


def _group(key: str, name: str, counters: Mapping[str, int], prefix: str = "") -> GroupRow:
    n, answers = _counts(counters, prefix)
    return GroupRow(key, name, n, _result(n, answers))


def load(c: Container, f: SkmFilters) -> SkmReport:
    """The report for the filters, from a handful of rollup reads."""
    first, last = f.period.first, f.period.last
    kec, svc = f.kecamatan or ALL, f.service or ALL
    total = c.store.rollup_total(SURVEY, first, last, kecamatan=kec, service=svc)
    prefix = f"r|{f.role}|" if f.role else ""
    n, answers = _counts(total, prefix)
    result = _result(n, answers)
    cases = c.store.rollup_total(CASE, first, last, kecamatan=kec, service=svc)
    population = int(cases.get("end|delivered", 0))
    report = SkmReport(
        filters=f,
        respondents=n,
        population=population,
        minimum_sample=ikm.minimum_sample(population),
        result=result,
    )
    for element in ikm.ELEMENTS:
        report.elements.append(
            ElementRow(
                element.code,
                element.name,
                tuple(answers[element.code]),  # type: ignore[arg-type]
                result.nrr[element.code] if result else None,
            )
        )
    report.weakest = result.weakest(3) if result else []
    report.by_role = [
        _group(role, ROLE_LABELS.get(role, role), total, f"r|{role}|")
        for role in roles_surveyed(c)
        if not f.role or role == f.role
    ]
    if not f.kecamatan:
        cells: dict[str, list[RollupCell]] = {}
        for cell in c.store.rollups(SURVEY, first, last, service=svc):
            cells.setdefault(cell.key.kecamatan, []).append(cell)
        report.by_kecamatan = [
            _group(k.code, k.name, merged(cells.get(k.code, [])), prefix)
            for k in c.region.kecamatan
        ]
    if not f.service:
        cells = {}
        for cell in c.store.rollups(SURVEY, first, last, kecamatan=kec):
            cells.setdefault(cell.key.service, []).append(cell)
        report.by_service = [
            _group(s.code, s.name, merged(cells.get(s.code, [])), prefix)
            for s in c.catalogue.services
        ]
    report.complaints = _complaints(c, f)
    report.suggestions, report.more_suggestions = _suggestions(c, f)
    if n >= SHOWN_FROM:
        for question in ikm.load_survey().profile:
            counts = tuple(
                (choice, int(total.get(f"p|{question.key}|{i}", 0)))
                for i, choice in enumerate(question.choices, 1)
            )
            everyone = int(total.get("n", 0))
            report.profile.append(
                ProfileRow(question.label, counts, everyone - sum(k for _, k in counts))
            )
    return report


def _suggestions(c: Container, f: SkmFilters) -> tuple[list[tuple[date, str]], bool]:
    """The period's suggestions (the survey's free text, masked when kept), oldest first, read
    by the day they were given (the store indexes it beside the case), at most
    SUGGESTIONS_SHOWN; and whether there were more. No case, kecamatan or officer goes with
    them: a suggestion is read for what it says."""
    tz = ZoneInfo(c.region.timezone)
    start = datetime.combine(f.period.first, time(0), tzinfo=tz)
    end = datetime.combine(f.period.last + timedelta(days=1), time(0), tzinfo=tz)
    out: list[tuple[date, str]] = []
    after: tuple[datetime, str] = (start - timedelta(microseconds=1), "")
    while True:
        page = c.store.due_cases("suggestion", end, limit=200, after=after)
        for due in page:
            case = due.case
            if due.at >= end or case.survey is None or not case.survey.text:
                continue
            if (f.kecamatan and case.kecamatan != f.kecamatan) or (
                f.service and case.service != f.service
            ):
                continue
            if len(out) == SUGGESTIONS_SHOWN:
                return out, True
            out.append((due.at.astimezone(tz).date(), case.survey.text))
        if len(page) < 200:
            return out, False
        after = (page[-1].at, page[-1].case.id)


def _complaints(c: Container, f: SkmFilters) -> list[ComplaintRow]:
    """The period's complaints, by the day they were filed: all of them (as filtered), then
    per kecamatan and per service that had any."""
    first, last = f.period.first, f.period.last
    kec, svc = f.kecamatan or ALL, f.service or ALL

    def row(group: str, name: str, counters: Mapping[str, int]) -> ComplaintRow:
        def n(key: str) -> int:
            return int(counters.get(key, 0))

        outcomes = tuple(n(f"out|{o}") for o in COMPLAINT_OUTCOMES)
        return ComplaintRow(group, name, n("filed"), n("replied"), n("late"), n("closed"), outcomes)

    rows = [
        row(
            "Semua",
            "Semua",
            c.store.rollup_total(COMPLAINTS, first, last, kecamatan=kec, service=svc),
        )
    ]
    if not rows[0].filed:
        return rows
    per_kec: dict[str, list[RollupCell]] = {}
    per_svc: dict[str, list[RollupCell]] = {}
    for cell in c.store.rollups(COMPLAINTS, first, last, service=svc):
        if cell.key.kecamatan != ALL and (not f.kecamatan or cell.key.kecamatan == f.kecamatan):
            per_kec.setdefault(cell.key.kecamatan, []).append(cell)
    for cell in c.store.rollups(COMPLAINTS, first, last, kecamatan=kec):
        if cell.key.service != ALL and (not f.service or cell.key.service == f.service):
            per_svc.setdefault(cell.key.service, []).append(cell)
    rows += [
        row("Kecamatan", k.name, merged(per_kec[k.code]))
        for k in c.region.kecamatan
        if k.code in per_kec
    ]
    rows += [
        row("Layanan", s.name, merged(per_svc[s.code]))
        for s in c.catalogue.services
        if s.code in per_svc
    ]
    return rows


# ---- tables (the page, the CSV and XLSX downloads) and the chart ------------------------------

TABLE_NAMES = ("elements", "kecamatan", "service", "role", "profile", "complaints")


def _groups(name: str, title: str, label: str, rows: list[GroupRow]) -> Table:
    cols = (
        Column("code", "Kode", "text"),
        Column("name", label, "text"),
        Column("respondents", "Responden", "int"),
        Column("ikm", "IKM", "index"),
        Column("grade", "Mutu pelayanan", "text"),
    )
    return Table(
        name,
        title,
        cols,
        tuple(
            (
                g.key,
                g.name,
                g.respondents,
                g.result.shown if g.result else None,
                f"{g.result.grade.letter} ({g.result.grade.label})" if g.result else "",
            )
            for g in rows
        ),
    )


def tables(r: SkmReport) -> dict[str, Table]:
    """Every table of the report by its download name."""
    elements = Table(
        "elements",
        "Nilai per unsur pelayanan",
        (
            Column("code", "Unsur", "text"),
            Column("name", "Unsur pelayanan", "text"),
            *(Column(f"a{s}", f"Jawaban {s}", "int") for s in ikm.SCALE),
            Column("nrr", "NRR per unsur", "index"),
            Column("weighted", "NRR tertimbang (× 1/9)", "ratio"),
        ),
        tuple((e.code, e.name, *e.answers, e.nrr, e.weighted) for e in r.elements),
    )
    profile = Table(
        "profile",
        "Profil responden",
        (
            Column("question", "Pertanyaan", "text"),
            Column("choice", "Jawaban", "text"),
            Column("count", "Responden", "int"),
        ),
        tuple(
            (p.question, choice, count)
            for p in r.profile
            for choice, count in (*p.counts, ("(tidak diisi)", p.unanswered))
        ),
    )
    complaints = Table(
        "complaints",
        "Pengaduan (menurut tanggal diajukan)",
        (
            Column("group", "Kelompok", "text"),
            Column("name", "Nama", "text"),
            Column("filed", "Diajukan", "int"),
            Column("replied", "Ditanggapi", "int"),
            Column("late", "Ditanggapi lewat waktu", "int"),
            Column("closed", "Ditutup", "int"),
            *(
                Column(f"out_{o}", f"Hasil: {COMPLAINT_OUTCOME_LABELS[o]}", "int")
                for o in COMPLAINT_OUTCOMES
            ),
        ),
        tuple(
            (k.group, k.name, k.filed, k.replied, k.late, k.closed, *k.outcomes)
            for k in r.complaints
        ),
    )
    return {
        "elements": elements,
        "kecamatan": _groups("kecamatan", "Per kecamatan", "Kecamatan", r.by_kecamatan),
        "service": _groups("service", "Per layanan", "Layanan", r.by_service),
        "role": _groups("role", "Per peran petugas", "Peran petugas", r.by_role),
        "profile": profile,
        "complaints": complaints,
    }


def info(r: SkmReport, office: str, c: Container) -> list[tuple[str, Any, str | None]]:
    """The report's heading lines (the workbook's info sheet)."""
    f = r.filters
    kecamatan = c.region.kecamatan_by_code(f.kecamatan).name if f.kecamatan else "semua"
    service = c.catalogue.get(f.service).name if f.service else "semua"
    return [
        ("Indeks Kepuasan Masyarakat (PermenPANRB 14/2017)", office, None),
        ("Periode", f"{f.period.label} ({f.period.first} s.d. {f.period.last})", None),
        ("Kecamatan", kecamatan, None),
        ("Layanan", service, None),
        ("Peran petugas", ROLE_LABELS.get(f.role, f.role) if f.role else "semua", None),
        ("Responden", r.respondents, "int"),
        ("Populasi (permohonan selesai)", r.population, "int"),
        ("Sampel minimum (Krejcie-Morgan)", r.minimum_sample, "int"),
        ("IKM", r.result.shown if r.result else None, "index"),
        ("Mutu pelayanan", r.result.grade.label if r.result else "", None),
    ]


def chart(r: SkmReport, width: int = 640) -> str:
    """Each element's mean (NRR, 1 to 4) as a horizontal bar from 1; green from 3 (the
    "good" answer) up, amber from 2.5, red below. No bars when the figures are not shown."""
    left, right, row_h, top = 230, 60, 26, 24
    height = top + row_h * len(r.elements) + 12
    plot = width - left - right
    body = [_text(left, 15, "Nilai rata-rata per unsur (1–4)", size=12)]
    for i, e in enumerate(r.elements):
        y = top + i * row_h
        label = f"{e.code} {e.name}"
        body.append(
            _text(left - 6, y + 14, label[:36] + ("…" if len(label) > 36 else ""), anchor="end")
        )
        if e.nrr is None:
            continue
        value = float(e.nrr)
        fill = GREEN if value >= 3 else (AMBER if value >= 2.5 else RED)
        w = plot * (value - 1) / 3
        body.append(_bar(left, y + 3, w, row_h - 8, fill, "nrr", value, f"{e.code}: {value:.2f}"))
        body.append(_text(left + w + 4, y + 14, f"{value:.2f}".replace(".", ",")))
    return _svg(
        width, height, "Nilai per unsur pelayanan", "NRR per unsur, 1 sampai 4", body, "skm-nrr"
    )


# ---- publication (the regulation asks for the result to be made public) ------------------------

PUBLISH_ROLE = "kadis"
_PUBLISHED = "skm-published:"
_LATEST = "skm-published-latest"
P = {
    "not_kadis": "Hanya Kepala Dinas yang dapat menerbitkan hasil SKM.",
    "not_ended": "Periode {label} belum berakhir: hasilnya diterbitkan setelah {last}.",
    "too_few": (
        "Responden periode {label} kurang dari {shown_from}: hasilnya belum dapat diterbitkan."
    ),
}


def publish(c: Container, staff: StaffMember, code: str) -> dict[str, Any]:
    """The head of office publishes a finished period's index for the whole office: what the
    public page shows from now on (the newest period published), with who published it and
    when. Publishing a period again replaces its figures. Raises Forbidden or Conflict."""
    if PUBLISH_ROLE not in staff.roles:
        raise Forbidden(P["not_kadis"])
    chosen = period(code)
    today = c.clock.now().astimezone(ZoneInfo(c.region.timezone)).date()
    if chosen.last >= today:
        raise Conflict(
            P["not_ended"].format(label=chosen.label, last=chosen.last.strftime("%d-%m-%Y"))
        )
    r = load(c, SkmFilters(chosen))
    if r.result is None:
        raise Conflict(P["too_few"].format(label=chosen.label, shown_from=SHOWN_FROM))
    snapshot = {
        "period": chosen.code,
        "label": chosen.label,
        "first": chosen.first.isoformat(),
        "last": chosen.last.isoformat(),
        "published_at": c.clock.now().isoformat(),
        "published_by": staff.name or ROLE_LABELS[PUBLISH_ROLE],
        "respondents": r.respondents,
        "population": r.population,
        "minimum_sample": r.minimum_sample,
        **_figures(r.result),
        "elements": [
            {"code": e.code, "name": e.name, "nrr": str(ikm.two_decimals(e.nrr))}
            for e in r.elements
            if e.nrr is not None
        ],
        "services": [
            {"code": g.key, "name": g.name, "respondents": g.respondents, **_figures(g.result)}
            for g in r.by_service
            if g.respondents
        ],
    }
    c.store.put_key(_PUBLISHED + chosen.code, snapshot)
    latest = latest_published(c)
    if latest is None or latest["last"] <= snapshot["last"]:
        c.store.put_key(_LATEST, {"period": chosen.code})
    log.info("satisfaction index published", extra={"status": chosen.code})
    return snapshot


def _figures(result: ikm.Result | None) -> dict[str, Any]:
    if result is None:
        return {"ikm": None, "grade": None, "grade_label": None}
    return {
        "ikm": str(result.shown),
        "grade": result.grade.letter,
        "grade_label": result.grade.label,
    }


def published(c: Container, code: str) -> dict[str, Any] | None:
    return c.store.get_key(_PUBLISHED + period(code).code)


def latest_published(c: Container) -> dict[str, Any] | None:
    """The newest period the head of office published, as it was published (None: none yet)."""
    latest = c.store.get_key(_LATEST)
    return c.store.get_key(_PUBLISHED + str(latest["period"])) if latest else None
