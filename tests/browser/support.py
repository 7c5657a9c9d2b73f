"""Helpers of the browser tests: screen sizes, a fresh resident, the steps done over HTTP."""

from __future__ import annotations

import io
import re
import secrets
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from sapa.dev import demo
from sapa.dev.driver import Officer
from sapa.dev.localserver import LocalStack
from sapa.domain.case import Case

KK = "Kartu Keluarga (baru/perubahan)"  # the service the tests ask for
PHONE = {"width": 360, "height": 740}  # a cheap Android phone
DESKTOP = {"width": 1280, "height": 900}  # the office
OFFICE = {"width": 1366, "height": 768}  # the office's laptops: the case page fits it
ROOT = Path(__file__).resolve().parents[2]
# The demo staff of staff_demo.toml the tests act as.
LOKET = "loket.sombaopu@sapa.test"
VERIFIKATOR = "verifikasi@sapa.test"
OPERATOR = "operator.siak@sapa.test"
KABID = "kabid@sapa.test"
KADIS = "kadis@sapa.test"


def officer(base: str, email: str = LOKET) -> Officer:
    """An officer on the staff function over HTTP (JSON answers), the counter by default."""
    return Officer(f"{base}/staff", email)


def png(width: int = 4, height: int = 4) -> bytes:
    """A small, valid grey PNG (a "photo" of a document), built in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg_with_gps(width: int = 800, height: int = 600) -> bytes:
    """A phone photo of a document: a real JPEG whose EXIF names the camera and, in its GPS
    IFD, where the resident stood (Sungguminasa) when taking it."""
    from PIL import ExifTags, Image, ImageDraw

    img = Image.new("RGB", (width, height), (235, 232, 220))
    draw = ImageDraw.Draw(img)
    draw.rectangle((40, 40, width - 40, 120), fill=(30, 60, 140))
    for y in range(160, height - 40, 36):
        draw.line((60, y, width - 60, y), fill=(90, 90, 90), width=6)
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "HP Murah"
    exif[ExifTags.Base.Model] = "A1 Kamera"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (5.0, 12.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (119.0, 27.0, 0.0)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


def case_of(stack: LocalStack, link: str) -> Case:
    """The case behind a guest-book link, as stored now."""
    from sapa.services.notify import link_serializer

    return stack.c.store.get(str(link_serializer(stack.c).loads(link.rsplit("/", 1)[1])))


def stored_documents(stack: LocalStack, case: Case) -> list[str]:
    """Names of the document objects the blob store holds for the case."""
    folder = Path(stack.c.settings.sapa_data_dir) / "blobs" / "cases" / case.id / "docs"
    return sorted(p.name for p in folder.glob("*") if not p.name.startswith("."))


def fill_guestbook(
    page: Any, *, js: bool = True, kk_lama: dict[str, Any] | None = None, **overrides: str
) -> None:
    """Fill the guest book the way a resident does: by the labels they read. With JavaScript,
    each document is stored as soon as it is picked; wait until the page says so."""
    from sapa.adapters.pdf import simple_pdf

    birth = overrides.pop("Tanggal lahir", demo.FORM["birth_date"])
    values = {
        "Nama lengkap": demo.FORM["name"],
        "NIK": demo.FORM["nik"],
        "Nomor KK": demo.FORM["kk"],
        "Alamat": demo.FORM["address"],
        **overrides,
    }
    page.get_by_label("Jenis layanan").select_option(label=KK)
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Tanggal lahir").fill(birth)
    page.get_by_label("Desa/Kelurahan").select_option(demo.FORM["desa"])
    documents = page.get_by_role("group", name=KK)
    pick(
        documents,
        "KK lama",
        kk_lama or {"name": "kk-lama.png", "mimeType": "image/png", "buffer": png(32, 20)},
        js=js,
    )
    pick(
        documents,
        "Buku nikah/akta perkawinan atau akta cerai",
        {
            "name": "buku-nikah.pdf",
            "mimeType": "application/pdf",
            "buffer": simple_pdf("Buku Nikah", ["Salinan buku nikah pemohon (contoh)"]),
        },
        js=js,
    )
    page.get_by_label("Saya setuju").check()


def pick(where: Any, label: str, file: dict[str, Any], *, js: bool = True) -> None:
    """Choose a file for a document; with JavaScript, wait for "Tersimpan: <name>"."""
    where.get_by_label(label, exact=True).set_input_files(file)
    if js:
        where.get_by_text(f"Tersimpan: {file['name']}", exact=True).wait_for()


def fresh_wa_id() -> str:
    return "62812" + "".join(secrets.choice("0123456789") for _ in range(8))


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def greet_over_http(base: str, wa_id: str, phone_number_id: str = demo.PHONE_NUMBER_ID) -> str:
    """A resident greets over the simulator's API (no browser); returns the guest-book link."""
    resp = requests.post(
        f"{base}/dev/wa/api/send",
        json={"phone_number_id": phone_number_id, "from": wa_id, "name": "Andi", "text": "Halo"},
        timeout=15,
    )
    assert resp.json().get("webhook_status") == 200, resp.text

    def link() -> str | None:
        for m in demo.conversation(base, wa_id):
            found = re.search(r"https?://\S+/guestbook/f/\S+", m.get("text") or "")
            if m["direction"] == "out" and found:
                return found.group(0)
        return None

    return str(wait_for("the guest-book link", link))


def submit_over_http(link: str) -> str:
    """Submit demo.FORM with its two documents to a guest-book link; returns the reg no."""
    from sapa.adapters.pdf import simple_pdf

    pdf = simple_pdf("Buku Nikah", ["Salinan buku nikah pemohon (contoh)"])
    resp = requests.post(
        link,
        data=demo.FORM,
        headers={"Accept": "application/json"},
        files={
            "doc_kk_lama": ("kk.png", io.BytesIO(png()), "image/png"),
            "doc_buku_nikah": ("nikah.pdf", io.BytesIO(pdf), "application/pdf"),
        },
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["reg_no"])


def reveal(page: Any, action: str) -> None:
    """Open the folded form of an action that is not the step's own ("Tolak permohonan…"), as
    an officer does before filling in its reason."""
    from sapa.domain.texts import ACTION_LABELS

    summary = page.locator("summary", has_text=f"{ACTION_LABELS[action]}…")
    summary.click()
    page.locator("details[open]", has=summary).wait_for()


def login(page: Any, base: str, name: str) -> None:
    """Log in on the development login by picking the officer by the name shown."""
    page.goto(f"{base}/staff/login")
    who = page.get_by_label("Petugas")
    option = who.locator("option", has_text=name)
    assert option.count() == 1, f"{name!r} is not offered exactly once on the login page"
    who.select_option(option.get_attribute("value"))
    with page.expect_navigation():
        page.get_by_role("button", name="Masuk").click()
