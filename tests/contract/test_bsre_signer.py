"""Contract tests: BsreSigner against a fake BSrE Esign Client Service, over real HTTP.

The fake follows BSrE's guide and its clients' sample bodies (see bsre_fake.py), not this
adapter; where the QR lands is checked on the rendered page (pypdfium2 + zxing-cpp)."""

from __future__ import annotations

import hashlib
import logging
import socket
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

import pytest

from sapa.adapters.bsre_signer import (
    ACCESS_DENIED,
    BAD_ANSWER,
    DOWNLOAD_GONE,
    NIK_NOT_REGISTERED,
    PASSPHRASE_REQUIRED,
    REDIRECTED,
    STATUS_MESSAGES,
    UNAVAILABLE,
    WRONG_PASSPHRASE,
    BsreSigner,
    QrBox,
)
from sapa.adapters.clock import FixedClock
from sapa.adapters.pdf import pdf_page_count, simple_pdf, verify_signature
from sapa.domain.errors import PermanentError, SapaError, TransientError
from sapa.ports import SignedPdf, SignRequest
from tests.conftest import ROOT
from tests.contract.bsre_fake import (
    FAKE_SIGNER_CN,
    PASSPHRASE,
    USER_STATUSES,
    FakeBsre,
    Received,
)
from tests.contract.test_bsre_fake import assert_qr_fills_box

VERIFY_URL = "https://sapa.example.go.id/verify/d/c-0001-v1"
APIS = ("v1", "v2")
PADES = "/ETSI.CAdES.detached"
DEFAULT_RECT = [469.0, 36.0, 559.0, 126.0]  # QrBox(): bottom right of A4, 36 pt margins


def make_signer(fake: FakeBsre, api: str = "v1", **overrides: Any) -> BsreSigner:
    options: dict[str, Any] = {"api": api, "timeout": 5.0}
    options.update(overrides)
    nik = options.pop("nik", fake.nik)
    password = options.pop("password", fake.password)
    return BsreSigner(fake.base_url, fake.username, password, nik, **options)


def sign_request(pdf: bytes | None = None, **overrides: Any) -> SignRequest:
    fields: dict[str, Any] = {
        "pdf": pdf if pdf is not None else simple_pdf("Surat Keterangan Pindah", ["Isi"], 3),
        "document_id": "c-0001/v1",
        "signer_name": "Drs. H. Andi Sukarno, M.Si",
        "reason": "Penerbitan Surat Keterangan Pindah 7306-0001",
        "location": "Kabupaten Gowa",
        "verify_url": VERIFY_URL,
        "passphrase": PASSPHRASE,
    }
    fields.update(overrides)
    return SignRequest(**fields)


def signature_widgets(pdf: bytes) -> list[tuple[int, list[float], bool]]:
    """(1-based page, /Rect, has an appearance) of every signature widget, page by page."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(BytesIO(pdf))
    found = []
    for index in range(pdf_page_count(pdf)):
        page = reader.find_page_for_modification(index)[0].get_object()  # type: ignore[no-untyped-call]
        for ref in page.get("/Annots", []):
            annot = ref.get_object()
            kind = annot.get("/FT") or annot.get("/Parent", {}).get("/FT")
            if kind == "/Sig":
                rect = [float(v) for v in annot["/Rect"]]
                found.append((index + 1, rect, "/AP" in annot))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def everything_about(exc: BaseException) -> str:
    """All text an exception could leak: message, repr, detail, the formatted chain."""
    detail = getattr(exc, "detail", {})
    return "\n".join([str(exc), repr(exc), repr(detail), *traceback.format_exception(exc)])


# --- success ---------------------------------------------------------------------------------


def calls(fake: FakeBsre, api: str) -> list[Received]:
    return [r for r in fake.received if r.api == api]


@pytest.mark.parametrize("api", APIS)
def test_sign_returns_a_trusted_visible_signature_with_the_qr_in_place(
    fake: FakeBsre, api: str
) -> None:
    # GIVEN a three-page draft and the default box (bottom right of the last page)
    original = simple_pdf("Surat Keterangan Pindah", ["Nama: Budi"], pages=3)
    before = datetime.now(UTC).replace(microsecond=0)

    # WHEN it is signed
    signed = make_signer(fake, api).sign(sign_request(original))

    # THEN the answer is a trusted PAdES signature with the QR of the verification URL
    # visibly inside the intended box
    assert isinstance(signed, SignedPdf)
    assert signed.pdf.startswith(b"%PDF")
    assert not signed.pdf.startswith(original)  # BSrE re-saves: no prefix is required
    assert pdf_page_count(signed.pdf) == 3
    assert signed.signed_at.utcoffset() == UTC.utcoffset(None)
    assert before <= signed.signed_at <= datetime.now(UTC)
    report = verify_signature(signed.pdf, [fake.ca_certificate_pem])
    assert report.intact and report.valid and report.trusted
    assert report.signer_common_name == FAKE_SIGNER_CN
    assert report.subfilter == PADES
    assert report.covers_whole_document
    assert signature_widgets(signed.pdf) == [(3, DEFAULT_RECT, True)]
    assert_qr_fills_box(signed.pdf, 3, tuple(DEFAULT_RECT), VERIFY_URL)  # type: ignore[arg-type]
    # AND the certificate status was asked first, then one signature made
    assert fake.received[0].api == ("status" if api == "v1" else "status_v2")
    (got,) = calls(fake, api)
    assert got.auth_ok and got.passphrase_present and got.passphrase_ok
    assert got.pdf == original
    assert got.fields["nik"] == fake.nik
    assert got.fields["reason"] == "Penerbitan Surat Keterangan Pindah 7306-0001"
    assert got.fields["location"] == "Kabupaten Gowa"
    assert "passphrase" not in got.fields
    if api == "v1":
        assert got.fields["tampilan"] == "visible" and got.fields["image"] == "false"
        assert got.fields["linkQR"] == VERIFY_URL
        assert got.fields["jenis_response"] == "BASE64"
        assert got.fields["page"] == "3"
        assert [got.fields[k] for k in ("xAxis", "yAxis", "width", "height")] == [
            "469",
            "36",
            "90",
            "90",
        ]
        assert got.files["file"].filename == "c-0001-v1.pdf"
        # BASE64: an id to download once, downloaded once
        assert signed.signature_id == fake.issued_ids[-1]
        assert fake.downloads == {signed.signature_id: 1}
    else:
        # v2 has no linkQR: the QR goes as imageBase64, the box from the top-left corner
        assert got.fields["tampilan"] == "VISIBLE"
        assert "linkQR" not in got.fields["keys"] and "linkQR" not in got.fields
        assert got.fields["imageBase64_bytes"] > 100
        assert got.fields["page"] == 3
        assert [got.fields[k] for k in ("originX", "originY", "width", "height")] == [
            469,
            716,  # 842 - 36 - 90
            90,
            90,
        ]
        assert got.fields["keys"] == ["file", "nik", "passphrase", "signatureProperties"]
        assert signed.signature_id == "bsre-" + hashlib.sha256(signed.pdf).hexdigest()[:20]


@pytest.mark.parametrize("api", APIS)
def test_qr_box_chooses_page_and_rectangle(fake: FakeBsre, api: str) -> None:
    signer = make_signer(fake, api, qr_box=(1, 50, 60.5, 80, 70))

    signed = signer.sign(sign_request(simple_pdf("Surat", ["x"], pages=2)))

    (page, rect, _), *_ = signature_widgets(signed.pdf)
    assert page == 1 and rect == pytest.approx([50.0, 60.5, 130.0, 130.5], abs=0.6)
    assert_qr_fills_box(signed.pdf, 1, (50, 60.5, 130, 130.5), VERIFY_URL)


def test_v2_measures_from_the_real_page_height(fake: FakeBsre) -> None:
    # GIVEN a letter-size page (792 pt high), not A4
    a4, size = b"[0 0 595.00 842.00]", b"[0 0 612.00 792.00]"  # same length: offsets hold
    letter = simple_pdf("Surat", ["x"]).replace(a4, size)
    assert size in letter

    signed = make_signer(fake, "v2").sign(sign_request(letter))

    assert calls(fake, "v2")[0].fields["originY"] == 792 - 36 - 90
    assert signature_widgets(signed.pdf)[0][1] == DEFAULT_RECT


@pytest.mark.parametrize("convention", ["size", "corners"])
def test_the_v1_box_convention_is_a_setting(fake: FakeBsre, convention: Any) -> None:
    # GIVEN a service that reads width/height as `convention`, and SAPA set the same way
    fake.v1_box = convention
    signed = make_signer(fake, v1_box=convention).sign(sign_request())
    # THEN the QR lands in the box
    assert signature_widgets(signed.pdf)[0][1] == DEFAULT_RECT
    assert_qr_fills_box(signed.pdf, 3, tuple(DEFAULT_RECT), VERIFY_URL)  # type: ignore[arg-type]
    sent = [calls(fake, "v1")[0].fields[k] for k in ("width", "height")]
    assert sent == (["90", "90"] if convention == "size" else ["559", "126"])


def test_a_wrong_v1_box_setting_misplaces_or_is_refused(fake: FakeBsre) -> None:
    # the reason for the test signature before going live: read the other way, the box runs
    # off the page (sizes taken as corners are refused: the corner lies below-left)
    fake.v1_box = "size"
    signed = make_signer(fake, v1_box="corners").sign(sign_request())
    assert signature_widgets(signed.pdf)[0][1] == [469.0, 36.0, 1028.0, 162.0]
    fake.reset()
    fake.v1_box = "corners"
    with pytest.raises(TransientError) as refused:
        make_signer(fake, v1_box="size").sign(sign_request())
    assert refused.value.detail["reason"] == "unrecognised"


@pytest.mark.parametrize("answer", ["inline", "download"])
def test_v1_base64_answers_give_one_signature(fake: FakeBsre, answer: Any) -> None:
    fake.base64_answer = answer
    signed = make_signer(fake).sign(sign_request())
    assert verify_signature(signed.pdf, [fake.ca_certificate_pem]).trusted
    assert len(calls(fake, "v1")) == 1
    assert len(calls(fake, "download")) == (1 if answer == "download" else 0)


def test_v1_byte_answer_is_the_pdf_with_its_id(fake: FakeBsre) -> None:
    signed = make_signer(fake, v1_response="BYTE").sign(sign_request())
    assert calls(fake, "v1")[0].fields["jenis_response"] == "BYTE"
    assert calls(fake, "download") == []
    assert signed.signature_id == fake.issued_ids[-1]


def test_a_failed_download_is_retried_as_a_download_never_a_second_signature(
    fake: FakeBsre,
) -> None:
    # GIVEN BSrE signs but its download endpoint is down
    fake.mode = "download_unavailable"
    signer = make_signer(fake)
    with pytest.raises(TransientError) as raised:
        signer.sign(sign_request())
    assert raised.value.detail["reason"] == "pending_download"
    pending = raised.value.detail["pending_id"]
    assert pending == fake.issued_ids[-1]
    # WHEN the retry comes with the pending id, the endpoint back
    fake.mode = None
    signed = signer.sign(sign_request(pending_id=pending, passphrase=None))
    # THEN it downloaded what BSrE signed: one signature in all
    assert len(calls(fake, "v1")) == 1
    assert signed.signature_id == pending
    assert verify_signature(signed.pdf, [fake.ca_certificate_pem]).trusted
    # AND a third try finds the download used up: a clear permanent refusal, no signing
    with pytest.raises(PermanentError) as gone:
        signer.sign(sign_request(pending_id=pending))
    assert gone.value.message == DOWNLOAD_GONE
    assert len(calls(fake, "v1")) == 1


def test_negative_page_counts_from_the_end(fake: FakeBsre) -> None:
    signed = make_signer(fake, qr_box=QrBox(page=-2)).sign(sign_request())

    assert calls(fake, "v1")[0].fields["page"] == "2"
    assert signature_widgets(signed.pdf) == [(2, DEFAULT_RECT, True)]


def test_a_page_the_document_lacks_is_refused_without_calling_bsre(fake: FakeBsre) -> None:
    signer = make_signer(fake, qr_box=QrBox(page=4))

    with pytest.raises(PermanentError, match="Halaman 4"):
        signer.sign(sign_request())
    assert fake.received == []


def test_an_unreadable_pdf_is_refused_without_calling_bsre(fake: FakeBsre) -> None:
    with pytest.raises(PermanentError):
        make_signer(fake).sign(sign_request(b"bukan pdf"))
    assert fake.received == []


def test_v1_without_id_dokumen_falls_back_to_a_digest(fake: FakeBsre) -> None:
    fake.mode = "no_id"

    signed = make_signer(fake, v1_response="BYTE").sign(sign_request())

    assert signed.signature_id == "bsre-" + hashlib.sha256(signed.pdf).hexdigest()[:20]


def test_signed_at_comes_from_the_clock_in_utc(fake: FakeBsre) -> None:
    clock = FixedClock(datetime(2026, 11, 29, 1, 0, 7, 250_000, tzinfo=UTC))

    signed = make_signer(fake, clock=clock).sign(sign_request())

    assert signed.signed_at == datetime(2026, 11, 29, 1, 0, 7, tzinfo=UTC)


def test_signing_an_already_signed_document_adds_a_signature(fake: FakeBsre) -> None:
    signer = make_signer(fake)
    first = signer.sign(sign_request())

    second = signer.sign(sign_request(first.pdf, document_id="c-0001/v1-ulang"))

    assert verify_signature(second.pdf, [fake.ca_certificate_pem]).trusted
    assert len(signature_widgets(second.pdf)) == 2


@pytest.mark.parametrize("api", APIS)
def test_verify_reads_both_report_shapes(fake: FakeBsre, api: str) -> None:
    signer = make_signer(fake, api)
    signed = signer.sign(sign_request())

    report = signer.verify(signed.pdf)
    unsigned = signer.verify(simple_pdf("Belum ditandatangani", ["x"]))

    assert report["signature_count"] == 1 and unsigned["signature_count"] == 0
    if api == "v1":
        assert report["summary"] == "DOCUMENT VALID !!!"
        assert report["details"][0]["info_signer"]["signer_name"] == FAKE_SIGNER_CN
        assert unsigned["summary"] is None and unsigned["details"] == []
        assert calls(fake, "verify")[0].files["signed_file"].content_type == "application/pdf"
    else:
        assert report["conclusion"] == "VALID"
        assert report["signatureInformations"][0]["signerName"] == FAKE_SIGNER_CN
        assert unsigned["conclusion"] == "NO_SIGNATURE"


@pytest.mark.parametrize("api", APIS)
def test_user_status_is_read_on_both_versions(fake: FakeBsre, api: str) -> None:
    assert make_signer(fake, api).user_status() == "ISSUE"
    fake.user_status = "EXPIRED"
    assert make_signer(fake, api).user_status() == "EXPIRED"


# --- refusals (permanent) --------------------------------------------------------------------


def test_missing_passphrase_is_refused_without_any_http_call(fake: FakeBsre) -> None:
    for passphrase in (None, ""):
        with pytest.raises(PermanentError) as raised:
            make_signer(fake).sign(sign_request(passphrase=passphrase))
        assert raised.value.message == PASSPHRASE_REQUIRED
    assert fake.received == []


@pytest.mark.parametrize(
    ("api", "mode", "shape", "http"),
    [
        ("v1", None, "spring", 400),  # the v1 body {status_code: 2031, error}
        ("v1", "wrong_passphrase_500", "spring", 500),  # the same body with HTTP 500
        ("v2", None, "spring", 500),  # Spring: error "Internal Server Error", message the reason
        ("v2", None, "v1", 500),  # v2 answering in v1's shape
    ],
    ids=["v1-400", "v1-500", "v2-spring-500", "v2-v1-shape"],
)
def test_a_wrong_passphrase_in_any_shape_is_permanent_and_sent_once(
    fake: FakeBsre, api: str, mode: Any, shape: Any, http: int
) -> None:
    fake.mode = mode
    fake.v2_error_shape = shape
    with pytest.raises(PermanentError) as raised:
        make_signer(fake, api).sign(sign_request(passphrase="salah-ketik-123"))

    assert not isinstance(raised.value, TransientError)
    assert raised.value.message == WRONG_PASSPHRASE
    assert raised.value.detail["reason"] == "wrong_passphrase"
    assert raised.value.detail["http_status"] == http
    (got,) = calls(fake, api)
    assert got.passphrase_present and not got.passphrase_ok


@pytest.mark.parametrize("api", APIS)
def test_an_unregistered_nik_is_refused_before_any_signature(fake: FakeBsre, api: str) -> None:
    with pytest.raises(PermanentError) as raised:
        make_signer(fake, api, nik="7306019999999999").sign(sign_request())

    assert raised.value.message == NIK_NOT_REGISTERED
    assert raised.value.detail["bsre_status"] == "NOT_REGISTERED"
    assert calls(fake, api) == []


@pytest.mark.parametrize("status", [s for s in USER_STATUSES if s != "ISSUE"])
@pytest.mark.parametrize("api", APIS)
def test_a_certificate_not_issued_is_refused_before_the_passphrase_is_sent(
    fake: FakeBsre, api: str, status: str
) -> None:
    fake.user_status = status

    with pytest.raises(PermanentError) as raised:
        make_signer(fake, api).sign(sign_request())

    assert raised.value.message == STATUS_MESSAGES[status]
    assert raised.value.detail["bsre_status"] == status
    assert calls(fake, api) == []  # the passphrase never left SAPA


def test_rejected_service_credentials(fake: FakeBsre) -> None:
    with pytest.raises(PermanentError) as raised:
        make_signer(fake, password="bukan-password-nya").sign(sign_request())

    assert raised.value.message == ACCESS_DENIED
    (got,) = fake.received
    assert not got.auth_ok and got.status == 401


def test_a_redirect_is_not_followed(fake: FakeBsre) -> None:
    fake.mode = "redirect"

    with pytest.raises(PermanentError) as raised:
        make_signer(fake).sign(sign_request())

    assert raised.value.message == REDIRECTED
    assert len(fake.received) == 1


# --- outages and unreadable answers (transient) ----------------------------------------------


@pytest.mark.parametrize("mode", ["http_500", "http_429", "http_503"])
@pytest.mark.parametrize("api", APIS)
def test_a_service_down_is_transient(fake: FakeBsre, api: str, mode: Any) -> None:
    fake.mode = mode

    with pytest.raises(TransientError) as raised:
        make_signer(fake, api).sign(sign_request())

    assert raised.value.message == UNAVAILABLE
    assert raised.value.detail["reason"] == "unavailable"


@pytest.mark.parametrize("api", APIS)
def test_an_unrecognised_refusal_asks_the_status_again_and_keeps_bsres_words(
    fake: FakeBsre, api: str
) -> None:
    fake.mode = "unrecognised"

    with pytest.raises(TransientError) as raised:
        make_signer(fake, api).sign(sign_request())

    assert raised.value.detail["reason"] == "unrecognised"
    assert "kesalahan pada sistem penandatanganan" in raised.value.message
    assert "kesalahan pada sistem penandatanganan" in raised.value.detail["bsre_error"]
    status = "status" if api == "v1" else "status_v2"
    assert [r.api for r in fake.received] == [status, api, status]


def test_timeout_is_transient(fake: FakeBsre) -> None:
    fake.mode = "slow"
    started = time.monotonic()

    with pytest.raises(TransientError) as raised:
        make_signer(fake, timeout=0.3).sign(sign_request())

    assert raised.value.message == UNAVAILABLE
    assert raised.value.detail["failure"] == "timeout"
    assert time.monotonic() - started < 1.8  # the fake would answer after 2 s


def test_connection_refused_is_transient() -> None:
    signer = BsreSigner(f"http://127.0.0.1:{free_port()}", "u", "p", "7306012345678901")

    with pytest.raises(TransientError) as raised:
        signer.sign(sign_request())

    assert raised.value.message == UNAVAILABLE
    assert raised.value.__cause__ is None and raised.value.__context__ is None


@pytest.mark.parametrize("mode", ["not_pdf", "broken_pdf", "unsigned"])
@pytest.mark.parametrize("api", APIS)
def test_an_answer_that_is_not_a_signed_pdf_is_unrecognised(
    fake: FakeBsre, api: str, mode: Any
) -> None:
    fake.mode = mode

    with pytest.raises(TransientError) as raised:
        make_signer(fake, api, v1_response="BYTE").sign(sign_request())

    assert raised.value.message == BAD_ANSWER
    assert raised.value.detail["reason"] == "unrecognised"


# --- the passphrase stays secret -------------------------------------------------------------


def test_passphrase_never_leaks_on_success(
    fake: FakeBsre, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # includes urllib3's request lines
    signer = make_signer(fake)
    request = sign_request()

    signed = signer.sign(request)

    assert PASSPHRASE not in caplog.text
    assert PASSPHRASE not in repr(request)
    assert PASSPHRASE not in repr(signer)
    assert PASSPHRASE not in repr(signed)
    assert PASSPHRASE.encode() not in signed.pdf
    assert fake.password not in repr(signer)
    assert fake.nik not in repr(signer)  # the NIK is masked
    assert PASSPHRASE not in repr(fake.received)


@pytest.mark.parametrize(
    "mode",
    ["echo_passphrase", "wrong_passphrase_500", "http_500", "slow", "not_pdf", "unrecognised"],
)
def test_passphrase_never_leaks_on_failure(
    fake: FakeBsre, caplog: pytest.LogCaptureFixture, mode: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.mode = mode
    signer = make_signer(fake, timeout=0.3)

    with pytest.raises(SapaError) as raised:
        signer.sign(sign_request())

    assert PASSPHRASE not in everything_about(raised.value)
    assert PASSPHRASE not in caplog.text
    assert PASSPHRASE not in repr(fake.received)


def test_an_echoed_passphrase_and_nik_are_scrubbed_from_the_error(fake: FakeBsre) -> None:
    fake.mode = "echo_passphrase"

    # a refusal SAPA cannot read (retried once by the signing service), its text scrubbed
    with pytest.raises(TransientError) as raised:
        make_signer(fake).sign(sign_request())

    text = everything_about(raised.value)
    assert "***" in raised.value.message
    assert PASSPHRASE not in text
    assert fake.nik not in text
    assert calls(fake, "v1")[-1].passphrase_present


def test_connection_errors_do_not_chain_the_request(caplog: pytest.LogCaptureFixture) -> None:
    """A requests exception holds the prepared request, whose body carries the passphrase."""
    caplog.set_level(logging.DEBUG)
    base = f"http://127.0.0.1:{free_port()}"

    for api in ("v1", "v2"):
        signer = BsreSigner(base, "u", "p", "7306012345678901", api=api)
        with pytest.raises(TransientError) as raised:
            signer.sign(sign_request())
        assert PASSPHRASE not in everything_about(raised.value)
    assert PASSPHRASE not in caplog.text


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base": "10.0.0.1/api"},
        {"api": "v3"},
        {"nik": " "},
        {"password": ""},
        {"timeout": 0},
        {"connect_timeout": 0},
        {"v1_box": "corner"},
        {"v1_response": "JSON"},
        {"qr_box": (0, 1, 1, 1, 1)},
        {"qr_box": (-1, 1, 1, 0, 1)},
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any]) -> None:
    options: dict[str, Any] = {
        "base": "http://10.0.0.1",
        "username": "u",
        "password": "p",
        "nik": "7306012345678901",
    }
    options.update(kwargs)
    with pytest.raises(ValueError):
        BsreSigner(**options)


def test_importing_the_adapter_loads_neither_requests_nor_pyhanko() -> None:
    code = (
        "import sys, sapa.adapters.bsre_signer; "
        "heavy = [m for m in ('requests', 'pyhanko') if m in sys.modules]; "
        "print(', '.join(heavy)); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "shared")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
