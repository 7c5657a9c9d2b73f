"""HTTP function: the resident's pages behind the links sent on WhatsApp: the guest-book form
(/f/<token>) and the satisfaction survey (/s/<token>)."""

from __future__ import annotations

import hashlib
from typing import Any

import flask

from _edge import client_of, http_function, json_response, wants_json
from _render import page
from sapa.bootstrap import Container, container
from sapa.domain.case import Actor, Case
from sapa.domain.errors import Conflict, PermanentError, ValidationFailed
from sapa.domain.ikm import load_survey
from sapa.domain.texts import FIELD_LABELS, text
from sapa.ratelimit import limiter_secret, shared_limiter
from sapa.services import complaints, guestbook, survey
from sapa.services.guestbook import LinkInvalid, Submission, Upload

# The form's text inputs, in order (desa is a list of the kecamatan's desa/kelurahan).
FIELDS = [
    {"name": "name", "type": "text", "inputmode": "", "autocomplete": "name"},
    {"name": "nik", "type": "text", "inputmode": "numeric", "autocomplete": "off"},
    {"name": "kk", "type": "text", "inputmode": "numeric", "autocomplete": "off"},
    {"name": "birth_date", "type": "date", "inputmode": "", "autocomplete": "bday"},
    {"name": "address", "type": "text", "inputmode": "", "autocomplete": "street-address"},
    {"name": "wa_number", "type": "tel", "inputmode": "tel", "autocomplete": "tel"},
]
HINTS = {
    "nik": "16 angka, seperti pada KTP-el atau KK.",
    "kk": "16 angka, di bagian atas Kartu Keluarga.",
    "wa_number": "Nomor yang kami hubungi bila ada pertanyaan.",
}


def _summary(
    c: Container, values: dict[str, str], errors: dict[str, str], labels: dict[str, str]
) -> list[tuple[str, str]]:
    """The refused form's problems in the page's order, each with the id of its input: a
    list at the top links to them (a phone shows one screen of a long form). A message that
    names its field is shown as it is, any other after the field's name."""
    chosen = c.catalogue.find(values.get("service"))
    services = [chosen] if chosen else list(c.catalogue.services)
    places: dict[str, tuple[str, str]] = {
        "service": ("service", "Jenis layanan"),
        **{f["name"]: (f["name"], labels[f["name"]]) for f in FIELDS},
        "desa": ("desa", labels["desa"]),
    }
    for s in reversed(services):  # the first service holding a document is where it links
        for r in s.requirements:
            places[f"doc_{r.key}"] = (f"doc_{s.code}_{r.key}", r.name)
    places["consent"] = ("consent", "Persetujuan")
    order = ["service"]
    for f in FIELDS:  # the desa list stands after the birth date
        order += [f["name"], "desa"] if f["name"] == "birth_date" else [f["name"]]
    order += [f"doc_{r.key}" for s in services for r in s.requirements] + ["consent"]
    out: list[tuple[str, str]] = []
    for key in dict.fromkeys(k for k in [*order, *errors] if k in errors):
        anchor, label = places.get(key, ("guestbook", ""))
        message = errors[key]
        named = not label or label.lower() in message.lower()
        out.append((anchor, message if named else f"{label}: {message}"))
    return out


def _form(
    c: Container,
    case: Case,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> flask.Response:
    labels = {**FIELD_LABELS, "wa_number": "Nomor WhatsApp"}
    flagged_fields = {k[6:] for k in case.corrections if k.startswith("field:")}
    flagged_docs = {k[4:] for k in case.corrections if k.startswith("doc:")}
    return page(
        "guestbook_form.html",
        status=status,
        reg_no=case.reg_no,
        kecamatan=c.region.kecamatan_by_code(case.kecamatan).name,
        services=c.catalogue.services,
        fields=FIELDS,
        labels=labels,
        hints=HINTS,
        desa=guestbook.desa_names(c, case),
        values=values,
        errors=errors,
        error_message=text("form_has_errors"),
        error_summary=_summary(c, values, errors, labels),
        service_chosen=c.catalogue.find(values.get("service")) is not None,
        max_mb=c.settings.max_upload_mb,
        consent_text=guestbook.CONSENT_TEXT,
        uploaded={
            k: d.filename or "berkas" for k, d in guestbook.documents_by_requirement(case).items()
        },
        correcting=bool(case.corrections),
        # only the named items are offered; a general note alone reopens the whole form
        show_all=not (flagged_fields or flagged_docs),
        corrections=guestbook_corrections(c, case),
        flagged_fields=flagged_fields,
        flagged_docs=flagged_docs,
    )


def guestbook_corrections(c: Container, case: Case) -> list[str]:
    from sapa.services.workflow import correction_summary

    return [line.lstrip("- ") for line in correction_summary(c, case).splitlines()]


def _gone(request: flask.Request, exc: PermanentError) -> flask.Response:
    if wants_json(request):
        return json_response({"error": exc.code, "message": exc.message}, 410)
    return page("message.html", 410, title="Tautan tidak berlaku", message=exc.message)


def _too_many(c: Container, request: flask.Request, parts: list[str]) -> flask.Response | None:
    """Per client address, every request counts (a wrong token too): 429 with Retry-After."""
    address = client_of(c, request)
    limiter = shared_limiter(
        c.store,
        "guestbook",
        c.settings.guestbook_rate_per_minute,
        secret=limiter_secret(c.settings.secret("session_secret")),
    )
    verdict = limiter.hit(address, c.clock.now())
    if verdict.allowed:
        return None
    message = text("rate_limited", seconds=verdict.retry_after)
    if wants_json(request) or parts[2:3] in (["draft"], ["doc"]):
        resp = json_response({"error": "rate_limited", "message": message}, 429)
    else:
        resp = page("message.html", 429, title="Terlalu banyak permintaan", message=message)
    resp.headers["Retry-After"] = str(verdict.retry_after)
    return resp


def _survey(c: Container, request: flask.Request, token: str) -> flask.Response:
    """The satisfaction survey behind the invitation's link: the form, and its answer kept once."""
    try:
        case = survey.resolve(c, token)
    except survey.SurveyLinkInvalid as exc:
        return _gone(request, exc)
    if case.survey is not None:
        return _answered(request)
    if request.method == "GET":
        return _survey_form(c, case, token, {}, {})
    if request.method != "POST":
        return flask.Response("method not allowed", 405)
    fields = {k: v for k, v in request.form.items()}
    try:
        survey.submit(c, token, fields)
    except ValidationFailed as exc:
        if wants_json(request):
            return json_response(
                {"error": exc.code, "message": exc.message, "fields": exc.fields}, 422
            )
        return _survey_form(c, case, token, fields, exc.fields, 422)
    except Conflict:
        return _answered(request)
    if wants_json(request):
        return json_response({"answered": True})
    return page("message.html", title="Terima kasih", message=text("survey_thanks"))


def _survey_complaint(c: Container, request: flask.Request, token: str) -> flask.Response:
    """A complaint about the request from the survey page (POST text): filed on the case, not
    anonymous; the same text sent twice is filed once."""
    if request.method != "POST":
        return flask.Response("method not allowed", 405)
    try:
        case = survey.resolve(c, token)
    except survey.SurveyLinkInvalid as exc:
        return _gone(request, exc)
    body = str(request.form.get("text", "")).strip()
    source = "survey:" + hashlib.sha256(body.encode()).hexdigest()[:24]
    try:
        filed = complaints.file(
            c,
            case.id,
            body,
            "survey",
            source=source,
            actor=Actor.applicant(case.wa_id),
            acknowledge=True,
        )
    except ValidationFailed as exc:
        if wants_json(request):
            return json_response(
                {"error": exc.code, "message": exc.message, "fields": exc.fields}, 422
            )
        return page("message.html", 422, title="Aduan belum terkirim", message=exc.fields["text"])
    if wants_json(request):
        return json_response({"complaint": filed.id, "due_at": filed.due_at.isoformat()})
    return page(
        "message.html",
        title="Aduan diterima",
        message=text("wa_complaint_received", reg_no=case.reg_no, **complaints.received(c, filed)),
    )


def _answered(request: flask.Request) -> flask.Response:
    message = text("survey_already_answered")
    if wants_json(request):
        return json_response({"error": "already_answered", "message": message}, 409)
    return page("message.html", 409, title="Survei sudah diisi", message=message)


def _survey_form(
    c: Container,
    case: Case,
    token: str,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> flask.Response:
    questionnaire = load_survey()
    places = {q.element: f"{i}. {q.text}" for i, q in enumerate(questionnaire.questions, 1)}
    places.update({p.key: p.label for p in questionnaire.profile})
    places["text"] = "Saran atau masukan"
    return page(
        "survey_form.html",
        status=status,
        reg_no=case.reg_no,
        questions=questionnaire.questions,
        profile=questionnaire.profile,
        values=values,
        errors=errors,
        error_message=text("form_has_errors"),
        error_summary=[(k, f"{places.get(k, k)}: {m}") for k, m in errors.items()],
        text_limit=survey.TEXT_LIMIT,
        complaint_action=f"{token}/aduan",  # relative to this page's /s/<token>
    )


@http_function
def guestbook_http(request: flask.Request) -> Any:
    c = container()
    parts = [p for p in request.path.split("/") if p]
    refused = _too_many(c, request, parts)
    if refused is not None:
        return refused
    if len(parts) == 2 and parts[0] == "s":
        return _survey(c, request, parts[1])
    if parts[2:] == ["aduan"] and parts[0] == "s":
        return _survey_complaint(c, request, parts[1])
    if len(parts) < 2 or parts[0] != "f" or len(parts) > 4:
        return page(
            "message.html", 404, title="Halaman tidak ditemukan", message=text("link_invalid")
        )
    token = parts[1]
    try:
        case = guestbook.resolve(c, token)
        if not guestbook.editable(c, case):
            raise LinkInvalid(text("link_invalid"))
    except LinkInvalid as exc:
        return _gone(request, exc)
    limit = c.settings.max_upload_mb * 1024 * 1024
    if len(parts) == 3 and parts[2] == "draft" and request.method == "POST":
        guestbook.save_draft(c, token, dict(request.form.items()))
        return json_response({"saved": True})
    if len(parts) == 4 and parts[2] == "doc" and request.method == "POST":
        storage = request.files.get("file")
        data = storage.read(limit + 1) if storage else b""
        try:
            ref = guestbook.upload_document(
                c, token, parts[3], Upload(storage.filename or "" if storage else "", data)
            )
        except ValidationFailed as exc:
            message = next(iter(exc.fields.values()), exc.message)
            return json_response({"error": exc.code, "message": message}, 422)
        return json_response({"stored": True, "filename": ref.filename, "size": ref.size})
    if len(parts) != 2:
        return page(
            "message.html", 404, title="Halaman tidak ditemukan", message=text("link_invalid")
        )
    if request.method == "GET":
        values = guestbook.current_values(case)
        values.setdefault("name", case.applicant_name)
        values.setdefault("wa_number", guestbook.known_number(case))
        return _form(c, case, values, {})
    if request.method != "POST":
        return flask.Response("method not allowed", 405)
    fields = {k: v for k, v in request.form.items()}
    files: dict[str, Upload] = {}
    for name, storage in request.files.items(multi=True):
        if not name.startswith("doc_") or name[4:] in files:
            continue
        data = storage.read(limit + 1)
        if data:
            files[name[4:]] = Upload(storage.filename or "", data)
    try:
        updated = guestbook.submit(c, token, Submission(fields, files))
    except ValidationFailed as exc:
        if wants_json(request):
            return json_response(
                {"error": exc.code, "message": exc.message, "fields": exc.fields}, 422
            )
        case = c.store.get(case.id)  # with the documents the refused submission kept
        return _form(c, case, {**guestbook.current_values(case), **fields}, exc.fields, 422)
    if wants_json(request):
        return json_response({"reg_no": updated.reg_no, "state": updated.state})
    return page(
        "message.html",
        title="Permohonan terkirim",
        message=text("wa_form_received", reg_no=updated.reg_no),
    )
