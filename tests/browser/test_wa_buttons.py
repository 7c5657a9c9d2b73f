"""Tap instead of type, in a real browser on the WhatsApp simulator: BANTUAN answers with a menu
of buttons, BATAL asks with YA / TIDAK buttons; and a resident known only by username."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from sapa.dev import demo
from sapa.dev.localserver import LocalStack

from .support import fresh_wa_id, wait_for

pytestmark = pytest.mark.browser

SOMBA_OPU = "730608"


def _open_chat(page: Any, base: str, wa_id: str) -> Any:
    page.goto(f"{base}/dev/wa")
    page.get_by_label("Nomor layanan kecamatan").select_option(demo.PHONE_NUMBER_ID)
    page.get_by_label("Nomor WhatsApp Anda").fill(wa_id)
    page.get_by_label("Nomor WhatsApp Anda").press("Tab")
    return page.get_by_role("list", name="Percakapan")


def _say(page: Any, text: str) -> None:
    page.get_by_label("Pesan").fill(text)
    page.get_by_role("button", name="Kirim").click()


def _greeted(page: Any, base: str, wa_id: str, greeting: str = "Halo") -> Any:
    """The resident's chat once they greeted and the guest-book link came back."""
    chat = _open_chat(page, base, wa_id)
    _say(page, greeting)
    chat.locator("li.layanan a[href*='/guestbook/f/']").wait_for(timeout=8_000)
    return chat


def test_help_and_cancel_by_tapping(stack: LocalStack, page: Any) -> None:
    wa_id = fresh_wa_id()
    # GIVEN a resident who greeted and got the guest-book link
    chat = _greeted(page, stack.base_url, wa_id)
    # WHEN they ask for help
    _say(page, "BANTUAN")
    # THEN the answer carries a menu of buttons
    menu = chat.locator("li.layanan", has_text="Ketik STATUS")
    menu.get_by_role("button", name="BATAL").wait_for(timeout=8_000)
    assert menu.get_by_role("button", name="STATUS").is_visible()
    assert menu.get_by_role("button", name="DOKUMEN").is_visible()
    # WHEN they tap BATAL
    menu.get_by_role("button", name="BATAL").click()
    # THEN they are asked to confirm, with YA / TIDAK buttons
    ask = chat.locator("li.layanan", has_text="Anda meminta pembatalan")
    ask.get_by_role("button", name="YA, batalkan").wait_for(timeout=8_000)
    assert ask.get_by_role("button", name="TIDAK").is_visible()
    # WHEN they tap YA
    ask.get_by_role("button", name="YA, batalkan").click()
    # THEN the request is cancelled and they are told so
    chat.locator("li.layanan", has_text="telah dibatalkan").wait_for(timeout=8_000)
    case = wait_for(
        "the cancelled case",
        lambda: next(
            (
                k
                for k in stack.c.store.list_cases(limit=1000)
                if k.wa_id == wa_id and k.state == "cancelled"
            ),
            None,
        ),
    )
    assert case.kecamatan == SOMBA_OPU
    taps = [m for m in stack.c.store.messages(case.id) if m.type == "interactive"]
    assert [m.body for m in taps if m.direction == "in"] == ["BATAL", "YA, batalkan"]


def test_tidak_keeps_the_request(stack: LocalStack, page: Any) -> None:
    wa_id = fresh_wa_id()
    chat = _greeted(page, stack.base_url, wa_id)
    _say(page, "BATAL")
    ask = chat.locator("li.layanan", has_text="Anda meminta pembatalan")
    ask.get_by_role("button", name="TIDAK").click(timeout=8_000)
    chat.locator("li.layanan", has_text="tidak dibatalkan").wait_for(timeout=8_000)
    case = stack.c.store.find_open(SOMBA_OPU, wa_id)
    assert case is not None and case.cancel_requested_at is None


def test_a_resident_known_by_username_gets_the_link(stack: LocalStack, page: Any) -> None:
    user_id = "ID.7306" + "".join(secrets.choice("0123456789") for _ in range(14))
    _greeted(page, stack.base_url, user_id, "Halo, mau urus KK")
    case = stack.c.store.find_open(SOMBA_OPU, user_id)
    assert case is not None and case.wa_user_id == user_id
