"""The guest book on a weak connection and a cheap phone: what is typed is saved as a draft,
each document is stored the moment it is picked (without its EXIF/GPS), a reload loses
nothing; and without JavaScript the server's checks still speak next to each field."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import ExifTags, Image

from sapa.adapters.pdf import simple_pdf
from sapa.dev import demo
from sapa.dev.localserver import LocalStack
from sapa.domain.texts import text
from sapa.services.guestbook import documents_by_requirement

from .support import (
    KK,
    PHONE,
    case_of,
    fill_guestbook,
    jpeg_with_gps,
    pick,
    png,
    stored_documents,
    wait_for,
)

pytestmark = pytest.mark.browser

NAME = "Besse Daeng Ngai"
ADDRESS = "Jl. Poros Malino No. 7, RT 02/RW 03"


def test_a_reload_keeps_what_was_typed_and_the_photo_already_sent(
    stack: LocalStack, page: Any, guestbook_link: str
) -> None:
    # GIVEN a resident on a 360×740 phone with JavaScript, on their guest-book link
    assert page.viewport_size == PHONE
    page.goto(guestbook_link)
    # AND a photo of their old KK straight from the camera: a JPEG that says where it was taken
    photo = jpeg_with_gps()
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    # WHEN they choose the service, type a few fields and pick the photo
    page.get_by_label("Jenis layanan").select_option(label=KK)
    page.get_by_label("Nama lengkap", exact=True).fill(NAME)
    page.get_by_label("NIK", exact=True).fill(demo.FORM["nik"])
    page.get_by_label("Desa/Kelurahan").select_option("Sungguminasa")
    page.get_by_label("Alamat", exact=True).fill(ADDRESS)
    documents = page.get_by_role("group", name=KK)
    documents.get_by_label("KK lama", exact=True).set_input_files(
        {"name": "kk-lama.jpg", "mimeType": "image/jpeg", "buffer": photo}
    )
    # THEN the page says the photo is stored, at once (before anything is submitted)
    documents.get_by_text("Tersimpan: kk-lama.jpg", exact=True).wait_for()
    case = case_of(stack, guestbook_link)
    assert [d.requirement for d in case.documents] == ["kk_lama"]
    assert case.state == "link_sent"
    # AND what they typed reaches the server as a draft while they type
    wait_for("the draft", lambda: case_of(stack, guestbook_link).draft_form.get("address"))
    assert case_of(stack, guestbook_link).draft_form == {
        "service": "kk",
        "name": NAME,
        "nik": demo.FORM["nik"],
        "kk": "",
        "birth_date": "",
        "desa": "Sungguminasa",
        "address": ADDRESS,
        "wa_number": page.get_by_label("Nomor WhatsApp").input_value(),
        "notes": "",
    }

    # WHEN the connection drops and the page is loaded again
    page.reload()
    # THEN everything typed is still there
    assert page.get_by_label("Jenis layanan").input_value() == "kk"
    assert page.get_by_label("Nama lengkap", exact=True).input_value() == NAME
    assert page.get_by_label("NIK", exact=True).input_value() == demo.FORM["nik"]
    assert page.get_by_label("Desa/Kelurahan").input_value() == "Sungguminasa"
    assert page.get_by_label("Alamat", exact=True).input_value() == ADDRESS
    # AND the photo shows as already uploaded: nothing to pick (or pay for) again
    documents = page.get_by_role("group", name=KK)
    assert documents.get_by_text("Sudah diunggah: kk-lama.jpg").is_visible()
    assert documents.get_by_label("KK lama", exact=True).input_value() == ""

    # WHEN they complete the rest and submit
    page.get_by_label("Nomor KK", exact=True).fill(demo.FORM["kk"])
    page.get_by_label("Tanggal lahir").fill(demo.FORM["birth_date"])
    pick(
        documents,
        "Buku nikah/akta perkawinan atau akta cerai",
        {"name": "nikah.pdf", "mimeType": "application/pdf", "buffer": simple_pdf("N", ["x"])},
    )
    page.get_by_label("Saya setuju").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Kirim permohonan").click()

    # THEN the request is submitted with the data typed before and after the reload
    assert page.get_by_role("heading", name="Permohonan terkirim").is_visible()
    case = case_of(stack, guestbook_link)
    assert case.state == "form_submitted"
    assert case.form["name"] == NAME
    assert case.form["address"] == ADDRESS
    assert case.form["kk"] == demo.FORM["kk"]
    assert case.draft_form == {}
    # AND the photo was stored once, as a JPEG without EXIF: no GPS, no camera
    assert sorted(d.requirement or "" for d in case.documents) == ["buku_nikah", "kk_lama"]
    kk = documents_by_requirement(case)["kk_lama"]
    assert (kk.filename, kk.content_type) == ("kk-lama.jpg", "image/jpeg")
    stored = stack.c.blobs.get(kk.key)
    with Image.open(io.BytesIO(stored)) as img:
        img.verify()
    with Image.open(io.BytesIO(stored)) as img:
        img.load()
        assert img.format == "JPEG"
        assert img.size == (800, 600)
        assert dict(img.getexif()) == {}
        assert "exif" not in img.info
    assert b"Exif\x00\x00" not in stored
    assert b"HP Murah" not in stored


def test_without_javascript_errors_stand_next_to_their_field_and_nothing_is_lost(
    stack: LocalStack, no_js_page: Any, guestbook_link: str
) -> None:
    page = no_js_page
    # GIVEN a phone with JavaScript off, on a guest-book link
    page.goto(guestbook_link)
    # WHEN the resident mistypes their NIK and "photographs" their KK with a program renamed
    # kk.jpg, then submits the whole form at once
    program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(2048)
    fill_guestbook(
        page,
        js=False,
        kk_lama={"name": "kk.jpg", "mimeType": "image/jpeg", "buffer": program},
        **{"Nama lengkap": NAME, "NIK": "7306081708900", "Alamat": ADDRESS},
    )
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Kirim permohonan").click()

    # THEN the form comes back (422) with both problems, each right after its own input
    assert nav.value.status == 422
    assert page.get_by_role("alert").inner_text() == text("form_has_errors")
    nik = page.get_by_label("NIK", exact=True)
    assert nik.get_attribute("aria-invalid") == "true"
    assert "err-nik" in (nik.get_attribute("aria-describedby") or "").split()
    assert nik.evaluate("e => e.nextElementSibling.id") == "err-nik"
    assert page.locator("#err-nik").inner_text() == "NIK harus terdiri dari 16 angka."
    documents = page.get_by_role("group", name=KK)
    kk = documents.get_by_label("KK lama", exact=True)
    assert kk.get_attribute("aria-invalid") == "true"
    error = page.locator("#" + (kk.get_attribute("aria-describedby") or "-"))
    assert error.is_visible()
    assert error.inner_text() == "Berkas harus berupa JPG, PNG, atau PDF."
    assert error.evaluate("e => e.closest('fieldset').contains(e)")
    assert page.locator("p.error:not([role=alert])").count() == 2
    # AND what they typed is still there
    assert nik.input_value() == "7306081708900"
    assert page.get_by_label("Nama lengkap", exact=True).input_value() == NAME
    assert page.get_by_label("Alamat", exact=True).input_value() == ADDRESS
    assert page.get_by_label("Desa/Kelurahan").input_value() == demo.FORM["desa"]
    assert page.get_by_label("Jenis layanan").input_value() == "kk"
    assert page.get_by_label("Saya setuju").is_checked()
    # AND the good document was kept, the program was not stored at all
    assert documents.get_by_text("Sudah diunggah: buku-nikah.pdf").is_visible()
    assert documents.get_by_text("Sudah diunggah: kk.jpg").count() == 0
    case = case_of(stack, guestbook_link)
    assert case.state == "link_sent"
    assert [d.requirement for d in case.documents] == ["buku_nikah"]
    assert [name.split("-")[0] for name in stored_documents(stack, case)] == ["buku_nikah"]

    # WHEN they correct the NIK and pick a real photo of the KK
    nik.fill(demo.FORM["nik"])
    kk.set_input_files({"name": "kk.png", "mimeType": "image/png", "buffer": png(40, 30)})
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Kirim permohonan").click()
    # THEN it goes through, with the PDF sent the first time
    assert nav.value.status == 200
    assert page.get_by_role("heading", name="Permohonan terkirim").is_visible()
    case = case_of(stack, guestbook_link)
    assert case.state == "form_submitted"
    assert sorted(d.requirement or "" for d in case.documents) == ["buku_nikah", "kk_lama"]
