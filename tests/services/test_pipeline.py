"""Service tests through the ports: the SOP path with a controlled clock, loops and failures."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
from typing import Any

import pytest

from sapa.adapters.clock import FixedClock
from sapa.adapters.pdf import simple_pdf, verify_signature
from sapa.bootstrap import Container
from sapa.dev import demo
from sapa.dev.driver import ServiceDesk, walk
from sapa.domain.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    TransientError,
    ValidationFailed,
)
from sapa.domain.sla import timeline
from sapa.ports import StaffMember
from sapa.services import guestbook, intake, notify, recovery, signing, workflow
from sapa.services.guestbook import Submission, Upload
from sapa.services.workflow import ActionInput
from tests.conftest import RecordingQueue
from tests.fakes import FakeWhatsApp
from tests.services.conftest import Runner, greet, inbound

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415478"
    "9c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)
FIELDS = dict(demo.FORM)
LOKET = StaffMember("loket.sombaopu@sapa.test", "Loket", ("loket",), "730608")
LOKET_OTHER = StaffMember("loket.bajeng@sapa.test", "Loket Bajeng", ("loket",), "730602")
LOKET_2 = StaffMember("loket2.sombaopu@sapa.test", "Loket 2", ("loket",), "730608")
VERIF = StaffMember("verifikasi@sapa.test", "Verifikator", ("verifikator",))
OPERATOR = StaffMember("operator.siak@sapa.test", "Operator", ("operator_siak",))
KABID = StaffMember("kabid@sapa.test", "Kabid", ("kabid",))
KADIS = StaffMember("kadis@sapa.test", "Kadis", ("kadis",))


def token_from(wa: FakeWhatsApp) -> str:
    for m in reversed(wa.sent):
        found = re.search(r"/guestbook/f/(\S+)", m.body)
        if found:
            return found.group(1)
    raise AssertionError("no guest-book link was sent")


def submission(**changes: str) -> Submission:
    return Submission(
        {**FIELDS, **changes},
        {
            "kk_lama": Upload("kk.png", PNG),
            "buku_nikah": Upload("nikah.pdf", simple_pdf("N", ["x"])),
        },
    )


def act(c: Container, case_id: str, staff: StaffMember, action: str, **data: Any) -> Any:
    return workflow.perform(c, case_id, staff, action, ActionInput(**data))


def link_sent(c: Container, runner: Runner, **kw: Any) -> str:
    """A greeting (`kw`: its inbound message) and the guest-book link sent."""
    kw.setdefault("at", c.clock.now())  # the resident writes now: the 24-hour window is open
    case_id = greet(c, **kw)
    runner.drain()
    assert c.store.get(case_id).state == "link_sent"
    return case_id


def to_submitted(
    c: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock, wa_id: str | None = None
) -> str:
    """A case greeted now whose guest book comes in two minutes later (the check waits)."""
    case_id = link_sent(c, runner, **({"wa_id": wa_id, "wamid": f"wamid.{wa_id}"} if wa_id else {}))
    clock.advance(120)
    guestbook.submit(c, token_from(wa), submission())
    runner.drain()
    return case_id


def to_approved(c: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock) -> str:
    """A submitted case taken through steps 3–7 by the staff file's officers (no timing; the
    tasks the steps queue wait for the test's own `runner.drain()`)."""
    case_id = to_submitted(c, runner, wa, clock)
    walk(ServiceDesk(c), case_id, "approved", claim=False)
    return case_id


def test_full_path_measures_every_step_against_its_mutu_baku(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    # GIVEN a resident who greets and fills the guest book two minutes later
    case_id = to_submitted(c, runner, wa, clock)
    assert c.store.get(case_id).state == "form_submitted"
    assert c.store.get(case_id).precheck["complete"] is True  # type: ignore[index]

    # WHEN each officer claims and does their step, with known durations
    def step(staff: StaffMember, action: str, wait: float, handle: float, **data: Any) -> None:
        clock.advance(wait)
        act(c, case_id, staff, "claim")
        clock.advance(handle)
        act(c, case_id, staff, action, **data)

    step(LOKET, "check", wait=30, handle=45)
    step(LOKET, "contact", wait=10, handle=700)  # longer than its 10-minute mutu baku
    step(VERIF, "forward", wait=60, handle=20)
    runner.drain()
    draft = simple_pdf("KARTU KELUARGA", ["No. 1"])
    step(OPERATOR, "enter_siak", wait=5, handle=300, siak_ref="SIAK-1", draft_pdf=draft)
    step(KABID, "approve", wait=5, handle=10)
    step(KADIS, "sign", wait=5, handle=0)
    clock.advance(3)
    runner.drain()

    # THEN the case is delivered, the document went out on WhatsApp, and the times are exact
    case = c.store.get(case_id)
    assert case.state == "delivered"
    docs = [m for m in wa.sent if m.kind == "document"]
    assert len(docs) == 1 and docs[0].to == "6281234567890"
    tl = timeline(c.sop, case, clock.now())
    by_step = {t.step.number: t for t in tl.steps}
    assert by_step[3].waiting_seconds == 30 and by_step[3].handling_seconds == 45
    assert not by_step[3].breached
    assert by_step[4].handling_seconds == 700 and by_step[4].breached
    assert by_step[6].handling_seconds == 300 and not by_step[6].breached
    assert by_step[8].handling_seconds == 3  # claimed at "sign", done when the signer answered
    assert by_step[2].run.done_by == "system"
    assert [t.step.number for t in tl.breaches] == [4]
    assert tl.lead_time_seconds == 120 + 30 + 45 + 10 + 700 + 60 + 20 + 5 + 300 + 5 + 10 + 5 + 3
    # AND the signed PDF validates, the draft is kept, and the verification page knows it
    signed = c.blobs.get(case.signed.key)  # type: ignore[union-attr]
    assert c.blobs.get(case.draft.key) == draft  # type: ignore[union-attr]
    report = verify_signature(signed, [c.signer.ca_certificate_pem])  # type: ignore[attr-defined]
    assert report.intact and report.trusted
    view = signing.verification(c, signing.document_id(case), signed)
    assert view.hash_matches is True and view.holder == "A*** B***"


def test_correction_loop_reopens_the_check(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "request_correction", reason="Foto KK buram")
    runner.drain()
    assert c.store.get(case_id).state == "awaiting_correction"
    assert "Foto KK buram" in wa.sent[-1].body
    # WHEN the resident sends a sharper photo through the same link
    guestbook.submit(c, token_from(wa), submission())
    # THEN the counter officer checks again: a second run of step 3
    case = c.store.get(case_id)
    assert case.state == "form_submitted"
    assert len(case.runs("periksa")) == 2


def test_reject_and_correction_need_a_reason(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    case_id = to_submitted(container, runner, wa, clock)
    with pytest.raises(ValidationFailed):
        act(container, case_id, LOKET, "request_correction", reason=" ")
    assert container.store.get(case_id).state == "form_submitted"


def test_return_sends_the_case_back_exactly_one_step(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    walk(ServiceDesk(c), case_id, "forwarded", claim=False)
    act(c, case_id, OPERATOR, "enter_siak", siak_ref="S-1", draft_pdf=simple_pdf("A", ["1"]))
    # WHEN the head of division returns it
    act(c, case_id, KABID, "return", reason="Nama ayah salah ketik")
    case = c.store.get(case_id)
    assert case.state == "returned" and case.returned_to == "input_siak"
    # THEN only the SIAK operator can redo step 6, and approval waits again afterwards
    with pytest.raises(IllegalTransition):
        act(c, case_id, KABID, "approve")
    act(c, case_id, OPERATOR, "enter_siak", siak_ref="S-2", draft_pdf=simple_pdf("B", ["2"]))
    case = c.store.get(case_id)
    assert case.state == "entered_in_siak" and case.siak_ref == "S-2"
    assert case.waiting_step(c.sop).key == "persetujuan"  # type: ignore[union-attr]


def test_guards_kecamatan_and_claims(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    from sapa.domain.errors import Forbidden

    with pytest.raises(Forbidden):
        act(c, case_id, LOKET_OTHER, "check")
    act(c, case_id, LOKET, "claim")
    with pytest.raises(Conflict):
        act(c, case_id, LOKET_2, "check")
    assert c.store.get(case_id).state == "form_submitted"


def test_duplicate_webhook_delivery_changes_nothing(container: Container, runner: Runner) -> None:
    c = container
    greet(c)
    queued = list(c.queue.tasks)  # type: ignore[attr-defined]
    result = intake.receive(c, [inbound()], [])
    assert result.duplicates == 1
    assert c.queue.tasks == queued  # type: ignore[attr-defined]
    assert len(c.store.list_cases()) == 1
    assert len(c.store.messages(c.store.list_cases()[0].id)) == 1


def test_concurrent_first_messages_open_one_case(container: Container) -> None:
    c = container
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def send(i: int) -> None:
        barrier.wait()
        try:
            intake.receive(c, [inbound(f"pesan {i}", wamid=f"wamid.C{i}")], [])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    cases = c.store.list_cases()
    assert len(cases) == 1
    assert len(c.store.messages(cases[0].id)) == 4


def test_whatsapp_outage_is_retried_and_sends_once(
    container: Container, runner: Runner, wa: FakeWhatsApp
) -> None:
    c = container
    case_id = greet(c)
    [task] = c.queue.take()  # type: ignore[attr-defined]
    wa.fail_next = 1
    with pytest.raises(TransientError):
        notify.notify(c, task.payload, task.name or "")
    # the link is issued (step 2 done, so a resident tapping it at once finds the form open)
    # but not yet delivered; nothing is recorded as sent
    assert c.store.get(case_id).state == "link_sent" and wa.sent == []
    assert not any(m.direction == "out" for m in c.store.messages(case_id))
    notify.notify(c, task.payload, task.name or "")
    notify.notify(c, task.payload, task.name or "")  # a replay of the same task
    assert len(wa.sent) == 1
    case = c.store.get(case_id)
    assert case.state == "link_sent"
    assert [e.event for e in c.store.events(case_id)].count("send_link") == 1


class FlakyQueue(RecordingQueue):
    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def enqueue(self, task: Any) -> bool:
        if self.broken:
            raise TransientError("queue down")
        return super().enqueue(task)


def test_tasks_decided_with_a_change_survive_a_failed_enqueue(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "check")
    act(c, case_id, LOKET, "contact")
    flaky = FlakyQueue()
    c.queue = flaky  # type: ignore[misc]
    # WHEN the queue is down while the verifier forwards the files
    act(c, case_id, VERIF, "forward")
    # THEN the change is saved all the same, with the task it decided kept in its outbox
    # (the previous change's task was queued and cleared from the outbox at the time)
    case = c.store.get(case_id)
    assert case.state == "forwarded"
    assert [e["kind"] for e in case.outbox] == ["siak_handoff"]
    assert flaky.tasks == []
    # AND the recovery sweep queues it once the queue is back, exactly once
    flaky.broken = False
    assert recovery.requeue_outboxes(c) == 1
    assert recovery.requeue_outboxes(c) == 1
    assert [t.kind for t in flaky.tasks] == ["siak_handoff"]
    # AND the next change of the case clears what is now safely queued
    act(c, case_id, OPERATOR, "claim")
    assert c.store.get(case_id).outbox == []


def test_signing_retry_never_signs_twice(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_approved(c, runner, wa, clock)
    runner.drain()
    act(c, case_id, KADIS, "sign")
    [task] = [t for t in c.queue.tasks if t.kind == "esign_request"]  # type: ignore[attr-defined]
    assert signing.esign_request(c, task.payload) == "signed"
    assert signing.esign_request(c, task.payload) == "already_signed"
    assert [e.event for e in c.store.events(case_id)].count("sign") == 1
    with pytest.raises(IllegalTransition):
        act(c, case_id, KADIS, "sign")


def test_batal_asks_to_confirm_and_ya_cancels(
    container: Container, runner: Runner, wa: FakeWhatsApp
) -> None:
    c = container
    case_id = greet(c)
    runner.drain()
    # WHEN the resident sends "batal"
    intake.receive(c, [inbound("batal", wamid="wamid.B")], [])
    runner.drain()
    # THEN nothing is cancelled yet: SAPA asks to confirm with YA
    assert c.store.get(case_id).state == "link_sent"
    assert "Balas YA" in wa.sent[-1].body
    # AND "ya" confirms: the case is cancelled and the resident told so
    intake.receive(c, [inbound("Ya", wamid="wamid.Y")], [])
    runner.drain()
    assert c.store.get(case_id).state == "cancelled"
    assert "dibatalkan" in wa.sent[-1].body
    # AND a new greeting afterwards opens a new case
    assert greet(c, wamid="wamid.NEW") != case_id


def test_a_late_or_unasked_ya_cancels_nothing(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = greet(c)
    runner.drain()
    intake.receive(c, [inbound("ya", wamid="wamid.Y0")], [])  # nobody asked
    runner.drain()
    intake.receive(c, [inbound("BATAL", wamid="wamid.B")], [])
    runner.drain()
    clock.advance(16 * 60)  # past the 15 minutes the confirmation is good for
    intake.receive(c, [inbound("YA", wamid="wamid.Y1", at=clock.now())], [])
    runner.drain()
    assert c.store.get(case_id).state == "link_sent"
    assert [e.event for e in c.store.events(case_id)].count("cancel") == 0


def test_batal_after_signing_is_refused_politely(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_approved(c, runner, wa, clock)
    act(c, case_id, KADIS, "sign")
    c.queue.tasks = [t for t in c.queue.tasks if t.kind != "deliver"]  # type: ignore[attr-defined]
    runner.drain(kinds={"esign_request"})
    c.queue.tasks = [t for t in c.queue.tasks if t.kind != "deliver"]  # type: ignore[attr-defined]
    assert c.store.get(case_id).state == "signed"
    intake.receive(c, [inbound("batal", wamid="wamid.LATE", at=clock.now())], [])
    runner.drain(kinds={"command", "notify"})
    assert c.store.get(case_id).state == "signed"
    assert "tidak dapat dibatalkan" in wa.sent[-1].body


def test_media_is_stored_when_real_and_refused_when_not(
    container: Container, runner: Runner, wa: FakeWhatsApp
) -> None:
    c = container
    case_id = greet(c)
    wa.add_media("m1", PNG)
    wa.add_media("m2", b"MZ\x90\x00 not a photo")
    intake.receive(
        c,
        [
            inbound("KK", wamid="wamid.I1", type_="image", media_id="m1"),
            inbound("", wamid="wamid.I2", type_="document", media_id="m2"),
        ],
        [],
    )
    runner.drain()
    case = c.store.get(case_id)
    assert [d.content_type for d in case.documents] == ["image/png"]
    stored = c.blobs.get(case.documents[0].key)  # re-encoded: no metadata kept
    assert (
        stored.startswith(b"\x89PNG")
        and case.documents[0].sha256 == hashlib.sha256(stored).hexdigest()
    )
    assert "media_rejected" in [e.event for e in c.store.events(case_id)]


def test_manual_link_mode_leaves_step_two_to_the_counter_officer(
    container: Container, runner: Runner, wa: FakeWhatsApp
) -> None:
    c = container
    c.region = dataclasses.replace(  # type: ignore[misc]
        c.region,
        kecamatan=tuple(
            dataclasses.replace(k, link_mode="manual") if k.code == "730608" else k
            for k in c.region.kecamatan
        ),
    )
    case_id = greet(c)
    runner.drain()
    assert wa.sent == [] and c.store.get(case_id).state == "greeted"
    act(c, case_id, LOKET, "send_link")
    runner.drain()
    case = c.store.get(case_id)
    assert case.state == "link_sent"
    assert case.runs("kirim_tautan")[0].done_by == LOKET.email
    assert len(wa.sent) == 1


def test_replaced_and_refused_files_do_not_outlive_their_reference(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    walk(ServiceDesk(c), case_id, "forwarded", claim=False)
    runner.drain()
    first_zip = c.store.get(case_id).handoff
    assert first_zip is not None and c.blobs.exists(first_zip.key)
    # WHEN the SIAK operator sends the files back and the verifier forwards them again
    clock.advance(60)
    act(c, case_id, OPERATOR, "return", reason="Berkas KK kurang jelas")
    clock.advance(60)
    act(c, case_id, VERIF, "forward")
    runner.drain()
    # THEN the new hand-off package replaced the old one, which is gone from the store
    second_zip = c.store.get(case_id).handoff
    assert second_zip is not None and second_zip.key != first_zip.key
    assert c.blobs.exists(second_zip.key) and not c.blobs.exists(first_zip.key)
    # AND a draft uploaded with a refused action is not kept
    before = c.store.get(case_id)
    x_pdf = simple_pdf("X", ["x"])
    with pytest.raises((Forbidden, IllegalTransition)):
        act(c, case_id, KABID, "enter_siak", siak_ref="X", draft_pdf=x_pdf)
    refused = hashlib_key(c, case_id, x_pdf)
    assert not c.blobs.exists(refused) and c.store.get(case_id).version == before.version
    # AND a draft replaced after a return is deleted, the one in use kept
    act(c, case_id, OPERATOR, "enter_siak", siak_ref="S-1", draft_pdf=simple_pdf("A", ["1"]))
    draft_a = c.store.get(case_id).draft
    act(c, case_id, KABID, "return", reason="Nama ayah salah ketik")
    act(c, case_id, OPERATOR, "enter_siak", siak_ref="S-2", draft_pdf=simple_pdf("B", ["2"]))
    draft_b = c.store.get(case_id).draft
    assert draft_a is not None and draft_b is not None and draft_a.key != draft_b.key
    assert c.blobs.exists(draft_b.key) and not c.blobs.exists(draft_a.key)


def hashlib_key(c: Container, case_id: str, pdf: bytes) -> str:
    """Where a draft with these bytes would be stored (workflow._store_draft's key)."""
    import hashlib

    return f"cases/{case_id}/siak/draft-{hashlib.sha256(pdf).hexdigest()[:32]}.pdf"


def test_whatsapp_media_get_the_guest_books_cleaning(
    container: Container, runner: Runner, wa: FakeWhatsApp
) -> None:
    # GIVEN a resident who sends, on WhatsApp, a phone photo carrying GPS in its EXIF, a
    # 75-byte %PDF + HTML polyglot and a PDF bomb
    from io import BytesIO

    from bench.bombs import pdf_xref_stream_bomb
    from PIL import Image

    from tests.browser.support import jpeg_with_gps

    c = container
    case_id = greet(c)
    photo = jpeg_with_gps()
    polyglot = b"%PDF-1.4\n<html><script>alert(document.cookie)</script></html>\n%%EOF\n"
    wa.add_media("m1", photo)
    wa.add_media("m2", polyglot)
    wa.add_media("m3", pdf_xref_stream_bomb(20 * 1024 * 1024))
    intake.receive(
        c,
        [
            inbound("KK", wamid="wamid.G1", type_="image", media_id="m1"),
            inbound("", wamid="wamid.G2", type_="document", media_id="m2"),
            inbound("", wamid="wamid.G3", type_="document", media_id="m3"),
        ],
        [],
    )
    runner.drain()
    # THEN the photo is kept re-encoded, without its EXIF; the other two are kept out of staff
    # view, each with a note that says why
    case = c.store.get(case_id)
    (doc,) = case.documents
    with Image.open(BytesIO(c.blobs.get(doc.key))) as stored:
        assert not stored.getexif()
        assert stored.size == (800, 600)
    refused = [e for e in c.store.events(case_id) if e.event == "media_rejected"]
    assert {e.detail["wamid"] for e in refused} == {"wamid.G2", "wamid.G3"}
    assert all(e.detail["reason"] for e in refused)
