"""The dashboard's filters: a period of local dates and an optional kecamatan and service, read
and checked from the page's GET parameters (or a report's month)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from sapa.domain.errors import ValidationFailed
from sapa.domain.reference import Catalogue, Region
from sapa.domain.rollup import NO_SERVICE
from sapa.domain.texts import MONTH_NAMES

MAX_DAYS = 366
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
    "month_too_old": (
        "Laporan bulanan tersedia untuk bulan {earliest} sampai {latest} (masa retensi data). "
        "Pilih bulan di antara keduanya."
    ),
}


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

    def mondays(self) -> list[date]:
        """The Monday of every ISO week the period touches: each has a row, empty or not."""
        first = self.start - timedelta(days=self.start.weekday())
        return [first + timedelta(weeks=i) for i in range((self.end - first).days // 7 + 1)]


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


def month_label(first: date) -> str:
    """'Oktober 2026'."""
    return f"{MONTH_NAMES[first.month - 1]} {first.year}"


def earliest_month(today: date, keep: timedelta) -> date:
    """The first month a monthly report may cover: the first that began inside the period the
    retention schedule keeps the cases' records for (`keep`, counted back from today)."""
    start = today - keep
    first = start.replace(day=1)
    return first if first == start else (first + timedelta(days=32)).replace(day=1)


def report_months(today: date, keep: timedelta) -> list[date]:
    """Every month a monthly report may cover, newest first: this month (up to today) back to
    `earliest_month`."""
    months = []
    month = today.replace(day=1)
    earliest = earliest_month(today, keep)
    while month >= earliest:
        months.append(month)
        month = (month - timedelta(days=1)).replace(day=1)
    return months


def month_filters(raw: str, *, today: date, keep: timedelta | None = None) -> Filters:
    """`2026-10` → the whole of October 2026 (up to today while the month runs). With `keep`
    (how long the retention schedule keeps the records), a month before it is refused."""
    try:
        year, month = (int(p) for p in raw.strip().split("-"))
        if not (len(raw.strip()) == 7 and 2000 <= year <= 2100):
            raise ValueError(raw)
        first = date(year, month, 1)
    except ValueError:
        raise ValidationFailed(T["bad_month"], {"month": T["bad_month"]}) from None
    if first > today:
        raise ValidationFailed(T["month_future"], {"month": T["month_future"]})
    if keep is not None and first < earliest_month(today, keep):
        message = T["month_too_old"].format(
            earliest=month_label(earliest_month(today, keep)),
            latest=month_label(today.replace(day=1)),
        )
        raise ValidationFailed(message, {"month": message})
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return Filters(first, min(last, today))


def group_listings(
    filters: Filters, region: Region, catalogue: Catalogue, *, unchosen: bool
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The (code, name) rows of the per-kecamatan and per-service tables, within the filters;
    `unchosen`: some case of the period has no service yet, which gets a row of its own when
    no service is filtered."""
    kec_list = [(k.code, k.name) for k in region.kecamatan]
    if filters.kecamatan:
        kec_list = [(c, n) for c, n in kec_list if c == filters.kecamatan]
    svc_list = [(s.code, s.name) for s in catalogue.services]
    if filters.service:
        svc_list = [(c, n) for c, n in svc_list if c == filters.service]
    elif unchosen:
        svc_list.append((NO_SERVICE, NO_SERVICE_NAME))
    return kec_list, svc_list
