"""Staff workspace: the satisfaction index (IKM) report of the residents' survey, with its
CSV/XLSX downloads (for the head of division, the head of office and admins)."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

import flask
from markupsafe import Markup

import _staff_auth as auth
from _dashboard import _attachment, _today
from _edge import json_response, wants_json
from _render import page
from sapa.bootstrap import Container
from sapa.domain import ikm
from sapa.domain.errors import PermanentError, ValidationFailed
from sapa.domain.texts import ROLE_LABELS
from sapa.ports import StaffMember
from sapa.services import access, export, skm

ENDPOINTS = ("skm", "skm_csv", "skm_xlsx", "skm_pdf", "skm_publish")
BAD_TABLE = "Tabel tidak dikenal. Pilih salah satu: {names}."


def handle(
    c: Container, request: flask.Request, staff: StaffMember, endpoint: str, base: str, csrf: str
) -> Any:
    access.may_see_reports(staff)
    today = _today(c)
    if endpoint == "skm_publish":
        return _publish(c, request, staff, base)
    try:
        filters = skm.parse_filters(c, request.args, today)
    except ValidationFailed as exc:
        if endpoint != "skm" or wants_json(request):
            raise  # 422 with a message per parameter
        return _page(c, request, staff, base, csrf, None, exc.fields, 400)
    table = request.args.get("table", "")
    if endpoint == "skm_csv" and table not in skm.TABLE_NAMES:
        raise PermanentError(BAD_TABLE.format(names=", ".join(skm.TABLE_NAMES)))
    report = skm.load(c, filters)
    name = "_".join(["sapa-ikm", *filters.query().values()])
    if endpoint == "skm_csv":
        data = export.table_csv(skm.tables(report)[table])
        return _attachment(data, "text/csv; charset=utf-8", f"{name}_{table}.csv")
    if endpoint == "skm_xlsx":
        data = export.workbook(skm.info(report, c.region.office, c), skm.tables(report).values())
        mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return _attachment(data, mime, f"{name}.xlsx")
    if endpoint == "skm_pdf":
        from sapa.services.report_pdf import skm_report

        pdf = skm_report(report, office=c.region.office, region=c.region, generated=c.clock.now())
        resp = _attachment(pdf, "application/pdf", f"{name}.pdf")
        resp.headers["Content-Disposition"] = resp.headers["Content-Disposition"].replace(
            "attachment", "inline"
        )
        return resp
    if wants_json(request):
        return json_response(_json(report))
    return _page(c, request, staff, base, csrf, report, {}, 200)


def _json(r: skm.SkmReport) -> dict[str, Any]:
    def result(x: ikm.Result | None) -> dict[str, Any] | None:
        if x is None:
            return None
        return {"ikm": str(x.shown), "grade": x.grade.letter, "label": x.grade.label}

    return {
        "period": dataclasses.asdict(r.filters.period),
        "filters": r.filters.query(),
        "respondents": r.respondents,
        "population": r.population,
        "minimum_sample": r.minimum_sample,
        "result": result(r.result),
        "weakest": r.weakest,
        "elements": [
            {"code": e.code, "answers": e.answers, "nrr": None if e.nrr is None else str(e.nrr)}
            for e in r.elements
        ],
        "by_kecamatan": [
            {"code": g.key, "n": g.respondents, **(result(g.result) or {})} for g in r.by_kecamatan
        ],
        "by_service": [
            {"code": g.key, "n": g.respondents, **(result(g.result) or {})} for g in r.by_service
        ],
        "complaints": [dataclasses.asdict(k) for k in r.complaints],
        "suggestions": [{"day": day.isoformat(), "text": said} for day, said in r.suggestions],
        "by_role": [
            {"role": g.key, "n": g.respondents, **(result(g.result) or {})} for g in r.by_role
        ],
    }


def _page(
    c: Container,
    request: flask.Request,
    staff: StaffMember,
    base: str,
    csrf: str,
    r: skm.SkmReport | None,
    errors: dict[str, str],
    status: int,
) -> flask.Response:
    values = {k: request.args.get(k, "") for k in ("periode", "kecamatan", "service", "role")}
    if r is not None:
        values = {**values, **r.filters.query()}
    year = _today(c).year
    periods = [f"{y}-T{q}" for y in (year, year - 1) for q in (4, 3, 2, 1)]
    periods += [f"{y}-S{s}" for y in (year, year - 1) for s in (2, 1)] + [str(year), str(year - 1)]
    choices = []
    for code in periods:
        p = skm.period(code)
        if p.first <= _today(c):
            choices.append({"value": code, "label": p.label})
    return page(
        "staff_skm.html",
        status,
        staff=staff,
        base=base,
        csrf=csrf,
        r=r,
        errors=errors,
        values=values,
        periods=choices,
        kecamatan_list=c.region.kecamatan,
        services=c.catalogue.services,
        roles=[(role, ROLE_LABELS.get(role, role)) for role in skm.roles_surveyed(c)],
        tables=skm.tables(r) if r else {},
        chart=Markup(skm.chart(r)) if r else "",  # noqa: S704 (our own numbers, text escaped)
        query=urlencode(r.filters.query()) if r else "",
        shown_from=skm.SHOWN_FROM,
        may_publish=skm.PUBLISH_ROLE in staff.roles,
        published=skm.published(c, r.filters.period.code) if r else None,
        flash=request.args.get("terbit", ""),
        public_url=f"{c.settings.verify_base}/ikm",
        fmt=_cell,
        element_names={e.code: e.name for e in ikm.ELEMENTS},
    )


def _cell(kind: str, value: Any) -> str:
    """A table cell for people: decimals with a comma, a dash where there is no figure."""
    if value is None or value == "":
        return "–"
    if kind in export.DECIMALS and kind != "seconds":
        return f"{float(value):.{export.DECIMALS[kind]}f}".replace(".", ",")
    return str(value)


def _publish(c: Container, request: flask.Request, staff: StaffMember, base: str) -> flask.Response:
    """The head of office publishes the chosen period (POST, with the form's CSRF token)."""
    auth.check_csrf(c, request, staff)
    code = request.form.get("periode", "")
    try:
        snapshot = skm.publish(c, staff, code)
    except ValueError:
        raise ValidationFailed(skm.T["summary"], {"periode": skm.T["bad_period"]}) from None
    if wants_json(request):
        return json_response(snapshot)
    return flask.redirect(
        f"{base}/skm?{urlencode({'periode': snapshot['period'], 'terbit': '1'})}", 303
    )
