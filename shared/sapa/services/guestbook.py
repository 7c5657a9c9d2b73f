"""The guest book (SOP steps 2–3, the resident's side): the form behind the link, its checks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from itsdangerous import BadSignature, SignatureExpired

from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case, DocumentRef
from sapa.domain.documents import extension, sniff
from sapa.domain.errors import PermanentError, ValidationFailed
from sapa.domain.reference import Service
from sapa.domain.texts import text
from sapa.domain.values import KkNumber, Nik, normalize_phone
from sapa.services.messaging import link_serializer
from sapa.services.names import task_name
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


def _validate(
    c: Container, case: Case, sub: Submission
) -> tuple[Service, dict[str, Any], list[tuple[str, Upload, str]]]:
    f = {k: (v or "").strip() for k, v in sub.fields.items()}
    errors: dict[str, str] = {}
    service: Service | None = None
    try:
        service = c.catalogue.get(f.get("service", ""))
    except KeyError:
        errors["service"] = text("service_unknown")
    for name in ("name", "nik", "kk", "birth_date", "address", "desa"):
        if not f.get(name):
            errors[name] = text("required")
    clean: dict[str, Any] = {
        "name": f.get("name", ""),
        "address": f.get("address", ""),
        "desa": f.get("desa", ""),
        "notes": f.get("notes", "")[:1000],
    }
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
        except ValueError:
            errors["birth_date"] = text("nik_birthdate")
    try:
        clean["wa_number"] = normalize_phone(f.get("wa_number") or case.wa_id, field="wa_number")
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if f.get("consent") not in ("1", "on", "true", "yes"):
        errors["consent"] = "Persetujuan pemrosesan data wajib dicentang."
    accepted: list[tuple[str, Upload, str]] = []
    limit = c.settings.max_upload_mb * 1024 * 1024
    if service is not None:
        have = {d.requirement for d in case.documents if d.requirement}
        for req in service.requirements:
            up = sub.files.get(req.key)
            if up is None or not up.data:
                if not req.optional and req.key not in have:
                    errors[f"doc_{req.key}"] = text("document_missing", name=req.name)
                continue
            if len(up.data) > limit:
                errors[f"doc_{req.key}"] = text("file_too_large", limit_mb=c.settings.max_upload_mb)
                continue
            ctype = sniff(up.data)
            if ctype is None:
                errors[f"doc_{req.key}"] = text("file_type")
                continue
            if ctype == "application/pdf":
                from sapa.pdf import pdf_page_count

                try:
                    pdf_page_count(up.data)
                except PermanentError:
                    errors[f"doc_{req.key}"] = text("pdf_unreadable")
                    continue
            accepted.append((req.key, up, ctype))
    if errors or service is None:
        raise ValidationFailed(text("form_has_errors"), errors)
    return service, clean, accepted


def submit(c: Container, token: str, sub: Submission) -> Case:
    """Validate on the server (the truth), store the documents, move the case to form_submitted
    and queue the automatic pre-check. Nothing changes when anything is invalid."""
    case = resolve(c, token)
    if not editable(c, case):
        raise LinkInvalid(text("link_invalid"))
    service, clean, accepted = _validate(c, case, sub)
    now = c.clock.now()
    refs: list[DocumentRef] = []
    for req_key, up, ctype in accepted:
        digest = hashlib.sha256(up.data).hexdigest()
        key = f"cases/{case.id}/docs/{req_key}-{digest[:32]}.{extension(ctype)}"
        ref = c.blobs.put(key, up.data, ctype)
        refs.append(
            DocumentRef(
                key=ref.key,
                sha256=ref.sha256,
                size=ref.size,
                content_type=ctype,
                filename=up.filename[:200],
                requirement=req_key,
                source="guestbook",
                at=now,
            )
        )
    actor = Actor.applicant(case.wa_id)

    def change(case: Case) -> None:
        case.service = service.code
        case.form = clean
        case.consent = {"version": CONSENT_VERSION, "text": CONSENT_TEXT, "at": now.isoformat()}
        known = {d.key for d in case.documents}
        case.documents.extend(r for r in refs if r.key not in known)
        case.apply(
            c.sop,
            "submit_form",
            actor,
            now,
            service=service.code,
            documents=[r.requirement for r in refs],
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
        for other in c.store.list_cases(
            states=[s for s in c.sop.states if s not in c.sop.terminal_states], limit=1000
        ):
            if (
                other.id != case.id
                and other.form.get("nik") == nik
                and other.service == case.service
            ):
                findings.append(f"Ada permohonan lain yang masih terbuka: {other.reg_no}.")
    result = {"complete": not findings, "findings": findings, "run": payload.get("run")}
    now = c.clock.now()

    def record(case: Case) -> None:
        case.precheck = {**result, "at": now.isoformat()}
        case.note(
            Actor.system(), "precheck", now, complete=result["complete"], findings=len(findings)
        )

    mutate(c, case.id, record)
    return result
