"""HTTP function: the staff workspace (worklists, the case file, the SOP actions)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import flask
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.routing import Map, Rule

import _admin
import _dashboard
import _staff_auth as auth
from _edge import error_body, http_function, json_response, status_for, wants_json
from _render import page, secure
from sapa.bootstrap import Container, container
from sapa.domain.case import Actor, Case
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
        *_admin.RULES,
        Rule("/cases/<case_id>", endpoint="case"),
        Rule("/cases/<case_id>/documents/<int:n>", endpoint="document"),
        Rule("/cases/<case_id>/handoff", endpoint="handoff"),
        Rule("/cases/<case_id>/<action>", endpoint="action", methods=["POST"]),
    ],
    strict_slashes=False,
)
_LINK = re.compile(r"(/guestbook/f/)\S+")
# Roles that need the full NIK for their step; everyone else sees it masked.
NIK_ROLES = {"loket", "verifikator", "operator_siak"}
SIGN_EVENTS = ("sign_requested", "sign_failed")


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
        return page(
            "message.html", status_for(exc), title="Tidak dapat diproses", message=exc.message
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
        return _dashboard.handle(c, request, staff, endpoint, base)
    if endpoint.startswith("admin_"):
        return _admin.dispatch(c, request, staff, csrf, base, endpoint, args)
    if endpoint == "action":
        auth.check_csrf(c, request, staff)
        # Who may not see a case may not act on it either (replies included): 403 first.
        _may_see(c, staff, c.store.get(args["case_id"]).kecamatan)
        case = workflow.perform(
            c, args["case_id"], staff, args["action"], _action_input(c, request)
        )
        if wants_json(request):
            return json_response({"case": views.case_summary(c, case)})
        return flask.redirect(f"{base}/cases/{case.id}", 303)
    case = c.store.get(args["case_id"])
    _may_see(c, staff, case.kecamatan)
    if endpoint == "case":
        access.record(c, staff, case, "case", client=_admin.client(request))
        return _case_page(c, request, staff, csrf, base, case)
    if endpoint == "document":
        docs = case.documents + [d for d in (case.draft, case.signed) if d is not None]
        if not 0 <= args["n"] < len(docs):
            raise NotFound("Dokumen tidak ada.")
        doc = docs[args["n"]]
        if doc.withdrawn_at is not None:
            raise NotFound(text("document_withdrawn"))
        access.record(c, staff, case, f"document:{args['n']}", client=_admin.client(request))
        resp = secure(flask.Response(c.blobs.get(doc.key), mimetype=doc.content_type))
        resp.headers["Content-Disposition"] = "inline"
        # shown inside the case page's viewer (same origin only), never run as a page itself
        resp.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'self'"
        resp.headers["X-Frame-Options"] = "SAMEORIGIN"
        return resp
    if endpoint == "handoff":
        if not {"operator_siak", "admin"} & set(staff.roles):
            raise Forbidden(text("forbidden_role"))
        if case.handoff is None:
            raise NotFound("Paket serah terima belum siap.")
        access.record(c, staff, case, "handoff", client=_admin.client(request))
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
    rows = [{**views.case_summary(c, k), "clock": views.sla_clock(c, k)} for k in cases]
    if wants_json(request):
        return json_response({"cases": rows})
    scoped = all(r in c.sop.kecamatan_roles for r in staff.roles)
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
    actors = [Actor(id=staff.email, role=r, kecamatan=staff.kecamatan) for r in staff.roles]
    now = c.clock.now()
    allowed = sorted({e for a in actors for e in case.allowed_events(c.sop, a, now)})
    events = c.store.events(case.id)  # read once: sign state, signing form, audit trail
    signing = [e.event for e in events if e.event in SIGN_EVENTS]
    if case.signed is None and "sign" in allowed and signing[-1:] == ["sign_requested"]:
        allowed.remove("sign")  # already asked: the signer is at work
    run = case.current_run(c.sop)
    waiting = case.waiting_step(c.sop)
    can_claim = (
        run is not None
        and run.claimed_by != staff.email
        and any(_can_claim(c, case, a, now) for a in actors)
    )
    body = {
        "signing": views.signing_state(c, events) if "sign" in allowed else None,
        "case": views.case_summary(c, case, show_nik=bool(NIK_ROLES & set(staff.roles))),
        "timeline": views.case_timeline(c, case),
        "allowed": allowed,
        "can_claim": can_claim,
        "claimed_by": run.claimed_by if run else None,
        "handoff": case.handoff is not None and bool({"operator_siak", "admin"} & set(staff.roles)),
        "can_reply": views.may_reply(c, case, staff),
        "can_revoke": case.signed is not None
        and case.document_status == "valid"
        and bool({"kadis", "admin"} & set(staff.roles)),
        "assignees": [
            {"email": s.email, "name": s.name}
            for s in c.staff.all()
            if "admin" in staff.roles
            and waiting is not None
            and waiting.role in s.roles
            and (waiting.role not in c.sop.kecamatan_roles or s.kecamatan == case.kecamatan)
        ],
        "events": [
            {**e.model_dump(mode="json"), "actor_id": views.who(e.actor_id)} for e in events
        ],
        "messages": [
            # the guest-book link is the resident's key to their form: not for staff eyes
            {
                **m,
                "body": _LINK.sub(r"\1…", m["body"]),
                "edited_from": _LINK.sub(r"\1…", m["edited_from"]) if m["edited_from"] else None,
                "media_id": None,
            }
            for m in views.conversation(c.store.messages(case.id))
        ],
    }
    if wants_json(request):
        return json_response(body)
    return page(
        "staff_case.html",
        staff=staff,
        base=base,
        csrf=csrf,
        states=STATE_LABELS,
        roles=ROLE_LABELS,
        actions=ACTION_LABELS,
        fields=FIELD_LABELS,
        local_time=_local_time(c),
        needs_passphrase=c.settings.signer == "bsre",
        **body,
    )


def _can_claim(c: Container, case: Case, actor: Actor, now: Any) -> bool:
    try:
        case.model_copy(deep=True).claim(c.sop, actor, now)
    except SapaError:
        return False
    return True


def _local_time(c: Container) -> Any:
    zone = ZoneInfo(c.region.timezone)

    def fmt(value: Any) -> str:
        if not value:
            return "-"
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        return str(when.astimezone(zone).strftime("%d-%m-%Y %H:%M:%S"))

    return fmt


def _may_see(c: Container, staff: StaffMember, kecamatan: str) -> None:
    if all(r in c.sop.kecamatan_roles for r in staff.roles) and staff.kecamatan != kecamatan:
        raise Forbidden(text("wrong_kecamatan", kecamatan=staff.kecamatan or "-"))


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
