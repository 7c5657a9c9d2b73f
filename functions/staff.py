"""HTTP function: the staff workspace (worklists, the case file, the SOP actions)."""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import flask
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.routing import Map, Rule

from _edge import error_body, http_function, json_response, status_for
from _render import page, secure
from sapa.bootstrap import Container, container
from sapa.domain.case import Actor
from sapa.domain.errors import Forbidden, SapaError, Unauthorized
from sapa.domain.texts import ACTION_LABELS, FIELD_LABELS, ROLE_LABELS, STATE_LABELS, text
from sapa.ports import StaffMember
from sapa.services import views, workflow
from sapa.services.workflow import ActionInput

COOKIE = "sapa_staff"
SESSION_SECONDS = 8 * 3600

_routes = Map(
    [
        Rule("/", endpoint="home"),
        Rule("/login", endpoint="login", methods=["GET", "POST"]),
        Rule("/logout", endpoint="logout", methods=["POST"]),
        Rule("/worklist", endpoint="worklist"),
        Rule("/cases/<case_id>", endpoint="case"),
        Rule("/cases/<case_id>/documents/<int:n>", endpoint="document"),
        Rule("/cases/<case_id>/<action>", endpoint="action", methods=["POST"]),
    ],
    strict_slashes=False,
)


def _serializer(c: Container) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(c.settings.secret("session_secret"), salt="sapa.staff")


def _session(c: Container, request: flask.Request) -> tuple[StaffMember, str]:
    raw = request.cookies.get(COOKIE, "")
    try:
        data = _serializer(c).loads(raw, max_age=SESSION_SECONDS)
    except BadSignature:
        raise Unauthorized(text("not_logged_in")) from None
    staff = c.staff.get(str(data.get("email", "")))
    if staff is None:
        raise Unauthorized(text("not_logged_in"))
    return staff, str(data["csrf"])


def _check_csrf(request: flask.Request, token: str) -> None:
    sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
    # bytes: compare_digest raises TypeError on a str with non-ASCII characters (a 500)
    if not hmac.compare_digest(sent.encode(), token.encode()):
        raise Forbidden(text("csrf"))


def _json(request: flask.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


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
        if _json(request):
            return json_response(error_body(exc), 401)
        return flask.redirect(f"{_base(request)}/login", 303)
    except SapaError as exc:
        if _json(request):
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
    staff, csrf = _session(c, request)
    if endpoint == "logout":
        _check_csrf(request, csrf)
        resp = flask.redirect(f"{base}/login", 303)
        resp.delete_cookie(COOKIE, path=base or "/")
        return resp
    if endpoint == "worklist":
        cases = views.worklist(c, staff)
        rows = [views.case_summary(c, k) for k in cases]
        if _json(request):
            return json_response({"cases": rows})
        return page(
            "staff_worklist.html", staff=staff, rows=rows, base=base, csrf=csrf, roles=ROLE_LABELS
        )
    if endpoint == "case":
        case = c.store.get(args["case_id"])
        _may_see(c, staff, case.kecamatan)
        actor_roles = [
            Actor(id=staff.email, role=r, kecamatan=staff.kecamatan) for r in staff.roles
        ]
        now = c.clock.now()
        allowed = sorted({e for a in actor_roles for e in case.allowed_events(c.sop, a, now)})
        run = case.current_run(c.sop)
        can_claim = (
            run is not None
            and run.claimed_by != staff.email
            and any(_can_claim(c, case, a, now) for a in actor_roles)
        )
        body = {
            "case": views.case_summary(c, case, show_nik=_needs_nik(staff)),
            "timeline": views.case_timeline(c, case),
            "allowed": allowed,
            "can_claim": can_claim,
            "claimed_by": run.claimed_by if run else None,
            "events": [
                {**e.model_dump(mode="json"), "actor_id": views.who(e.actor_id)}
                for e in c.store.events(case.id)
            ],
            "messages": [
                {
                    "direction": m.direction,
                    "at": m.at.isoformat(),
                    "type": m.type,
                    # the guest-book link is the resident's key to their form: not for staff eyes
                    "body": _LINK.sub(r"\1…", m.body),
                    "status": m.status,
                }
                for m in c.store.messages(case.id)
            ],
        }
        if _json(request):
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
            **body,
        )
    if endpoint == "document":
        case = c.store.get(args["case_id"])
        _may_see(c, staff, case.kecamatan)
        docs = case.documents + [d for d in (case.draft, case.signed) if d is not None]
        if not 0 <= args["n"] < len(docs):
            return page("message.html", 404, title="Tidak ditemukan", message="Dokumen tidak ada.")
        doc = docs[args["n"]]
        resp = flask.Response(c.blobs.get(doc.key), mimetype=doc.content_type)
        resp.headers["Content-Disposition"] = "inline"
        return secure(resp)
    if endpoint == "action":
        _check_csrf(request, csrf)
        upload = request.files.get("draft")
        data = ActionInput(
            reason=request.form.get("reason", ""),
            siak_ref=request.form.get("siak_ref", ""),
            draft_pdf=upload.read(c.settings.max_upload_mb * 1024 * 1024 + 1) if upload else None,
            note=request.form.get("note", ""),
            corrections={
                f"{kind}:{key[len(kind) + 8 :]}": value
                for key, value in request.form.items()
                for kind in ("doc", "field")
                if key.startswith(f"{kind}_reason_") and value.strip()
            },
        )
        case = workflow.perform(c, args["case_id"], staff, args["action"], data)
        if _json(request):
            return json_response({"case": views.case_summary(c, case)})
        return flask.redirect(f"{base}/cases/{case.id}", 303)
    return page("message.html", 404, title="Tidak ditemukan", message="Halaman tidak ada.")


_LINK = re.compile(r"(/guestbook/f/)\S+")


def _can_claim(c: Container, case: Any, actor: Actor, now: Any) -> bool:
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


def _needs_nik(staff: StaffMember) -> bool:
    # Officers who check the data or type it into SIAK see the full NIK; others a masked one.
    return bool({"loket", "verifikator", "operator_siak"} & set(staff.roles))


def _may_see(c: Container, staff: StaffMember, kecamatan: str) -> None:
    if all(r in c.sop.kecamatan_roles for r in staff.roles) and staff.kecamatan != kecamatan:
        raise Forbidden(text("wrong_kecamatan", kecamatan=staff.kecamatan or "-"))


def _login(c: Container, request: flask.Request) -> Any:
    """The development login. Settings refuse DEV_LOGIN in the cloud, where Identity-Aware
    Proxy stands in front of this function (its JWT check comes with the staff issue)."""
    if not c.settings.dev_login:
        return page(
            "message.html", 404, title="Tidak tersedia", message="Login pengembangan tidak aktif."
        )
    base = _base(request)
    if request.method == "GET":
        return page("staff_login.html", staff=c.staff.all(), roles=ROLE_LABELS, base=base)
    email = request.form.get("email", "")
    staff = c.staff.get(email)
    if staff is None:
        return page("staff_login.html", 401, staff=c.staff.all(), roles=ROLE_LABELS, base=base)
    csrf = secrets.token_urlsafe(24)
    cookie = _serializer(c).dumps({"email": staff.email, "csrf": csrf})
    if _json(request):
        resp = json_response({"email": staff.email, "roles": staff.roles, "csrf": csrf})
    else:
        resp = flask.redirect(f"{base}/worklist", 303)
    resp.set_cookie(
        COOKIE,
        cookie,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="Strict",
        secure=c.settings.public_base_url.startswith("https"),
        path=base or "/",
    )
    return resp
