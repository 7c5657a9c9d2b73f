"""HTTP function: the staff workspace (worklists, the case file, the SOP actions)."""

from __future__ import annotations

from typing import Any

import flask
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.routing import Map, Rule

import _admin
import _dashboard
import _skm
import _staff_auth as auth
from _edge import client_of, error_body, http_function, json_response, status_for, wants_json
from _render import local_time, page, secure
from sapa.bootstrap import Container, container
from sapa.domain.case import Case
from sapa.domain.errors import Forbidden, NotFound, SapaError, Unauthorized
from sapa.domain.texts import ACTION_LABELS, FIELD_LABELS, ROLE_LABELS, STATE_LABELS, text
from sapa.ports import StaffMember
from sapa.services import access, views, workflow
from sapa.services.workflow import ActionInput

_routes = Map(
    [
        Rule("/", endpoint="home"),
        Rule("/login", endpoint="login", methods=["GET", "POST"]),
        Rule("/logout", endpoint="logout", methods=["POST"]),
        Rule("/worklist", endpoint="worklist"),
        Rule("/dashboard", endpoint="dashboard"),
        Rule("/dashboard.csv", endpoint="dashboard_csv"),
        Rule("/dashboard.xlsx", endpoint="dashboard_xlsx"),
        Rule("/reports/monthly.pdf", endpoint="report_monthly"),
        Rule("/complaints", endpoint="complaints"),
        Rule("/skm", endpoint="skm"),
        Rule("/skm.csv", endpoint="skm_csv"),
        Rule("/skm.xlsx", endpoint="skm_xlsx"),
        Rule("/skm.pdf", endpoint="skm_pdf"),
        Rule("/skm/publish", endpoint="skm_publish", methods=["POST"]),
        *_admin.RULES,
        Rule("/cases/<case_id>", endpoint="case"),
        Rule("/cases/<case_id>/documents/<int:n>", endpoint="document"),
        Rule("/cases/<case_id>/handoff", endpoint="handoff"),
        Rule("/cases/<case_id>/progress", endpoint="progress", methods=["GET"]),
        Rule("/cases/<case_id>/<action>", endpoint="action", methods=["POST"]),
    ],
    strict_slashes=False,
)


def _base(request: flask.Request) -> str:
    return request.script_root.rstrip("/")


@http_function
def staff_http(request: flask.Request) -> Any:
    c = container()
    adapter = _routes.bind_to_environ(request.environ)
    try:
        endpoint, args = adapter.match()
    except RouteNotFound:
        return page("message.html", 404, title="Tidak ditemukan", message="Halaman tidak ada.")
    except HTTPException as exc:
        return flask.Response(exc.description or "", exc.code or 400)
    try:
        return _dispatch(c, request, str(endpoint), args)
    except Unauthorized as exc:
        if wants_json(request) or auth.uses_iap(c):
            return json_response(error_body(exc), 401)
        return flask.redirect(f"{_base(request)}/login", 303)
    except SapaError as exc:
        if wants_json(request):
            return json_response(error_body(exc), status_for(exc))
        # back to the case the officer was acting on (or the worklist)
        back = f"{_base(request)}/cases/{args['case_id']}" if "case_id" in args else None
        return page(
            "message.html",
            status_for(exc),
            title="Tidak dapat diproses",
            message=exc.message,
            back=back or f"{_base(request)}/worklist",
            back_label="Kembali ke permohonan" if back else "Kembali ke daftar kerja",
        )


def _dispatch(c: Container, request: flask.Request, endpoint: str, args: dict[str, Any]) -> Any:
    base = _base(request)
    if endpoint == "login":
        return _login(c, request)
    if endpoint == "home":
        return flask.redirect(f"{base}/worklist", 303)
    staff = auth.identify(c, request)
    csrf = auth.csrf_token(c, staff)
    if endpoint == "logout":
        auth.check_csrf(c, request, staff)
        auth.end_session(c)
        resp = flask.redirect(f"{base}/login", 303)
        resp.delete_cookie(auth.COOKIE, path="/")
        return resp
    if endpoint == "worklist":
        return _worklist(c, request, staff, csrf, base)
    if endpoint in _dashboard.ENDPOINTS:
        return _dashboard.handle(c, request, staff, endpoint, base, csrf)
    if endpoint == "complaints":
        return _complaints(c, request, staff, csrf, base)
    if endpoint in _skm.ENDPOINTS:
        return _skm.handle(c, request, staff, endpoint, base, csrf)
    if endpoint.startswith("admin_"):
        return _admin.dispatch(c, request, staff, csrf, base, endpoint, args)
    if endpoint == "action":
        auth.check_csrf(c, request, staff)
        # Who may not see a case may not act on it either (replies included): 403 first.
        access.may_see(c, staff, c.store.get(args["case_id"]).kecamatan)
        case = workflow.perform(
            c, args["case_id"], staff, args["action"], _action_input(c, request)
        )
        if wants_json(request):
            return json_response({"case": views.case_summary(c, case)})
        return flask.redirect(f"{base}/cases/{case.id}", 303)
    case = c.store.get(args["case_id"])
    access.may_see(c, staff, case.kecamatan)
    if endpoint == "case":
        access.record(c, staff, case, "case", client=client_of(c, request))
        return _case_page(c, request, staff, csrf, base, case)
    if endpoint == "progress":  # no personal data: not recorded as a read
        return json_response(views.progress(c, case))
    if endpoint == "document":
        doc = views.document(case, args["n"])
        access.record(c, staff, case, f"document:{args['n']}", client=client_of(c, request))
        resp = secure(flask.Response(c.blobs.get(doc.key), mimetype=doc.content_type))
        resp.headers["Content-Disposition"] = "inline"
        # shown inside the case page's viewer (same origin only), never run as a page itself
        resp.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'self'"
        resp.headers["X-Frame-Options"] = "SAMEORIGIN"
        return resp
    if endpoint == "handoff":
        if not access.may_download_handoff(staff):
            raise Forbidden(text("forbidden_role"))
        if case.handoff is None:
            raise NotFound("Paket serah terima belum siap.")
        access.record(c, staff, case, "handoff", client=client_of(c, request))
        url = c.blobs.signed_url(
            case.handoff.key,
            ttl_seconds=300,  # long enough to start the download, too short to pass around
            filename=case.handoff.filename,
            content_type="application/zip",
        )
        if url:  # straight from the bucket: the zip need not pass through this function
            return secure(flask.redirect(url, 303))
        resp = secure(flask.Response(c.blobs.get(case.handoff.key), mimetype="application/zip"))
        resp.headers["Content-Disposition"] = f'attachment; filename="{case.handoff.filename}"'
        return resp
    raise NotFound("Halaman tidak ada.")


def _action_input(c: Container, request: flask.Request) -> ActionInput:
    upload = request.files.get("draft")
    limit = c.settings.max_upload_mb * 1024 * 1024
    return ActionInput(
        reason=request.form.get("reason", ""),
        siak_ref=request.form.get("siak_ref", ""),
        draft_pdf=upload.read(limit + 1) if upload else None,
        note=request.form.get("note", ""),
        assignee=request.form.get("assignee", ""),
        message=request.form.get("message", ""),
        complaint=request.form.get("complaint", ""),
        outcome=request.form.get("outcome", ""),
        passphrase=request.form.get("passphrase", ""),
        corrections={
            f"{kind}:{key[len(kind) + 8 :]}": value
            for key, value in request.form.items()
            for kind in ("doc", "field")
            if key.startswith(f"{kind}_reason_") and value.strip()
        },
    )


def _worklist(
    c: Container, request: flask.Request, staff: StaffMember, csrf: str, base: str
) -> Any:
    kecamatan = request.args.get("kecamatan") or None
    service = request.args.get("service") or None
    cases = views.worklist(c, staff, kecamatan=kecamatan, service=service)
    rows = views.worklist_rows(c, cases)
    if wants_json(request):
        return json_response({"cases": rows})
    scoped = access.kecamatan_bound(c, staff)
    return page(
        "staff_worklist.html",
        staff=staff,
        rows=rows,
        base=base,
        csrf=csrf,
        roles=ROLE_LABELS,
        kecamatan_list=[] if scoped else c.region.kecamatan,
        services=c.catalogue.services,
        selected={"kecamatan": kecamatan or "", "service": service or ""},
    )


def _case_page(
    c: Container, request: flask.Request, staff: StaffMember, csrf: str, base: str, case: Case
) -> Any:
    body = views.case_page(c, case, staff)
    if wants_json(request):
        return json_response(body)
    return page(
        "staff_case.html",
        staff=staff,
        base=base,
        csrf=csrf,
        states=STATE_LABELS,
        roles=ROLE_LABELS,
        action_labels=ACTION_LABELS,
        fields=FIELD_LABELS,
        local_time=local_time(c.region.timezone),
        needs_passphrase=c.settings.signer == "bsre",
        **body,
    )


def _complaints(
    c: Container, request: flask.Request, staff: StaffMember, csrf: str, base: str
) -> Any:
    """Every complaint not yet closed, the most urgent first (the heads and the admin)."""
    from sapa.services import complaints

    access.may_see_reports(staff)
    entries = complaints.worklist(c)
    if wants_json(request):
        return json_response(
            {
                "complaints": [
                    {
                        "case_id": e.case.id,
                        "reg_no": e.case.reg_no,
                        "complaint": e.complaint.id,
                        "state": e.complaint.state,
                        "at": e.complaint.at,
                        "due_at": e.complaint.due_at,
                        "late": e.late,
                    }
                    for e in entries
                ]
            }
        )
    return page(
        "staff_complaints.html",
        staff=staff,
        base=base,
        csrf=csrf,
        entries=entries,
        kecamatan={k.code: k.name for k in c.region.kecamatan},
        local_time=local_time(c.region.timezone),
    )


def _login(c: Container, request: flask.Request) -> Any:
    """The development login. Settings refuse DEV_LOGIN in the cloud, where Identity-Aware
    Proxy stands in front of this function and identifies the officer."""
    if not c.settings.dev_login or auth.uses_iap(c):
        return page(
            "message.html", 404, title="Tidak tersedia", message="Login pengembangan tidak aktif."
        )
    base = _base(request)
    if request.method == "GET":
        return page("staff_login.html", staff=c.staff.all(), roles=ROLE_LABELS, base=base)
    staff = c.staff.get(request.form.get("email", ""))
    if staff is None:
        return page("staff_login.html", 401, staff=c.staff.all(), roles=ROLE_LABELS, base=base)
    cookie = auth.session_cookie(c, staff)
    csrf = auth.csrf_token(c, staff)
    if wants_json(request):
        resp = json_response({"email": staff.email, "roles": staff.roles, "csrf": csrf})
    else:
        resp = flask.redirect(f"{base}/worklist", 303)
    # Path "/" so the approval function (its own URL path locally) sees the session too.
    resp.set_cookie(
        auth.COOKIE,
        cookie,
        max_age=auth.SESSION_SECONDS,
        httponly=True,
        samesite="Strict",
        secure=c.settings.public_base_url.startswith("https"),
        path="/",
    )
    return resp
