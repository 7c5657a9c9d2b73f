"""Contract tests: BsreSigner against a fake BSrE Esign Client Service, over real HTTP."""

from __future__ import annotations

import hashlib
import logging
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

import pytest

from sapa.adapters.bsre_signer import (
    ACCESS_DENIED,
    BAD_ANSWER,
    CERT_EXPIRED,
    CERT_REVOKED,
    NIK_NOT_REGISTERED,
    PASSPHRASE_REQUIRED,
    REDIRECTED,
    UNAVAILABLE,
    WRONG_PASSPHRASE,
    BsreSigner,
    QrBox,
)
from sapa.adapters.clock import FixedClock
from sapa.domain.errors import PermanentError, SapaError, TransientError
from sapa.pdf import pdf_page_count, simple_pdf, verify_signature
from sapa.ports import SignedPdf, SignRequest
from tests.conftest import ROOT
from tests.contract.bsre_fake import FAKE_SIGNER_CN, PASSPHRASE, FakeBsre

VERIFY_URL = "https://sapa.example.go.id/verify/d/c-0001-v1"
APIS = ("v1", "v2")
PADES = "/ETSI.CAdES.detached"
DEFAULT_RECT = [469.0, 36.0, 559.0, 126.0]  # QrBox(): bottom right of A4, 36 pt margins


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBsre]:
    with FakeBsre(slow_seconds=2.0) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeBsre) -> Iterator[FakeBsre]:
    server.reset()
    yield server
    server.reset()


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


@pytest.mark.parametrize("api", APIS)
def test_sign_returns_a_trusted_visible_signature_on_the_last_page(
    fake: FakeBsre, api: str
) -> None:
    original = simple_pdf("Surat Keterangan Pindah", ["Nama: Budi"], pages=3)
    before = datetime.now(UTC).replace(microsecond=0)

    signed = make_signer(fake, api).sign(sign_request(original))

    assert isinstance(signed, SignedPdf)
    assert signed.pdf.startswith(b"%PDF")
    assert not signed.pdf.startswith(original)  # BSrE re-saves: no prefix is required
    assert pdf_page_count(signed.pdf) == 3
    assert signed.signed_at.tzinfo is not None
    assert signed.signed_at.utcoffset() == UTC.utcoffset(None)
    assert before <= signed.signed_at <= datetime.now(UTC)

    report = verify_signature(signed.pdf, [fake.ca_certificate_pem])
    assert report.intact and report.valid and report.trusted
    assert report.signer_common_name == FAKE_SIGNER_CN
    assert report.subfilter == PADES
    assert report.covers_whole_document
    assert signature_widgets(signed.pdf) == [(3, DEFAULT_RECT, True)]

    (got,) = fake.received
    assert got.api == api
    assert got.auth_ok
    assert got.passphrase_present and got.passphrase_ok
    assert got.pdf == original
    assert got.status == 200
    assert got.fields["nik"] == fake.nik
    assert got.fields["linkQR"] == VERIFY_URL
    assert got.fields["reason"] == "Penerbitan Surat Keterangan Pindah 7306-0001"
    assert got.fields["location"] == "Kabupaten Gowa"
    assert "passphrase" not in got.fields
    if api == "v1":
        assert got.fields["tampilan"] == "visible"
        assert got.fields["image"] == "false"
        assert got.fields["page"] == "3"
        assert [got.fields[k] for k in ("xAxis", "yAxis", "width", "height")] == [
            "469",
            "36",
            "90",
            "90",
        ]
        assert set(got.files) == {"file"}
        assert got.files["file"].content_type == "application/pdf"
        assert got.files["file"].filename == "c-0001-v1.pdf"
        assert signed.signature_id == fake.issued_ids[-1]
    else:
        assert got.fields["tampilan"] == "VISIBLE"
        assert "imageBase64" not in got.fields
        assert got.fields["page"] == 3
        assert [got.fields[k] for k in ("originX", "originY", "width", "height")] == [
            469,
            36,
            90,
            90,
        ]
        assert got.fields["signatureProperties_count"] == 1
        assert got.fields["file_count"] == 1
        assert got.fields["keys"] == ["file", "nik", "passphrase", "signatureProperties"]
        digest = hashlib.sha256(signed.pdf).hexdigest()[:20]
        assert signed.signature_id == f"bsre-{digest}"


@pytest.mark.parametrize("api", APIS)
def test_qr_box_chooses_page_and_rectangle(fake: FakeBsre, api: str) -> None:
    signer = make_signer(fake, api, qr_box=(1, 50, 60.5, 80, 70))

    signed = signer.sign(sign_request(simple_pdf("Surat", ["x"], pages=2)))

    assert signature_widgets(signed.pdf) == [(1, [50.0, 60.0, 130.0, 130.0], True)]
    fields = fake.received[-1].fields
    if api == "v1":
        assert [fields[k] for k in ("page", "xAxis", "yAxis", "width", "height")] == [
            "1",
            "50",
            "60.5",
            "80",
            "70",
        ]
    else:
        assert [fields[k] for k in ("page", "originX", "originY", "width", "height")] == [
            1,
            50,
            60.5,
            80,
            70,
        ]


def test_negative_page_counts_from_the_end(fake: FakeBsre) -> None:
    signed = make_signer(fake, qr_box=QrBox(page=-2)).sign(sign_request())

    assert fake.received[-1].fields["page"] == "2"
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


def test_v1_without_id_dokumen_header_falls_back_to_a_digest(fake: FakeBsre) -> None:
    fake.mode = "no_id"

    signed = make_signer(fake).sign(sign_request())

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


def test_verify_returns_bsre_report(fake: FakeBsre) -> None:
    signer = make_signer(fake)
    signed = signer.sign(sign_request())

    report = signer.verify(signed.pdf)

    assert report["summary"] == "VALID"
    assert report["jumlah_signature"] == 1
    assert report["details"][0]["info_signer"]["signer_name"] == FAKE_SIGNER_CN
    got = fake.received[-1]
    assert got.api == "verify"
    assert set(got.files) == {"signed_file"}
    assert got.pdf == signed.pdf


# --- refusals (permanent) --------------------------------------------------------------------


def test_missing_passphrase_is_refused_without_any_http_call(fake: FakeBsre) -> None:
    for passphrase in (None, ""):
        with pytest.raises(PermanentError) as raised:
            make_signer(fake).sign(sign_request(passphrase=passphrase))
        assert raised.value.message == PASSPHRASE_REQUIRED
    assert fake.received == []


@pytest.mark.parametrize("api", APIS)
def test_wrong_passphrase(fake: FakeBsre, api: str) -> None:
    with pytest.raises(PermanentError) as raised:
        make_signer(fake, api).sign(sign_request(passphrase="salah-ketik-123"))

    assert not isinstance(raised.value, TransientError)
    assert raised.value.message == WRONG_PASSPHRASE
    assert raised.value.detail["bsre_code"] == 2031
    (got,) = fake.received
    assert got.passphrase_present and not got.passphrase_ok
    assert got.status == 400


def test_wrong_passphrase_answered_with_http_500_is_still_permanent(fake: FakeBsre) -> None:
    """Some installations answer 2031 with HTTP 500: retrying could lock the certificate."""
    fake.mode = "wrong_passphrase_500"

    with pytest.raises(PermanentError) as raised:
        make_signer(fake).sign(sign_request())

    assert raised.value.message == WRONG_PASSPHRASE
    assert raised.value.detail["http_status"] == 500


@pytest.mark.parametrize("api", APIS)
def test_unregistered_nik(fake: FakeBsre, api: str) -> None:
    with pytest.raises(PermanentError) as raised:
        make_signer(fake, api, nik="7306019999999999").sign(sign_request())

    assert raised.value.message == NIK_NOT_REGISTERED
    assert raised.value.detail["bsre_code"] == 2011


@pytest.mark.parametrize(
    ("mode", "message"), [("expired", CERT_EXPIRED), ("revoked", CERT_REVOKED)]
)
@pytest.mark.parametrize("api", APIS)
def test_certificate_expired_or_revoked(fake: FakeBsre, api: str, mode: Any, message: str) -> None:
    fake.mode = mode

    with pytest.raises(PermanentError) as raised:
        make_signer(fake, api).sign(sign_request())

    assert raised.value.message == message


def test_rejected_service_credentials(fake: FakeBsre) -> None:
    with pytest.raises(PermanentError) as raised:
        make_signer(fake, password="bukan-password-nya").sign(sign_request())

    assert raised.value.message == ACCESS_DENIED
    (got,) = fake.received
    assert not got.auth_ok
    assert got.status == 401


def test_a_redirect_is_not_followed(fake: FakeBsre) -> None:
    fake.mode = "redirect"

    with pytest.raises(PermanentError) as raised:
        make_signer(fake).sign(sign_request())

    assert raised.value.message == REDIRECTED
    assert len(fake.received) == 1


# --- outages and bad answers (transient) -----------------------------------------------------


@pytest.mark.parametrize("mode", ["http_500", "http_429"])
@pytest.mark.parametrize("api", APIS)
def test_server_errors_are_transient(fake: FakeBsre, api: str, mode: Any) -> None:
    fake.mode = mode

    with pytest.raises(TransientError) as raised:
        make_signer(fake, api).sign(sign_request())

    assert raised.value.message == UNAVAILABLE


def test_timeout_is_transient(fake: FakeBsre) -> None:
    fake.mode = "slow"
    started = time.monotonic()

    with pytest.raises(TransientError) as raised:
        make_signer(fake, timeout=0.3).sign(sign_request())

    assert raised.value.message == UNAVAILABLE
    assert raised.value.detail["reason"] == "timeout"
    assert time.monotonic() - started < 1.8  # the fake would answer after 2 s


def test_connection_refused_is_transient() -> None:
    signer = BsreSigner(f"http://127.0.0.1:{free_port()}", "u", "p", "7306012345678901")

    with pytest.raises(TransientError) as raised:
        signer.sign(sign_request())

    assert raised.value.message == UNAVAILABLE
    assert raised.value.__cause__ is None and raised.value.__context__ is None


@pytest.mark.parametrize("mode", ["not_pdf", "broken_pdf", "unsigned"])
@pytest.mark.parametrize("api", APIS)
def test_an_answer_that_is_not_a_signed_pdf_is_transient(
    fake: FakeBsre, api: str, mode: Any
) -> None:
    fake.mode = mode

    with pytest.raises(TransientError) as raised:
        make_signer(fake, api).sign(sign_request())

    assert raised.value.message == BAD_ANSWER


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
    "mode", ["echo_passphrase", "wrong_passphrase_500", "http_500", "slow", "not_pdf"]
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

    with pytest.raises(PermanentError) as raised:
        make_signer(fake).sign(sign_request())

    text = everything_about(raised.value)
    assert "***" in raised.value.message
    assert PASSPHRASE not in text
    assert fake.nik not in text
    assert fake.received[-1].passphrase_present


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
