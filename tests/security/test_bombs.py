"""Decompression bombs: files that are small on the wire and huge once decoded are refused before
anything decodes them, with a message in Bahasa Indonesia; the largest honest files still pass.

The files are made by the tests (bench/bombs.py makers), never committed. What they cost in
memory and time is the `bombs` benchmark's (`make bench ARGS="--only bombs"`), not a test's.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench import bombs
from sapa.adapters.pdf import TOO_COMPRESSED_PDF, pdf_page_count, simple_pdf
from sapa.adapters.uploads import MAX_PIXELS, clean
from sapa.domain.errors import PermanentError, ValidationFailed
from sapa.domain.texts import text

MIB = 1024 * 1024
LIMIT = 100 * MIB  # upload size limit for the test: the bombs are small anyway

PDF_BOMBS: dict[str, Callable[[], bytes]] = {
    "xref stream 20 MiB": lambda: bombs.pdf_xref_stream_bomb(20 * MIB),
    "object stream 8 MiB": lambda: bombs.pdf_object_stream_bomb(8 * MIB),
    "content stream 80 MiB": lambda: bombs.pdf_content_bomb(80 * MIB),
    "image stream 80 MiB": lambda: bombs.pdf_image_bomb(80 * MIB),
    "chained flate 200 MiB": lambda: bombs.pdf_chained_flate_bomb(200 * MIB),
}
IMAGE_BOMBS: dict[str, Callable[[], bytes]] = {
    "png 7070x7070 rgba (the issue's)": lambda: bombs.png_header_bomb(7070, 7070),
    "png 40000x40000 gray": lambda: bombs.png_header_bomb(40_000, 40_000, color=0),
    "png 4000x3000 rgba (over the byte budget)": lambda: bombs.png_header_bomb(4000, 3000),
    "jpeg 60000x60000 header": bombs.jpeg_header_bomb,
}


@pytest.mark.parametrize("name", sorted(PDF_BOMBS))
def test_a_pdf_bomb_is_refused_before_it_is_parsed(name: str) -> None:
    data = PDF_BOMBS[name]()
    assert len(data) < 2 * MIB  # small on the wire
    with pytest.raises(ValidationFailed) as refused:
        clean(data, limit_bytes=LIMIT, field="doc")
    assert refused.value.message == TOO_COMPRESSED_PDF
    assert refused.value.fields == {"doc": TOO_COMPRESSED_PDF}
    # every PDF reader of SAPA goes through the same check (signing, BSrE answers, ...)
    with pytest.raises(PermanentError, match="mengembang"):
        pdf_page_count(data)


@pytest.mark.parametrize("name", sorted(IMAGE_BOMBS))
def test_an_image_bomb_is_refused_from_its_header(name: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        clean(IMAGE_BOMBS[name](), limit_bytes=LIMIT, field="foto")
    assert refused.value.message == text("image_too_big")


def test_the_pixel_cap_fits_a_12_megapixel_phone_photo() -> None:
    assert 4032 * 3024 <= MAX_PIXELS < 50_000_000
    honest = bombs.png_header_bomb(4000, 3000, color=2)  # 36 MiB decoded: the budget's edge
    assert clean(honest, limit_bytes=LIMIT, field="foto").content_type == "image/png"


def test_an_ordinary_pdf_with_compressed_streams_passes() -> None:
    ordinary = bombs._pdf(
        [
            bombs._CATALOG,
            bombs._PAGES,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            bombs._stream(b"/Filter /FlateDecode", bombs._deflate_zeros(2 * MIB)),
        ]
    )
    assert pdf_page_count(ordinary) == 1
    assert clean(ordinary, limit_bytes=LIMIT, field="doc").content_type == "application/pdf"
    assert pdf_page_count(simple_pdf("Surat", ["isi"], pages=3)) == 3
