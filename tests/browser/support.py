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

from sapa import demo

PHONE = {"width": 360, "height": 740}  # a cheap Android phone
DESKTOP = {"width": 1280, "height": 900}  # the office
ROOT = Path(__file__).resolve().parents[2]


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
    from sapa.pdf import simple_pdf

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


def login(page: Any, base: str, name: str) -> None:
    """Log in on the development login by picking the officer by the name shown."""
    page.goto(f"{base}/staff/login")
    who = page.get_by_label("Petugas")
    option = who.locator("option", has_text=name)
    assert option.count() == 1, f"{name!r} is not offered exactly once on the login page"
    who.select_option(option.get_attribute("value"))
    with page.expect_navigation():
        page.get_by_role("button", name="Masuk").click()
