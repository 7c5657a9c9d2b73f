"""Spreadsheet exports (CSV and XLSX) of the dashboard and the breach report, with the one
guard that keeps a spreadsheet from running a cell as a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sapa.services.dashboard import Dashboard
    from sapa.services.dashboard.tabular import Table

# Excel with Indonesian regional settings reads ';' as the list separator and ',' as the
# decimal mark; the BOM tells it the file is UTF-8.
CSV_SEPARATOR = ";"

DECIMALS = {"seconds": 1, "ratio": 3, "share": 4, "index": 2}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain_text(value: str) -> str:
    """Text a spreadsheet will not run as a formula (a name from the staff file, a reason an
    officer typed): a leading =, +, -, @, tab or CR gets a quote. A lone "-" (no figure) is
    no formula and stays."""
    return "'" + value if value.startswith(FORMULA_START) and value != "-" else value


def csv_cell(kind: str, value: Any) -> str:
    """Numbers as Indonesian Excel reads them (decimal comma); empty where there is no sample."""
    if value is None:
        return ""
    if kind == "int":
        return str(int(value))
    if kind in DECIMALS:
        return f"{float(value):.{DECIMALS[kind]}f}".replace(".", ",")
    return plain_text(str(value))


def dashboard_csv(d: Dashboard, name: str) -> bytes:
    """One dashboard table as CSV for Excel with Indonesian settings."""
    from sapa.services.dashboard import tables

    return table_csv(tables(d)[name])


def table_csv(t: Table) -> bytes:
    """A table as CSV for Excel with Indonesian settings (';', decimal comma, UTF-8 with a
    BOM)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=CSV_SEPARATOR, lineterminator="\r\n")
    writer.writerow([col.header for col in t.columns])
    for row in t.rows:
        writer.writerow([csv_cell(col.kind, v) for col, v in zip(t.columns, row, strict=True)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def dashboard_xlsx(d: Dashboard, office: str, zone: tzinfo) -> bytes:
    """The dashboard as a workbook: an info sheet, then one sheet per table."""
    from sapa.services.dashboard import tables

    f = d.filters
    info: list[tuple[str, Any, str | None]] = [
        ("Dasbor kepatuhan SOP", office, None),
        ("Periode", f"{f.start.isoformat()} s.d. {f.end.isoformat()}", None),
        ("Kecamatan", f.kecamatan or "semua", None),
        ("Layanan", f.service or "semua", None),
        ("Dibuat", d.generated_at.astimezone(zone).isoformat(), None),
        ("Permohonan", d.cases, None),
        ("Kepatuhan langkah petugas", d.compliance, "share"),
    ]
    return workbook(info, tables(d).values())


FORMATS = {"int": "0", "seconds": "0.0", "share": "0.0%", "ratio": "0.00", "index": "0.00"}


def workbook(info: Sequence[tuple[str, Any, str | None]], tables: Iterable[Table]) -> bytes:
    """A workbook: an info sheet of (label, value, kind) rows, the first in bold, then one
    sheet per table, named by the table."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    sheet = wb.active
    sheet.title = "Info"
    for label, value, kind in info:
        sheet.append([label, value])
        if kind in FORMATS:
            sheet.cell(row=sheet.max_row, column=2).number_format = FORMATS[kind]
    sheet["A1"].font = Font(bold=True)
    sheet.column_dimensions["A"].width = 28
    sheet.column_dimensions["B"].width = 60
    for t in tables:
        ws = wb.create_sheet(title=t.name)
        ws.append([col.header for col in t.columns])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for r, row in enumerate(t.rows, start=2):
            for i, value in enumerate(row, start=1):
                cell = ws.cell(row=r, column=i, value=value)
                # openpyxl reads "=…" as a formula: a string cell shows it as text, unquoted
                if cell.data_type == "f":
                    cell.data_type = "s"
        for i, col in enumerate(t.columns, start=1):
            letter = ws.cell(row=1, column=i).column_letter
            ws.column_dimensions[letter].width = max(12, min(len(col.header) + 2, 40))
            if col.kind in FORMATS:
                for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                    cell.number_format = FORMATS[col.kind]
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
