"""A complaint in real browsers: the resident taps "Ajukan aduan" on the survey invitation in the
WhatsApp simulator on a 360-px phone and writes it; the head of division answers and closes it
from an office desktop; the resident reads the answer and where to go next (SP4N-LAPOR!)."""

from __future__ import annotations

from typing import Any

import pytest

from sapa.dev import demo
from sapa.dev.driver import Office
from sapa.dev.localserver import LocalStack

from .support import login, wait_for

pytestmark = pytest.mark.browser
COMPLAINT = "Dokumen yang saya terima tidak bisa dicetak"


def test_a_complaint_is_filed_answered_and_closed(stack: LocalStack, page: Any, desk: Any) -> None:
    # GIVEN a resident whose signed document was delivered
    tl = demo.run(
        stack.base_url, out=lambda _: None, office=Office.of(stack.c), answer_survey=False
    )
    case = stack.c.store.get(tl["case_id"])
    # WHEN they open their chat on the simulator, on a small phone
    page.goto(f"{stack.base_url}/dev/wa")
    page.get_by_label("Nomor layanan kecamatan").select_option(demo.PHONE_NUMBER_ID)
    page.get_by_label("Nomor WhatsApp Anda").fill(case.wa_id)
    page.get_by_label("Nomor WhatsApp Anda").press("Tab")
    chat = page.get_by_role("list", name="Percakapan")
    # the survey invitation came with a button for a complaint: they tap it, then write it
    invitation = chat.locator("li.layanan", has_text="survei kepuasan")
    invitation.get_by_role("button", name="Ajukan aduan").click(timeout=10_000)
    chat.locator("li.layanan", has_text="Silakan tuliskan aduan").wait_for(timeout=10_000)
    page.get_by_label("Pesan").fill(COMPLAINT)
    page.get_by_role("button", name="Kirim").click()
    # THEN SAPA answers with the complaint's number and deadline
    chat.locator("li.layanan", has_text="nomor aduan k1").wait_for(timeout=10_000)
    assert page.evaluate("document.documentElement.scrollWidth - innerWidth") <= 0

    # WHEN the head of division opens the complaints from the menu and answers on the case
    login(desk, stack.base_url, "Kepala Bidang Pelayanan")
    desk.get_by_role("link", name="Aduan", exact=True).click()
    row = desk.get_by_role("row", name=case.reg_no)
    assert COMPLAINT in row.inner_text() and "belum ditanggapi" in row.inner_text()
    row.get_by_role("link", name=case.reg_no).click()
    desk.get_by_label("Tanggapi aduan k1").fill("Mohon maaf, dokumen kami kirim ulang hari ini.")
    with desk.expect_navigation():
        desk.get_by_role("button", name="Kirim tanggapan").click()
    desk.get_by_label("Tutup aduan k1 dengan hasil").select_option("resolved")
    with desk.expect_navigation():
        desk.get_by_role("button", name="Tutup aduan").click()
    assert "ditindaklanjuti dan selesai" in desk.locator("#complaint-k1").inner_text()

    # THEN the resident reads the answer, then the closing with SP4N-LAPOR!
    chat.locator("li.layanan", has_text="dokumen kami kirim ulang").wait_for(timeout=10_000)
    chat.locator("li.layanan", has_text="SP4N-LAPOR!").wait_for(timeout=10_000)
    events = wait_for(
        "the complaint's audit trail",
        lambda: [e.event for e in stack.c.store.events(case.id) if "complaint" in e.event] or None,
    )
    assert events == ["complaint_filed", "complaint_replied", "complaint_closed"]
