"""The tables behind every chart (the page, the CSV and XLSX downloads, the monthly PDF), and
their cells written for people."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sapa.domain.sla import format_duration
from sapa.domain.texts import ROLE_LABELS
from sapa.services.dashboard.figures import Dashboard, GroupStat


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
