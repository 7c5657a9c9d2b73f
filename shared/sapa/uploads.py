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
# (a small file that expands to gigabytes is a decompression bomb).
MAX_PIXELS = 50_000_000


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
        from sapa.domain.errors import PermanentError
        from sapa.pdf import pdf_page_count

        try:
            pdf_page_count(data)
        except PermanentError:
            raise ValidationFailed(
                text("pdf_unreadable"), {field: text("pdf_unreadable")}
            ) from None
        return CleanFile(data, ctype)
    return CleanFile(_reencode(data, ctype, field), ctype)


def _reencode(data: bytes, ctype: str, field: str) -> bytes:
    from PIL import Image, ImageOps

    bad = text("image_unreadable")
    try:
        with Image.open(BytesIO(data)) as probe:
            width, height = probe.size
            if width * height > MAX_PIXELS:
                big = text("image_too_big")
                raise ValidationFailed(big, {field: big})
            probe.verify()  # structure check before the full decode
        with Image.open(BytesIO(data)) as opened:
            # Memory: a 12 MP photo is 36 MB per decoded copy, and a function instance has
            # 256 MiB. JPEGs of more than twice MAX_SIDE decode at a reduced scale (draft);
            # the image is scaled down in place before it is turned, so at most one full-size
            # copy ever exists.
            opened.draft(None, (MAX_SIDE, MAX_SIDE))
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
