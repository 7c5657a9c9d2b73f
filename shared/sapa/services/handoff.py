"""The SIAK hand-off package: a PDF of the data in SIAK's order, and the documents, in one zip."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from zoneinfo import ZoneInfo

from sapa.bootstrap import Container
from sapa.domain.case import Case, DocumentRef
from sapa.domain.documents import extension
from sapa.domain.texts import FIELD_LABELS

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
    from sapa.pdf import simple_pdf

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
