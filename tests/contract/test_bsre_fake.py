"""Self-tests of the fake BSrE service (tests/contract/bsre_fake.py), over real HTTP.

They pin what the fake takes from BSrE's guide and client samples, so that the adapter's
contract tests rest on a fake that behaves like the documentation, not like the adapter.
"""

from __future__ import annotations

import base64
from io import BytesIO
from typing import Any

import pytest
import requests

from sapa.adapters.pdf import simple_pdf, verify_signature
from tests.contract.bsre_fake import (
    FAKE_SIGNER_CN,
    NIK,
    PASSPHRASE,
    VALID_NOTES,
    Box,
    FakeBsre,
)

A4_HEIGHT = 842.0
SCALE = 3.0  # render at 216 dpi
LINK = "https://sapa.example.go.id/verify/d/c-0001-v1"
UNKNOWN = "7306019999999999"


# --- helpers ---------------------------------------------------------------------------------


def document(pages: int = 2) -> bytes:
    return simple_pdf("Surat Keterangan Pindah", ["Nama: Budi"], pages=pages)


def qr_png(text: str) -> bytes:
    import qrcode

    image = qrcode.make(text, border=2)
    out = BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def post_v1(fake: FakeBsre, pdf: bytes | None = None, **form: str) -> requests.Response:
    data = {"nik": fake.nik, "passphrase": PASSPHRASE, "tampilan": "invisible", **form}
    files: dict[str, Any] = {"file": ("surat.pdf", pdf or document(), "application/pdf")}
    return requests.post(
        f"{fake.base_url}/api/sign/pdf",
        auth=(fake.username, fake.password),
        data=data,
        files=files,
        timeout=30,
    )


def post_v2(fake: FakeBsre, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{fake.base_url}{path}", auth=(fake.username, fake.password), json=body, timeout=30
    )


def sign_v2(fake: FakeBsre, props: dict[str, Any], **body: Any) -> requests.Response:
    payload = {
        "nik": fake.nik,
        "passphrase": PASSPHRASE,
        "signatureProperties": [props],
        "file": [b64(document())],
        **body,
    }
    return post_v2(fake, "/api/v2/sign/pdf", payload)


def is_spring(body: dict[str, Any], status: int, path: str) -> bool:
    return (
        set(body) >= {"timestamp", "status", "error", "path"}
        and body["status"] == status
        and body["path"] == path
        and isinstance(body["timestamp"], str)
    )


def widget_rects(pdf: bytes) -> list[tuple[int, list[float]]]:
    """(1-based page, /Rect) of every signature widget."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(BytesIO(pdf))
    found = []
    for index, page in enumerate(reader.root["/Pages"]["/Kids"], start=1):
        for annot in page.get_object().get("/Annots", []):
            annot = annot.get_object()
            if annot.get("/FT") == "/Sig":
                found.append((index, [float(v) for v in annot["/Rect"]]))
    return found


def render(pdf: bytes, page: int) -> Any:
    """The page (1-based) as a PIL image at SCALE, with form widgets drawn."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    doc.init_forms()
    return doc[page - 1].render(scale=SCALE, may_draw_forms=True).to_pil()


def pixels(box: Box) -> tuple[int, int, int, int]:
    """A box in PDF points (bottom-left origin, A4) as a crop rectangle in rendered pixels."""
    x1, y1, x2, y2 = box
    return (
        round(x1 * SCALE),
        round((A4_HEIGHT - y2) * SCALE),
        round(x2 * SCALE),
        round((A4_HEIGHT - y1) * SCALE),
    )


def qr_codes(image: Any) -> list[Any]:
    import zxingcpp

    return [code for code in zxingcpp.read_barcodes(image) if code.valid]


def assert_qr_fills_box(pdf: bytes, page: int, box: Box, text: str) -> None:
    """The QR with `text` is found inside `box` on `page`, and it is large there."""
    image = render(pdf, page)
    left, top, right, bottom = pixels(box)
    inside = qr_codes(image.crop((left, top, right, bottom)))
    assert [code.text for code in inside] == [text]
    (whole,) = [code for code in qr_codes(image) if code.text == text]
    corners = [whole.position.top_left, whole.position.top_right]
    corners += [whole.position.bottom_left, whole.position.bottom_right]
    xs, ys = [p.x for p in corners], [p.y for p in corners]
    assert left - 2 <= min(xs) and max(xs) <= right + 2
    assert top - 2 <= min(ys) and max(ys) <= bottom + 2
    side = min(right - left, bottom - top)
    assert max(xs) - min(xs) >= 0.7 * side  # the QR fills the box, it is not a thumbnail


# --- v2 sign: image and coordinates ----------------------------------------------------------


@pytest.mark.parametrize("image", [None, ""])
def test_v2_visible_without_image_is_a_spring_500(fake: FakeBsre, image: str | None) -> None:
    # GIVEN a VISIBLE signature request without (or with an empty) imageBase64
    props: dict[str, Any] = {"tampilan": "VISIBLE", "page": 1, "originX": 10, "originY": 10}
    props |= {"width": 100, "height": 50, "linkQR": LINK}
    if image is not None:
        props["imageBase64"] = image

    # WHEN it is sent to v2
    answer = sign_v2(fake, props)

    # THEN BSrE answers a Spring 500 whose message gives the reason; linkQR is recorded only
    assert answer.status_code == 500
    body = answer.json()
    assert is_spring(body, 500, "/api/v2/sign/pdf")
    assert body["error"] == "Internal Server Error"
    assert "imageBase64" in body["message"]
    (got,) = fake.received
    assert got.api == "v2" and got.status == 500
    assert got.fields["linkQR"] == LINK
    assert got.boxes == ()
    if image is not None:
        assert got.fields["imageBase64"] == "<0 karakter>"


def test_v2_box_is_measured_from_the_top_left_corner(fake: FakeBsre) -> None:
    # GIVEN a QR image to show at originX 60, originY 80 (from the top), 150 x 150, on page 2
    picture = qr_png("https://sapa.example.go.id/uji/v2")
    props = {"tampilan": "VISIBLE", "imageBase64": b64(picture), "page": 2}
    props |= {"originX": 60, "originY": 80, "width": 150, "height": 150}
    props |= {"reason": "Uji", "location": "Gowa"}

    # WHEN v2 signs
    answer = sign_v2(fake, props)

    # THEN the box in PDF terms is x 60..210, y (842 - 80 - 150)..(842 - 80), the image fills
    # it, and nothing is drawn where a bottom-left reading of the numbers would have put it
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"time", "file"} and isinstance(body["time"], int)
    (signed_b64,) = body["file"]
    signed = base64.b64decode(signed_b64)
    expected: Box = (60.0, 612.0, 210.0, 762.0)
    assert widget_rects(signed) == [(2, list(expected))]
    assert_qr_fills_box(signed, 2, expected, "https://sapa.example.go.id/uji/v2")
    bottom_left_reading = render(signed, 2).crop(pixels((60.0, 80.0, 210.0, 230.0)))
    assert qr_codes(bottom_left_reading) == []
    assert qr_codes(render(signed, 1)) == []
    report = verify_signature(signed, [fake.ca_certificate_pem])
    assert report.valid and report.trusted and report.signer_common_name == FAKE_SIGNER_CN
    (got,) = fake.received
    assert got.boxes == ((2, expected),)
    assert got.image_size == len(picture)
    assert got.fields["imageBase64"] == f"<{len(b64(picture))} karakter>"
    assert got.fields["keys"] == ["file", "nik", "passphrase", "signatureProperties"]
    assert got.fields["signatureProperties_count"] == 1 and got.fields["file_count"] == 1
    assert got.passphrase_present and got.passphrase_ok
    assert "passphrase" not in got.fields


def test_v2_signs_every_file_with_one_properties_entry(fake: FakeBsre) -> None:
    # GIVEN two documents and one INVISIBLE entry
    files = [b64(document(1)), b64(document(3))]

    # WHEN v2 signs them
    answer = sign_v2(fake, {"tampilan": "INVISIBLE"}, file=files)

    # THEN both come back signed, re-saved (the original is no prefix), in order
    assert answer.status_code == 200
    signed = [base64.b64decode(item) for item in answer.json()["file"]]
    assert len(signed) == 2
    for original, result in zip([document(1), document(3)], signed, strict=True):
        assert not result.startswith(original)
        assert verify_signature(result, [fake.ca_certificate_pem]).trusted
    assert fake.received[-1].pdfs == (document(1), document(3))


# --- v1 sign: QR and image in the box --------------------------------------------------------


@pytest.mark.parametrize(
    ("v1_box", "width", "height"), [("size", "120", "120"), ("corners", "420", "220")]
)
def test_v1_qr_lands_in_the_box(fake: FakeBsre, v1_box: Any, width: str, height: str) -> None:
    # GIVEN the fake reading width/height as a size or as the upper-right corner
    fake.v1_box = v1_box

    # WHEN v1 signs with a QR (image=false) at xAxis 300, yAxis 100 on the last page
    answer = post_v1(
        fake,
        tampilan="visible",
        image="false",
        linkQR=LINK,
        halaman="terakhir",
        xAxis="300",
        yAxis="100",
        width=width,
        height=height,
        reason="Penerbitan surat",
        location="Kabupaten Gowa",
    )

    # THEN the box is 300..420 x 100..220 (bottom-left origin) and the QR fills it
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/pdf"
    assert answer.headers["id_dokumen"] == fake.issued_ids[-1]
    expected: Box = (300.0, 100.0, 420.0, 220.0)
    assert widget_rects(answer.content) == [(2, list(expected))]
    assert_qr_fills_box(answer.content, 2, expected, LINK)
    assert not answer.content.startswith(document())
    assert verify_signature(answer.content, [fake.ca_certificate_pem]).trusted
    (got,) = fake.received
    assert got.fields["linkQR"] == LINK and got.fields["halaman"] == "terakhir"
    assert got.boxes == ((2, expected),)


def test_v1_image_ttd_is_drawn_in_the_box(fake: FakeBsre) -> None:
    # GIVEN a signature image (a QR PNG, so that it can be found again)
    picture = qr_png("ttd-kepala-dinas")

    # WHEN v1 signs with image=true on page 1, tampilan in capitals
    answer = requests.post(
        f"{fake.base_url}/api/sign/pdf",
        auth=(fake.username, fake.password),
        data={
            "nik": fake.nik,
            "passphrase": PASSPHRASE,
            "tampilan": "VISIBLE",
            "image": "true",
            "page": "1",
            "xAxis": "50",
            "yAxis": "600",
            "width": "160",
            "height": "100",
        },
        files={
            "file": ("surat.pdf", document(), "application/pdf"),
            "imageTTD": ("ttd.png", picture, "image/png"),
        },
        timeout=30,
    )

    # THEN the image is drawn in 50..210 x 600..700
    assert answer.status_code == 200
    assert_qr_fills_box(answer.content, 1, (50.0, 600.0, 210.0, 700.0), "ttd-kepala-dinas")
    assert fake.received[-1].image_size == len(picture)


# --- user status -----------------------------------------------------------------------------


def test_user_status_endpoints(fake: FakeBsre) -> None:
    # GIVEN the registered NIK with an ISSUE certificate, and an unknown NIK
    auth = (fake.username, fake.password)

    # WHEN both APIs are asked about both
    v1_known = requests.get(f"{fake.base_url}/api/user/status/{NIK}", auth=auth, timeout=10)
    v1_unknown = requests.get(f"{fake.base_url}/api/user/status/{UNKNOWN}", auth=auth, timeout=10)
    v2_known = post_v2(fake, "/api/v2/user/check/status", {"nik": NIK})
    v2_unknown = post_v2(fake, "/api/v2/user/check/status", {"nik": UNKNOWN})

    # THEN they answer 200 with the documented codes
    assert v1_known.status_code == 200
    assert v1_known.json() == {
        "status_code": 1111,
        "status": "ISSUE",
        "message": "User sudah terdaftar dan memiliki sertifikat dengan status ISSUE",
    }
    assert v1_unknown.status_code == 200
    assert v1_unknown.json() == {
        "status_code": 1110,
        "status": "NOT_REGISTERED",
        "message": "User belum terdaftar",
    }
    assert v2_known.status_code == 200
    assert v2_known.json()["status_code"] == 1111 and v2_known.json()["status"] == "ISSUE"
    assert v2_unknown.status_code == 200
    assert v2_unknown.json()["status_code"] == 2011
    assert v2_unknown.json()["status"] == "NOT_REGISTERED"
    assert [r.api for r in fake.received] == ["status", "status", "status_v2", "status_v2"]


def test_a_certificate_that_is_not_issued_is_reported_and_refuses_signing(
    fake: FakeBsre,
) -> None:
    # GIVEN a registered user without a certificate
    fake.user_status = "NO_CERTIFICATE"

    # WHEN the status is asked and both APIs are asked to sign
    status_v1 = requests.get(
        f"{fake.base_url}/api/user/status/{NIK}", auth=(fake.username, fake.password), timeout=10
    )
    status_v2 = post_v2(fake, "/api/v2/user/check/status", {"nik": NIK})
    signed_v1 = post_v1(fake)
    signed_v2 = sign_v2(fake, {"tampilan": "INVISIBLE"})

    # THEN the status names it (v2 code 2021) and signing is refused with it
    assert status_v1.json()["status"] == "NO_CERTIFICATE"
    assert "NO_CERTIFICATE" in status_v1.json()["message"]
    assert status_v2.json()["status_code"] == 2021
    assert status_v2.json()["status"] == "NO_CERTIFICATE"
    reason = "Sertifikat user tidak aktif (status NO_CERTIFICATE)"
    assert signed_v1.status_code == 400
    assert signed_v1.json() == {"status_code": 2021, "error": reason}
    assert signed_v2.status_code == 500
    assert is_spring(signed_v2.json(), 500, "/api/v2/sign/pdf")
    assert signed_v2.json()["message"] == reason


# --- v1 BASE64 answers and download ----------------------------------------------------------


def test_download_once_then_404(fake: FakeBsre) -> None:
    # GIVEN a document signed with jenis_response=BASE64 (the "download" flavour)
    answer = post_v1(fake, jenis_response="BASE64")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"id_dokumen", "message", "signing_time"}
    assert body["message"] == "Proses berhasil"
    document_id = body["id_dokumen"]
    url = f"{fake.base_url}/api/sign/download/{document_id}"
    auth = (fake.username, fake.password)

    # WHEN downloads are unavailable for a while, then it is downloaded twice
    fake.mode = "download_unavailable"
    unavailable = requests.get(url, auth=auth, timeout=10)
    fake.mode = None
    first = requests.get(url, auth=auth, timeout=10)
    second = requests.get(url, auth=auth, timeout=10)

    # THEN the outage did not consume it, the first download has it, the second is a 404
    assert unavailable.status_code == 503
    assert is_spring(unavailable.json(), 503, f"/api/sign/download/{document_id}")
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "application/pdf"
    assert first.headers["id_dokumen"] == document_id
    assert verify_signature(first.content, [fake.ca_certificate_pem]).trusted
    assert second.status_code == 404
    assert second.json() == {
        "status_code": 4044,
        "error": "File tidak tersedia, pastikan bahwa dokumen belum di download",
    }
    assert fake.downloads == {document_id: 3}
    assert [r.status for r in fake.received if r.api == "download"] == [503, 200, 404]


def test_base64_inline_answer(fake: FakeBsre) -> None:
    # GIVEN an installation that answers BASE64 with the file inline
    fake.base64_answer = "inline"

    # WHEN v1 signs with jenis_response=BASE64
    answer = post_v1(fake, jenis_response="base64")

    # THEN the JSON carries the id and the signed file
    body = answer.json()
    assert set(body) == {"id_dokumen", "base64_signed_file"}
    assert body["id_dokumen"] == fake.issued_ids[-1]
    signed = base64.b64decode(body["base64_signed_file"])
    assert verify_signature(signed, [fake.ca_certificate_pem]).trusted


# --- verify ----------------------------------------------------------------------------------


def test_verifying_an_unsigned_document(fake: FakeBsre) -> None:
    # GIVEN an unsigned PDF
    pdf = document()

    # WHEN both verify endpoints are asked
    v1 = requests.post(
        f"{fake.base_url}/api/sign/verify",
        auth=(fake.username, fake.password),
        files={"signed_file": ("surat.pdf", pdf, "application/pdf")},
        timeout=30,
    )
    v2 = post_v2(fake, "/api/v2/verify/pdf", {"file": b64(pdf)})

    # THEN they answer the documented "no signature" shapes
    assert v1.status_code == 200
    assert v1.json() == {
        "nama_dokumen": "surat.pdf",
        "jumlah_signature": 0,
        "notes": None,
        "details": [],
        "summary": None,
    }
    assert v2.status_code == 200
    assert v2.json() == {
        "conclusion": "NO_SIGNATURE",
        "description": "Dokumen tidak memiliki tandatangan elektronik",
        "signatureInformations": [],
        "signatureCount": 0,
    }
    assert [r.api for r in fake.received] == ["verify", "verify_v2"]


def test_verifying_a_signed_document(fake: FakeBsre) -> None:
    # GIVEN a document the fake signed
    signed = post_v1(fake, reason="Uji", location="Gowa").content

    # WHEN both verify endpoints are asked
    v1 = requests.post(
        f"{fake.base_url}/api/sign/verify",
        auth=(fake.username, fake.password),
        files={"signed_file": ("ttd.pdf", signed, "application/pdf")},
        timeout=30,
    ).json()
    v2 = post_v2(fake, "/api/v2/verify/pdf", {"file": b64(signed)}).json()

    # THEN both call it valid and name the signer, field, reason and location
    assert v1["summary"] == "DOCUMENT VALID !!!" and v1["notes"] == VALID_NOTES
    assert v1["jumlah_signature"] == 1
    (detail,) = v1["details"]
    assert detail["info_signer"]["signer_name"] == FAKE_SIGNER_CN
    assert detail["info_signer"]["cert_user_certified"] is True
    assert detail["signature_document"]["document_integrity"] is True
    assert detail["signature_document"]["reason"] == "Uji"
    assert detail["signature_document"]["location"] == "Gowa"
    assert v2["conclusion"] == "VALID" and v2["signatureCount"] == 1
    (info,) = v2["signatureInformations"]
    assert info["signerName"] == FAKE_SIGNER_CN and info["fieldName"] == detail["signature_field"]
    assert info["integrityValid"] and info["certificateTrusted"] and info["lastSignature"]
    assert info["timestampInfomation"] is None
    assert "signatureAlgoritm" in info["certificateDetails"][0]


def test_v2_verify_of_invalid_base64_is_a_spring_500(fake: FakeBsre) -> None:
    # GIVEN / WHEN a file that is not base64
    answer = post_v2(fake, "/api/v2/verify/pdf", {"file": "bukan base64!"})

    # THEN Spring's 500
    assert answer.status_code == 500
    assert is_spring(answer.json(), 500, "/api/v2/verify/pdf")


# --- refusals --------------------------------------------------------------------------------


def test_wrong_passphrase_shapes(fake: FakeBsre) -> None:
    # GIVEN a wrong passphrase
    wrong = "salah-ketik-123"

    # WHEN both APIs are asked to sign with it, and v2 again with the v1 error shape
    v1 = post_v1(fake, passphrase=wrong)
    v2 = sign_v2(fake, {"tampilan": "INVISIBLE"}, passphrase=wrong)
    fake.v2_error_shape = "v1"
    v2_as_v1 = sign_v2(fake, {"tampilan": "INVISIBLE"}, passphrase=wrong)

    # THEN v1 answers 400 {2031}, v2 a Spring 500 with the reason (or the v1 body with 500)
    assert v1.status_code == 400
    assert v1.json() == {"status_code": 2031, "error": "Passphrase anda salah"}
    assert v2.status_code == 500
    assert is_spring(v2.json(), 500, "/api/v2/sign/pdf")
    assert v2.json()["error"] == "Internal Server Error"
    assert v2.json()["message"] == "Passphrase anda salah"
    assert v2_as_v1.status_code == 500
    assert v2_as_v1.json() == {"status_code": 2031, "error": "Passphrase anda salah"}
    for got in fake.received:
        assert got.passphrase_present and not got.passphrase_ok
        assert "passphrase" not in got.fields
    assert wrong not in repr(fake.received) and PASSPHRASE not in repr(fake.received)


def test_wrong_passphrase_500_mode(fake: FakeBsre) -> None:
    # GIVEN an installation that answers 2031 with HTTP 500
    fake.mode = "wrong_passphrase_500"

    # WHEN v1 signs
    answer = post_v1(fake)

    # THEN the same body comes with HTTP 500
    assert answer.status_code == 500
    assert answer.json() == {"status_code": 2031, "error": "Passphrase anda salah"}


def test_unknown_nik(fake: FakeBsre) -> None:
    # GIVEN / WHEN v1 signs for a NIK BSrE does not know
    answer = post_v1(fake, nik=UNKNOWN)

    # THEN 400 {2011}
    assert answer.status_code == 400
    assert answer.json() == {"status_code": 2011, "error": "User tidak terdaftar"}


def test_rejected_basic_auth_is_a_spring_401(fake: FakeBsre) -> None:
    # GIVEN / WHEN the v2 endpoint is called with wrong service credentials
    answer = requests.post(
        f"{fake.base_url}/api/v2/sign/pdf", auth=(fake.username, "salah"), json={}, timeout=10
    )

    # THEN Spring Security's 401, recorded as not authenticated
    assert answer.status_code == 401
    body = answer.json()
    assert is_spring(body, 401, "/api/v2/sign/pdf") and body["error"] == "Unauthorized"
    (got,) = fake.received
    assert not got.auth_ok and got.status == 401


def test_unrecognised_and_transport_modes(fake: FakeBsre) -> None:
    # GIVEN / WHEN the fake refuses in a way no client knows, then fails as a server
    fake.mode = "unrecognised"
    v1 = post_v1(fake)
    v2 = sign_v2(fake, {"tampilan": "INVISIBLE"})
    fake.mode = "http_500"
    broken = sign_v2(fake, {"tampilan": "INVISIBLE"})

    # THEN v1 400 {9001}, v2 Spring 500 with that text, and a 500 without a reason
    assert v1.status_code == 400
    assert v1.json() == {
        "status_code": 9001,
        "error": "Terjadi kesalahan pada sistem penandatanganan",
    }
    assert v2.status_code == 500
    assert v2.json()["message"] == "Terjadi kesalahan pada sistem penandatanganan"
    assert broken.status_code == 500
    assert is_spring(broken.json(), 500, "/api/v2/sign/pdf")
    assert not broken.json().get("message")
