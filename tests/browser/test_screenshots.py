"""Screenshots of the guest book (and its correction-only form) on a cheap phone and of the
staff case page.

Every run takes them (into the test's tmp dir) and checks the pages fit their screen. The copies
in docs/screenshots/ are documentation: refresh them with

    SAPA_UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_screenshots.py
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from sapa.dev.localserver import LocalStack

from .support import (
    OFFICE,
    PHONE,
    ROOT,
    fresh_wa_id,
    greet_over_http,
    login,
    officer,
    submit_over_http,
)

pytestmark = pytest.mark.browser

DOCS = ROOT / "docs" / "screenshots"


def publish(shot: Path) -> None:
    if os.environ.get("SAPA_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS / shot.name)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def overflow(page: Any) -> int:
    """How many pixels the page is wider than the window (0 when nobody scrolls sideways)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def test_guest_book_on_a_360px_phone(
    stack: LocalStack, page: Any, guestbook_link: str, tmp_path: Path
) -> None:
    # GIVEN a resident on a 360×740 phone who opened their link and chose Kartu Keluarga
    assert page.viewport_size == PHONE
    page.goto(guestbook_link)
    page.get_by_label("Jenis layanan").select_option("kk")
    # WHEN the page is photographed from top to bottom
    shot = tmp_path / "guestbook.png"
    data = page.screenshot(path=str(shot), full_page=True)
    # THEN nothing sticks out sideways and the whole form is on one phone-wide picture
    assert overflow(page) == 0
    width, height = png_size(data)
    assert width == PHONE["width"]
    assert height > PHONE["height"]  # a long form, scrolled, not cut off
    button = page.get_by_role("button", name="Kirim permohonan").bounding_box()
    assert button is not None and button["x"] + button["width"] <= PHONE["width"]
    publish(shot)


def test_staff_case_page_on_an_office_screen(
    stack: LocalStack, browser: Any, tmp_path: Path
) -> None:
    ctx = browser.new_context(viewport=OFFICE, locale="id-ID", timezone_id="Asia/Makassar")
    page = ctx.new_page()
    # GIVEN a submitted case the Somba Opu counter officer has already checked
    reg_no = submit_over_http(greet_over_http(stack.base_url, fresh_wa_id()))
    loket = officer(stack.base_url)
    case_id = next(c["id"] for c in loket.worklist() if c["reg_no"] == reg_no)
    loket.act(case_id, "claim")
    loket.act(case_id, "check")
    # WHEN the officer opens it in the browser and it is photographed from top to bottom
    login(page, stack.base_url, "Petugas Loket Somba Opu")
    page.get_by_role("link", name=reg_no).click()
    page.get_by_role("heading", name=reg_no).wait_for()
    shot = tmp_path / "staff-case.png"
    data = page.screenshot(path=str(shot), full_page=True)
    # THEN the page, with the guest-book link in its WhatsApp conversation, fits the screen
    assert overflow(page) == 0
    assert png_size(data)[0] == OFFICE["width"]
    assert "/guestbook/f/" in page.locator("main").inner_text()
    publish(shot)
    ctx.close()


# Last in the module: its open case shares the demo NIK, and the staff page's pre-check would
# otherwise show it as "another open request" on the published screenshot.
def test_correction_form_on_a_360px_phone(stack: LocalStack, page: Any, tmp_path: Path) -> None:
    # GIVEN a submitted case whose counter officer asked for a new KK photo and a fuller address
    link = greet_over_http(stack.base_url, fresh_wa_id())
    reg_no = submit_over_http(link)
    loket = officer(stack.base_url)
    case_id = next(c["id"] for c in loket.worklist() if c["reg_no"] == reg_no)
    loket.act(case_id, "claim")
    loket.act(
        case_id,
        "request_correction",
        doc_reason_kk_lama="Foto buram, nomor KK tidak terbaca",
        field_reason_address="Tuliskan RT/RW",
    )
    # WHEN the resident opens their link on a 360×740 phone and it is photographed
    page.goto(link)
    page.get_by_text("Petugas meminta Anda memperbaiki").wait_for()
    shot = tmp_path / "guestbook-correction.png"
    data = page.screenshot(path=str(shot), full_page=True)
    # THEN only the two items are asked for, and the page fits the phone's width
    assert overflow(page) == 0
    assert png_size(data)[0] == PHONE["width"]
    assert page.get_by_label("Alamat", exact=True).is_visible()
    assert page.get_by_label("KK lama", exact=True).is_visible()
    assert page.get_by_label("Nama lengkap", exact=True).count() == 0
    button = page.get_by_role("button", name="Kirim permohonan").bounding_box()
    assert button is not None and button["x"] + button["width"] <= PHONE["width"]
    publish(shot)
