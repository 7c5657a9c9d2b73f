"""Human registration numbers: kecamatan code, local date and a daily sequence."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def sequence_scope(kecamatan: str, at: datetime, timezone: str) -> str:
    return f"reg-{kecamatan}-{at.astimezone(ZoneInfo(timezone)):%Y%m%d}"


def registration_number(kecamatan: str, at: datetime, timezone: str, sequence: int) -> str:
    """E.g. 730608-20261129-0042: Somba Opu, 29 Nov 2026 (office time), 42nd request that day."""
    return f"{kecamatan}-{at.astimezone(ZoneInfo(timezone)):%Y%m%d}-{sequence:04d}"


def document_filename(file_code: str, reg_no: str) -> str:
    """The signed document's file name as the resident sees it on WhatsApp: the document and
    the request, e.g. KK-730608-20261203-0001.pdf (services.toml `file_code`)."""
    return f"{file_code or 'DOKUMEN'}-{reg_no}.pdf"
