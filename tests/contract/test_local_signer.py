"""Contract tests of the local pyHanko PAdES signer and the PDF helpers that check its output."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from sapa.adapters.clock import FixedClock
from sapa.adapters.embedded.local_signer import (
    CA_COMMON_NAME,
    SIGNER_COMMON_NAME,
    LocalPadesSigner,
)
from sapa.adapters.pdf import pdf_page_count, simple_pdf, verify_signature
from sapa.domain.errors import PermanentError
from sapa.ports import SignedPdf, SignRequest

OFFICE = "Dinas Kependudukan dan Pencatatan Sipil Kabupaten Gowa"
TITLE = "Surat Keterangan Pindah"
VERIFY_URL = "https://sapa.example.go.id/verifikasi/c-0001-v1"
PADES = "/ETSI.CAdES.detached"


def fingerprint(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()


def request(pdf: bytes, **overrides: Any) -> SignRequest:
    fields: dict[str, Any] = {
        "pdf": pdf,
        "document_id": "c-0001/v1",
        "signer_name": "Drs. H. Andi Sukarno, M.Si",
        "reason": "Penerbitan dokumen kependudukan",
        "location": "Sungguminasa, Gowa",
        "verify_url": VERIFY_URL,
    }
    fields.update(overrides)
    return SignRequest(**fields)


def sample_pdf(pages: int) -> bytes:
    lines = ["Nama: Budi Santoso", "NIK: 7306xxxxxxxxxxxx", "Alamat: Jl. Poros (Gowa) \\ 12"]
    return simple_pdf(TITLE, lines, pages=pages)


def last_page_widgets(pdf: bytes) -> tuple[Any, list[Any], list[Any]]:
    """The last page, its widget annotations, and the annotations of every other page."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(BytesIO(pdf))
    count = int(reader.root["/Pages"]["/Count"])
    find = reader.find_page_for_modification
    pages = [find(i)[0].get_object() for i in range(count)]  # type: ignore[no-untyped-call]
    others = [annot for page in pages[:-1] for annot in page.get("/Annots", [])]
    widgets = [a.get_object() for a in pages[-1].get("/Annots", [])]
    return pages[-1], widgets, others


def inherited(page: Any, key: str) -> Any:
    """A page attribute, from the page or the nearest page-tree node above it that has it."""
    from pyhanko.pdf_utils.rw_common import find_inherited_value_in_tree

    return find_inherited_value_in_tree(page, key, "/Parent")  # type: ignore[no-untyped-call]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 29, 1, 0, 7, 250_000, tzinfo=UTC))


@pytest.fixture(scope="module")
def signer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("signer")


@pytest.fixture
def signer(signer_dir: Path, clock: FixedClock) -> LocalPadesSigner:
    return LocalPadesSigner(signer_dir, office=OFFICE, clock=clock)


@pytest.fixture(scope="module")
def other_ca_pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The root of a different, freshly generated development PKI."""
    return LocalPadesSigner(tmp_path_factory.mktemp("other"), office=OFFICE).ca_certificate_pem


@pytest.mark.parametrize("pages", [1, 20])
def test_signature_is_valid_trusted_pades_over_the_whole_document(
    signer: LocalPadesSigner, clock: FixedClock, pages: int
) -> None:
    original = sample_pdf(pages)
    assert pdf_page_count(original) == pages

    signed = signer.sign(request(original))

    assert isinstance(signed, SignedPdf)
    assert signed.pdf.startswith(original)  # incremental update: the original stays a prefix
    assert len(signed.pdf) > len(original)
    assert pdf_page_count(signed.pdf) == pages
    assert signed.signed_at == clock.now().replace(microsecond=0)
    assert signed.signature_id.startswith("local-")
    assert len(signed.signature_id) == len("local-") + 20

    report = verify_signature(signed.pdf, [signer.ca_certificate_pem])
    assert report.intact
    assert report.valid
    assert report.trusted
    assert report.subfilter == PADES
    assert report.covers_whole_document
    assert report.signer_common_name == SIGNER_COMMON_NAME
    assert report.signing_time == signed.signed_at
    assert report.field_name == "SAPA_TTE_1"


def test_signature_id_is_documented_digest(signer: LocalPadesSigner) -> None:
    signed = signer.sign(request(sample_pdf(1)))

    digest = hashlib.sha256(b"c-0001/v1\0" + signed.pdf).hexdigest()
    assert signed.signature_id == "local-" + digest[:20]


@pytest.mark.parametrize("pages", [1, 20])
def test_visible_qr_stamp_on_the_last_page_bottom(signer: LocalPadesSigner, pages: int) -> None:
    signed = signer.sign(request(sample_pdf(pages)))

    page, widgets, others = last_page_widgets(signed.pdf)
    assert others == []  # nothing added to earlier pages
    (field,) = [w for w in widgets if w.get("/FT") == "/Sig"]
    assert field["/T"] == "SAPA_TTE_1"
    x1, y1, x2, y2 = (float(v) for v in field["/Rect"])
    assert x2 - x1 > 100
    assert y2 - y1 > 50
    page_height = float(inherited(page, "/MediaBox")[3])
    assert 0 < y1 < y2 < page_height / 4  # bottom area
    assert not int(field.get("/F", 0)) & 0b10  # not hidden

    appearance = field["/AP"]["/N"].get_object()
    qr = appearance["/Resources"]["/XObject"]["/QR"].get_object()
    assert qr["/Subtype"] == "/Form"
    assert len(qr.data) > 100  # the QR modules
    stream = appearance.data
    assert b"/QR Do" in stream
    assert b"Ditandatangani secara elektronik oleh" in stream
    assert b"Kabupaten Gowa" in stream
    assert b"WITA" in stream  # 01:00:07 UTC shown as 09:00:07 WITA
    assert b"09\\07200\\07207" in stream or b"09:00:07" in stream


def test_untrusted_against_a_different_ca(signer: LocalPadesSigner, other_ca_pem: bytes) -> None:
    signed = signer.sign(request(sample_pdf(1)))

    report = verify_signature(signed.pdf, [other_ca_pem])

    assert fingerprint(other_ca_pem) != fingerprint(signer.ca_certificate_pem)
    assert report.intact
    assert report.valid  # the maths is fine ...
    assert not report.trusted  # ... but the signer is not vouched for
    assert not verify_signature(signed.pdf, []).trusted  # no roots: nothing is trusted


def test_tampering_one_signed_byte_breaks_integrity(signer: LocalPadesSigner) -> None:
    original = sample_pdf(2)
    signed = bytearray(signer.sign(request(original)).pdf)
    at = signed.index(b"(" + TITLE.encode())  # the title in the first page's content stream
    assert at < len(original)
    signed[at + 1] ^= 0x01  # "S" -> "R"

    report = verify_signature(bytes(signed), [signer.ca_certificate_pem])

    assert not report.intact
    assert not report.valid


def test_second_signature_is_added_incrementally(signer: LocalPadesSigner) -> None:
    first = signer.sign(request(sample_pdf(1)))
    second = signer.sign(request(first.pdf, document_id="c-0001/v1-ulang"))

    assert second.pdf.startswith(first.pdf)
    report = verify_signature(second.pdf, [signer.ca_certificate_pem])
    assert report.field_name == "SAPA_TTE_2"
    assert report.intact and report.valid and report.trusted and report.covers_whole_document


def test_restart_reuses_the_same_certificates(
    signer_dir: Path, signer: LocalPadesSigner, clock: FixedClock
) -> None:
    ca, cert = signer.ca_certificate_pem, signer.signer_certificate_pem

    restarted = LocalPadesSigner(signer_dir, office=OFFICE, clock=clock)

    assert fingerprint(restarted.ca_certificate_pem) == fingerprint(ca)
    assert fingerprint(restarted.signer_certificate_pem) == fingerprint(cert)
    signed = restarted.sign(request(sample_pdf(1)))
    assert verify_signature(signed.pdf, [ca]).trusted


def test_certificates_are_a_dev_ca_and_a_head_of_office_signer(signer: LocalPadesSigner) -> None:
    ca = x509.load_pem_x509_certificate(signer.ca_certificate_pem)
    cert = x509.load_pem_x509_certificate(signer.signer_certificate_pem)

    cn = x509.NameOID.COMMON_NAME
    org = x509.NameOID.ORGANIZATION_NAME
    assert ca.subject.get_attributes_for_oid(cn)[0].value == CA_COMMON_NAME
    assert "NOT FOR PRODUCTION" in CA_COMMON_NAME
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.issuer == ca.subject
    assert cert.subject.get_attributes_for_oid(cn)[0].value == SIGNER_COMMON_NAME
    assert cert.subject.get_attributes_for_oid(org)[0].value == OFFICE
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_keys_are_private_files(signer: LocalPadesSigner, signer_dir: Path) -> None:
    signer.ca_certificate_pem  # noqa: B018 - first use creates the files

    files = sorted(p.name for p in (signer_dir / "dev-identity").iterdir())
    assert files == ["ca-cert.pem", "ca-key.pem", "signer-cert.pem", "signer-key.pem"]
    assert [p.name for p in signer_dir.iterdir()] == ["dev-identity"]  # no temp leftovers
    if os.name == "posix":
        for name in ("ca-key.pem", "signer-key.pem"):
            assert (signer_dir / "dev-identity" / name).stat().st_mode & 0o777 == 0o600


def test_nothing_is_created_before_first_use(tmp_path: Path) -> None:
    LocalPadesSigner(tmp_path / "signer", office=OFFICE)

    assert not (tmp_path / "signer").exists()


@pytest.mark.parametrize(
    "data",
    [b"", b"bukan PDF sama sekali", b"%PDF-1.7\n%%EOF\n", None],
    ids=["empty", "text", "header-only", "truncated"],
)
def test_unreadable_pdf_is_a_permanent_error(signer: LocalPadesSigner, data: bytes | None) -> None:
    if data is None:
        whole = sample_pdf(2)
        data = whole[: len(whole) // 2]

    with pytest.raises(PermanentError) as caught:
        signer.sign(request(data))

    assert caught.value.message == "Dokumen PDF tidak dapat dibaca untuk ditandatangani."
    with pytest.raises(PermanentError):
        pdf_page_count(data)


def test_verify_rejects_an_unsigned_pdf() -> None:
    with pytest.raises(PermanentError):
        verify_signature(sample_pdf(1), [])


def test_passphrase_is_never_logged(
    signer: LocalPadesSigner, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "rahasia-passphrase-123"
    caplog.set_level(logging.DEBUG)

    signed = signer.sign(request(sample_pdf(1), passphrase=secret))

    assert verify_signature(signed.pdf, [signer.ca_certificate_pem]).trusted
    assert secret not in caplog.text
    assert secret.encode() not in signed.pdf


def test_concurrent_first_use_ends_with_one_identity(tmp_path: Path) -> None:
    directory = tmp_path / "fresh"
    signers = [LocalPadesSigner(directory, office=OFFICE) for _ in range(4)]
    barrier = threading.Barrier(len(signers))
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def first_use(s: LocalPadesSigner) -> None:
        try:
            barrier.wait()
            results.append(
                (fingerprint(s.ca_certificate_pem), fingerprint(s.signer_certificate_pem))
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(s,)) for s in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(set(results)) == 1
    stored = LocalPadesSigner(directory, office=OFFICE)
    assert results[0] == (
        fingerprint(stored.ca_certificate_pem),
        fingerprint(stored.signer_certificate_pem),
    )
    assert [p.name for p in directory.iterdir()] == ["dev-identity"]
    signed = signers[-1].sign(request(sample_pdf(1)))
    assert verify_signature(signed.pdf, [signers[0].ca_certificate_pem]).trusted


def test_importing_the_modules_does_not_import_pyhanko() -> None:
    code = (
        "import sys, sapa.adapters.embedded.local_signer, sapa.adapters.pdf; "
        "print(sorted(m for m in sys.modules if m.startswith(('pyhanko', 'cryptography', 'fpdf'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_simple_pdf_flows_long_text_onto_more_pages() -> None:
    lines = [f"Baris {i}" for i in range(100)]

    assert pdf_page_count(simple_pdf("Daftar", lines)) == 3
    assert pdf_page_count(simple_pdf("Daftar", lines, pages=5)) == 5
    assert simple_pdf("Daftar", lines) == simple_pdf("Daftar", lines)  # deterministic
    with pytest.raises(ValueError):
        simple_pdf("Daftar", [], pages=0)


def test_simple_pdf_titles_numbers_and_keeps_to_winansi() -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    # GIVEN text with characters the standard fonts' WinAnsi has (é, €) and has not (Ł, 中)
    pdf = simple_pdf("Surat (Łódź) €", ["Nama: Renée 中文", "x" * 200], pages=2)

    # THEN it is a PDF of two A4 pages whose metadata title is the whole title
    reader = PdfFileReader(BytesIO(pdf))
    assert str(reader.trailer["/Info"]["/Title"]) == "Surat (Łódź) €"
    assert pdf_page_count(pdf) == 2
    for i in range(2):
        page = reader.find_page_for_modification(i)[0].get_object()  # type: ignore[no-untyped-call]
        assert [float(v) for v in inherited(page, "/MediaBox")] == [0, 0, 595, 842]
    # AND on the pages the missing characters are "?", the others WinAnsi bytes
    assert b"(Surat \\(?\xf3d?\\) \x80) Tj" in pdf
    assert b"(Nama: Ren\xe9e ??) Tj" in pdf
    assert b"(" + b"x" * 88 + b") Tj" in pdf  # wrapped at 88
    assert b"(Halaman 1 dari 2) Tj" in pdf and b"(Halaman 2 dari 2) Tj" in pdf


def test_signing_and_validation_work_inside_a_running_event_loop(
    signer: LocalPadesSigner,
) -> None:
    # GIVEN a caller that already runs an asyncio loop (pyHanko's sync API uses asyncio.run)
    import asyncio

    async def inside() -> Any:
        # WHEN it signs and validates from within the loop
        signed = signer.sign(request(sample_pdf(1)))
        return verify_signature(signed.pdf, [signer.ca_certificate_pem])

    # THEN both work instead of failing with "asyncio.run() cannot be called ..."
    report = asyncio.run(inside())
    assert report.intact and report.trusted
