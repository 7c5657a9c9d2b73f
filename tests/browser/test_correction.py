"""The correction loop end to end in real browsers: the counter officer asks for a new photo of
one document, the resident reads why on WhatsApp, and the link offers only that."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sapa.dev import demo
from sapa.dev.localserver import LocalStack
from sapa.domain.texts import ACTION_LABELS, STATE_LABELS
from sapa.services.guestbook import documents_by_requirement

from .support import (
    case_of,
    fresh_wa_id,
    greet_over_http,
    jpeg_with_gps,
    login,
    officer,
    pick,
    reveal,
    submit_over_http,
    wait_for,
)

pytestmark = pytest.mark.browser

REASON = "Foto buram, nomor KK tidak terbaca"


def test_the_officer_asks_for_a_new_kk_photo_and_the_resident_sends_only_that(
    stack: LocalStack, context: Any, page: Any, desk: Any
) -> None:
    # GIVEN a Somba Opu resident who has submitted the guest book
    wa_id = fresh_wa_id()
    link = greet_over_http(stack.base_url, wa_id)
    reg_no = submit_over_http(link)
    before = case_of(stack, link)
    assert before.state == "form_submitted"

    # WHEN the Somba Opu counter officer opens the case, claims it, and asks for a correction
    # of "KK lama" only, giving the reason
    login(desk, stack.base_url, "Petugas Loket Somba Opu")
    desk.get_by_role("link", name=reg_no).click()
    desk.get_by_role("heading", name=reg_no).wait_for()
    with desk.expect_navigation():
        desk.get_by_role("button", name="Ambil (klaim)").click()
    reveal(desk, "request_correction")
    button = desk.get_by_role("button", name=ACTION_LABELS["request_correction"], exact=True)
    correction = desk.locator("form", has=button)
    correction.get_by_label("KK lama", exact=True).fill(REASON)
    with desk.expect_navigation():
        button.click()

    # THEN the case waits for the resident, with exactly that item to fix
    status = desk.locator("p", has_text="Status:")
    assert STATE_LABELS["awaiting_correction"] in status.inner_text()
    case = case_of(stack, link)
    assert case.state == "awaiting_correction"
    assert case.corrections == {"doc:kk_lama": REASON}

    # AND on WhatsApp (the simulator) the resident reads the reason with their link
    page.goto(f"{stack.base_url}/dev/wa")
    page.get_by_label("Nomor layanan kecamatan").select_option(demo.PHONE_NUMBER_ID)
    page.get_by_label("Nomor WhatsApp Anda").fill(wa_id)
    page.get_by_label("Nomor WhatsApp Anda").press("Tab")
    chat = page.get_by_role("list", name="Percakapan")
    message = chat.locator("li.layanan", has_text=REASON)
    message.wait_for(timeout=8_000)
    assert f"KK lama: {REASON}" in message.inner_text()
    assert reg_no in message.inner_text()
    anchor = message.locator("a[href*='/guestbook/f/']")
    href = anchor.get_attribute("href") or ""
    assert href.startswith(f"{stack.base_url}/guestbook/f/")
    assert case_of(stack, href).id == before.id  # a freshly signed link to the same case
    # (the first link still opens the same correction form)
    assert "Petugas meminta Anda memperbaiki" in requests.get(link, timeout=10).text

    # WHEN they open the link from that message
    with context.expect_page() as opened:
        anchor.click()
    form = opened.value
    form.wait_for_load_state()

    # THEN only the KK lama upload (and the consent) is offered, under the officer's reason
    alert = form.get_by_role("alert")
    assert "Petugas meminta Anda memperbaiki" in alert.inner_text()
    assert alert.get_by_role("listitem").all_inner_texts() == [f"KK lama: {REASON}"]
    assert form.get_by_label("KK lama", exact=True).is_visible()
    assert form.get_by_label("Saya setuju").is_visible()
    visible = form.locator("form input:visible, form select:visible, form textarea:visible")
    assert sorted(visible.evaluate_all("els => els.map(e => e.type)")) == ["checkbox", "file"]
    for label in ("Jenis layanan", "Nama lengkap", "NIK", "Alamat", "Buku nikah"):
        assert form.get_by_label(label).count() == 0, label

    # WHEN they pick a new, sharper photo and submit
    pick(
        form,
        "KK lama",
        {"name": "kk-baru.jpg", "mimeType": "image/jpeg", "buffer": jpeg_with_gps()},
    )
    form.get_by_label("Saya setuju").check()
    with form.expect_navigation():
        form.get_by_role("button", name="Kirim permohonan").click()
    assert form.get_by_role("heading", name="Permohonan terkirim").is_visible()

    # THEN the case is back with the counter officer for a second run of step 3
    after = case_of(stack, link)
    assert after.state == "form_submitted"
    assert len(after.runs("periksa")) == 2
    assert after.corrections == {}
    # AND the new photo replaced the old one, everything else is exactly as before
    docs, old = documents_by_requirement(after), documents_by_requirement(before)
    assert docs["kk_lama"].key != old["kk_lama"].key
    assert docs["kk_lama"].filename == "kk-baru.jpg"
    assert docs["buku_nikah"] == old["buku_nikah"]
    assert after.form == before.form
    assert after.service == before.service
    submitted = [e for e in stack.c.store.events(after.id) if e.event == "submit_form"]
    assert submitted[-1].detail["corrected"] == ["doc:kk_lama"]
    # AND the officer's page, reloaded, shows it waiting again
    desk.reload()
    assert STATE_LABELS["form_submitted"] in desk.locator("p", has_text="Status:").inner_text()
    # AND the resident is told on WhatsApp that it arrived
    wait_for(
        "the thanks on WhatsApp",
        lambda: chat.locator("li.layanan", has_text="sudah kami terima").count() == 2,
    )


def _ask_correction(stack: LocalStack, **form: str) -> str:
    """A submitted case whose counter officer (over HTTP) asked for a correction; its link."""
    link = greet_over_http(stack.base_url, fresh_wa_id())
    reg_no = submit_over_http(link)
    loket = officer(stack.base_url)
    case_id = next(c["id"] for c in loket.worklist() if c["reg_no"] == reg_no)
    loket.act(case_id, "claim")
    loket.act(case_id, "request_correction", **form)
    assert case_of(stack, link).state == "awaiting_correction"
    return link


def test_a_flagged_desa_alone_is_offered_on_its_own(stack: LocalStack, page: Any) -> None:
    # GIVEN the officer flagged only the desa/kelurahan
    link = _ask_correction(stack, field_reason_desa="Alamat Anda di Katangka")
    before = case_of(stack, link)
    page.goto(link)
    # THEN the resident gets exactly that list to pick from (and the consent), nothing else
    visible = page.locator("form input:visible, form select:visible, form textarea:visible")
    assert visible.evaluate_all("els => els.map(e => e.id || e.type)") == ["desa", "consent"]
    assert page.get_by_label("Desa/Kelurahan").input_value() == demo.FORM["desa"]
    assert page.get_by_role("heading", name="Dokumen persyaratan").count() == 0
    # WHEN they pick another desa of Somba Opu and submit
    page.get_by_label("Desa/Kelurahan").select_option("Katangka")
    page.get_by_label("Saya setuju").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Kirim permohonan").click()
    # THEN only the desa changed
    assert page.get_by_role("heading", name="Permohonan terkirim").is_visible()
    after = case_of(stack, link)
    assert after.state == "form_submitted"
    assert after.form == {**before.form, "desa": "Katangka"}
    assert after.documents == before.documents


def test_a_general_note_alone_reopens_the_whole_form(stack: LocalStack, page: Any) -> None:
    # GIVEN the officer gave only a general note, no item
    page.goto(_ask_correction(stack, reason="Mohon periksa kembali semua data"))
    # THEN the note is shown and every field can be corrected
    assert "Mohon periksa kembali semua data" in page.get_by_role("alert").inner_text()
    for label in ("Nama lengkap", "NIK", "Nomor KK", "Alamat", "Desa/Kelurahan"):
        assert page.get_by_label(label, exact=True).is_visible(), label
    assert page.get_by_label("Jenis layanan").input_value() == "kk"
