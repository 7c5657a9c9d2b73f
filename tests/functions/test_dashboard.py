"""staff: the SOP-compliance dashboard, its CSV/XLSX downloads and the monthly PDF report,
through the functions-framework test client over a seeded month in the store."""

from __future__ import annotations

import csv
import io
import re
import zlib
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient

from sapa.bootstrap import Container
from sapa.dev.seed import SeedParams, seed_store
from sapa.services import dashboard as dash

JSON = {"Accept": "application/json"}
OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}
FORBIDDEN = "hanya untuk Kepala Bidang, Kepala Dinas, dan Admin"
CSP = "default-src 'self'"


def login(client: FlaskClient, email: str) -> FlaskClient:
    resp = client.post("/login", data={"email": email}, headers=JSON)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return client


@pytest.fixture
def seeded(container: Container) -> int:
    """A generated October (small, for speed) in the container's store."""
    params = SeedParams(date(2026, 10, 1), 240, 3, container.clock.now())
    return sum(seed_store(container, params).values())


@pytest.fixture
def as_(client_for: Callable[[str], FlaskClient], seeded: int) -> Callable[[str], FlaskClient]:
    return lambda email: login(client_for("staff"), email)


def expected(container: Container, **filters: Any) -> dash.Dashboard:
    f = dash.Filters(date(2026, 10, 1), date(2026, 10, 31), **filters)
    return dash.load(container, f)


# ---- the page and who may see it --------------------------------------------------------------


@pytest.mark.parametrize("email", ["kabid@sapa.test", "kadis@sapa.test", "admin@sapa.test"])
def test_heads_and_admins_see_the_dashboard_with_its_charts(
    as_: Callable[[str], FlaskClient], email: str, seeded: int
) -> None:
    resp = as_(email).get("/dashboard", query_string=OCTOBER)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "<h1>Dasbor kepatuhan SOP</h1>" in html
    # three inline SVG charts with titles, no script, and the page's CSP unchanged
    assert html.count("<svg") == 3
    for chart in ("chart-steps", "chart-weeks", "chart-kecamatan"):
        assert f'id="{chart}"' in html and f'aria-labelledby="{chart}-t {chart}-d"' in html
    assert 'class="bar bar-median"' in html and 'class="bar bar-backlog"' in html
    assert "<script" not in html
    assert resp.headers["Content-Security-Policy"].startswith(CSP)
    # the numbers also as tables, with the sample sizes
    for table in ("steps", "weeks", "kecamatan", "service", "officers"):
        assert f'id="table-{table}"' in html
        assert f"/dashboard.csv?table={table}&amp;from=2026-10-01" in html
    assert "Jumlah ditangani" in html
    assert f"<strong>{seeded}</strong><span>permohonan masuk</span>" in html
    assert "Warga Contoh" not in html  # aggregates only


def test_every_download_link_names_its_table(as_: Callable[[str], FlaskClient]) -> None:
    html = as_("kabid@sapa.test").get("/dashboard", query_string=OCTOBER).get_data(as_text=True)
    links = re.findall(r'<a href="/dashboard\.(?:csv|xlsx)[^"]*">([^<]+)</a>', html)
    # one link per table and one for all of them, each saying which
    assert len(links) == 6 and len(set(links)) == 6, links
    assert "Unduh tabel ini (CSV)" not in html
    for title in ("Per langkah SOP", "Per kecamatan", "Per layanan", "Per petugas"):
        assert f"Unduh CSV: {title}" in links


def test_the_monthly_report_has_a_month_picker_defaulting_to_the_last_month(
    as_: Callable[[str], FlaskClient], container: Container
) -> None:
    html = as_("kadis@sapa.test").get("/dashboard").get_data(as_text=True)
    # a GET form to the report, its month chosen from a list
    form = html[html.index('<form method="get" action="/reports/monthly.pdf"') :]
    form = form[: form.index("</form>")]
    assert '<label for="report-month">' in form
    months = re.findall(r'<option value="(\d{4}-\d{2})"( selected)?>([^<]+)</option>', form)
    # this month back to the first the retention schedule keeps, newest first; the last full
    # month chosen (the clock stands at 29 November 2026)
    assert months[0][0] == "2026-11" and months[0][2].startswith("November 2026")
    assert [m[0] for m in months if m[1]] == ["2026-10"]
    assert ("2026-10", " selected", "Oktober 2026") in months
    assert months[-1][0] == "2016-12"  # 3650 days of signed documents (retention.toml)
    assert len(months) == 120
    assert [m[0] for m in months] == sorted((m[0] for m in months), reverse=True)
    # AND each month it offers makes a report
    for value in (months[0][0], months[-1][0]):
        resp = as_("kadis@sapa.test").get("/reports/monthly.pdf", query_string={"month": value})
        assert resp.status_code == 200 and resp.mimetype == "application/pdf"


@pytest.mark.parametrize(
    "email", ["loket.sombaopu@sapa.test", "verifikasi@sapa.test", "operator.siak@sapa.test"]
)
@pytest.mark.parametrize(
    "path", ["/dashboard", "/dashboard.csv?table=steps", "/dashboard.xlsx", "/reports/monthly.pdf"]
)
def test_other_roles_get_403_in_indonesian(
    as_: Callable[[str], FlaskClient], email: str, path: str
) -> None:
    client = as_(email)
    resp = client.get(path)
    assert resp.status_code == 403
    assert FORBIDDEN in resp.get_data(as_text=True)
    api = client.get(path, headers=JSON)
    assert api.status_code == 403
    assert FORBIDDEN in api.get_json()["message"]


def test_without_a_session_the_browser_goes_to_login(
    client_for: Callable[[str], FlaskClient],
) -> None:
    resp = client_for("staff").get("/dashboard")
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/login")
    assert client_for("staff").get("/dashboard.csv", headers=JSON).status_code == 401


def test_the_worklist_links_the_dashboard_for_those_roles_only(
    as_: Callable[[str], FlaskClient],
) -> None:
    assert 'href="/dashboard"' in as_("kabid@sapa.test").get("/worklist").get_data(as_text=True)
    loket = as_("loket.sombaopu@sapa.test").get("/worklist").get_data(as_text=True)
    assert "/dashboard" not in loket


def test_filters_narrow_the_numbers(
    as_: Callable[[str], FlaskClient], container: Container, seeded: int
) -> None:
    client = as_("kabid@sapa.test")
    whole = client.get("/dashboard", query_string=OCTOBER, headers=JSON).get_json()
    assert whole["cases"] == seeded
    sombaopu = client.get(
        "/dashboard", query_string={**OCTOBER, "kecamatan": "730608"}, headers=JSON
    ).get_json()
    want = expected(container, kecamatan="730608")
    assert 0 < sombaopu["cases"] == want.cases < seeded
    assert [k["code"] for k in sombaopu["kecamatan"]] == ["730608"]
    ktp = client.get(
        "/dashboard", query_string={**OCTOBER, "service": "ktp_el"}, headers=JSON
    ).get_json()
    assert 0 < ktp["cases"] == expected(container, service="ktp_el").cases < seeded
    first_week = client.get(
        "/dashboard", query_string={"from": "2026-10-01", "to": "2026-10-04"}, headers=JSON
    ).get_json()
    assert 0 < first_week["cases"] < seeded
    assert [w["week"] for w in first_week["weeks"]] == ["2026-W40"]
    # the form keeps what was chosen
    html = client.get("/dashboard", query_string={**OCTOBER, "kecamatan": "730608"})
    assert '<option value="730608" selected>' in html.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2026-13-01"}, "Tanggal harus berbentuk TTTT-BB-HH"),
        # year 1 in WITA is before year 1 in UTC: once a 500 (OverflowError)
        ({"from": "0001-01-01", "to": "0001-01-05"}, "Tanggal harus berbentuk TTTT-BB-HH"),
        ({"from": "2026-10-31", "to": "2026-10-01"}, "tidak boleh sebelum tanggal awal"),
        ({"kecamatan": "730699"}, "Kecamatan tidak dikenal"),
        ({"service": "<script>"}, "Jenis layanan tidak dikenal"),
    ],
)
def test_bad_filters_are_400_with_an_indonesian_message(
    as_: Callable[[str], FlaskClient], query: dict[str, str], message: str
) -> None:
    client = as_("kadis@sapa.test")
    page = client.get("/dashboard", query_string=query)
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert message in html
    assert "<svg" not in html and "<script>" not in html  # no numbers, input not echoed raw
    for path, extra in (("/dashboard.csv", {"table": "steps"}), ("/dashboard.xlsx", {})):
        resp = client.get(path, query_string={**query, **extra}, headers=JSON)
        assert resp.status_code == 400
        assert message in resp.get_json()["message"]


# ---- downloads --------------------------------------------------------------------------------


def read_csv(resp: Any) -> list[list[str]]:
    raw = resp.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the file as UTF-8
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))


def number(cell: str) -> float | None:
    return float(cell.replace(",", ".")) if cell else None


def test_csv_of_every_table_parses_back_with_the_same_numbers(
    as_: Callable[[str], FlaskClient], container: Container
) -> None:
    client = as_("admin@sapa.test")
    want = dash.tables(expected(container))
    for name, table in want.items():
        resp = client.get("/dashboard.csv", query_string={**OCTOBER, "table": name})
        assert resp.status_code == 200
        assert resp.mimetype == "text/csv"
        assert "attachment" in resp.headers["Content-Disposition"]
        assert (
            f"sapa-dasbor_2026-10-01_2026-10-31_{name}.csv" in resp.headers["Content-Disposition"]
        )
        rows = read_csv(resp)
        assert rows[0] == [c.header for c in table.columns]
        assert len(rows) == len(table.rows) + 1
        for got, row in zip(rows[1:], table.rows, strict=True):
            for col, cell, value in zip(table.columns, got, row, strict=True):
                if col.kind == "text":
                    assert cell == str(value)
                elif col.kind == "int":
                    assert int(cell) == value
                elif value is None:
                    assert cell == ""
                else:
                    assert number(cell) == pytest.approx(value, abs=0.051)
    steps = read_csv(client.get("/dashboard.csv", query_string={**OCTOBER, "table": "steps"}))
    assert [r[0] for r in steps[1:]] == [str(n) for n in range(1, 9)]


def test_csv_of_an_unknown_table_is_400(as_: Callable[[str], FlaskClient]) -> None:
    resp = as_("admin@sapa.test").get("/dashboard.csv", query_string={"table": "warga"})
    assert resp.status_code == 400
    assert "Tabel tidak dikenal" in resp.get_data(as_text=True)


def test_xlsx_has_one_typed_sheet_per_table(
    as_: Callable[[str], FlaskClient], container: Container, seeded: int
) -> None:
    from openpyxl import load_workbook

    resp = as_("kabid@sapa.test").get("/dashboard.xlsx", query_string=OCTOBER)
    assert resp.status_code == 200
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    wb = load_workbook(io.BytesIO(resp.get_data()))
    want = dash.tables(expected(container))
    assert wb.sheetnames == ["Info", *want]
    assert wb["Info"]["B6"].value == seeded
    for name, table in want.items():
        ws = wb[name]
        assert ws.freeze_panes == "A2"
        header = [c.value for c in ws[1]]
        assert header == [c.header for c in table.columns]
        assert all(c.font.bold for c in ws[1])
        values = [list(r) for r in ws.iter_rows(min_row=2, values_only=True)]
        assert len(values) == len(table.rows)
        for got, row in zip(values, table.rows, strict=True):
            for col, cell, value in zip(table.columns, got, row, strict=True):
                if value is None:
                    assert cell is None
                elif col.kind == "int":
                    assert isinstance(cell, int) and cell == value
                elif col.kind != "text":
                    # a number, not text (Excel keeps 30.0 as 30)
                    assert isinstance(cell, int | float) and cell == pytest.approx(value)
    share = wb["steps"].cell(row=2, column=9)
    assert share.number_format == "0.0%"


# ---- the monthly PDF --------------------------------------------------------------------------


def pdf_text(data: bytes) -> str:
    """The text shown on every page, read back with pyHanko's PDF reader."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(data))
    out = []
    pages = reader.root["/Pages"]
    for ref in pages["/Kids"]:
        page = ref.get_object()
        contents = page["/Contents"]
        streams = contents if isinstance(contents, list) else [contents]
        for stream in streams:
            raw = stream.get_object().data if hasattr(stream, "get_object") else stream.data
            shown = re.findall(rb"\((.*?)(?<!\\)\)\s*Tj", raw, re.S)
            out.append(
                " ".join(s.decode("latin-1").replace("\\(", "(").replace("\\)", ")") for s in shown)
            )
    return "\n".join(out)


def test_the_monthly_pdf_parses_and_holds_the_numbers(
    as_: Callable[[str], FlaskClient], container: Container, seeded: int
) -> None:
    resp = as_("kadis@sapa.test").get("/reports/monthly.pdf", query_string={"month": "2026-10"})
    assert resp.status_code == 200
    assert resp.mimetype == "application/pdf"
    assert "sapa-laporan-bulanan-2026-10.pdf" in resp.headers["Content-Disposition"]
    data = resp.get_data()
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    d = expected(container)
    assert "Dinas Kependudukan dan Pencatatan Sipil Kabupaten Gowa" in text
    assert "Laporan Bulanan Kepatuhan SOP - Oktober 2026" in text
    assert "01-10-2026 s.d. 31-10-2026" in text
    assert dash.fmt_cell("int", seeded) in text
    assert dash.fmt_share(d.compliance) in text
    periksa = next(s for s in d.steps if s.key == "periksa")
    assert "Memeriksa data dan kelengkapan permohonan" in text
    assert dash.fmt_share(periksa.compliance) in text
    assert dash.fmt_cell("int", periksa.handled) in text
    for k in d.kecamatan:
        assert k.name in text
    # the footer: generation time in office time, page n of 3 (the total is set in at the end)
    assert re.search(r"dibuat 29-11-2026 09:00 WITA - halaman 1/ ?3", text)
    # aggregates only: no resident, no officer
    for never in ("Warga Contoh", "62800", "@sapa.test", "Petugas Loket Somba Opu"):
        assert never not in text
    assert b"Warga Contoh" not in zlib_inflated(data)


def zlib_inflated(data: bytes) -> bytes:
    """Every Flate stream of the file, inflated (what a PDF reader could show)."""
    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(m.group(1)))
        except zlib.error:
            out.append(m.group(1))
    return b"".join(out)


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-13", "TTTT-BB"),
        ("Oktober", "TTTT-BB"),
        ("2027-01", "belum dimulai"),
        ("2016-11", "tersedia untuk bulan Desember 2016 sampai November 2026"),
    ],
)
def test_a_bad_month_is_400(as_: Callable[[str], FlaskClient], month: str, message: str) -> None:
    resp = as_("kadis@sapa.test").get("/reports/monthly.pdf", query_string={"month": month})
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    # a page in Indonesian saying what is wrong, and the way back to the dashboard
    assert message in html and "Bulan laporan tidak valid" in html
    assert 'href="/dashboard">Kembali ke dasbor</a>' in html
    api = as_("kadis@sapa.test").get(
        "/reports/monthly.pdf", query_string={"month": month}, headers=JSON
    )
    assert api.status_code == 400 and message in api.get_json()["message"]


def test_the_staff_function_loads_no_spreadsheet_or_pdf_library_until_asked() -> None:
    from tests.functions.test_cold_imports import loaded_after

    modules = loaded_after("staff")
    assert "_dashboard" in modules and "sapa.services.dashboard" in modules
    for heavy in ("openpyxl", "fpdf", "sapa.services.report_pdf"):
        assert heavy not in modules, heavy


def test_names_are_never_run_as_spreadsheet_formulas(
    as_: Callable[[str], FlaskClient], container: Container, tmp_path: Any
) -> None:
    from openpyxl import load_workbook

    from sapa.adapters.embedded.staff_file import FileStaffDirectory

    # GIVEN a staff file where the head of division's name looks like a formula
    evil = '=HYPERLINK("http://example.invalid","x")'
    staff = tmp_path / "staff.toml"
    staff.write_text(
        '[[staff]]\nemail = "kabid@sapa.test"\nname = \'' + evil + '\'\nroles = ["kabid"]\n'
        '[[staff]]\nemail = "admin@sapa.test"\nname = "Admin"\nroles = ["admin"]\n',
        "utf-8",
    )
    container.staff = FileStaffDirectory(staff)  # type: ignore[misc]
    client = as_("admin@sapa.test")
    # WHEN the officers' table is downloaded
    rows = read_csv(client.get("/dashboard.csv", query_string={**OCTOBER, "table": "officers"}))
    wb = load_workbook(io.BytesIO(client.get("/dashboard.xlsx", query_string=OCTOBER).get_data()))
    # THEN the name is text in both, never a formula
    assert ["kabid@sapa.test", "'" + evil] == next(r for r in rows if r[0] == "kabid@sapa.test")[:2]
    cell = next(
        r[1] for r in wb["officers"].iter_rows(min_row=2) if r[0].value == "kabid@sapa.test"
    )
    assert cell.value == evil and cell.data_type == "s"


def test_the_worklist_links_the_personal_data_pages_for_admins_only(
    as_: Callable[[str], FlaskClient],
) -> None:
    admin = as_("admin@sapa.test").get("/worklist").get_data(as_text=True)
    assert 'href="/admin/subject"' in admin
    for email in ("kabid@sapa.test", "loket.sombaopu@sapa.test"):
        assert "/admin/" not in as_(email).get("/worklist").get_data(as_text=True)
