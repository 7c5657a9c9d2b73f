"""The admin's pages of the staff workspace: the officers (who may act in which role and
kecamatan), data-subject requests (search, export, correction, erasure), the breach report, and
WhatsApp's notices about the account. Admin role only; every POST carries the CSRF token; a NIK,
a number or an officer's e-mail travels only in POST bodies, never in a URL."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import flask
from werkzeug.routing import Rule

import _staff_auth as auth
from _edge import client_of, json_response, status_for, wants_json
from _render import local_time, page, secure
from sapa.bootstrap import Container
from sapa.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from sapa.domain.texts import FIELD_LABELS, STAFF_EVENT_LABELS
from sapa.ports import StaffMember
from sapa.services import access, notices, staff_admin, subject

RULES = [
    Rule("/admin", endpoint="admin_home"),
    Rule("/admin/subject", endpoint="admin_subject", methods=["GET", "POST"]),
    Rule("/admin/subject/export.zip", endpoint="admin_export", methods=["POST"]),
    Rule("/admin/cases/<case_id>/correct", endpoint="admin_correct", methods=["POST"]),
    Rule("/admin/cases/<case_id>/erase", endpoint="admin_erase", methods=["POST"]),
    Rule("/admin/breach", endpoint="admin_breach"),
    Rule("/admin/breach.csv", endpoint="admin_breach_csv"),
    Rule("/admin/whatsapp", endpoint="admin_whatsapp"),
    Rule("/admin/staff", endpoint="admin_staff", methods=["GET", "POST"]),
    Rule("/admin/staff/change", endpoint="admin_staff_change", methods=["POST"]),
    Rule("/admin/staff/deactivate", endpoint="admin_staff_deactivate", methods=["POST"]),
    Rule("/admin/staff/reactivate", endpoint="admin_staff_reactivate", methods=["POST"]),
]
STAFF_ENDPOINTS = frozenset(r.endpoint for r in RULES if str(r.endpoint).startswith("admin_staff"))
# What the officers page says after a change (the redirect names the kind, never a person).
DONE = {**STAFF_EVENT_LABELS, "unchanged": "Tidak ada yang berubah"}


def dispatch(
    c: Container,
    request: flask.Request,
    staff: StaffMember,
    csrf: str,
    base: str,
    endpoint: str,
    args: dict[str, Any],
) -> Any:
    """One admin endpoint. Non-admins get 403 with the reason, before anything is read."""
    if "admin" not in staff.roles:
        raise Forbidden(
            staff_admin.ADMIN_ONLY if endpoint in STAFF_ENDPOINTS else subject.ADMIN_ONLY
        )
    if request.method == "POST":
        auth.check_csrf(c, request, staff)
    ctx = {"staff": staff, "csrf": csrf, "base": base}
    if endpoint in STAFF_ENDPOINTS:
        return _staff(c, request, staff, endpoint, ctx)
    if endpoint == "admin_home":
        return flask.redirect(f"{base}/admin/subject", 303)
    if endpoint == "admin_subject":
        return _subject(c, request, staff, ctx)
    if endpoint == "admin_export":
        who = subject.parse_subject(request.form.get("nik", ""), request.form.get("wa", ""))
        done = subject.export(c, staff, who, client=client_of(c, request))
        resp = secure(flask.Response(done.data, mimetype="application/zip"))
        resp.headers["Content-Disposition"] = f'attachment; filename="{done.filename}"'
        return resp
    if endpoint == "admin_correct":
        form = request.form
        case = subject.correct(
            c,
            staff,
            args["case_id"],
            form.get("field", ""),
            form.get("value", ""),
            form.get("reason", ""),
        )
        return _done(request, base, case.id)
    if endpoint == "admin_erase":
        case = subject.erase(c, staff, args["case_id"], request.form.get("reason", ""))
        return _done(request, base, case.id)
    if endpoint in ("admin_breach", "admin_breach_csv"):
        return _breach(c, request, endpoint, ctx)
    if endpoint == "admin_whatsapp":
        rows = notices.recent(c)
        if wants_json(request):
            return json_response({"notices": rows})
        numbers = {pnid: c.region.kecamatan_by_code(k).name for pnid, k in c.phone_numbers.items()}
        return page("staff_admin_whatsapp.html", rows=rows, numbers=numbers, **ctx)
    raise NotFound("Halaman tidak ada.")


def _done(request: flask.Request, base: str, case_id: str) -> Any:
    if wants_json(request):
        return json_response({"ok": True, "case_id": case_id})
    return flask.redirect(f"{base}/cases/{case_id}", 303)


def _subject(c: Container, request: flask.Request, staff: StaffMember, ctx: dict[str, Any]) -> Any:
    if request.method == "GET":
        return page("staff_admin_subject.html", query=None, rows=[], **ctx, **_labels())
    nik, wa = request.form.get("nik", ""), request.form.get("wa", "")
    who = subject.parse_subject(nik, wa)
    cases = subject.find(c, staff, who, client=client_of(c, request))
    rows = subject.rows(c, cases)
    if wants_json(request):
        return json_response({"subject": who.masked, "cases": rows})
    query = {"kind": who.kind, "value": who.value, "masked": who.masked, "label": who.label}
    return page("staff_admin_subject.html", query=query, rows=rows, **ctx, **_labels())


def _labels() -> dict[str, Any]:
    return {"fields": FIELD_LABELS}


def _breach(c: Container, request: flask.Request, endpoint: str, ctx: dict[str, Any]) -> Any:
    zone = ZoneInfo(c.region.timezone)
    raw_since, raw_until = request.args.get("since", ""), request.args.get("until", "")
    if not raw_since and not raw_until and endpoint == "admin_breach":
        since = access.default_since(c).astimezone(zone)
        default = {"since": since.strftime("%Y-%m-%dT%H:%M"), "until": ""}
        return page("staff_admin_breach.html", rows=None, form=default, **ctx)
    since = access.parse_time(raw_since, zone)
    until = access.parse_time(raw_until, zone) if raw_until else access.until_now(c)
    rows = access.breach_report(c, since, until)
    if endpoint == "admin_breach_csv":
        stamp = f"{since.astimezone(zone):%Y%m%d%H%M}-{until.astimezone(zone):%Y%m%d%H%M}"
        resp = secure(flask.Response(access.report_csv(rows), mimetype="text/csv"))
        resp.headers["Content-Disposition"] = f'attachment; filename="laporan-akses-{stamp}.csv"'
        return resp
    if wants_json(request):
        return json_response(
            {"rows": [dict(zip(access.CSV_HEADER, r.csv_row(), strict=True)) for r in rows]}
        )
    form = {"since": raw_since, "until": raw_until}
    cases = len({r.case_id for r in rows})
    return page("staff_admin_breach.html", rows=rows, form=form, cases=cases, **ctx)


# ---- officers ---------------------------------------------------------------------------------


def _staff(
    c: Container, request: flask.Request, staff: StaffMember, endpoint: str, ctx: dict[str, Any]
) -> Any:
    if request.method == "GET":
        return _staff_page(c, request, staff, ctx)
    form = staff_admin.OfficerForm(
        email=request.form.get("email", ""),
        name=request.form.get("name", ""),
        roles=tuple(request.form.getlist("roles")),
        kecamatan=request.form.get("kecamatan", ""),
        wa=request.form.get("wa", ""),
        revision=request.form.get("revision", ""),
    )
    try:
        if endpoint == "admin_staff":
            done = staff_admin.add(c, staff, form)
        elif endpoint == "admin_staff_change":
            done = staff_admin.change(c, staff, form)
        else:
            active = endpoint == "admin_staff_reactivate"
            done = staff_admin.set_active(c, staff, form.email, active)
    except (ValidationFailed, Conflict, NotFound) as exc:
        if wants_json(request):
            raise
        # the page again, with what was typed and each error beside its field
        failed = {
            "form": "add" if endpoint == "admin_staff" else form.email.strip().lower(),
            "action": endpoint.removeprefix("admin_staff").lstrip("_") or "add",
            "errors": dict(exc.fields) if isinstance(exc, ValidationFailed) else {},
            "message": exc.message,
            "values": form,
        }
        return _staff_page(c, request, staff, ctx, status=status_for(exc), failed=failed)
    if wants_json(request):
        return json_response(
            {
                "ok": True,
                "event": done.event,
                "officer": _officer_json(done.officer),
                "claims_returned": done.returned,
            }
        )
    return flask.redirect(
        f"{ctx['base']}/admin/staff?done={done.event or 'unchanged'}&claims={len(done.returned)}",
        303,
    )


def _officer_json(m: StaffMember) -> dict[str, Any]:
    return {
        "email": m.email,
        "name": m.name,
        "roles": list(m.roles),
        "kecamatan": m.kecamatan,
        "wa_number": m.wa_number,
        "active": m.active,
        "revision": m.revision,
    }


def _staff_page(
    c: Container,
    request: flask.Request,
    staff: StaffMember,
    ctx: dict[str, Any],
    *,
    status: int = 200,
    failed: dict[str, Any] | None = None,
) -> Any:
    roster = staff_admin.roster(c, staff)
    history = staff_admin.history(c)
    if wants_json(request):
        return json_response(
            {
                "version": roster.version,
                "officers": [_officer_json(m) for m in roster.officers],
                "events": history,
            }
        )
    done = request.args.get("done", "")
    claims = request.args.get("claims", "")
    flash = {
        "text": DONE.get(done, ""),
        "claims": int(claims) if claims.isdigit() and len(claims) < 6 else 0,
    }
    return page(
        "staff_admin_staff.html",
        status,
        officers=staff_admin.officer_rows(c, roster),
        history=history,
        flash=flash if flash["text"] else None,
        failed=failed,
        local_time=local_time(c.region.timezone),
        **staff_admin.choices(c),
        **ctx,
    )
