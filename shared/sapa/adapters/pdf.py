"""Small PDF helpers: a plain text PDF generator, a page counter and a signature checker."""

from __future__ import annotations

import asyncio
import math
import re
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any, TypeVar

from sapa.domain.errors import PermanentError

T = TypeVar("T")

UNREADABLE_PDF = "Dokumen PDF tidak dapat dibaca."
NO_SIGNATURE = "Dokumen PDF tidak memiliki tanda tangan elektronik."

# simple_pdf layout, in PDF points (A4 portrait; heights from the bottom edge, as PDF counts
# them, where fpdf2 counts from the top). The body stops well above the bottom so that
# a signature stamp (bottom right, up to ~140 pt high) never covers text.
_PAGE_W, _PAGE_H = 595, 842
_LEFT = 56
_TITLE_Y = 770
_BODY_TOP, _BODY_BOTTOM, _LEADING = 740, 180, 15
_FOOTER_Y = 40
_WRAP = 88
_WINANSI = "cp1252"  # the standard fonts' /WinAnsiEncoding
_CREATED = datetime(2000, 1, 1, tzinfo=UTC)  # fixed: the same input gives the same bytes
LINES_PER_PAGE = (_BODY_TOP - _BODY_BOTTOM) // _LEADING + 1
"""How many (wrapped) body lines `simple_pdf` puts on one page."""


def outside_event_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call `fn` (which may use asyncio.run, as pyHanko's sync API does) even when the calling
    thread already runs an event loop: then it runs on a short-lived worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


@dataclass(frozen=True)
class SignatureReport:
    """What a validator concluded about one PDF signature.

    `intact`: the signed byte ranges hash to the digest in the signature. `valid`: intact AND the
    cryptographic signature over the signed attributes checks out (pyHanko's own `valid` is only
    the latter, so a tampered document would still be "valid" there). `trusted`: the signer's
    chain leads to one of the given roots (revocation information is not required).
    `covers_whole_document`: nothing was appended after the signature. `subfilter` is the PDF
    name, e.g. "/ETSI.CAdES.detached" for PAdES. `signing_time` is the time the signer claims
    (CMS signing-time attribute), not a trusted timestamp.
    """

    intact: bool
    valid: bool
    trusted: bool
    signer_common_name: str
    signing_time: datetime | None
    subfilter: str
    covers_whole_document: bool
    field_name: str


def simple_pdf(title: str, lines: list[str], pages: int = 1) -> bytes:
    """A valid, deterministic A4 PDF with `title` on every page and `lines` as body text.

    Text is Helvetica (WinAnsi; characters outside it become "?"), lines longer than about 88
    characters are wrapped, and body text flows onto further pages when it does not fit
    (`LINES_PER_PAGE` per page), so the result has at least `pages` pages. Each page carries a
    "Halaman i dari n" footer; the bottom-right corner is left empty for a signature stamp.
    The same arguments give the same bytes (a fixed creation date; the file identifier is a
    hash of the content). Content streams are left uncompressed, as plain as the text they hold.
    """
    if pages < 1:
        raise ValueError("pages must be at least 1")
    body: list[str] = []
    for line in lines:
        body.extend(textwrap.wrap(line, _WRAP) or [""])
    page_count = max(pages, math.ceil(len(body) / LINES_PER_PAGE))

    from fpdf import FPDF  # here, not at the top: a function's cold start does not pay for it

    pdf = FPDF(orientation="portrait", unit="pt", format=(_PAGE_W, _PAGE_H))
    pdf.core_fonts_encoding = _WINANSI
    pdf.set_compression(False)
    pdf.set_auto_page_break(False)
    pdf.set_creation_date(_CREATED)
    pdf.set_title(title)
    pdf.set_producer("SAPA")
    heading = _winansi(title)
    for index in range(page_count):
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.text(_LEFT, _PAGE_H - _TITLE_Y, heading)
        pdf.set_font("Helvetica", "", 11)
        chunk = body[index * LINES_PER_PAGE : (index + 1) * LINES_PER_PAGE]
        for row, text in enumerate(chunk):
            if text:
                pdf.text(_LEFT, _PAGE_H - (_BODY_TOP - row * _LEADING), _winansi(text))
        pdf.set_font("Helvetica", "", 9)
        pdf.text(_LEFT, _PAGE_H - _FOOTER_Y, f"Halaman {index + 1} dari {page_count}")
    return bytes(pdf.output())


def _winansi(text: str) -> str:
    """`text` with every character the standard fonts' WinAnsi encoding lacks as "?"."""
    return text.encode(_WINANSI, errors="replace").decode(_WINANSI)


# Decompression budgets, enforced on the raw bytes before any parser decodes a stream. The
# structure streams a parser reads into objects (cross-reference and object streams) get a tight
# one: a 20 MB xref stream became ~800 MB of Python objects; a real document's are a few
# hundred KB. Other streams (content, images) are counted against a generous total so that
# inflating them cannot eat the CPU either. Output is counted, never kept.
MAX_STRUCTURE_STREAM = 4 * 1024 * 1024
MAX_STREAM = 64 * 1024 * 1024
MAX_DECODED_TOTAL = 160 * 1024 * 1024
MAX_STREAMS = 20_000
TOO_COMPRESSED_PDF = (
    "Dokumen PDF tidak dapat diterima: isinya mengembang terlalu besar saat dibuka. "
    "Kirim PDF hasil pindai biasa atau foto dokumen."
)
_STREAM_KEYWORD = re.compile(rb"(?<![A-Za-z])stream(?:\r\n|\n|\r)")
_FLATE = re.compile(rb"/(?:FlateDecode|Fl)(?![A-Za-z])")
_STRUCTURE = re.compile(rb"/Type\s*/(?:XRef|ObjStm)(?![A-Za-z])")
_CHUNK = 64 * 1024


def check_decoded_size(data: bytes) -> None:
    """Refuse a PDF whose Flate streams would inflate past the budgets (per stream, per file),
    counting the inflated bytes in 64 KiB steps without keeping them: a decompression bomb is
    found in milliseconds and a few MiB, before pyHanko or anything else decodes it. Raises
    `PermanentError` (TOO_COMPRESSED_PDF)."""
    total = 0
    pos = 0
    for count in range(MAX_STREAMS + 1):
        found = _STREAM_KEYWORD.search(data, pos)
        if found is None:
            return
        if count == MAX_STREAMS:
            raise PermanentError(TOO_COMPRESSED_PDF, reason="too many streams")
        start = found.end()
        end = data.find(b"endstream", start)
        end = len(data) if end < 0 else end
        # the stream's dictionary: from its object's start ("obj") to the keyword
        head_from = data.rfind(b"obj", max(0, found.start() - 65536), found.start())
        head = data[head_from if head_from >= 0 else max(0, found.start() - 4096) : found.start()]
        layers = len(_FLATE.findall(head))
        if layers:
            limit = MAX_STRUCTURE_STREAM if _STRUCTURE.search(head) else MAX_STREAM
            total += _inflated_size(data[start:end], layers, min(limit, MAX_DECODED_TOTAL - total))
        pos = end + len(b"endstream")


def _inflated_size(raw: bytes, layers: int, budget: int) -> int:
    """How many bytes `raw` inflates to through `layers` Flate filters (a chain inflates layer
    after layer), or PermanentError once past `budget`. Broken data counts what it gave."""

    if layers > 1:
        inner = bytearray()
        for piece in _inflate(raw, budget):
            inner += piece
        return _inflated_size(bytes(inner), layers - 1, budget)
    return sum(len(piece) for piece in _inflate(raw, budget))


def _inflate(raw: bytes, budget: int) -> Any:
    """Yield the inflated bytes of `raw` in steps, raising once they pass `budget`."""
    import zlib

    inflater = zlib.decompressobj()
    produced = 0
    pending = raw
    try:
        while pending and not inflater.eof:
            piece = inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
            produced += len(piece)
            if produced > budget:
                raise PermanentError(TOO_COMPRESSED_PDF, reason="stream inflates past budget")
            yield piece
            if not piece and not pending:
                break
    except zlib.error:
        return  # not (or not only) Flate data: the parser will judge the rest


def pdf_page_count(data: bytes) -> int:
    """The number of pages of a PDF, checked by locating its last page in the page tree.

    The inflated size of its streams is checked first (`check_decoded_size`). Parsing is
    lenient (pyHanko non-strict mode), as befits uploaded documents. Raises `PermanentError`
    when `data` is not a readable PDF or would inflate past the budgets.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader

    check_decoded_size(data)
    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        count = int(reader.root["/Pages"]["/Count"])
        if count > 0:
            reader.find_page_for_modification(count - 1)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise PermanentError(UNREADABLE_PDF) from exc
    if count < 0:
        raise PermanentError(UNREADABLE_PDF)
    return count


def verify_signature(pdf: bytes, trust_roots_pem: list[bytes]) -> SignatureReport:
    """Validate the last signature of `pdf` with pyHanko against `trust_roots_pem` only.

    Nothing is fetched from the network and missing revocation information is tolerated
    (soft-fail), so a development chain without CRL/OCSP can be trusted. Raises
    `PermanentError` when the PDF cannot be read or carries no signature.
    """
    from pyhanko.keys import load_certs_from_pemder_data
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(BytesIO(pdf))
        signatures = reader.embedded_signatures
    except Exception as exc:
        raise PermanentError(UNREADABLE_PDF) from exc
    if not signatures:
        raise PermanentError(NO_SIGNATURE)
    embedded = signatures[-1]
    roots = [cert for data in trust_roots_pem for cert in load_certs_from_pemder_data(data)]
    context = ValidationContext(
        trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail"
    )
    try:
        status = outside_event_loop(
            validate_pdf_signature, embedded, signer_validation_context=context
        )
    except Exception as exc:
        raise PermanentError(UNREADABLE_PDF) from exc

    subject = status.signing_cert.subject.native
    return SignatureReport(
        intact=bool(status.intact),
        valid=bool(status.intact and status.valid),
        trusted=bool(status.trusted),
        signer_common_name=str(subject.get("common_name", "")),
        signing_time=status.signer_reported_dt,
        subfilter=str(embedded.sig_object.get("/SubFilter", "")),
        covers_whole_document=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        field_name=str(embedded.field_name),
    )
