"""HTTP function: the head of division's decision on issuance (SOP step 7): approve or return."""

from __future__ import annotations

from typing import Any

import flask

import _staff_auth as auth
from _edge import error_body, http_function, json_response, status_for, wants_json
from _render import page
from sapa.bootstrap import container
from sapa.domain.errors import SapaError, Unauthorized, ValidationFailed
from sapa.domain.texts import text
from sapa.services import views, workflow
from sapa.services.workflow import ActionInput

DECISIONS = {"approve": "approve", "return": "return"}


@http_function
def approval_http(request: flask.Request) -> Any:
    """POST /<case_id> with decision=approve|return (and a reason to return), csrf; the
    officer is identified like in the staff workspace. The state machine checks the rest."""
    c = container()
    parts = [p for p in request.path.split("/") if p]
    if len(parts) != 1:
        return page("message.html", 404, title="Tidak ditemukan", message="Halaman tidak ada.")
    case_id = parts[0]
    staff_case = f"{c.settings.public_base_url.rstrip('/')}/staff/cases/{case_id}"
    if request.method == "GET":
        return flask.redirect(staff_case, 303)
    if request.method != "POST":
        return flask.Response("method not allowed", 405)
    try:
        staff = auth.identify(c, request)
        auth.check_csrf(c, request, staff)
        decision = DECISIONS.get(request.form.get("decision", ""))
        if decision is None:
            raise ValidationFailed(text("form_has_errors"), {"decision": text("required")})
        case = workflow.perform(
            c,
            case_id,
            staff,
            decision,
            ActionInput(reason=request.form.get("reason", "")),
        )
    except Unauthorized as exc:
        return json_response(error_body(exc), 401)
    except SapaError as exc:
        if wants_json(request):
            return json_response(error_body(exc), status_for(exc))
        return page(
            "message.html",
            status_for(exc),
            title="Tidak dapat diproses",
            message=exc.message,
            back=staff_case,
            back_label="Kembali ke permohonan",
        )
    if wants_json(request):
        return json_response({"case": views.case_summary(c, case)})
    return flask.redirect(staff_case, 303)
