"""The guest book (SOP steps 2–3, the resident's side): the form behind the link, its checks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired

from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case, DocumentRef
from sapa.domain.documents import extension
from sapa.domain.errors import PermanentError, ValidationFailed
from sapa.domain.reference import Service
from sapa.domain.texts import text
from sapa.domain.values import KkNumber, Nik, normalize_phone
from sapa.services.names import task_name
from sapa.services.notify import link_serializer
from sapa.services.unit import mutate, outbox_task

CONSENT_VERSION = "pdp-2026-11-v1"
CONSENT_TEXT = (
    "Saya menyetujui Disdukcapil Kabupaten Gowa memproses data pribadi dan dokumen yang saya "
    "kirimkan untuk keperluan layanan administrasi kependudukan ini, sesuai UU No. 27 Tahun 2022 "
    "tentang Pelindungan Data Pribadi. Data disimpan sesuai jadwal retensi arsip dan saya dapat "
    "meminta salinan data beserta riwayat pemrosesannya."
)


class LinkInvalid(PermanentError):
    code = "link_invalid"


@dataclass
class Upload:
    filename: str
    data: bytes


@dataclass
class Submission:
    fields: dict[str, str]
    files: dict[str, Upload] = field(default_factory=dict)  # requirement key → file


def resolve(c: Container, token: str) -> Case:
    """The case a guest-book link belongs to; an expired, tampered or stale link is refused."""
    try:
        case_id = link_serializer(c).loads(token, max_age=c.settings.guestbook_link_days * 86400)
    except (BadSignature, SignatureExpired):
        raise LinkInvalid(text("link_invalid")) from None
    case = c.store.get(str(case_id))
    if not case.is_open(c.sop):
        raise LinkInvalid(text("link_invalid"))
    return case


def editable(c: Container, case: Case) -> bool:
    return "submit_form" in {t.event for t in c.sop.events_from(case.state)}


FORM_FIELDS = (
    "service",
    "name",
    "nik",
    "kk",
    "birth_date",
    "desa",
    "address",
    "wa_number",
    "notes",
)
REQUIRED_FIELDS = ("name", "nik", "kk", "birth_date", "address", "desa")


def desa_names(c: Container, case: Case) -> list[str]:
    return [d.name for d in c.desa.get(case.kecamatan, ())]


def known_number(case: Case) -> str:
    """The resident's WhatsApp number as they would write it (08…), or "" for a resident
    known only by their WhatsApp username (business-scoped user id)."""
    if not case.wa_id.isdigit():
        return ""
    return "0" + case.wa_id[2:] if case.wa_id.startswith("62") else case.wa_id


def current_values(case: Case) -> dict[str, str]:
    """What the form shows: the submitted data, overlaid with the draft being typed. Before
    the resident has chosen a service, the one their WhatsApp greeting named is preselected."""
    values = {k: str(v) for k, v in case.form.items()}
    if case.service or case.service_hint:
        values["service"] = str(case.service or case.service_hint)
    values.update(case.draft_form)
    return values


def documents_by_requirement(case: Case) -> dict[str, DocumentRef]:
    """The latest document the resident gave for each requirement."""
    latest: dict[str, DocumentRef] = {}
    for d in case.documents:
        if d.requirement:
            latest[d.requirement] = d
    return latest


def save_draft(c: Container, token: str, fields: dict[str, str]) -> Case:
    """Keep what the resident has typed so far, so a dropped connection loses nothing. Not
    validated (that happens on submit) and not a state change."""
    case = resolve(c, token)
    if not editable(c, case):
        raise LinkInvalid(text("link_invalid"))
    draft = {k: str(v)[:300] for k, v in fields.items() if k in FORM_FIELDS and v is not None}

    def change(case: Case) -> None:
        case.draft_form = {**case.draft_form, **draft}

    return mutate(c, case.id, change)[0]


def upload_document(c: Container, token: str, requirement: str, upload: Upload) -> DocumentRef:
    """Store one requirement document as soon as the resident picks it (type checked by
    content, images re-encoded without EXIF), linked to its requirement."""
    case = resolve(c, token)
    if not editable(c, case):
        raise LinkInvalid(text("link_invalid"))
    known = {r.key for s in c.catalogue.services for r in s.requirements}
    if requirement not in known:
        raise ValidationFailed(text("form_has_errors"), {"doc": text("service_unknown")})
    ref = _store(c, case, requirement, upload)
    again = next((d for d in case.documents if d.key == ref.key), None)
    if again is not None and f"doc:{requirement}" in case.corrections and not _fresh(case, again):
        # the very file the officer asked to be replaced
        msg = text("correction_needed")
        raise ValidationFailed(msg, {f"doc_{requirement}": msg})

    replaced: list[str] = []

    def change(case: Case) -> None:
        replaced.clear()
        if all(d.key != ref.key for d in case.documents):
            replaced.extend(_replace_pending(c, case, ref))
            case.documents.append(ref)
            case.note(
                Actor.applicant(case.wa_id),
                "document_uploaded",
                ref.at,
                requirement=requirement,
                sha256=ref.sha256,
                **({"replaces": len(replaced)} if replaced else {}),
            )

    mutate(c, case.id, change)
    for key in replaced:
        c.blobs.delete(key)
    return ref


def _replace_pending(c: Container, case: Case, ref: DocumentRef) -> list[str]:
    """Take off the case the documents of `ref`'s requirement picked since the form last went
    in (no officer has seen them); their keys, for the caller to delete once saved. A file
    picked again replaces the one picked earlier: a resident, or whoever holds the link,
    cannot pile up distinct uploads until retention."""
    since = last_submission(c, case)
    gone = [
        d
        for d in case.documents
        if d.requirement == ref.requirement
        and d.source == "guestbook"
        and d.key != ref.key
        and (since is None or d.at > since)
    ]
    for d in gone:
        case.documents.remove(d)
    return [d.key for d in gone]


def last_submission(c: Container, case: Case) -> datetime | None:
    """When the resident last sent the form (the check step's latest run became ready then);
    None before the first submission."""
    submitted = next((t.to_state for t in c.sop.transitions if t.event == "submit_form"), None)
    check = c.sop.step_waiting_in(submitted) if submitted else None
    runs = case.runs(check.key) if check else []
    return max((r.ready_at for r in runs), default=None)


def _store(c: Container, case: Case, requirement: str, upload: Upload) -> DocumentRef:
    from sapa.adapters.uploads import clean as clean_file

    safe = clean_file(
        upload.data, limit_bytes=c.settings.max_upload_mb * 1024 * 1024, field=f"doc_{requirement}"
    )
    digest = hashlib.sha256(safe.data).hexdigest()
    key = f"cases/{case.id}/docs/{requirement}-{digest[:32]}.{extension(safe.content_type)}"
    ref = c.blobs.put(key, safe.data, safe.content_type)
    return DocumentRef(
        key=ref.key,
        sha256=ref.sha256,
        size=ref.size,
        content_type=safe.content_type,
        filename=upload.filename[:200],
        requirement=requirement,
        source="guestbook",
        at=c.clock.now(),
    )


def _item_corrections(case: Case) -> bool:
    """The officer named the fields/documents to fix (not only a general note)."""
    return any(k.startswith(("field:", "doc:")) for k in case.corrections)


def _fresh(case: Case, doc: DocumentRef | None) -> bool:
    """Sent after the officer asked for the correction."""
    return doc is not None and (case.corrections_at is None or doc.at >= case.corrections_at)


def _keep_progress(
    c: Container, case: Case, fields: dict[str, str], refs: list[DocumentRef]
) -> None:
    """A refused submission still keeps what was typed (as the draft) and every document that
    passed its checks: on a weak connection nothing already sent is sent twice."""
    draft = {k: str(v)[:300] for k, v in fields.items() if k in FORM_FIELDS}

    replaced: list[str] = []

    def change(case: Case) -> None:
        replaced.clear()
        case.draft_form = {**case.draft_form, **draft}
        known = {d.key for d in case.documents}
        for ref in refs:
            if ref.key not in known:
                replaced.extend(_replace_pending(c, case, ref))
                case.documents.append(ref)
                case.note(
                    Actor.applicant(case.wa_id),
                    "document_uploaded",
                    ref.at,
                    requirement=ref.requirement,
                    sha256=ref.sha256,
                )

    mutate(c, case.id, change)
    for key in replaced:
        c.blobs.delete(key)


def _validate(c: Container, case: Case, fields: dict[str, str]) -> tuple[Service, dict[str, Any]]:
    f = {k: (v or "").strip() for k, v in fields.items()}
    errors: dict[str, str] = {}
    service = c.catalogue.find(f.get("service"))
    if service is None:
        errors["service"] = text("service_required")
    for name in REQUIRED_FIELDS:
        if not f.get(name):
            errors[name] = text("required")
    clean: dict[str, Any] = {
        "name": f.get("name", "")[:200],
        "address": f.get("address", "")[:300],
        "desa": f.get("desa", "")[:100],
        "notes": f.get("notes", "")[:1000],
    }
    desa = desa_names(c, case)
    if clean["desa"] and desa and clean["desa"] not in desa:
        errors["desa"] = text("desa_unknown")
    nik: Nik | None = None
    if f.get("nik"):
        try:
            nik = Nik.parse(f["nik"])
            clean["nik"] = nik.value
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if f.get("kk"):
        try:
            clean["kk"] = KkNumber.parse(f["kk"]).value
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if f.get("birth_date"):
        try:
            born = date.fromisoformat(f["birth_date"])
            clean["birth_date"] = born.isoformat()
            if nik is not None and not nik.birth_matches(born):
                errors["birth_date"] = text("nik_birth_mismatch")
            elif born > c.clock.now().date():
                errors["birth_date"] = text("birth_in_future")
        except ValueError:
            errors["birth_date"] = text("nik_birthdate")
    given = f.get("wa_number") or (case.wa_id if case.wa_id.isdigit() else "")
    try:
        # a resident known by username may keep their number to themselves
        clean["wa_number"] = normalize_phone(given, field="wa_number") if given else ""
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if f.get("consent") not in ("1", "on", "true", "yes"):
        errors["consent"] = text("consent_required")
    if errors or service is None:
        raise ValidationFailed(text("form_has_errors"), errors)
    return service, clean


def submit(c: Container, token: str, sub: Submission) -> Case:
    """Validate on the server (the truth), store the documents, move the case to
    form_submitted and queue the automatic pre-check. A refusal names every problem at once
    (ValidationFailed.fields: field or `doc_<requirement>` → message) and moves nothing: only
    what was typed is kept as the draft and the documents that passed their checks are kept.
    After a correction request the unflagged entries are kept as they were and every flagged
    document must be sent anew."""
    case = resolve(c, token)
    if not editable(c, case):
        raise LinkInvalid(text("link_invalid"))
    fields = {**current_values(case), **sub.fields}
    if case.corrections and case.service:
        fields["service"] = case.service  # a correction never changes the service asked for
        if _item_corrections(case):
            # only the flagged fields were offered: the others stay as the officer checked them
            for name, value in case.form.items():
                if f"field:{name}" not in case.corrections:
                    fields[name] = str(value)
    errors: dict[str, str] = {}
    try:
        service, clean = _validate(c, case, fields)
    except ValidationFailed as exc:
        errors.update(exc.fields)
        service = c.catalogue.find(fields.get("service"))  # type: ignore[assignment]
        clean = {}
    refs: list[DocumentRef] = []
    # The chosen service's documents; with none chosen, any the catalogue knows (as a document
    # picked on its own is), so a good file is kept and a bad one named now, not on the next try.
    catalogued = {r.key for s in c.catalogue.services for r in s.requirements}
    wanted = {r.key for r in service.requirements} if service else catalogued
    for req_key, up in sub.files.items():
        if up.data and req_key in wanted:
            try:
                refs.append(_store(c, case, req_key, up))
            except ValidationFailed as exc:
                errors.update(exc.fields)
    # A file sent again byte for byte is the document already kept, with its old date.
    kept = {d.key: d for d in case.documents}
    have = documents_by_requirement(case) | {r.requirement or "": kept.get(r.key, r) for r in refs}
    for req in service.requirements if service else ():
        doc = have.get(req.key)
        if not req.optional and doc is None:
            errors.setdefault(f"doc_{req.key}", text("document_missing", name=req.name))
        elif f"doc:{req.key}" in case.corrections and not _fresh(case, doc):
            errors.setdefault(f"doc_{req.key}", text("correction_needed"))
    if errors:
        _keep_progress(c, case, sub.fields, refs)
        raise ValidationFailed(text("form_has_errors"), errors)
    now = c.clock.now()
    actor = Actor.applicant(case.wa_id)

    def change(case: Case) -> None:
        case.service = service.code
        case.form = clean
        case.draft_form = {}
        case.consent = {"version": CONSENT_VERSION, "text": CONSENT_TEXT, "at": now.isoformat()}
        known = {d.key for d in case.documents}
        case.documents.extend(r for r in refs if r.key not in known)
        corrected = sorted(case.corrections)
        case.corrections, case.corrections_at = {}, None
        case.apply(
            c.sop,
            "submit_form",
            actor,
            now,
            service=service.code,
            documents=[r.requirement for r in refs],
            corrected=corrected,
        )
        check = case.waiting_step(c.sop)
        runs = len(case.runs(check.key)) if check else 0
        outbox_task(
            case,
            "precheck",
            {"case_id": case.id, "run": runs},
            name=task_name("precheck", case.id, runs),
        )
        outbox_task(
            case,
            "notify",
            {"case_id": case.id, "kind": "form_received"},
            name=task_name("notify", case.id, "form_received", runs),
        )

    updated, _ = mutate(c, case.id, change)
    return updated


def precheck(c: Container, payload: dict[str, Any]) -> dict[str, Any]:
    """Automatic completeness check for the counter officer (SOP step 3 aid): required
    documents present, fields valid, another open request for the same NIK and service."""
    case = c.store.get(str(payload["case_id"]))
    findings: list[str] = []
    if case.service:
        service = c.catalogue.get(case.service)
        have = {d.requirement for d in case.documents}
        findings += [
            text("document_missing", name=r.name) for r in service.required if r.key not in have
        ]
    nik = case.form.get("nik")
    if nik:
        # the subject index finds every case of that NIK, however many cases are open
        for other in c.store.cases_of_subject(nik=nik):
            if (
                other.id != case.id
                and other.is_open(c.sop)
                and other.form.get("nik") == nik
                and other.service == case.service
            ):
                findings.append(f"Ada permohonan lain yang masih terbuka: {other.reg_no}.")
    result = {"complete": not findings, "findings": findings, "run": payload.get("run")}
    now = c.clock.now()

    def record(case: Case) -> None:
        if payload.get("run") is not None and (case.precheck or {}).get("run") == result["run"]:
            return  # this submission's check is on the case already (the task came twice)
        case.precheck = {**result, "at": now.isoformat()}
        case.note(
            Actor.system(), "precheck", now, complete=result["complete"], findings=len(findings)
        )

    mutate(c, case.id, record)
    return result
