"""HTTP function: the resident's guest-book form behind the link sent on WhatsApp."""

from __future__ import annotations

from typing import Any

import flask

from _edge import http_function, json_response
from _render import page
from sapa.bootstrap import container
from sapa.domain.errors import ValidationFailed
from sapa.domain.texts import text
from sapa.services import guestbook
from sapa.services.guestbook import LinkInvalid, Submission, Upload

FIELDS = [
    {"name": "name", "label": "Nama lengkap", "type": "text", "required": True, "inputmode": ""},
    {
        "name": "nik",
        "label": "NIK (16 angka)",
        "type": "text",
        "required": True,
        "inputmode": "numeric",
    },
    {
        "name": "kk",
        "label": "Nomor KK (16 angka)",
        "type": "text",
        "required": True,
        "inputmode": "numeric",
    },
    {
        "name": "birth_date",
        "label": "Tanggal lahir",
        "type": "date",
        "required": True,
        "inputmode": "",
    },
    {"name": "desa", "label": "Desa/Kelurahan", "type": "text", "required": True, "inputmode": ""},
    {"name": "address", "label": "Alamat", "type": "text", "required": True, "inputmode": ""},
    {
        "name": "wa_number",
        "label": "Nomor WhatsApp",
        "type": "tel",
        "required": True,
        "inputmode": "tel",
    },
]


def _wants_json(request: flask.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _form(
    c: Any, case: Any, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> flask.Response:
    return page(
        "guestbook_form.html",
        status=status,
        reg_no=case.reg_no,
        kecamatan=c.region.kecamatan_by_code(case.kecamatan).name,
        services=c.catalogue.services,
        fields=FIELDS,
        values=values,
        errors=errors,
        error_message=text("form_has_errors"),
        max_mb=c.settings.max_upload_mb,
        consent_text=guestbook.CONSENT_TEXT,
    )


@http_function
def guestbook_http(request: flask.Request) -> Any:
    c = container()
    parts = [p for p in request.path.split("/") if p]
    if len(parts) != 2 or parts[0] != "f":
        return page(
            "message.html", 404, title="Halaman tidak ditemukan", message=text("link_invalid")
        )
    token = parts[1]
    try:
        case = guestbook.resolve(c, token)
        if not guestbook.editable(c, case):
            raise LinkInvalid(text("link_invalid"))
    except LinkInvalid as exc:
        if _wants_json(request):
            return json_response({"error": exc.code, "message": exc.message}, 410)
        return page("message.html", 410, title="Tautan tidak berlaku", message=exc.message)
    if request.method == "GET":
        values = {
            "wa_number": "0" + case.wa_id[2:] if case.wa_id.startswith("62") else case.wa_id,
            "name": case.applicant_name,
        }
        return _form(c, case, values, {})
    if request.method != "POST":
        return flask.Response("method not allowed", 405)
    fields = {k: v for k, v in request.form.items()}
    files: dict[str, Upload] = {}
    for name, storage in request.files.items(multi=True):
        if not name.startswith("doc_") or name[4:] in files:
            continue
        data = storage.read(c.settings.max_upload_mb * 1024 * 1024 + 1)
        if data:
            files[name[4:]] = Upload(storage.filename or "", data)
    try:
        updated = guestbook.submit(c, token, Submission(fields, files))
    except ValidationFailed as exc:
        if _wants_json(request):
            return json_response(
                {"error": exc.code, "message": exc.message, "fields": exc.fields}, 422
            )
        return _form(c, case, fields, exc.fields, status=422)
    if _wants_json(request):
        return json_response({"reg_no": updated.reg_no, "state": updated.state})
    return page(
        "message.html",
        title="Permohonan terkirim",
        message=text("wa_form_received", reg_no=updated.reg_no),
    )
