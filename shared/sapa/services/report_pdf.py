"""The monthly SOP-compliance report for the head of office, as an A4 PDF (fpdf2): aggregates
only, never a resident's or an officer's name."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sapa.domain.reference import Region
from sapa.domain.sla import format_duration
from sapa.domain.sop import Sop
from sapa.domain.texts import MONTH_NAMES, ROLE_LABELS
from sapa.services.dashboard import (
    Dashboard,
    fmt_cell,
    fmt_share,
    kecamatan_chart,
    steps_chart,
    weeks_chart,
)

if TYPE_CHECKING:
    from sapa.services.skm import SkmReport

# The PDF's standard fonts speak Latin-1: the few other characters our texts use are mapped.
_A11Y = re.compile(r"<(title|desc)\b[^>]*>.*?</\1>", re.S)
_LATIN1 = str.maketrans({"…": "...", "—": "-", "–": "-", "≤": "<=", "→": "->", "’": "'"})


def latin1(s: str) -> str:
    return s.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")


def _month_name(d: Dashboard) -> str:
    start = d.filters.start
    return f"{MONTH_NAMES[start.month - 1]} {start.year}"


def monthly_report(d: Dashboard, *, office: str, region: Region, sop: Sop) -> bytes:
    """The report of the dashboard `d` (one month, all kecamatan and services) as PDF bytes."""
    pdf = _document(f"Laporan kepatuhan SOP {_month_name(d)}", office, region, d.generated_at)

    def heading(text: str, size: int = 12) -> None:
        _heading(pdf, text, size)

    def para(text: str, size: int = 10) -> None:
        _para(pdf, text, size)

    heading(office, 14)
    heading(f"Laporan Bulanan Kepatuhan SOP - {_month_name(d)}", 12)
    para(
        f"SOP: {sop.title}. Periode: {d.filters.start:%d-%m-%Y} s.d. {d.filters.end:%d-%m-%Y} "
        f"(permohonan yang dibuka dalam periode ini, seluruh kecamatan dan layanan)."
    )
    pdf.ln(2)
    heading("Ringkasan")
    summary = [
        ("Permohonan masuk", fmt_cell("int", d.cases)),
        ("Selesai terkirim ke pemohon", fmt_cell("int", d.delivered)),
        ("Masih terbuka", fmt_cell("int", d.open)),
        (
            "Ditolak / dibatalkan / kedaluwarsa",
            f"{d.rejected} / {d.cancelled} / {d.expired}",
        ),
        (
            "Kepatuhan langkah petugas terhadap mutu baku",
            f"{fmt_share(d.compliance)} (n={d.officer_runs})",
        ),
        ("Median waktu selesai (menyapa s.d. terkirim)", format_duration(d.median_lead_time)),
        (
            f"Selesai dalam target kantor ({format_duration(d.lead_time_target_seconds)})",
            f"{fmt_share(d.lead_time_compliance)} (n={d.delivered})",
        ),
    ]
    _table(pdf, ("Ukuran", "Nilai"), summary, (110, 70), first_left=2)
    if d.truncated:
        para("Catatan: jumlah permohonan melebihi batas baca; angka hanya sebagian.")
    pdf.ln(3)

    heading("Kepatuhan per langkah SOP")
    step_rows = [
        (
            str(s.number),
            s.kegiatan,
            ROLE_LABELS.get(s.role, s.role),
            format_duration(s.mutu_baku_seconds),
            fmt_cell("int", s.handled),
            format_duration(s.median_handling),
            format_duration(s.p90_handling),
            fmt_share(s.compliance),
        )
        for s in d.steps
    ]
    _table(
        pdf,
        ("No", "Kegiatan", "Pelaksana", "Mutu baku", "n", "Median", "P90", "Patuh"),
        step_rows,
        (8, 52, 30, 17, 13, 20, 20, 20),
        first_left=3,
        size=8,
    )
    para(
        "Waktu penanganan: sejak petugas mengambil langkah sampai selesai. Median dan "
        "persentil 90 (peringkat terdekat); n = jumlah langkah yang ditangani.",
        8,
    )
    pdf.ln(2)
    _chart(pdf, steps_chart(d))

    pdf.add_page()
    heading("Per kecamatan")
    kec_rows = [
        (
            g.name,
            fmt_cell("int", g.volume),
            fmt_cell("int", g.delivered),
            format_duration(g.median_lead_time),
            fmt_cell("int", g.backlog),
            fmt_share(g.compliance),
        )
        for g in d.kecamatan
    ]
    _table(
        pdf,
        ("Kecamatan", "Permohonan", "Terkirim", "Median selesai", "Terbuka", "Patuh"),
        kec_rows,
        (45, 25, 25, 35, 20, 30),
        first_left=1,
        size=8,
    )
    pdf.ln(2)
    _chart(pdf, kecamatan_chart(d))
    pdf.add_page()
    heading("Tren mingguan")
    week_rows = [
        (
            w.week,
            f"{w.monday:%d-%m-%Y}",
            fmt_cell("int", w.volume),
            fmt_cell("int", w.officer_runs),
            fmt_share(w.compliance),
            format_duration(w.median_lead_time),
        )
        for w in d.weeks
    ]
    _table(
        pdf,
        ("Minggu", "Mulai", "Permohonan", "Langkah petugas", "Patuh", "Median selesai"),
        week_rows,
        (25, 25, 25, 35, 25, 45),
        first_left=2,
        size=8,
    )
    pdf.ln(2)
    _chart(pdf, weeks_chart(d))
    out = pdf.output()
    return bytes(out)


def _document(title: str, office: str, region: Region, generated: datetime) -> Any:
    """An A4 report with its metadata and a footer of when it was made and the page numbers;
    its first page added."""
    from fpdf import FPDF

    stamp = generated.astimezone(ZoneInfo(region.timezone))

    class Report(FPDF):
        def footer(self) -> None:
            self.set_y(-14)
            self.set_font("helvetica", "", 8)
            self.set_text_color(90, 100, 112)
            self.cell(
                0,
                6,
                latin1(
                    f"SAPA - dibuat {stamp:%d-%m-%Y %H:%M} {_zone_name(region.timezone)}"
                    f" - halaman {self.page_no()}/{{nb}}"
                ),
                align="C",
            )

    pdf = Report(orientation="P", unit="mm", format="A4")
    pdf.set_title(latin1(title))
    pdf.set_author(latin1(office))
    pdf.set_creator("SAPA")
    pdf.set_creation_date(generated)
    pdf.set_auto_page_break(True, margin=18)
    pdf.set_margins(15, 15, 15)
    pdf.add_page()
    return pdf


def _heading(pdf: Any, text: str, size: int = 12) -> None:
    pdf.set_font("helvetica", "B", size)
    pdf.set_text_color(11, 93, 59)
    pdf.multi_cell(0, size * 0.5, latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(27, 27, 27)
    pdf.ln(1)


def _para(pdf: Any, text: str, size: int = 10) -> None:
    pdf.set_font("helvetica", "", size)
    pdf.multi_cell(0, 5, latin1(text), new_x="LMARGIN", new_y="NEXT")


def _zone_name(tz: str) -> str:
    return {"Asia/Makassar": "WITA", "Asia/Jakarta": "WIB", "Asia/Jayapura": "WIT"}.get(tz, tz)


def _table(
    pdf: Any,
    headers: tuple[str, ...],
    rows: Sequence[Sequence[str]],
    widths: tuple[int, ...],
    *,
    first_left: int = 1,
    size: int = 9,
) -> None:
    """A bordered table; the first `first_left` columns left-aligned, numbers right-aligned."""
    pdf.set_font("helvetica", "", size)
    align = tuple("LEFT" if i < first_left else "RIGHT" for i in range(len(headers)))
    with pdf.table(
        col_widths=widths,
        width=sum(widths),
        align="LEFT",
        text_align=align,
        line_height=size * 0.55,
        headings_style=_bold(),
    ) as table:
        head = table.row()
        for h in headers:
            head.cell(latin1(h))
        for row in rows:
            r = table.row()
            for value in row:
                r.cell(latin1(value))


def _bold() -> Any:
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(223, 243, 228))


def _chart(pdf: Any, svg: str, width: float = 180) -> None:
    """An inline-SVG chart drawn as vectors (fpdf2 reads SVG)."""
    # titles and descriptions serve screen readers on the page; the PDF has the tables
    plain = _A11Y.sub("", svg)
    pdf.image(io.BytesIO(latin1(plain).encode("utf-8")), w=width)


def skm_report(r: SkmReport, *, office: str, region: Region, generated: datetime) -> bytes:
    """The satisfaction survey's report for a period as PDF bytes, in the chapters the
    regulation's annex sets out for a report of SKM results (PermenPANRB 14/2017): introduction,
    data collection, results, analysis, conclusion; then the questionnaire, and a signature
    block for the head of office. Aggregates only: no resident and no officer is named."""
    from sapa.domain import ikm
    from sapa.services import skm

    f = r.filters
    scope = []
    if f.kecamatan:
        scope.append(f"Kecamatan {region.kecamatan_by_code(f.kecamatan).name}")
    if f.service:
        scope.append(f"layanan {next((g.name for g in r.by_service), f.service)}")
    if f.role:
        scope.append(f"langkah {ROLE_LABELS.get(f.role, f.role)}")
    where = ", ".join(scope) or "seluruh kecamatan dan layanan"

    pdf = _document(
        f"Laporan Survei Kepuasan Masyarakat {f.period.label}", office, region, generated
    )

    def heading(text: str, size: int = 12) -> None:
        _heading(pdf, text, size)

    def para(text: str, size: int = 10) -> None:
        _para(pdf, text, size)
        pdf.ln(1)

    def num(value: object, places: int = 2) -> str:
        return "-" if value is None else f"{float(value):.{places}f}".replace(".", ",")  # type: ignore[arg-type]

    heading("LAPORAN HASIL SURVEI KEPUASAN MASYARAKAT", 14)
    heading(f"{office} - {f.period.label}", 12)
    para(f"Periode {f.period.first:%d-%m-%Y} s.d. {f.period.last:%d-%m-%Y}; cakupan: {where}.")

    heading("BAB I  PENDAHULUAN")
    para(
        "Survei Kepuasan Masyarakat (SKM) dilaksanakan sesuai Undang-Undang Nomor 25 Tahun 2009 "
        "tentang Pelayanan Publik dan Peraturan Menteri PANRB Nomor 14 Tahun 2017 tentang "
        "Pedoman Penyusunan Survei Kepuasan Masyarakat Unit Penyelenggara Pelayanan Publik, "
        "untuk mengukur kepuasan pemohon atas layanan administrasi kependudukan melalui "
        "WhatsApp dan menjadi dasar perbaikan layanan."
    )

    heading("BAB II  PENGUMPULAN DATA")
    para(
        "Setiap pemohon yang dokumennya sudah diterima di WhatsApp diundang satu kali mengisi "
        "kuesioner daring (9 unsur pelayanan, skala 1 sampai 4) tanpa nama. Populasi adalah "
        "permohonan yang selesai dalam periode; jumlah sampel minimum menurut tabel Krejcie "
        "dan Morgan."
    )
    _table(
        pdf,
        ("Ukuran", "Nilai"),
        [
            ("Populasi (permohonan selesai)", str(r.population)),
            ("Sampel minimum (Krejcie dan Morgan)", str(r.minimum_sample)),
            ("Jumlah responden", str(r.respondents)),
            ("Sampel minimum tercapai", "ya" if r.sample_met else "belum"),
        ],
        (110, 64),
        size=9,
    )
    pdf.ln(2)

    heading("BAB III  HASIL PENGOLAHAN DATA")
    rows = [
        (e.code, e.name, *(str(n) for n in e.answers), num(e.nrr), num(e.weighted, 3))
        for e in r.elements
    ]
    _table(
        pdf,
        ("Unsur", "Unsur pelayanan", "1", "2", "3", "4", "NRR", "NRR x 1/9"),
        rows,
        (13, 71, 12, 12, 12, 12, 20, 22),
        first_left=2,
        size=8,
    )
    if r.result is None:
        para(
            f"Responden kurang dari {skm.SHOWN_FROM}: nilai rata-rata dan IKM tidak dihitung "
            "untuk menjaga kerahasiaan jawaban."
        )
    else:
        para(
            f"IKM unit pelayanan = jumlah NRR tertimbang x 25 = {num(r.result.shown)}; mutu "
            f"pelayanan {r.result.grade.letter} ({r.result.grade.label})."
        )
        _chart(pdf, skm.chart(r), 174)
    grade_rows = [
        (
            g.letter,
            g.label,
            f"{num(g.lowest)} - {num(nxt.lowest - Decimal('0.01')) if nxt else '100,00'}",
        )
        for g, nxt in zip(ikm.GRADES, (None, *ikm.GRADES[:-1]), strict=True)
    ]
    _table(
        pdf,
        ("Mutu", "Kinerja unit pelayanan", "Nilai interval konversi IKM"),
        grade_rows,
        (20, 70, 84),
        first_left=2,
        size=8,
    )
    pdf.ln(2)

    heading("BAB IV  ANALISIS")
    if r.result is not None:
        names = {e.code: e.name for e in r.elements}
        weak = "; ".join(f"{code} {names[code]} ({num(r.result.nrr[code])})" for code in r.weakest)
        para(f"Unsur dengan nilai terendah: {weak}. Prioritas rencana tindak lanjut.")
    groups = [
        ("Per kecamatan", r.by_kecamatan),
        ("Per layanan", r.by_service),
        ("Per peran petugas yang menangani", r.by_role),
    ]
    for title, items in groups:
        shown = [g for g in items if g.respondents]
        if not shown:
            continue
        para(title, 10)
        _table(
            pdf,
            ("Kelompok", "Responden", "IKM", "Mutu"),
            [
                (
                    g.name,
                    str(g.respondents),
                    num(g.result.shown) if g.result else "-",
                    g.result.grade.letter if g.result else f"< {skm.SHOWN_FROM} responden",
                )
                for g in shown
            ],
            (80, 25, 25, 44),
            size=8,
        )
        pdf.ln(1)
    para(
        "Rencana tindak lanjut (diisi unit pelayanan): program, waktu, dan penanggung jawab "
        "untuk setiap unsur terendah di atas."
    )

    heading("BAB V  KESIMPULAN")
    if r.result is None:
        para("Jumlah responden belum cukup untuk menyimpulkan indeks periode ini.")
    else:
        para(
            f"Nilai IKM {f.period.label} ({where}) adalah {num(r.result.shown)} dengan mutu "
            f"pelayanan {r.result.grade.letter} ({r.result.grade.label}), dari "
            f"{r.respondents} responden."
        )

    pdf.ln(6)
    pdf.set_font("helvetica", "", 10)
    pdf.set_x(110)
    pdf.multi_cell(
        0,
        5,
        latin1(
            "........................, ........................\n"
            "Kepala Dinas\n\n\n\n\n(nama dan NIP)"
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )

    pdf.add_page()
    heading("LAMPIRAN  KUESIONER")
    for i, q in enumerate(ikm.load_survey().questions, 1):
        para(f"{i}. ({q.element}) {q.text}", 9)
        para("    " + "   ".join(f"{n}) {a}" for n, a in enumerate(q.answers, 1)), 8)
    return bytes(pdf.output())
