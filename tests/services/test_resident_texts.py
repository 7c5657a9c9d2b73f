"""What the resident reads on WhatsApp: the greeting with the guest-book link (the service
their first message named and its documents), the signed document's caption and file name,
and no second "contacted" message right after an officer's own."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from sapa.adapters.clock import FixedClock
from sapa.adapters.meta_webhook import InboundMessage
from sapa.bootstrap import Container
from sapa.domain.errors import TransientError
from sapa.ports import Task
from sapa.services import guestbook, intake, notify, signing
from tests.services.conftest import FakeWhatsApp, Runner, greet, inbound
from tests.services.test_pipeline import (
    KADIS,
    LOKET,
    act,
    to_approved,
    to_submitted,
    token_from,
)

WA_ID = "6281234567890"


def link_message(wa: FakeWhatsApp) -> str:
    (body,) = [m.body for m in wa.sent if "/guestbook/f/" in m.body]
    return str(body)


# ---- the greeting (SOP step 2) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "service", "documents"),
    [
        (
            "mau urus KK",
            "Kartu Keluarga (baru/perubahan)",
            ["KK lama", "Buku nikah/akta perkawinan atau akta cerai"],
        ),
        (
            "Assalamualaikum, akte lahir anak sy",
            "Akta Kelahiran",
            ["Surat keterangan lahir dari dokter/bidan atau SPTJM", "KTP-el orang tua/saksi"],
        ),
        ("bapak meninggal", "Akta Kematian", ["KTP-el almarhum/almarhumah"]),
    ],
)
def test_the_greeting_names_the_service_of_the_first_message_and_its_documents(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    first: str,
    service: str,
    documents: list[str],
) -> None:
    # GIVEN a resident whose first message names what they need
    case_id = greet(container, text=first)
    # WHEN SAPA answers with the guest-book link
    runner.drain()
    body = link_message(wa)
    # THEN the answer names the service and every document to prepare, one per line
    assert service in body
    lines = body.splitlines()
    for name in documents:
        assert f"- {name}" in lines
    # AND still the registration number, the link and how to ask for status, help, cancel
    case = container.store.get(case_id)
    assert case.reg_no in body
    assert re.search(r"\s(https?://\S+/guestbook/f/\S+)(\s|$)", body)
    for keyword in ("STATUS", "BANTUAN", "BATAL"):
        assert keyword in body
    # AND the case keeps the service as a hint (the audit trail says where it came from)
    assert case.service_hint is not None and case.service is None
    (greeted,) = [e for e in container.store.events(case_id) if e.event == "greet"]
    assert greeted.detail["service_hint"] == case.service_hint


def test_an_optional_document_is_marked_as_such(
    container: Container, runner: Runner, wa: FakeWhatsApp
) -> None:
    greet(container, text="kk saya mau diubah")
    runner.drain()
    lines = link_message(wa).splitlines()
    assert "- Surat pindah (bila pindah domisili) — tidak wajib" in lines
    assert "- KK lama" in lines  # required: no mark


def test_a_greeting_that_names_no_service_says_how_to_choose_one(
    container: Container, runner: Runner, wa: FakeWhatsApp
) -> None:
    # GIVEN a resident who only says hello
    case_id = greet(container, text="Halo kk, selamat pagi")
    runner.drain()
    body = link_message(wa)
    # THEN the answer lists no documents but says to choose the service in the guest book
    assert container.store.get(case_id).service_hint is None
    assert "pilih jenis layanan" in body
    assert not any(line.startswith("- ") for line in body.splitlines())
    assert all(s.name not in body for s in container.catalogue.services if s.code != "ktp_el")
    for keyword in ("STATUS", "BANTUAN", "BATAL"):
        assert keyword in body


def test_only_the_first_text_of_a_resident_sets_the_hint(
    container: Container, runner: Runner, wa: FakeWhatsApp
) -> None:
    # GIVEN a resident whose first message is a photo captioned "KTP"
    intake.receive(container, [inbound("KTP", type_="image", media_id="m1", wamid="wamid.P")], [])
    case = container.store.find_open("730608", WA_ID)
    assert case is not None
    # THEN a caption names no service (it says what the photo shows)
    assert case.service_hint is None
    # AND a later text does not change the case's hint either
    intake.receive(container, [inbound("mau urus KK", wamid="wamid.Q")], [])
    assert container.store.get(case.id).service_hint is None


def test_the_hint_preselects_the_service_but_the_residents_choice_wins(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    # GIVEN a resident who asked for a KK on WhatsApp
    case_id = greet(container, text="mau urus KK")
    runner.drain()
    token = token_from(wa)
    # THEN the guest book preselects it
    assert guestbook.current_values(container.store.get(case_id))["service"] == "kk"
    # WHEN they choose KTP-el in the guest book instead (the draft saves it), and submit it
    guestbook.save_draft(container, token, {"service": "ktp_el"})
    assert guestbook.current_values(container.store.get(case_id))["service"] == "ktp_el"
    # AND a HALO now lists the documents of what they chose, not of the hint
    intake.receive(container, [inbound("HALO", wamid="wamid.H")], [])
    wa.sent.clear()
    runner.drain()
    again = link_message(wa)
    assert "*KTP-el*" in again and "KK lama" not in again
    from sapa.services.guestbook import Submission, Upload
    from tests.functions.conftest import tiny_pdf, tiny_png, valid_fields

    sub = Submission(
        {k: v for k, v in valid_fields().items() if k != "service"},
        {"kk": Upload("kk.png", tiny_png()), "ktp_lama": Upload("k.pdf", tiny_pdf())},
    )
    case = guestbook.submit(container, token, sub)
    assert case.service == "ktp_el"
    assert case.service_hint == "kk"  # the hint stays what the message said


# ---- the signed document ------------------------------------------------------------------------


def test_the_signed_document_is_named_and_explained(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    # GIVEN a KK request approved and signed
    case_id = to_approved(container, runner, wa, clock)
    act(container, case_id, KADIS, "sign")
    runner.drain()
    (doc,) = [m for m in wa.sent if m.kind == "document"]
    case = container.store.get(case_id)
    assert case.state == "delivered"
    # THEN the file is named by the document and the registration number
    assert doc.filename == f"KK-{case.reg_no}.pdf"
    assert re.fullmatch(r"KK-7306\d\d-\d{8}-\d{4}\.pdf", doc.filename)
    assert case.signed is not None and case.signed.filename == doc.filename
    # AND the caption names the document, says the QR code / TTE makes it valid, that it may
    # be printed on plain HVS paper under Permendagri 109/2019, and thanks the resident
    caption = doc.body  # a document's caption
    assert caption.startswith("Kartu Keluarga ")
    assert case.reg_no in caption
    assert "tanda tangan elektronik (TTE)" in caption and "kode QR" in caption
    assert "HVS" in caption and "Permendagri Nomor 109 Tahun 2019" in caption
    assert "Terima kasih" in caption
    assert len(caption) <= 1024  # WhatsApp's limit for a caption


def test_a_card_is_not_said_to_be_printable_on_plain_paper(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    # GIVEN a signed KTP-el (a card: Permendagri 109/2019 puts KK and akta on HVS, not cards)
    case_id = to_approved(container, runner, wa, clock)
    case = container.store.get(case_id)
    case = case.model_copy(update={"service": "ktp_el"})
    caption = signing.delivery_caption(container, case)
    # THEN the caption names it and its TTE, but says nothing about printing it
    assert caption.startswith("KTP Elektronik ")
    assert "kode QR" in caption
    assert "HVS" not in caption and "Permendagri" not in caption
    assert signing.signed_filename(container, case) == f"KTP-EL-{case.reg_no}.pdf"


def test_a_document_of_a_service_no_longer_in_the_catalogue_still_goes_out(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    case = container.store.get(to_approved(container, runner, wa, clock))
    gone = case.model_copy(update={"service": "paspor"})
    assert signing.signed_filename(container, gone) == f"DOKUMEN-{case.reg_no}.pdf"
    assert signing.delivery_caption(container, gone).startswith("Dokumen ")


# ---- step 4: no automatic "contacted" right after the officer's own message ----------------------


def _checked(c: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock) -> str:
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "claim")
    act(c, case_id, LOKET, "check")
    runner.drain()
    wa.sent.clear()
    return case_id


def _contacted_task(runner: Runner) -> Task:
    (task,) = [
        t for t in runner.queue.tasks if t.kind == "notify" and t.payload["kind"] == "contacted"
    ]
    return task


def _contacted_sent(c: Container, case_id: str) -> list[Any]:
    return [m for m in c.store.messages(case_id) if m.data.get("kind") == "contacted"]


def test_without_an_officers_message_the_resident_is_told_of_step_4(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    case_id = _checked(container, runner, wa, clock)
    act(container, case_id, LOKET, "contact")
    task = _contacted_task(runner)
    runner.drain()
    assert [m.body for m in wa.sent] == [
        notify.render(container, container.store.get(case_id), "contacted", {})
    ]
    # AND the same task again (a retry) sends nothing more
    assert notify.notify(container, task.payload, task.name or "") == "already_sent"
    assert len(wa.sent) == 1 and len(_contacted_sent(container, case_id)) == 1


def test_an_officers_reply_just_before_step_4_is_the_contact(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = _checked(c, runner, wa, clock)
    # GIVEN the counter officer writes to the resident from the case file
    act(c, case_id, LOKET, "reply", message="Data Anda lengkap, segera kami proses.")
    runner.drain()
    assert [m.body for m in wa.sent] == ["Data Anda lengkap, segera kami proses."]
    # WHEN two minutes later they mark step 4 done
    clock.advance(120)
    act(c, case_id, LOKET, "contact")
    task = _contacted_task(runner)
    runner.drain()
    # THEN the resident gets no second, near-identical message
    assert len(wa.sent) == 1
    assert _contacted_sent(c, case_id) == []
    # AND the case says why, once; the step itself is done
    case = c.store.get(case_id)
    assert case.state == "contacted"
    (skipped,) = [e for e in c.store.events(case_id) if e.event == "message_skipped"]
    assert skipped.detail["kind"] == "contacted"
    assert skipped.detail["reason"] == "officer_wrote_to_resident"
    # AND the task replayed (later still, an hour on) decides the same: nothing sent, no note
    clock.advance(3600)
    assert notify.notify(c, task.payload, task.name or "") == "skipped"
    assert notify.notify(c, task.payload, task.name or "") == "skipped"
    assert len(wa.sent) == 1
    assert [e.event for e in c.store.events(case_id)].count("message_skipped") == 1


def test_an_officers_reply_longer_ago_than_the_steps_mutu_baku_is_not_the_contact(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = _checked(c, runner, wa, clock)
    act(c, case_id, LOKET, "reply", message="Mohon ditunggu, data sedang kami periksa.")
    runner.drain()
    # WHEN step 4 is marked done eleven minutes later (its mutu baku is ten)
    assert notify.contact_window(c) == timedelta(minutes=10)
    clock.advance(11 * 60)
    act(c, case_id, LOKET, "contact")
    runner.drain()
    # THEN the automatic message goes out as well
    assert len(wa.sent) == 2
    assert len(_contacted_sent(c, case_id)) == 1


def test_an_officers_message_from_the_whatsapp_business_app_counts_too(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = _checked(c, runner, wa, clock)
    # GIVEN the officer wrote from the kecamatan's phone (an echo reaches the webhook)
    echo = InboundMessage(
        wamid="wamid.ECHO1",
        phone_number_id="demo-730608",
        wa_id=WA_ID,
        profile_name="",
        at=clock.now(),
        type="text",
        text="Berkas Anda sudah lengkap ya Pak.",
        source="echo",
    )
    intake.receive(c, [echo], [])
    clock.advance(30)
    act(c, case_id, LOKET, "contact")
    runner.drain()
    assert wa.sent == [] and _contacted_sent(c, case_id) == []


def test_a_reply_still_on_its_way_is_waited_for(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = _checked(c, runner, wa, clock)
    # GIVEN a reply whose task has not run yet, and step 4 marked done right after it
    act(c, case_id, LOKET, "reply", message="Data lengkap, Pak.")
    (reply,) = runner.queue.take()
    clock.advance(1)
    act(c, case_id, LOKET, "contact")
    task = _contacted_task(runner)
    # WHEN the "contacted" task runs first
    # THEN it fails transiently (the queue retries it) and sends nothing
    with pytest.raises(TransientError):
        notify.notify(c, task.payload, task.name or "")
    assert wa.sent == []
    # WHEN the reply goes out, and the retry runs
    notify.notify(c, reply.payload, reply.name or "")
    clock.advance(2)
    assert notify.notify(c, task.payload, task.name or "") == "skipped"
    assert [m.body for m in wa.sent] == ["Data lengkap, Pak."]


def test_a_reply_that_never_goes_out_does_not_hold_step_4s_message_for_long(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = _checked(c, runner, wa, clock)
    act(c, case_id, LOKET, "reply", message="Data lengkap, Pak.")
    runner.queue.take()  # its task is stuck somewhere
    act(c, case_id, LOKET, "contact")
    task = _contacted_task(runner)
    with pytest.raises(TransientError):
        notify.notify(c, task.payload, task.name or "")
    # WHEN the retry comes after the wait is over
    clock.advance(notify.REPLY_WAIT.total_seconds() + 1)
    # THEN the resident is told by the automatic message
    assert notify.notify(c, task.payload, task.name or "") == "sent"
    assert len(_contacted_sent(c, case_id)) == 1


def test_a_reply_refused_outside_the_24_hour_window_leaves_step_4s_template(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = _checked(c, runner, wa, clock)
    # GIVEN the resident last wrote more than 24 hours ago: a free reply cannot go out
    clock.advance(25 * 3600)
    act(c, case_id, LOKET, "claim")
    act(c, case_id, LOKET, "reply", message="Data lengkap, Pak.")
    runner.drain()
    assert wa.sent == []
    # WHEN step 4 is marked done
    act(c, case_id, LOKET, "contact")
    runner.drain()
    # THEN the approved "contacted" template still tells the resident
    (sent,) = _contacted_sent(c, case_id)
    assert sent.type == "template"
    assert [m.kind for m in wa.sent] == ["template"]


def test_a_contacted_task_queued_before_this_change_still_sends(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    # GIVEN a task decided by an older SAPA (no contact time in its payload), after a reply
    c = container
    case_id = _checked(c, runner, wa, clock)
    act(c, case_id, LOKET, "reply", message="Data lengkap, Pak.")
    runner.drain()
    act(c, case_id, LOKET, "contact")
    task = _contacted_task(runner)
    runner.queue.take()
    old = {k: v for k, v in task.payload.items() if k != "contacted_at"}
    # THEN it sends as it always did
    assert notify.notify(c, old, task.name or "") == "sent"
