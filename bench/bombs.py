"""Benchmark: the worst uploads we can build (decompression bombs), refused or handled in bounds.

Each file is made here, in memory, never committed (tests/security/test_bombs.py uses the same
makers). SUT: a fresh Python process that imports `sapa.adapters.uploads` and cleans one file as the
guest book and `media_store` do (`uploads.clean`). Figure: the growth of the process's peak
resident memory (VmHWM) while cleaning, and the wall time of the cleaning. FLOOR: the same
process cleaning a tiny valid PNG. Targets (absolute): every bomb refused (a check row each)
within 100 MiB above the floor's peak; the largest honest files (a 12-megapixel phone photo, the
largest PNG accepted) are accepted, their peak reported (the memory benchmark holds a whole
instance to 180 MiB); the seconds are reported.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.harness import Context, Row, benchmark, check, vs_floor

MIB = 1024 * 1024
TARGET_MIB = 100.0
ROOT = Path(__file__).resolve().parents[1]


# ---- makers --------------------------------------------------------------------------------


def _deflate_zeros(size: int, level: int = 9) -> bytes:
    """zlib data that inflates to `size` zero bytes, made in 1 MiB steps (no big buffer)."""
    packer = zlib.compressobj(level)
    block = b"\x00" * MIB
    out = bytearray()
    left = size
    while left > 0:
        n = min(left, MIB)
        out += packer.compress(block[:n])
        left -= n
    out += packer.flush()
    return bytes(out)


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF of `objects` (numbered from 1) with a classic xref table; object 1 is the root."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< %s /Length %d >>\nstream\n" % (dictionary, len(data)) + data + b"\nendstream"


_CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
_PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
_PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"


def pdf_xref_stream_bomb(inflated: int = 20 * MIB) -> bytes:
    """The issue's first bomb: a cross-reference stream that inflates to `inflated` bytes
    (pyHanko turned 20 MB of it into ~800 MB of objects)."""
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"
    head = _pdf([_CATALOG, _PAGES, page])
    start = head.rindex(b"xref\n")
    body = head[:start]
    xref_obj = _stream(
        b"/Type /XRef /Size 5 /W [1 2 1] /Root 1 0 R /Filter /FlateDecode",
        _deflate_zeros(inflated),
    )
    offset = len(body)
    body += b"4 0 obj\n" + xref_obj + b"\nendobj\n"
    return body + b"startxref\n%d\n%%%%EOF\n" % offset


def pdf_content_bomb(inflated: int = 512 * MIB) -> bytes:
    """A page whose content stream inflates to `inflated` bytes."""
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>"
    content = _stream(b"/Filter /FlateDecode", _deflate_zeros(inflated))
    return _pdf([_CATALOG, _PAGES, page, content])


def pdf_image_bomb(inflated: int = 1024 * MIB) -> bytes:
    """A page with an image XObject whose samples inflate to `inflated` bytes."""
    side = int((inflated // 3) ** 0.5)
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /XObject << /Im1 4 0 R >> >> >>"
    )
    image = _stream(
        b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
        b"/BitsPerComponent 8 /Filter /FlateDecode" % (side, side),
        _deflate_zeros(inflated),
    )
    return _pdf([_CATALOG, _PAGES, page, image])


def pdf_object_stream_bomb(inflated: int = 64 * MIB) -> bytes:
    """An object stream (objects packed inside a stream) that inflates to `inflated` bytes."""
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"
    packed = _stream(b"/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode", _deflate_zeros(inflated))
    return _pdf([_CATALOG, _PAGES, page, packed])


def pdf_chained_flate_bomb(inflated: int = 4096 * MIB) -> bytes:
    """A stream compressed twice ([/FlateDecode /FlateDecode]): a small outer layer holds an
    inner layer that inflates to `inflated` bytes (4 GiB in ~4 KiB)."""
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>"
    inner = _deflate_zeros(inflated)
    content = _stream(b"/Filter [/FlateDecode /FlateDecode]", zlib.compress(inner, 9))
    return _pdf([_CATALOG, _PAGES, page, content])


def png_header_bomb(width: int, height: int, *, color: int = 6) -> bytes:
    """A PNG of `width` × `height` (color type 6: RGBA) whose rows are all zero: a few hundred
    KB that decode to width × height × 4 bytes. Written row by row (no big buffer)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    channels = {0: 1, 2: 3, 6: 4}[color]
    row = b"\x00" * (1 + width * channels)
    packer = zlib.compressobj(9)
    idat = bytearray()
    for _ in range(height):
        idat += packer.compress(row)
    idat += packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", bytes(idat))
        + chunk(b"IEND", b"")
    )


def jpeg_header_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A small valid JPEG whose frame header claims `width` × `height`."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _phone_photo() -> bytes:
    from bench.memory import phone_photo

    return phone_photo(10_000_000)


def tiny_png() -> bytes:
    return png_header_bomb(4, 4, color=2)


# name → (maker, expected: "refused" or "accepted")
BOMBS: dict[str, tuple[Callable[[], bytes], str]] = {
    "pdf xref stream 20 MiB": (pdf_xref_stream_bomb, "refused"),
    "pdf content stream 512 MiB": (pdf_content_bomb, "refused"),
    "pdf image stream 1 GiB": (pdf_image_bomb, "refused"),
    "pdf object stream 64 MiB": (pdf_object_stream_bomb, "refused"),
    "pdf chained flate 4 GiB": (pdf_chained_flate_bomb, "refused"),
    "png 7070x7070 rgba": (lambda: png_header_bomb(7070, 7070), "refused"),
    "png 40000x40000 gray": (lambda: png_header_bomb(40_000, 40_000, color=0), "refused"),
    "jpeg 60000x60000 header": (jpeg_header_bomb, "refused"),
    "png 4000x3000 rgba (over the byte budget)": (lambda: png_header_bomb(4000, 3000), "refused"),
    "jpeg 4000x3000 10 MB phone photo": (_phone_photo, "accepted"),
    "png 4000x3000 rgb (largest accepted)": (
        lambda: png_header_bomb(4000, 3000, color=2),
        "accepted",
    ),
}


# ---- measuring -----------------------------------------------------------------------------

_PROBE = r"""
import json, sys, time
from sapa.adapters.uploads import clean
from sapa.domain.errors import ValidationFailed

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0

data = open(sys.argv[1], "rb").read()
for warm in sys.argv[2:]:  # warm: imports, Pillow, pyHanko
    clean(open(warm, "rb").read(), limit_bytes=1 << 30, field="f")
before = peak()
started = time.perf_counter()
try:
    clean(data, limit_bytes=1 << 30, field="f")
    outcome = "accepted"
except ValidationFailed as exc:
    outcome = "refused"
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - started,
                  "peak": peak(), "before": before}))
"""


def probe(data: bytes) -> dict[str, float | str]:
    """Clean `data` in a fresh process (warmed up by a tiny PNG and a tiny PDF); its outcome,
    seconds and peak RSS (bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        path, png, pdf = Path(tmp) / "f", Path(tmp) / "w.png", Path(tmp) / "w.pdf"
        path.write_bytes(data)
        png.write_bytes(tiny_png())
        pdf.write_bytes(_pdf([_CATALOG, _PAGES, _PAGE]))
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(path), str(png), str(pdf)],
            capture_output=True,
            text=True,
            timeout=300,
            env={"PYTHONPATH": str(ROOT / "shared"), "PATH": "/usr/bin:/bin"},
            cwd=ROOT,
        )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    answer: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def cases(quick: bool) -> Iterator[tuple[str, Callable[[], bytes], str]]:
    for name, (maker, expected) in BOMBS.items():
        if quick and ("GiB" in name or "40000" in name):
            continue
        yield name, maker, expected


@benchmark("bombs", "decompression bombs: refused or handled within 100 MiB of the floor")
def measure(ctx: Context) -> list[Row]:
    floor = probe(tiny_png())
    floor_peak = float(floor["peak"])
    rows: list[Row] = []
    details: dict[str, object] = {"floor": floor}
    for name, maker, expected in cases(ctx.quick):
        data = maker()
        got = probe(data)
        details[name] = {**got, "bytes": len(data)}
        # the budget binds what we must refuse; honest files (a phone photo) are reported,
        # their instance budget is the memory benchmark's
        target = floor_peak / MIB + TARGET_MIB if expected == "refused" else None
        rows.append(
            vs_floor(
                f"bombs {name}: peak RSS",
                float(got["peak"]) / MIB,
                floor_peak / MIB,
                "MiB",
                target=target,
                absolute=target is not None,
            )
        )
        rows.append(
            vs_floor(
                f"bombs {name}: seconds",
                float(got["seconds"]),
                float(floor["seconds"]) or 1e-3,
                "s",
            )
        )
        rows.append(check(f"bombs {name}: {expected}", 0 if got["outcome"] == expected else 1))
    ctx.details["bombs"] = details
    ctx.notes.append(
        "Each file is cleaned by uploads.clean in a fresh process after warm-up cleans of a "
        "tiny PNG and PDF; peak = VmHWM; target: peak ≤ the floor's + 100 MiB."
    )
    return rows
