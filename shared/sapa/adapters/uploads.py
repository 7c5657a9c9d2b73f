"""Uploaded files made safe to keep: type by content, size, images re-encoded without EXIF."""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from sapa.domain.documents import sniff
from sapa.domain.errors import ValidationFailed
from sapa.domain.texts import text

# Photos above this are scaled down (a phone's 12 MP photo stays legible at this size).
MAX_SIDE = 2560
# Refuse images that would decompress into more pixels than any honest document photo has
# (a small file that expands to gigabytes is a decompression bomb): a 12-megapixel phone photo
# (4000 × 3000, or 4032 × 3024) fits with room to spare.
MAX_PIXELS = 16_000_000
# ... and into more bytes than this once decoded (pixels × bytes per pixel of the image's mode):
# a 12-megapixel RGB photo is 36 MiB (a 12-megapixel RGBA PNG, 48 MiB, is refused: with its
# scaled copy and the encoder it would peak ~140 MiB above an idle instance; bench/bombs.py).
MAX_DECODED_BYTES = 36 * 1024 * 1024
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 2, "I;16": 2, "RGB": 3, "YCbCr": 3}


@dataclass(frozen=True)
class CleanFile:
    data: bytes
    content_type: str


def clean(data: bytes, *, limit_bytes: int, field: str) -> CleanFile:
    """Accept JPEG, PNG or PDF judged by content. Images are decoded and re-encoded (EXIF and
    GPS gone, orientation applied, large photos scaled down); PDFs must parse. Raises
    ValidationFailed with an Indonesian message for `field` otherwise."""
    if not data:
        raise ValidationFailed(text("file_empty"), {field: text("file_empty")})
    if len(data) > limit_bytes:
        msg = text("file_too_large", limit_mb=limit_bytes // (1024 * 1024))
        raise ValidationFailed(msg, {field: msg})
    ctype = sniff(data)
    if ctype is None:
        raise ValidationFailed(text("file_type"), {field: text("file_type")})
    if ctype == "application/pdf":
        from sapa.adapters.pdf import TOO_COMPRESSED_PDF, pdf_page_count
        from sapa.domain.errors import PermanentError

        try:
            pdf_page_count(data)  # within the decompression budgets (sapa.adapters.pdf)
        except PermanentError as exc:
            msg = exc.message if exc.message == TOO_COMPRESSED_PDF else text("pdf_unreadable")
            raise ValidationFailed(msg, {field: msg}) from None
        return CleanFile(data, ctype)
    return CleanFile(_reencode(data, ctype, field), ctype)


def _fit(size: tuple[int, int]) -> tuple[int, int]:
    """The output size of an image of `size`: its longest side at most MAX_SIDE."""
    width, height = size
    longest = max(width, height, 1)
    if longest <= MAX_SIDE:
        return width, height
    return max(1, width * MAX_SIDE // longest), max(1, height * MAX_SIDE // longest)


def _reencode(data: bytes, ctype: str, field: str) -> bytes:
    from PIL import Image, ImageOps

    bad = text("image_unreadable")
    try:
        with Image.open(BytesIO(data)) as probe:
            if probe.format == "JPEG":
                # JPEGs decode at 1/2, 1/4 or 1/8 scale when that still covers the output size
                # (draft): the budget applies to what will really be decoded, so a 24- or
                # 48-megapixel phone photo is fine while a header claiming 60,000² is not
                probe.draft(None, _fit(probe.size))
            width, height = probe.size
            per_pixel = _BYTES_PER_PIXEL.get(probe.mode, 4)
            if width * height > MAX_PIXELS or width * height * per_pixel > MAX_DECODED_BYTES:
                big = text("image_too_big")
                raise ValidationFailed(big, {field: big})
            probe.verify()  # structure check before the full decode
        with Image.open(BytesIO(data)) as opened:
            # Memory: a 12 MP photo is 36 MB per decoded copy, and a function instance has
            # 256 MiB. JPEGs decode at a reduced scale (draft) where it still covers the output;
            # the image is scaled down in place before it is turned, so at most one full-size
            # copy ever exists.
            opened.draft(None, _fit(opened.size))
            opened.load()
            img: Image.Image = opened
            if max(img.size) > MAX_SIDE:
                img.thumbnail((MAX_SIDE, MAX_SIDE))  # the box is square: orientation-free
            ImageOps.exif_transpose(img, in_place=True)
            out = BytesIO()
            if ctype == "image/jpeg":
                if img.mode not in ("RGB", "L"):
                    img = img.convert("RGB")
                # No exif= argument: the re-encoded file carries no EXIF (GPS) at all.
                img.save(out, format="JPEG", quality=85, optimize=True)
            else:
                img.save(out, format="PNG", optimize=True)
            return out.getvalue()
    except ValidationFailed:
        raise
    except Image.DecompressionBombError:
        # Pillow's own guard fires in Image.open (above 2× its limit) before ours can.
        big = text("image_too_big")
        raise ValidationFailed(big, {field: big}) from None
    except (OSError, ValueError, SyntaxError):
        raise ValidationFailed(bad, {field: bad}) from None
