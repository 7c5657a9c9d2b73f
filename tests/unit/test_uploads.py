"""Uploaded files made safe (`sapa.adapters.uploads.clean`): type by content, size before decoding,
images re-encoded without EXIF (GPS), orientation applied, large photos scaled down,
decompression bombs and broken files refused with Indonesian messages, PDFs parse-checked."""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib

import pytest
from PIL import ExifTags, Image

from sapa.adapters import uploads
from sapa.adapters.pdf import simple_pdf
from sapa.adapters.uploads import MAX_PIXELS, MAX_SIDE, clean
from sapa.domain.errors import ValidationFailed
from sapa.domain.texts import text

MB = 1024 * 1024
LIMIT = 10 * MB
FIELD = "doc_kk_lama"


def exif_with_gps(orientation: int | None = None) -> Image.Exif:
    """EXIF as a phone writes it: camera make, where the photo was taken, maybe a rotation."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "HP Murah"
    exif[ExifTags.Base.Model] = "A1"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (5.0, 12.0, 30.0)  # Sungguminasa
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (119.0, 27.0, 0.0)
    return exif


def photo(
    fmt: str = "JPEG", size: tuple[int, int] = (64, 40), exif: Image.Exif | None = None
) -> bytes:
    img = Image.new("RGB", size, (180, 60, 20))
    img.paste((20, 60, 180), (0, 0, size[0] // 2, size[1] // 2))  # not a flat colour
    out = io.BytesIO()
    if exif is not None:
        img.save(out, format=fmt, exif=exif)
    else:
        img.save(out, format=fmt)
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header declares width × height pixels (its image
    data would inflate to gigabytes): the shape of a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def refused(data: bytes, *, limit: int = LIMIT) -> str:
    """The message `clean` refuses `data` with (for FIELD, and as the overall message)."""
    with pytest.raises(ValidationFailed) as info:
        clean(data, limit_bytes=limit, field=FIELD)
    assert set(info.value.fields) == {FIELD}
    assert info.value.message == info.value.fields[FIELD]
    return info.value.fields[FIELD]


# ---- images ---------------------------------------------------------------------------------


def test_a_jpeg_with_gps_is_re_encoded_without_any_exif() -> None:
    # GIVEN a phone photo whose EXIF says where it was taken
    data = photo(exif=exif_with_gps())
    assert opened(data).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the GPS is really in there
    # WHEN it is cleaned
    out = clean(data, limit_bytes=LIMIT, field=FIELD)
    # THEN it is still a JPEG of the same size, with no EXIF at all (no GPS, no camera)
    assert out.content_type == "image/jpeg"
    img = opened(out.data)
    assert img.format == "JPEG"
    assert img.size == (64, 40)
    assert dict(img.getexif()) == {}
    assert "exif" not in img.info
    assert b"Exif\x00\x00" not in out.data
    assert b"HP Murah" not in out.data


def test_the_exif_orientation_is_applied_before_it_is_dropped() -> None:
    # GIVEN a 64×40 sensor image that the phone marks "rotate 90° clockwise" (Orientation 6)
    data = photo(size=(64, 40), exif=exif_with_gps(orientation=6))
    # WHEN it is cleaned
    img = opened(clean(data, limit_bytes=LIMIT, field=FIELD).data)
    # THEN the pixels are turned (portrait now) and nothing is left to turn them again
    assert img.size == (40, 64)
    assert dict(img.getexif()) == {}


def test_a_large_photo_is_scaled_down_to_the_maximum_side() -> None:
    # GIVEN a 24-megapixel photo (6000×4000)
    data = photo(size=(6000, 4000))
    # WHEN it is cleaned
    out = clean(data, limit_bytes=LIMIT, field=FIELD)
    # THEN its longest side is MAX_SIDE, the aspect ratio kept
    img = opened(out.data)
    assert MAX_SIDE == 2560
    assert img.size == (2560, 1707)
    assert img.format == "JPEG"


def test_a_png_stays_a_png_and_loses_its_exif() -> None:
    data = photo("PNG", size=(30, 20), exif=exif_with_gps(orientation=6))
    out = clean(data, limit_bytes=LIMIT, field=FIELD)
    assert out.content_type == "image/png"
    img = opened(out.data)
    assert img.format == "PNG"
    assert img.size == (20, 30)  # orientation applied here too
    assert dict(img.getexif()) == {}
    assert b"eXIf" not in out.data


def test_a_small_png_declaring_20000_by_20000_pixels_is_refused_fast() -> None:
    # GIVEN a "photo" of a few dozen bytes that would decode into 400 million pixels
    bomb = png_declaring(20_000, 20_000)
    assert len(bomb) < 200
    # WHEN it is cleaned THEN it is refused as too big, without decoding it
    started = time.perf_counter()
    assert refused(bomb) == text("image_too_big")
    assert time.perf_counter() - started < 0.5


def test_an_image_above_sapas_own_pixel_limit_is_refused_before_decoding() -> None:
    # 8000×8000 = 64 MP: under Pillow's own bomb limit, over SAPA's MAX_PIXELS
    assert MAX_PIXELS < 8000 * 8000
    started = time.perf_counter()
    assert refused(png_declaring(8000, 8000)) == text("image_too_big")
    assert time.perf_counter() - started < 0.5


def test_a_truncated_jpeg_is_refused_as_unreadable() -> None:
    data = photo(size=(400, 300))
    assert refused(data[: len(data) // 2]) == text("image_unreadable")


def test_a_png_with_a_broken_checksum_is_refused_as_unreadable() -> None:
    data = bytearray(photo("PNG", size=(40, 30)))
    data[45] ^= 0xFF  # inside the IDAT data: its CRC no longer matches
    assert refused(bytes(data)) == text("image_unreadable")


# ---- what is not an accepted file ----------------------------------------------------------


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("kk.jpg", b"not really")
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200,  # a Windows .exe
        b"\x7fELF\x02\x01\x01" + b"\x00" * 100,  # a Linux binary
        b"<!doctype html><html><script>alert(1)</script></html>",
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        _zip(),
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    ],
    ids=["exe", "elf", "html", "svg", "zip", "gif"],
)
def test_a_file_that_is_not_jpeg_png_or_pdf_is_refused_whatever_its_name(data: bytes) -> None:
    assert refused(data) == text("file_type") == "Berkas harus berupa JPG, PNG, atau PDF."


# ---- PDF ---------------------------------------------------------------------------------------


def test_a_valid_pdf_is_kept_byte_for_byte() -> None:
    pdf = simple_pdf("Buku Nikah", ["Salinan buku nikah (contoh)"], pages=2)
    out = clean(pdf, limit_bytes=LIMIT, field=FIELD)
    assert out.content_type == "application/pdf"
    assert out.data == pdf


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n" + b"this is no pdf at all\n" * 20,
        simple_pdf("Buku Nikah", ["x"])[:200],  # cut off
    ],
    ids=["garbage", "truncated"],
)
def test_a_pdf_that_does_not_parse_is_refused(data: bytes) -> None:
    assert refused(data) == text("pdf_unreadable")


# ---- size --------------------------------------------------------------------------------------


def test_an_empty_file_is_refused() -> None:
    assert refused(b"") == text("file_empty")


def test_a_50_mb_file_is_refused_by_its_size_without_being_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN 50 MB that starts like a JPEG, and an image decoder that must not be reached
    data = b"\xff\xd8\xff\xe0" + bytes(50 * MB)

    def no_decoding(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(uploads, "_reencode", no_decoding)
    started = time.perf_counter()
    # WHEN it is cleaned with the 10 MB limit THEN the size alone refuses it, at once
    assert refused(data, limit=LIMIT) == text("file_too_large", limit_mb=10)
    assert time.perf_counter() - started < 0.5


def test_a_file_of_exactly_the_limit_is_accepted() -> None:
    pdf = simple_pdf("Buku Nikah", ["x"])
    assert clean(pdf, limit_bytes=len(pdf), field=FIELD).data == pdf
    assert refused(pdf, limit=len(pdf) - 1).startswith("Ukuran berkas melebihi batas")
