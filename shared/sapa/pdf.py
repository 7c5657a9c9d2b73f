"""Small PDF helpers: a plain text PDF generator, a page counter and a signature checker."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any, TypeVar

from sapa.domain.errors import PermanentError

T = TypeVar("T")

UNREADABLE_PDF = "Dokumen PDF tidak dapat dibaca."
NO_SIGNATURE = "Dokumen PDF tidak memiliki tanda tangan elektronik."

# simple_pdf layout, in PDF points (A4 portrait). The body stops well above the bottom so that
# a signature stamp (bottom right, up to ~140 pt high) never covers text.
_PAGE_W, _PAGE_H = 595, 842
_LEFT = 56
_TITLE_Y = 770
_BODY_TOP, _BODY_BOTTOM, _LEADING = 740, 180, 15
_FOOTER_Y = 40
_WRAP = 88
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
    """
    if pages < 1:
        raise ValueError("pages must be at least 1")
    body: list[str] = []
    for line in lines:
        body.extend(textwrap.wrap(line, _WRAP) or [""])
    page_count = max(pages, math.ceil(len(body) / LINES_PER_PAGE))

    objects: list[bytes] = []  # objects[i] is object number i + 1

    def add(obj: bytes) -> int:
        objects.append(obj)
        return len(objects)

    catalog = add(b"")  # filled in once the page tree's number is known
    info = add(b"<< /Title " + _text_string(title) + b" /Producer (SAPA) >>")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    bold = add(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
    )
    pages_num = len(objects) + 1 + 2 * page_count  # after every page and content stream
    kids: list[int] = []
    for index in range(page_count):
        chunk = body[index * LINES_PER_PAGE : (index + 1) * LINES_PER_PAGE]
        ops = [b"BT /F2 16 Tf %d %d Td " % (_LEFT, _TITLE_Y) + _literal(title) + b" Tj ET"]
        ops.append(b"BT /F1 11 Tf %d TL %d %d Td" % (_LEADING, _LEFT, _BODY_TOP + _LEADING))
        ops.extend(_literal(text) + b" '" for text in chunk)
        ops.append(b"ET")
        footer = f"Halaman {index + 1} dari {page_count}"
        ops.append(b"BT /F1 9 Tf %d %d Td " % (_LEFT, _FOOTER_Y) + _literal(footer) + b" Tj ET")
        stream = b"\n".join(ops) + b"\n"
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] "
                % (pages_num, _PAGE_W, _PAGE_H)
                + b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> " % (font, bold)
                + b"/Contents %d 0 R >>" % content
            )
        )
    kid_refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kid_refs, page_count)) == pages_num
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_num

    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    doc_id = hashlib.sha256(bytes(out)).hexdigest()[:32].encode("ascii")
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R /ID [<%s> <%s>] >>\n" % (
        len(objects) + 1,
        catalog,
        info,
        doc_id,
        doc_id,
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


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


def _literal(text: str) -> bytes:
    """A PDF literal string in WinAnsi (cp1252) encoding, escaped."""
    raw = text.encode("cp1252", errors="replace")
    for char, escaped in ((b"\\", b"\\\\"), (b"(", b"\\("), (b")", b"\\)")):
        raw = raw.replace(char, escaped)
    return b"(" + raw.replace(b"\r", b"\\r").replace(b"\n", b"\\n") + b")"


def _text_string(text: str) -> bytes:
    """A PDF text string (for /Info): UTF-16BE with BOM, as a hex string."""
    return b"<" + ("\ufeff" + text).encode("utf-16-be").hex().upper().encode("ascii") + b">"
