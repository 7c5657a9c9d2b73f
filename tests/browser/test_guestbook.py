"""The resident's side in a real browser: the WhatsApp simulator, the guest book, its errors."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from itsdangerous import TimestampSigner

from sapa.dev import demo
from sapa.dev.localserver import LocalStack
from sapa.services.notify import link_serializer

from .support import KK, case_of, fill_guestbook, fresh_wa_id, submit_over_http

pytestmark = pytest.mark.browser


def test_resident_greets_on_the_simulator_and_submits_the_guest_book(
    stack: LocalStack, context: Any, page: Any
) -> None:
    wa_id = fresh_wa_id()
    # GIVEN the WhatsApp simulator, a fresh resident writing to Somba Opu's number
    page.goto(f"{stack.base_url}/dev/wa")
    page.get_by_label("Nomor layanan kecamatan").select_option(demo.PHONE_NUMBER_ID)
    page.get_by_label("Nomor WhatsApp Anda").fill(wa_id)
    page.get_by_label("Nomor WhatsApp Anda").press("Tab")
    # WHEN they type "Halo" and send it
    page.get_by_label("Pesan").fill("Halo")
    page.get_by_role("button", name="Kirim").click()

    # THEN their message and, within a few seconds (the page polls), the link appear in the chat
    chat = page.get_by_role("list", name="Percakapan")
    chat.locator("li.warga", has_text="Halo").wait_for(timeout=5_000)
    link = chat.locator("li.layanan a[href*='/guestbook/f/']")
    link.wait_for(timeout=8_000)
    assert "Somba Opu" in chat.locator("li.layanan").first.inner_text()

    # WHEN they open the link (it opens a new tab, as on a phone)
    with context.expect_page() as opened:
        link.click()
    form = opened.value
    form.wait_for_load_state()

    # THEN the guest book is in Indonesian, every field has its label
    assert form.locator("html").get_attribute("lang") == "id"
    assert form.get_by_role("heading", name="Buku Tamu Layanan").is_visible()
    reg_no = re.search(r"Nomor permohonan (\S+)", form.locator("main").inner_text())
    assert reg_no is not None
    for label in (
        "Jenis layanan",
        "Nama lengkap",
        "NIK",
        "Nomor KK",
        "Tanggal lahir",
        "Desa/Kelurahan",
        "Alamat",
        "Nomor WhatsApp",
    ):
        assert form.get_by_label(label, exact=True).is_visible(), label
    # AND the NIK's hint tells what to type, tied to the field
    nik = form.get_by_label("NIK", exact=True)
    hint = form.locator("#" + (nik.get_attribute("aria-describedby") or "").split()[0])
    assert hint.inner_text().startswith("16 angka, ")
    # AND the desa/kelurahan is picked from Somba Opu's own list
    desa = form.get_by_label("Desa/Kelurahan").locator("option").all_inner_texts()
    assert "Sungguminasa" in desa
    assert "Limbung" not in desa  # Bajeng's
    # AND their WhatsApp number is already filled in, in the local form
    assert form.get_by_label("Nomor WhatsApp").input_value() == "0" + wa_id[2:]
    # AND only the documents of the chosen service are asked for
    assert not form.get_by_role("group", name=KK).is_visible()

    # WHEN they choose Kartu Keluarga, fill in their data, attach the two documents and consent
    fill_guestbook(form)
    assert form.get_by_role("group", name=KK).is_visible()
    with form.expect_navigation():
        form.get_by_role("button", name="Kirim permohonan").click()

    # THEN the confirmation page names their registration number
    assert form.get_by_role("heading", name="Permohonan terkirim").is_visible()
    assert reg_no.group(1) in form.get_by_role("status").inner_text()

    # AND the case waits for the counter officer with both documents and the form data
    case = stack.c.store.find_open("730608", wa_id)
    assert case is not None
    assert case.reg_no == reg_no.group(1)
    assert case.state == "form_submitted"
    assert case.service == "kk"
    assert case.form["nik"] == demo.FORM["nik"]
    assert case.form["birth_date"] == demo.FORM["birth_date"]
    assert sorted((d.requirement, d.content_type) for d in case.documents) == [
        ("buku_nikah", "application/pdf"),
        ("kk_lama", "image/png"),
    ]

    # AND back on WhatsApp, SAPA's thanks arrives in the same chat
    chat.locator("li.layanan", has_text="sudah kami terima").wait_for(timeout=8_000)


def test_a_birth_date_that_does_not_match_the_nik_is_shown_next_to_the_field(
    stack: LocalStack, no_js_page: Any, guestbook_link: str
) -> None:
    page = no_js_page
    # GIVEN a guest-book link, opened on a phone with JavaScript switched off
    page.goto(guestbook_link)
    # WHEN the resident gives a birth date other than the one inside their NIK and submits
    fill_guestbook(
        page, js=False, **{"Nama lengkap": "Besse Daeng Ngai", "Tanggal lahir": "1991-01-02"}
    )
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Kirim permohonan").click()

    # THEN the form comes back (422) with the server's message in Indonesian
    assert nav.value.status == 422
    assert page.get_by_role("alert").inner_text() == "Periksa kembali isian yang ditandai."
    # AND the error stands right after the birth-date field and is tied to it
    birth = page.get_by_label("Tanggal lahir")
    error = page.locator("#err-birth_date")
    assert error.is_visible()
    assert error.inner_text() == "Tanggal lahir tidak sesuai dengan NIK."
    assert birth.get_attribute("aria-describedby") == "err-birth_date"
    assert birth.evaluate("e => e.nextElementSibling.id") == "err-birth_date"
    # AND nothing else is marked wrong, and what the resident typed is still there
    assert page.locator("p.error:not([role=alert])").count() == 1
    assert page.get_by_label("Nama lengkap").input_value() == "Besse Daeng Ngai"
    assert page.get_by_label("NIK", exact=True).input_value() == demo.FORM["nik"]
    assert birth.input_value() == "1991-01-02"
    assert page.get_by_label("Jenis layanan").input_value() == "kk"
    assert page.get_by_label("Desa/Kelurahan").input_value() == demo.FORM["desa"]
    assert page.get_by_label("Saya setuju").is_checked()
    # AND both documents were kept: the page says so, nothing has to be picked again
    documents = page.get_by_role("group", name=KK)
    assert documents.get_by_text("Sudah diunggah: kk-lama.png").is_visible()
    assert documents.get_by_text("Sudah diunggah: buku-nikah.pdf").is_visible()
    # AND the case still waits for its guest book
    case = case_of(stack, guestbook_link)
    assert case.state == "link_sent"
    assert case.form == {}
    assert sorted(d.requirement or "" for d in case.documents) == ["buku_nikah", "kk_lama"]


def test_the_guest_book_is_light_and_talks_to_no_other_host(
    stack: LocalStack, page: Any, guestbook_link: str
) -> None:
    # GIVEN a resident on a phone, every request and response of the page recorded
    urls: list[str] = []
    responses: list[Any] = []
    page.on("request", lambda r: urls.append(r.url))
    page.on("response", lambda r: responses.append(r))
    # WHEN they open their guest-book link and choose a service
    page.goto(guestbook_link)
    page.get_by_label("Jenis layanan").select_option(label=KK)
    page.wait_for_load_state("networkidle")

    # THEN every request went to the SAPA server itself: no CDN, no font, no tracker
    hosts = {urlsplit(u).hostname for u in urls if urlsplit(u).scheme in ("http", "https")}
    assert hosts == {"127.0.0.1"}, urls
    assert all(urlsplit(u).scheme in ("http", "https", "data", "blob") for u in urls)
    # AND nothing in the page even asks for one (a request the CSP blocks is never sent)
    loads = page.evaluate(
        """() => [...document.querySelectorAll(
             'link[href], script[src], img[src], iframe[src], source[src], embed[src]')]
           .map(e => new URL(e.getAttribute('href') || e.getAttribute('src'), location.href))
           .filter(u => u.protocol.startsWith('http')).map(u => u.hostname)"""
    )
    assert set(loads) <= {"127.0.0.1"}, loads
    styles = " ".join(page.locator("style").all_inner_texts())
    assert "@import" not in styles
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", styles)
    # AND the whole page (HTML with its inline style and script, plus anything it loaded)
    # weighs under 100 KB
    weight = sum(len(r.body()) for r in responses if r.request.method == "GET")
    assert len(page.content().encode()) < 100 * 1024
    assert 1_000 < weight < 100 * 1024, weight


def _expired(stack: LocalStack, link: str) -> str:
    """The same case's link, signed eight days ago (links last GUESTBOOK_LINK_DAYS = 7)."""
    days = stack.c.settings.guestbook_link_days
    serializer = link_serializer(stack.c)
    case_id = serializer.loads(link.rsplit("/", 1)[1])

    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - (days + 1) * 86400

    serializer.signer = EightDaysAgo
    return link.rsplit("/", 1)[0] + "/" + serializer.dumps(case_id)


def _tampered(stack: LocalStack, link: str) -> str:
    head, token = link.rsplit("/", 1)
    return f"{head}/{token[:-4]}{'AAAA' if token[-4:] != 'AAAA' else 'BBBB'}"


def _used(stack: LocalStack, link: str) -> str:
    submit_over_http(link)
    return link


@pytest.mark.parametrize("spoil", [_expired, _tampered, _used], ids=["expired", "tampered", "used"])
def test_a_link_that_no_longer_works_tells_the_resident_to_send_halo(
    stack: LocalStack, page: Any, guestbook_link: str, spoil: Any
) -> None:
    # GIVEN a guest-book link that has expired, was altered, or was already used
    url = spoil(stack, guestbook_link)
    # WHEN the resident opens it
    resp = page.goto(url)
    # THEN a friendly page (not an error dump) tells them how to get a new link
    assert resp.status == 410
    assert page.get_by_role("heading", name="Tautan tidak berlaku").is_visible()
    message = page.get_by_role("status").inner_text()
    assert 'kirim pesan "HALO"' in message
    assert "nomor WhatsApp layanan kecamatan" in message
    assert page.locator("form").count() == 0
    assert "Traceback" not in page.content()


def test_on_a_phone_a_pdf_is_picked_from_files_and_an_empty_submit_shows_every_error(
    stack: LocalStack, page: Any, guestbook_link: str
) -> None:
    from sapa.adapters.pdf import simple_pdf

    from .support import PHONE

    # GIVEN a resident on a 360 px wide phone, on their guest-book link
    assert page.viewport_size == PHONE
    page.goto(guestbook_link)
    # WHEN they press "Kirim permohonan" before anything else
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Kirim permohonan").click()
    # THEN the form comes back with the service asked for, and every field's problem beside it
    assert nav.value.status == 422
    assert page.get_by_role("alert").inner_text() == "Periksa kembali isian yang ditandai."
    service = page.get_by_label("Jenis layanan")
    assert service.evaluate("e => e.nextElementSibling.textContent") == "Pilih jenis layanan."
    # (the name and number WhatsApp gave are filled in already)
    assert page.get_by_label("Nama lengkap", exact=True).input_value() == "Andi"
    for label in ("NIK", "Nomor KK", "Tanggal lahir", "Alamat"):
        field = page.get_by_label(label, exact=True)
        assert field.get_attribute("aria-invalid") == "true", label
        assert field.evaluate("e => e.nextElementSibling.textContent") == "Wajib diisi.", label
        assert field.evaluate("e => e.nextElementSibling.className") == "error", label
    assert page.get_by_label("Desa/Kelurahan").evaluate(
        "e => e.nextElementSibling.textContent"
    ) == ("Wajib diisi.")
    consent = page.locator("#err-consent")
    assert consent.is_visible()
    assert consent.inner_text() == "Persetujuan pemrosesan data wajib dicentang."
    # AND a list at the top leads to each of them, and nothing is wider than the phone
    assert page.locator("ul.error li").count() == 7
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator("ul.error a", has_text="Pilih jenis layanan.").click()
    assert page.evaluate("location.hash") == "#service"

    # WHEN they choose Kartu Keluarga and pick the marriage book as a PDF from their files
    service.select_option(label=KK)
    documents = page.get_by_role("group", name=KK)
    book = documents.get_by_label("Buku nikah/akta perkawinan atau akta cerai", exact=True)
    # (the input does not force the camera: files, gallery and camera are all offered)
    assert book.get_attribute("capture") is None
    assert "application/pdf" in (book.get_attribute("accept") or "")
    pdf = simple_pdf("Buku Nikah", ["Salinan buku nikah pemohon (contoh)"])
    book.set_input_files({"name": "buku-nikah.pdf", "mimeType": "application/pdf", "buffer": pdf})
    documents.get_by_text("Tersimpan: buku-nikah.pdf", exact=True).wait_for()
    # AND press "Kirim permohonan" again with the rest still empty
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Kirim permohonan").click()
    # THEN the service is kept, the PDF is kept, and only the missing KK photo is asked for
    # beside its own input (next to the data and the consent still missing)
    assert nav.value.status == 422
    assert page.get_by_label("Jenis layanan").input_value() == "kk"
    documents = page.get_by_role("group", name=KK)
    assert documents.get_by_text("Sudah diunggah: buku-nikah.pdf").is_visible()
    kk_lama = documents.get_by_label("KK lama", exact=True)
    assert kk_lama.get_attribute("aria-invalid") == "true"
    assert kk_lama.evaluate("e => e.nextElementSibling.textContent") == (
        "Dokumen wajib belum diunggah: KK lama."
    )
    assert page.locator("p.error:not([role=alert])").count() == 7  # 5 fields, KK lama, consent
    case = case_of(stack, guestbook_link)
    assert case.state == "link_sent"
    assert [(d.requirement, d.content_type) for d in case.documents] == [
        ("buku_nikah", "application/pdf")
    ]
