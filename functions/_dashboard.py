"""Staff workspace: the SOP-compliance dashboard, its CSV/XLSX downloads and the monthly PDF
(for the head of division, the head of office and admins)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import flask
from markupsafe import Markup

from _edge import json_response, wants_json
from _render import page, secure
from sapa.bootstrap import Container
from sapa.domain.errors import PermanentError, ValidationFailed
from sapa.domain.texts import ROLE_LABELS
from sapa.ports import StaffMember
from sapa.services import access, export
from sapa.services import dashboard as dash

ENDPOINTS = ("dashboard", "dashboard_csv", "dashboard_xlsx", "report_monthly")
BAD_TABLE = "Tabel tidak dikenal. Pilih salah satu: {names}."
ZONE_NAMES = {"Asia/Makassar": "WITA", "Asia/Jakarta": "WIB", "Asia/Jayapura": "WIT"}


def handle(
    c: Container, request: flask.Request, staff: StaffMember, endpoint: str, base: str, csrf: str
) -> Any:
    access.may_see_reports(staff)
    today = _today(c)
    if endpoint == "report_monthly":
        return _monthly_pdf(c, request, today, base)
    try:
        filters = dash.parse_filters(
            request.args, today=today, region=c.region, catalogue=c.catalogue
        )
    except ValidationFailed as exc:
        if endpoint != "dashboard" or wants_json(request):
            raise PermanentError(exc.message, fields=exc.fields) from None
        return _page(c, request, staff, base, csrf, None, exc.fields, 400)
    table = request.args.get("table", "")
    if endpoint == "dashboard_csv" and table not in dash.TABLE_NAMES:
        raise PermanentError(BAD_TABLE.format(names=", ".join(dash.TABLE_NAMES)))
    d = dash.load(c, filters)
    if endpoint == "dashboard_csv":
        return _csv(d, table)
    if endpoint == "dashboard_xlsx":
        return _xlsx(d, c)
    if wants_json(request):
        body = dataclasses.asdict(d)
        body["tables"] = {k: dataclasses.asdict(t) for k, t in dash.tables(d).items()}
        return json_response(body)
    return _page(c, request, staff, base, csrf, d, {}, 200)


def _page(
    c: Container,
    request: flask.Request,
    staff: StaffMember,
    base: str,
    csrf: str,
    d: dash.Dashboard | None,
    errors: dict[str, str],
    status: int,
) -> flask.Response:
    values = {k: request.args.get(k, "") for k in ("from", "to", "kecamatan", "service")}
    tables: dict[str, Any] = {}
    charts: dict[str, Markup] = {}
    query = ""
    if d is not None:
        values = {**values, **d.filters.query()}
        query = urlencode(d.filters.query())
        for name, t in dash.tables(d).items():
            tables[name] = {
                "title": t.title,
                # the page shows durations as "1 mnt 5 dtk", the downloads as seconds
                "headers": [col.header.replace(" (detik)", "") for col in t.columns],
                "kinds": [col.kind for col in t.columns],
                "rows": [
                    [dash.fmt_cell(col.kind, v) for col, v in zip(t.columns, row, strict=True)]
                    for row in t.rows
                ],
            }
        # the SVG is built from our own numbers with every text escaped
        charts = {name: Markup(render(d)) for name, render in dash.CHARTS.items()}  # noqa: S704
    return page(
        "staff_dashboard.html",
        status,
        staff=staff,
        base=base,
        csrf=csrf,
        roles=ROLE_LABELS,
        d=d,
        errors=errors,
        values=values,
        tables=tables,
        charts=charts,
        query=query,
        zone=ZONE_NAMES.get(c.region.timezone, c.region.timezone),
        report_months=[
            {"value": m.strftime("%Y-%m"), "label": dash.month_label(m)}
            for m in dash.report_months(_today(c), dash.report_keep(c))
        ],
        report_default=_last_month(_today(c)),
        kecamatan_list=c.region.kecamatan,
        services=c.catalogue.services,
        fmt_share=dash.fmt_share,
        fmt_cell=dash.fmt_cell,
        local_time=lambda when: when.astimezone(ZoneInfo(c.region.timezone)).strftime(
            "%d-%m-%Y %H:%M"
        ),
    )


def _filename(d: dash.Dashboard, suffix: str) -> str:
    f = d.filters
    parts = ["sapa-dasbor", f.start.isoformat(), f.end.isoformat()]
    parts += [p for p in (f.kecamatan, f.service) if p]
    return "_".join(parts) + suffix


def _attachment(data: bytes, mimetype: str, filename: str) -> flask.Response:
    resp = secure(flask.Response(data, mimetype=mimetype))
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


def _csv(d: dash.Dashboard, name: str) -> flask.Response:
    return _attachment(
        export.dashboard_csv(d, name), "text/csv; charset=utf-8", _filename(d, f"_{name}.csv")
    )


def _xlsx(d: dash.Dashboard, c: Container) -> flask.Response:
    return _attachment(
        export.dashboard_xlsx(d, c.region.office, ZoneInfo(c.region.timezone)),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _filename(d, ".xlsx"),
    )


def _today(c: Container) -> date:
    return c.clock.now().astimezone(ZoneInfo(c.region.timezone)).date()


def _last_month(today: date) -> str:
    """The last full month, `2026-10`: the report's default."""
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def _monthly_pdf(c: Container, request: flask.Request, today: date, base: str) -> flask.Response:
    raw = request.args.get("month", "") or _last_month(today)
    try:
        filters = dash.month_filters(raw, today=today, keep=dash.report_keep(c))
    except ValidationFailed as exc:
        if wants_json(request):
            raise PermanentError(exc.message, fields=exc.fields) from None
        return page(
            "message.html",
            400,
            title="Bulan laporan tidak valid",
            message=exc.message,
            back=f"{base}/dashboard",
            back_label="Kembali ke dasbor",
        )
    from sapa.services.report_pdf import monthly_report

    d = dash.load(c, filters)
    pdf = monthly_report(d, office=c.region.office, region=c.region, sop=c.sop)
    resp = _attachment(pdf, "application/pdf", f"sapa-laporan-bulanan-{filters.start:%Y-%m}.pdf")
    resp.headers["Content-Disposition"] = resp.headers["Content-Disposition"].replace(
        "attachment", "inline"
    )
    return resp
