"""Spreadsheet exports (CSV and XLSX) of the dashboard and the breach report, with the one
guard that keeps a spreadsheet from running a cell as a formula."""

from __future__ import annotations

import csv
import io
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sapa.services.dashboard import Dashboard

# Excel with Indonesian regional settings reads ';' as the list separator and ',' as the
# decimal mark; the BOM tells it the file is UTF-8.
CSV_SEPARATOR = ";"

DECIMALS = {"seconds": 1, "ratio": 3, "share": 4}
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
    """One dashboard table as CSV for Excel with Indonesian settings (';', decimal comma,
    UTF-8 with a BOM)."""
    from sapa.services.dashboard import tables

    t = tables(d)[name]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=CSV_SEPARATOR, lineterminator="\r\n")
    writer.writerow([col.header for col in t.columns])
    for row in t.rows:
        writer.writerow([csv_cell(col.kind, v) for col, v in zip(t.columns, row, strict=True)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def dashboard_xlsx(d: Dashboard, office: str, zone: tzinfo) -> bytes:
    """The dashboard as a workbook: an info sheet, then one sheet per table."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from sapa.services.dashboard import tables

    wb = Workbook()
    info = wb.active
    info.title = "Info"
    f = d.filters
    info.append(["Dasbor kepatuhan SOP", office])
    info.append(["Periode", f"{f.start.isoformat()} s.d. {f.end.isoformat()}"])
    info.append(["Kecamatan", f.kecamatan or "semua"])
    info.append(["Layanan", f.service or "semua"])
    info.append(["Dibuat", d.generated_at.astimezone(zone).isoformat()])
    info.append(["Permohonan", d.cases])
    info.append(["Kepatuhan langkah petugas", d.compliance])
    info["B7"].number_format = "0.0%"
    info["A1"].font = Font(bold=True)
    info.column_dimensions["A"].width = 28
    info.column_dimensions["B"].width = 60
    formats = {"int": "0", "seconds": "0.0", "share": "0.0%", "ratio": "0.00"}
    for name, t in tables(d).items():
        ws = wb.create_sheet(title=name)
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
            if col.kind in formats:
                for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                    cell.number_format = formats[col.kind]
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
