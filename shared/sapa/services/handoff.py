"""The SIAK hand-off package (SOP step 5 → 6): a PDF of the data in SIAK's order and the
documents, in one zip, built by the `siak_handoff` task when the files are forwarded."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case, DocumentRef
from sapa.domain.documents import extension
from sapa.domain.texts import FIELD_LABELS
from sapa.services.unit import mutate

# The order in which SIAK's entry forms ask for the data (biodata first, then address).
SIAK_ORDER = ("nik", "kk", "name", "birth_date", "address", "desa", "wa_number", "notes")
# Fixed timestamps inside the zip: the same data always gives the same bytes (idempotent).
_ZIP_TIME = (2020, 1, 5, 0, 0, 0)


def summary_lines(c: Container, case: Case) -> list[str]:
    service = c.catalogue.get(case.service) if case.service else None
    kec = c.region.kecamatan_by_code(case.kecamatan).name
    lines = [
        f"Nomor permohonan: {case.reg_no}",
        f"Layanan: {service.name if service else '-'}",
        f"Kecamatan: {kec} ({case.kecamatan})",
        "",
        "DATA PEMOHON (urutan formulir SIAK)",
    ]
    for key in SIAK_ORDER:
        lines.append(f"{FIELD_LABELS.get(key, key)}: {case.form.get(key, '-') or '-'}")
    lines += ["", "DOKUMEN PERSYARATAN"]
    names = {r.key: r.name for r in service.requirements} if service else {}
    for n, d in enumerate(_latest_documents(case), start=1):
        label = names.get(d.requirement or "", d.filename or "berkas")
        lines.append(f"{n}. {label} — {d.content_type}, sha256 {d.sha256[:16]}…")
    return lines


def _latest_documents(case: Case) -> list[DocumentRef]:
    latest: dict[str, DocumentRef] = {}
    for d in case.documents:
        if d.withdrawn_at is None:  # the resident deleted it on WhatsApp
            latest[d.requirement or d.key] = d
    return list(latest.values())


def build_package(c: Container, case: Case) -> bytes:
    """summary.pdf + the documents (one per requirement, the latest) + data.json, as a zip."""
    from sapa.adapters.pdf import simple_pdf

    zone = ZoneInfo(c.region.timezone)
    forwarded = next((r.done_at for r in reversed(case.steps) if r.done_at), None)
    when = (forwarded or datetime(2020, 1, 5)).astimezone(zone).strftime("%d-%m-%Y %H:%M")
    pdf = simple_pdf(
        f"Serah terima SIAK {case.reg_no}",
        [*summary_lines(c, case), "", f"Diteruskan: {when} WITA"],
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("00-ringkasan.pdf", _ZIP_TIME), pdf)
        for n, d in enumerate(_latest_documents(case), start=1):
            name = f"{n:02d}-{d.requirement or 'berkas'}.{extension(d.content_type)}"
            z.writestr(zipfile.ZipInfo(name, _ZIP_TIME), c.blobs.get(d.key))
        data = {
            "reg_no": case.reg_no,
            "service": case.service,
            "kecamatan": case.kecamatan,
            "form": {k: case.form.get(k) for k in SIAK_ORDER},
        }
        # Not sort_keys: the form must stay in SIAK's order (insertion order is deterministic).
        z.writestr(
            zipfile.ZipInfo("data.json", _ZIP_TIME),
            json.dumps(data, ensure_ascii=False, indent=2),
        )
    return out.getvalue()


def siak_handoff(c: Container, payload: dict[str, Any]) -> str:
    """Build the SIAK operator's hand-off package when the files are forwarded (SIAK has no
    API: a person types the data in) and attach it to the case. Idempotent: the package of the
    same data is the same object, and a case that has one keeps it."""
    case = c.store.get(str(payload["case_id"]))
    siak = c.sop.step_for_event("enter_siak")
    waiting = case.waiting_step(c.sop)
    if siak is None or waiting is None or waiting.key != siak.key:
        return "skipped"
    if _handoff_current(c, case):
        return "already_ready"  # built for this forward already (the task came twice)
    data = build_package(c, case)
    digest = hashlib.sha256(data).hexdigest()
    ref = c.blobs.put(f"cases/{case.id}/siak/handoff-{digest[:32]}.zip", data, "application/zip")
    now = c.clock.now()
    replaced: list[str] = []

    def attach(case: Case) -> str:
        replaced.clear()
        if case.handoff is not None and (
            case.handoff.sha256 == ref.sha256 or _handoff_current(c, case)
        ):
            return "already_ready"
        if case.handoff is not None:
            replaced.append(case.handoff.key)
        case.handoff = DocumentRef(
            key=ref.key,
            sha256=ref.sha256,
            size=ref.size,
            content_type="application/zip",
            filename=f"serah-terima-siak-{case.reg_no}.zip",
            source="siak_handoff",
            at=now,
        )
        case.note(Actor.system(), "siak_handoff_ready", now, key=ref.key, sha256=ref.sha256)
        return "ready"

    saved, outcome = mutate(c, case.id, attach)
    # Personal data must not outlive its reference (retention and erasure see only what the
    # case points to): the package this one replaced, or this one if another build won.
    stale = list(replaced) if outcome == "ready" else []
    if saved.handoff is None or saved.handoff.key != ref.key:
        stale.append(ref.key)
    for key in stale:
        c.blobs.delete(key)
    return outcome


def _handoff_current(c: Container, case: Case) -> bool:
    """The case holds a hand-off package built since the files were last forwarded (the
    package embeds its build time, so two builds of the same data differ in bytes)."""
    run = case.current_run(c.sop)
    return case.handoff is not None and run is not None and case.handoff.at >= run.ready_at
