"""Data-subject rights under UU 27/2022: find, export, correct and erase a resident's data.

Every function here is an admin action, checked here (not only by the page that calls it), and
leaves a record: searches and exports in the access log (before any data is read), exports,
corrections and erasures as audit events naming the admin, with the reason they gave.

- `find` — a resident's cases by NIK or WhatsApp number (the stores' keyed-hash index).
- `export` — everything held about them as one zip: per case its data, documents, the SIAK
  draft and hand-off package, the signed document, the conversation, the audit trail and the
  access log; a JSON index and a summary in Indonesian (the right of access, within 3×24 h).
- `correct` — one field the resident gave in the guest book, checked by the guest book's own
  rules; the audit event keeps the old and the new value masked, the case the new one.
- `erase` — a closed case anonymised now with the retention schedule's own anonymisation, its
  files deleted and its conversation redacted. Refused while the case is open (it must be
  finished, rejected or cancelled first) and while a legal hold applies: a signed document is
  an official record the schedule keeps for `signed_document` days (the public verification
  page answers for it), so its case is erased only once that copy is gone.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case, DocumentRef
from sapa.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PermanentError,
    ValidationFailed,
)
from sapa.domain.texts import FIELD_LABELS, ROLE_LABELS, STATE_LABELS
from sapa.domain.values import (
    BSUID,
    KkNumber,
    Nik,
    mask_name,
    mask_nik,
    mask_phone,
    normalize_phone,
)
from sapa.ports import StaffMember
from sapa.services import access, retention
from sapa.services.unit import mutate

ADMIN_ONLY = "Hanya admin yang dapat menangani permintaan subjek data (UU 27/2022)."
SUBJECT_ONE = "Isi salah satu saja: NIK atau nomor WhatsApp."
NO_CASES = "Tidak ada data permohonan untuk NIK atau nomor WhatsApp tersebut."
REASON_REQUIRED = "Alasan wajib diisi (dicatat dalam jejak audit)."
FIELD_NOT_CORRECTABLE = "Kolom '{field}' tidak dapat dikoreksi."
FIELD_NOT_GIVEN = "Pemohon tidak mengisi kolom '{label}' pada permohonan ini."
VALUE_REQUIRED = "Nilai baru wajib diisi."
VALUE_UNCHANGED = "Nilai baru sama dengan nilai lama."
VALUE_TOO_LONG = "Nilai baru terlalu panjang (paling banyak {limit} karakter)."
BIRTH_MISMATCH = "Tanggal lahir tidak sesuai dengan NIK pada permohonan ini."
BIRTH_INVALID = "Tanggal lahir tidak valid (format TTTT-BB-HH)."
DESA_UNKNOWN = "Desa/kelurahan tidak ada di kecamatan permohonan ini."
ALREADY_ANONYMISED = "Data pribadi permohonan ini sudah dianonimkan."
CASE_OPEN = (
    "Permohonan {reg_no} masih berjalan. Selesaikan, tolak, atau batalkan dahulu sebelum "
    "menghapus datanya."
)
LEGAL_HOLD = (
    "Permohonan {reg_no} memiliki dokumen bertanda tangan elektronik yang wajib disimpan "
    "menurut jadwal retensi sampai {until}. Data tidak dapat dihapus sebelum itu."
)

# The guest-book fields an admin may correct, with their length limits (as the guest book).
CORRECTABLE: dict[str, int] = {
    "name": 200,
    "nik": 16,
    "kk": 16,
    "birth_date": 10,
    "desa": 100,
    "address": 300,
    "wa_number": 16,
    "notes": 1000,
}
REASON_LIMIT = 500
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Subject:
    """Whom a request is about: a NIK or a WhatsApp number (normalised) or user id (BSUID)."""

    kind: str  # "nik" | "wa"
    value: str

    @property
    def masked(self) -> str:
        return mask_nik(self.value) if self.kind == "nik" else mask_phone(self.value)

    @property
    def label(self) -> str:
        return "NIK" if self.kind == "nik" else "nomor WhatsApp"


def parse_subject(nik: str = "", wa: str = "") -> Subject:
    """The subject of a request from what the admin typed: exactly one of NIK and number (or
    the business-scoped user id of a resident known by WhatsApp username)."""
    nik, wa = (nik or "").strip(), (wa or "").strip()
    if bool(nik) == bool(wa):
        raise PermanentError(SUBJECT_ONE)
    try:
        if nik:
            return Subject("nik", Nik.parse(nik).value)
        if BSUID.match(wa):
            # a resident known by WhatsApp username: their business-scoped user id, as is
            return Subject("wa", wa)
        return Subject("wa", normalize_phone(wa))
    except ValidationFailed as exc:
        raise PermanentError(exc.message) from None


def admin_actor(staff: StaffMember) -> Actor:
    """The admin acting, or Forbidden: every data-subject action is the admin's alone."""
    if "admin" not in staff.roles:
        raise Forbidden(ADMIN_ONLY)
    return Actor(id=staff.email, role="admin", name=staff.name)


def find(c: Container, staff: StaffMember, subject: Subject, *, client: str = "") -> list[Case]:
    """The subject's cases, oldest first; each recorded in the access log as searched."""
    admin_actor(staff)
    cases = _cases(c, subject)
    for case in cases:
        access.record(c, staff, case, "subject_search", client=client)
    return cases


def _cases(c: Container, subject: Subject) -> list[Case]:
    if subject.kind == "nik":
        return c.store.cases_of_subject(nik=subject.value)
    return c.store.cases_of_subject(wa_id=subject.value)


# ---- export ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    data: bytes
    filename: str
    cases: int
    files: int
    missing: int  # files the retention schedule (or an erasure) already deleted


def export(c: Container, staff: StaffMember, subject: Subject, *, client: str = "") -> Export:
    """Everything held about `subject` as one zip (see the module docstring). Before anything
    is read, each case gets an access-log record and an audit event naming the admin, so the
    export is in the export's own history."""
    actor = admin_actor(staff)
    cases = _cases(c, subject)
    if not cases:
        raise NotFound(NO_CASES)
    now = c.clock.now()
    for case in cases:
        access.record(c, staff, case, "subject_export", client=client)

        def note(k: Case) -> None:
            k.note(actor, "subject_export", now, subject=subject.kind)

        mutate(c, case.id, note)

    buf = io.BytesIO()
    index: dict[str, Any] = {
        "dibuat": now.isoformat(),
        "oleh": staff.email,
        "subjek": {"jenis": subject.kind, "nilai": subject.masked},
        "dasar": "UU 27/2022 tentang Pelindungan Data Pribadi: hak akses subjek data",
        "kasus": [],
    }
    files = missing = 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for case in (c.store.get(k.id) for k in cases):
            entry, n_files, n_missing = _export_case(c, zf, case, now)
            index["kasus"].append(entry)
            files, missing = files + n_files, missing + n_missing
        zf.writestr("index.json", json.dumps(index, ensure_ascii=False, indent=2))
        zf.writestr("RINGKASAN.txt", _summary(c, index, subject, cases))
    stamp = now.strftime("%Y%m%d-%H%M%S")
    return Export(buf.getvalue(), f"data-subjek-{stamp}.zip", len(cases), files, missing)


def _export_case(
    c: Container, zf: zipfile.ZipFile, case: Case, now: datetime
) -> tuple[dict[str, Any], int, int]:
    folder = f"kasus/{_SAFE.sub('_', case.reg_no)}"
    events = [e.model_dump(mode="json") for e in c.store.events(case.id)]
    messages = [
        {
            "id": m.id,
            "arah": "masuk" if m.direction == "in" else "keluar",
            "waktu": m.at.isoformat(),
            "jenis": m.type,
            "isi": m.body,
            "status": m.status,
            "data": m.data,
        }
        for m in c.store.messages(case.id)
    ]
    accesses = [
        {
            "waktu": r.at.isoformat(),
            "oleh": r.actor_id,
            "peran": r.role,
            "apa": r.what,
        }
        for r in c.store.accesses(case.created_at, now + timedelta(seconds=1), case_id=case.id)
    ]
    data = case.model_dump(mode="json", exclude={"new_events", "outbox", "version"})
    written = {
        f"{folder}/data.json": data,
        f"{folder}/riwayat_audit.json": events,
        f"{folder}/percakapan.json": messages,
        f"{folder}/log_akses.json": accesses,
    }
    for name, value in written.items():
        zf.writestr(name, json.dumps(value, ensure_ascii=False, indent=2))
    stored: list[dict[str, Any]] = []
    docs: list[tuple[str, DocumentRef]] = [
        (f"{i + 1:02d}-{d.requirement or d.source}", d) for i, d in enumerate(case.documents)
    ]
    docs += [
        (label, d)
        for label, d in (
            ("konsep-siak", case.draft),
            ("paket-serah-terima-siak", case.handoff),
            ("dokumen-bertanda-tangan", case.signed),
        )
        if d is not None
    ]
    n_missing = 0
    for label, doc in docs:
        name = f"{folder}/dokumen/{_SAFE.sub('_', label)}{_extension(doc)}"
        try:
            blob = c.blobs.get(doc.key)
        except NotFound:
            n_missing += 1
            stored.append({"berkas": None, "sumber": doc.source, "dihapus": True})
            continue
        zf.writestr(name, blob)
        stored.append(
            {
                "berkas": name,
                "sumber": doc.source,
                "persyaratan": doc.requirement,
                "nama_asli": doc.filename,
                "sha256": doc.sha256,
                "ukuran": doc.size,
            }
        )
    last = c.store.last_inbound(case.kecamatan, case.wa_id)
    entry = {
        "id": case.id,
        "nomor_registrasi": case.reg_no,
        "status": case.state,
        "dibuat": case.created_at.isoformat(),
        # what the 24-hour window is computed from (kept per kecamatan number and applicant)
        "pesan_terakhir_pemohon": last.isoformat() if last else None,
        "berkas_data": list(written),
        "dokumen": stored,
        "retensi": dict(case.retention),
    }
    return entry, len(written) + len(docs) - n_missing, n_missing


def _extension(doc: DocumentRef) -> str:
    known = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}
    if doc.content_type in known:
        return known[doc.content_type]
    return ".zip" if doc.content_type == "application/zip" else ".bin"


def _summary(c: Container, index: dict[str, Any], subject: Subject, cases: list[Case]) -> str:
    zone = c.region.timezone
    lines = [
        f"SALINAN DATA PRIBADI — {c.region.office}",
        "",
        "Dokumen ini berisi seluruh data yang disimpan layanan WhatsApp SAPA tentang subjek data",
        f"dengan {subject.label} {subject.masked}, sesuai hak akses subjek data menurut",
        "UU 27/2022 tentang Pelindungan Data Pribadi.",
        "",
        f"Dibuat: {_local(index['dibuat'], zone)} oleh {index['oleh']}",
        f"Jumlah permohonan: {len(index['kasus'])}",
        "",
    ]
    for entry, case in zip(index["kasus"], cases, strict=True):
        service = case.service and c.catalogue.get(case.service).name
        lines += [
            f"Permohonan {entry['nomor_registrasi']}",
            f"  Layanan     : {service or '-'}",
            f"  Kecamatan   : {c.region.kecamatan_by_code(case.kecamatan).name}",
            f"  Status      : {STATE_LABELS.get(entry['status'], entry['status'])}",
            f"  Dibuat      : {_local(entry['dibuat'], zone)}",
            "  Data yang diisi di Buku Tamu:",
        ]
        lines += [f"    {FIELD_LABELS.get(k, k)}: {v}" for k, v in case.form.items()] or ["    -"]
        kept = [d for d in entry["dokumen"] if d["berkas"]]
        gone = [d for d in entry["dokumen"] if not d["berkas"]]
        lines.append(f"  Dokumen terlampir: {len(kept)}")
        if gone:
            lines.append(f"  Dokumen yang sudah dihapus sesuai jadwal retensi: {len(gone)}")
        lines += [
            "  Riwayat pemrosesan (siapa melakukan apa): riwayat_audit.json",
            "  Siapa yang melihat data ini: log_akses.json",
            "  Percakapan WhatsApp: percakapan.json",
            "",
        ]
    lines += [
        "Peran petugas: " + ", ".join(f"{k} = {v}" for k, v in ROLE_LABELS.items()),
        "Daftar isi lengkap: index.json. Waktu di berkas JSON dalam format ISO 8601.",
    ]
    return "\n".join(lines) + "\n"


def _local(iso: str, zone: str) -> str:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)).strftime("%d-%m-%Y %H:%M")


# ---- correction -----------------------------------------------------------------------------


def correct(
    c: Container, staff: StaffMember, case_id: str, field: str, value: str, reason: str
) -> Case:
    """Set one field the resident gave to `value` (checked like the guest book checks it).
    The audit event names the admin and the reason and keeps old and new value masked."""
    actor = admin_actor(staff)
    reason = _reason(reason)
    if field not in CORRECTABLE:
        raise PermanentError(FIELD_NOT_CORRECTABLE.format(field=field[:40]))
    value = (value or "").strip()
    if not value:
        raise PermanentError(VALUE_REQUIRED)

    def change(case: Case) -> None:
        if "personal_data" in case.retention:
            raise Conflict(ALREADY_ANONYMISED)
        if not case.form.get(field):  # an empty answer is no data given
            raise PermanentError(FIELD_NOT_GIVEN.format(label=FIELD_LABELS.get(field, field)))
        new = _checked(c, case, field, value)
        old = str(case.form[field])
        if new == old:
            raise PermanentError(VALUE_UNCHANGED)
        case.form = {**case.form, field: new}
        case.note(
            actor,
            "data_corrected",
            c.clock.now(),
            field=field,
            old=_mask(field, old),
            new=_mask(field, new),
            reason=reason,
        )

    case, _ = mutate(c, case_id, change)
    return case


def _checked(c: Container, case: Case, field: str, value: str) -> str:
    """`value` in the form the guest book stores, or PermanentError with the rule's message."""
    try:
        if field == "nik":
            nik = Nik.parse(value)
            born = case.form.get("birth_date")
            if born and not nik.birth_matches(date.fromisoformat(str(born))):
                raise PermanentError(BIRTH_MISMATCH)
            return nik.value
        if field == "kk":
            return KkNumber.parse(value).value
        if field == "wa_number":
            return normalize_phone(value, field="wa_number")
    except ValidationFailed as exc:
        raise PermanentError(exc.message) from None
    if field == "birth_date":
        try:
            born = date.fromisoformat(value)
        except ValueError:
            raise PermanentError(BIRTH_INVALID) from None
        if born > c.clock.now().date():
            raise PermanentError(BIRTH_INVALID)
        nik_value = str(case.form.get("nik") or "")
        if nik_value.isdigit() and not Nik(nik_value).birth_matches(born):
            raise PermanentError(BIRTH_MISMATCH)
        return born.isoformat()
    if field == "desa":
        names = [d.name for d in c.desa.get(case.kecamatan, ())]
        if names and value not in names:
            raise PermanentError(DESA_UNKNOWN)
    if len(value) > CORRECTABLE[field]:
        raise PermanentError(VALUE_TOO_LONG.format(limit=CORRECTABLE[field]))
    return value


def _mask(field: str, value: str) -> str:
    """How a value appears in the audit trail: recognisable to the office, not identifying."""
    if field in ("nik", "kk"):
        return mask_nik(value)
    if field == "wa_number":
        return mask_phone(value)
    if field == "birth_date":
        return value[:4] + "-**-**"
    return mask_name(value)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise PermanentError(REASON_REQUIRED)
    if len(reason) > REASON_LIMIT:
        raise PermanentError(VALUE_TOO_LONG.format(limit=REASON_LIMIT))
    return reason


# ---- erasure --------------------------------------------------------------------------------


def erase(c: Container, staff: StaffMember, case_id: str, reason: str) -> Case:
    """Erase a closed case's personal data now: the admin's `erasure` event (with the reason)
    first, then the retention schedule's own deletion of the files and anonymisation (which
    also redacts the conversation), each recorded as the sweep records it. Re-running after an
    interruption finishes the job; a case with nothing left to erase is a Conflict."""
    actor = admin_actor(staff)
    reason = _reason(reason)
    schedule = c.agenda().schedule
    now = c.clock.now()

    def note(case: Case) -> None:
        if case.is_open(c.sop):
            raise Conflict(CASE_OPEN.format(reg_no=case.reg_no))
        if case.signed is not None and "signed" not in case.retention:
            closed = case.closed_at or case.updated_at
            until = (closed + schedule.signed_document).date().strftime("%d-%m-%Y")
            raise Conflict(LEGAL_HOLD.format(reg_no=case.reg_no, until=until))
        if {"documents", "personal_data"} <= set(case.retention):
            raise Conflict(ALREADY_ANONYMISED)
        case.note(actor, "erasure", now, reason=reason)

    case, _ = mutate(c, case_id, note)
    # The retention service's own steps: the same deletion and anonymisation as the schedule's,
    # marked in case.retention so the sweep never repeats them.
    if "documents" not in case.retention:
        retention._delete_documents(c, case, now)
        case = c.store.get(case_id)
    if "personal_data" not in case.retention:
        # before the anonymisation masks the number (a re-run after an interruption between
        # the two still finds it)
        _forget_contact_if_unused(c, case.wa_id)
        retention._anonymise(c, case, now)
    return c.store.get(case_id)


def _forget_contact_if_unused(c: Container, wa_id: str) -> None:
    """The number's last-message time (the 24-hour window) goes too, unless another of its
    cases is still open and needs it."""
    if not any(k.is_open(c.sop) for k in c.store.cases_of_subject(wa_id=wa_id)):
        c.store.forget_contacts(wa_id=wa_id)


def rows(c: Container, cases: list[Case]) -> list[dict[str, Any]]:
    """The admin's table of a subject's cases: what each holds and what may still be done."""
    return [
        {
            "id": k.id,
            "reg_no": k.reg_no,
            "state": k.state,
            "state_label": STATE_LABELS.get(k.state, k.state),
            "kecamatan": c.region.kecamatan_by_code(k.kecamatan).name,
            "service": c.catalogue.get(k.service).name if k.service else "-",
            "created_at": k.created_at.isoformat(),
            "open": k.is_open(c.sop),
            # the signed document is kept until retention removes it
            "signed": k.signed is not None and "signed" not in k.retention,
            "anonymised": "personal_data" in k.retention,
            "fields": [f for f in CORRECTABLE if k.form.get(f)],
        }
        for k in cases
    ]
