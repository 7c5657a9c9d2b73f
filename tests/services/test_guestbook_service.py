"""The guest book's service (`sapa.services.guestbook`): drafts, documents stored as they are
picked, the server's checks, a refused submission that loses nothing, and the correction loop
in which only what the officer flagged may change."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sapa.adapters.clock import FixedClock
from sapa.adapters.pdf import simple_pdf
from sapa.bootstrap import Container
from sapa.dev import demo
from sapa.domain.case import Case
from sapa.domain.errors import ValidationFailed
from sapa.domain.texts import text
from sapa.ports import StaffMember
from sapa.services import guestbook, workflow
from sapa.services.guestbook import Submission, Upload
from sapa.services.notify import link_serializer
from sapa.services.workflow import ActionInput
from tests.fakes import FakeWhatsApp
from tests.services.conftest import Runner, greet


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(out, format="PNG")
    return out.getvalue()


# Two different honest "photos" of a document, and a PDF.
PNG = png((128, 128, 128))
PNG_SHARPER = png((250, 250, 250))
PDF = simple_pdf("Buku Nikah", ["Salinan buku nikah pemohon (contoh)"])
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(64)
FIELDS = dict(demo.FORM)
LOKET = StaffMember("loket.sombaopu@sapa.test", "Loket", ("loket",), "730608")


@pytest.fixture
def token(container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock) -> str:
    """A resident of Somba Opu has greeted and received their guest-book link."""
    greet(container)
    runner.drain()
    clock.advance(60)
    for m in reversed(wa.sent):
        found = re.search(r"/guestbook/f/(\S+)", m.body)
        if found:
            return found.group(1)
    raise AssertionError("no guest-book link was sent")


def case_of(c: Container, token: str) -> Case:
    """The case behind a guest-book link, as stored now."""
    return c.store.get(str(link_serializer(c).loads(token)))


def stored_docs(c: Container, case_id: str) -> list[str]:
    """The document objects in the blob store for the case (sidecars left out)."""
    folder = Path(c.settings.sapa_data_dir) / "blobs" / "cases" / case_id / "docs"
    return sorted(p.name for p in folder.glob("*") if not p.name.startswith("."))


def events(c: Container, case_id: str, name: str | None = None) -> list[Any]:
    return [e for e in c.store.events(case_id) if name is None or e.event == name]


def complete(**changes: str) -> Submission:
    return Submission(
        {**FIELDS, **changes},
        {"kk_lama": Upload("kk.png", PNG), "buku_nikah": Upload("nikah.pdf", PDF)},
    )


def refusal(call: Any, *args: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as info:
        call(*args)
    return dict(info.value.fields)


# ---- drafts --------------------------------------------------------------------------------


def test_a_draft_keeps_only_the_forms_fields_truncated_and_changes_no_state(
    container: Container, token: str
) -> None:
    c = container
    before = case_of(c, token)
    n_events = len(events(c, before.id))
    # WHEN the resident's browser saves what they typed, with junk and an overlong address
    guestbook.save_draft(
        c,
        token,
        {
            "name": "Besse",
            "address": "Jl. " + "x" * 1000,
            "state": "delivered",  # not a form field
            "consent": "1",  # consent is given on submit, never by a draft
            "csrf": "abc",
        },
    )
    # AND a second save with another field
    guestbook.save_draft(c, token, {"nik": "73060817"})
    # THEN only the form's fields are kept, each at most 300 characters, both saves merged
    case = case_of(c, token)
    assert case.draft_form == {
        "name": "Besse",
        "address": ("Jl. " + "x" * 1000)[:300],
        "nik": "73060817",
    }
    assert guestbook.current_values(case)["name"] == "Besse"
    # AND nothing else moved: no state change, no submitted form, no audit event per keystroke
    assert case.state == before.state == "link_sent"
    assert case.form == {}
    assert case.consent is None
    assert len(events(c, case.id)) == n_events
    assert c.queue.tasks == []  # type: ignore[attr-defined]


def test_a_draft_is_refused_once_the_form_is_submitted(container: Container, token: str) -> None:
    c = container
    guestbook.submit(c, token, complete())
    with pytest.raises(guestbook.LinkInvalid):
        guestbook.save_draft(c, token, {"name": "Late"})
    assert case_of(c, token).draft_form == {}


# ---- documents picked one by one -------------------------------------------------------------


def test_an_unknown_requirement_is_refused_and_nothing_is_stored(
    container: Container, token: str
) -> None:
    c = container
    case = case_of(c, token)
    with pytest.raises(ValidationFailed):
        guestbook.upload_document(c, token, "../../etc/passwd", Upload("x.png", PNG))
    with pytest.raises(ValidationFailed):
        guestbook.upload_document(c, token, "sertifikat_vaksin", Upload("x.png", PNG))
    assert case_of(c, token).documents == []
    assert stored_docs(c, case.id) == []


def test_the_same_file_picked_twice_is_kept_once(container: Container, token: str) -> None:
    c = container
    case = case_of(c, token)
    first = guestbook.upload_document(c, token, "kk_lama", Upload("kk.png", PNG))
    again = guestbook.upload_document(c, token, "kk_lama", Upload("kk (1).png", PNG))
    assert again.key == first.key
    case = case_of(c, token)
    assert [d.key for d in case.documents] == [first.key]
    assert len(events(c, case.id, "document_uploaded")) == 1
    assert len(stored_docs(c, case.id)) == 1
    # AND a different photo for the same requirement, before the form went in, replaces it:
    # the earlier file is gone from the case and from storage (no pile of distinct uploads)
    newer = guestbook.upload_document(c, token, "kk_lama", Upload("kk2.png", PNG_SHARPER))
    case = case_of(c, token)
    assert [d.key for d in case.documents] == [newer.key]
    assert guestbook.documents_by_requirement(case)["kk_lama"].key == newer.key
    assert not c.blobs.exists(first.key)
    assert len(stored_docs(c, case.id)) == 1
    assert case.state == "link_sent"


def test_pile_of_distinct_uploads_keeps_one_file_per_requirement(
    container: Container, token: str
) -> None:
    # GIVEN whoever holds the link uploading 20 distinct photos for one requirement
    c = container
    for shade in range(20):
        guestbook.upload_document(c, token, "kk_lama", Upload("kk.png", png((shade, 9, 9))))
    # THEN one file is kept for it, in the case and in storage
    case = case_of(c, token)
    assert len(case.documents) == 1
    assert len(stored_docs(c, case.id)) == 1


def test_a_file_that_is_not_a_photo_or_pdf_is_refused_next_to_its_document(
    container: Container, token: str
) -> None:
    c = container
    fields = refusal(guestbook.upload_document, c, token, "kk_lama", Upload("kk.jpg", EXE))
    assert fields == {"doc_kk_lama": text("file_type")}
    assert case_of(c, token).documents == []
    assert stored_docs(c, case_of(c, token).id) == []


# ---- the server's checks ---------------------------------------------------------------------


def test_a_desa_outside_the_kecamatan_is_refused(container: Container, token: str) -> None:
    # Limbung is a kelurahan of Bajeng, not of Somba Opu
    fields = refusal(guestbook.submit, container, token, complete(desa="Limbung"))
    assert fields == {"desa": text("desa_unknown")}
    assert case_of(container, token).state == "link_sent"
    assert "Sungguminasa" in guestbook.desa_names(container, case_of(container, token))


def test_a_birth_date_in_the_future_is_refused(container: Container, token: str) -> None:
    # The NIK's date is 17-08-(19|20)90; 2090-08-17 matches it but has not happened yet
    fields = refusal(guestbook.submit, container, token, complete(birth_date="2090-08-17"))
    assert fields == {"birth_date": text("birth_in_future")}
    assert case_of(container, token).state == "link_sent"


def test_a_refused_submission_keeps_the_draft_and_the_valid_documents(
    container: Container, token: str
) -> None:
    c = container
    case = case_of(c, token)
    n_events = len(events(c, case.id))
    # WHEN the resident submits a wrong NIK, a good KK photo and an .exe named like a PDF
    sub = Submission(
        {**FIELDS, "nik": "12345", "name": "Besse Daeng Ngai"},
        {"kk_lama": Upload("kk.png", PNG), "buku_nikah": Upload("nikah.pdf", EXE)},
    )
    fields = refusal(guestbook.submit, c, token, sub)
    # THEN both problems are named, each next to its own input
    assert fields == {"nik": text("nik_length"), "doc_buku_nikah": text("file_type")}
    # AND the case did not move: no form, no consent, no submit event, no task
    case = case_of(c, token)
    assert case.state == "link_sent"
    assert case.form == {} and case.consent is None
    assert events(c, case.id, "submit_form") == []
    assert c.queue.tasks == []  # type: ignore[attr-defined]
    # AND what was typed is the draft, and the good photo is kept (the .exe is not)
    assert case.draft_form["name"] == "Besse Daeng Ngai"
    assert case.draft_form["nik"] == "12345"
    assert [d.requirement for d in case.documents] == ["kk_lama"]
    assert [e.detail["requirement"] for e in events(c, case.id)[n_events:]] == ["kk_lama"]
    assert [n.split("-")[0] for n in stored_docs(c, case.id)] == ["kk_lama"]

    # WHEN they fix the NIK and send only the missing document
    done = guestbook.submit(
        c,
        token,
        Submission(
            {"nik": FIELDS["nik"], "consent": "1"}, {"buku_nikah": Upload("nikah.pdf", PDF)}
        ),
    )
    # THEN the kept photo and the draft count: the form is submitted
    assert done.state == "form_submitted"
    assert done.form["name"] == "Besse Daeng Ngai"
    assert done.draft_form == {}
    assert sorted(d.requirement for d in done.documents) == ["buku_nikah", "kk_lama"]


# ---- the correction loop -----------------------------------------------------------------


@pytest.fixture
def correcting(container: Container, runner: Runner, clock: FixedClock, token: str) -> str:
    """Submitted, then the counter officer asked for a new KK photo and a fuller address."""
    c = container
    guestbook.submit(c, token, complete(notes="Mohon dibantu"))
    runner.drain()
    clock.advance(300)
    workflow.perform(
        c,
        case_of(c, token).id,
        LOKET,
        "request_correction",
        ActionInput(corrections={"doc:kk_lama": "Foto buram", "field:address": "RT/RW belum ada"}),
    )
    runner.drain()
    clock.advance(600)
    case = case_of(c, token)
    assert case.state == "awaiting_correction"
    assert set(case.corrections) == {"doc:kk_lama", "field:address"}
    return token


def test_the_flagged_document_must_be_sent_anew(
    container: Container, correcting: str, wa: FakeWhatsApp
) -> None:
    c, token = container, correcting
    address = "Jl. Masjid Raya No. 1 RT 02/RW 03"
    # the resident got the reasons on WhatsApp
    assert "KK lama: Foto buram" in wa.sent[-1].body
    assert "Alamat: RT/RW belum ada" in wa.sent[-1].body
    # WHEN they fix the address but send no new KK photo
    fields = refusal(guestbook.submit, c, token, Submission({"address": address, "consent": "1"}))
    # THEN the old photo does not count
    assert fields == {"doc_kk_lama": text("correction_needed")}
    # WHEN they send the very same photo again (through the form, or picked on its own)
    again = Submission({"address": address, "consent": "1"}, {"kk_lama": Upload("kk.png", PNG)})
    assert refusal(guestbook.submit, c, token, again) == {"doc_kk_lama": text("correction_needed")}
    assert refusal(guestbook.upload_document, c, token, "kk_lama", Upload("kk.png", PNG)) == {
        "doc_kk_lama": text("correction_needed")
    }
    # THEN still nothing moved, and the typed address waits in the draft
    case = case_of(c, token)
    assert case.state == "awaiting_correction"
    assert case.form["address"] == FIELDS["address"]
    assert case.draft_form["address"] == address
    assert len(case.documents) == 2


def test_a_correction_changes_only_what_was_flagged(
    container: Container, correcting: str, runner: Runner
) -> None:
    c, token = container, correcting
    before = case_of(c, token)
    address = "Jl. Masjid Raya No. 1 RT 02/RW 03"
    # WHEN the resident picks a sharper photo, then submits the address — and a tampered
    # request also tries to change the service, the NIK and the name
    new = guestbook.upload_document(c, token, "kk_lama", Upload("kk-baru.png", PNG_SHARPER))
    done = guestbook.submit(
        c,
        token,
        Submission(
            {
                "address": address,
                "consent": "1",
                "service": "ktp_el",
                "nik": "7306085708900002",
                "name": "Orang Lain",
            }
        ),
    )
    # THEN the case is submitted again and step 3 runs a second time
    assert done.state == "form_submitted"
    assert len(done.runs("periksa")) == 2
    # AND only the flagged items changed
    assert done.service == "kk"
    assert done.form == {**before.form, "address": address}
    assert done.form["nik"] == FIELDS["nik"]
    assert done.form["notes"] == "Mohon dibantu"
    docs = guestbook.documents_by_requirement(done)
    assert docs["kk_lama"].key == new.key
    assert docs["buku_nikah"] == guestbook.documents_by_requirement(before)["buku_nikah"]
    # AND the request is cleared, and the submit event records what was corrected
    assert done.corrections == {} and done.corrections_at is None
    submitted = events(c, done.id, "submit_form")
    assert len(submitted) == 2
    assert submitted[-1].detail["corrected"] == ["doc:kk_lama", "field:address"]
    assert submitted[-1].from_state == "awaiting_correction"
    runner.drain()
    assert c.store.get(done.id).precheck["complete"] is True  # type: ignore[index]


def test_a_general_correction_reopens_the_whole_form_but_not_the_service(
    container: Container, runner: Runner, clock: FixedClock, token: str
) -> None:
    c = container
    guestbook.submit(c, token, complete())
    runner.drain()
    clock.advance(60)
    case_id = case_of(c, token).id
    workflow.perform(c, case_id, LOKET, "request_correction", ActionInput(reason="Data kurang"))
    assert c.store.get(case_id).corrections == {"general": "Data kurang"}
    done = guestbook.submit(
        c, token, Submission({"name": "Andi Baso Daeng", "service": "ktp_el", "consent": "1"})
    )
    assert done.state == "form_submitted"
    assert done.form["name"] == "Andi Baso Daeng"
    assert done.service == "kk"


def _link_for(wa: FakeWhatsApp, to: str) -> str:
    for m in reversed(wa.sent):
        found = re.search(r"/guestbook/f/(\S+)", m.body)
        if found and m.to == to:
            return found.group(1)
    raise AssertionError(f"no guest-book link was sent to {to}")


def test_precheck_finds_another_open_request_for_the_same_nik_and_service(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    # GIVEN a resident's submitted request, and the same NIK asking again from another phone
    # (a relative's) for the same service, and once more for another service
    numbers = ("6281200000001", "6281200000002", "6281200000003")
    for n, number in enumerate(numbers):
        greet(c, wa_id=number, wamid=f"wamid.P{n}")
    runner.drain()
    clock.advance(60)
    first = guestbook.submit(c, _link_for(wa, numbers[0]), complete())
    runner.drain()
    second = guestbook.submit(c, _link_for(wa, numbers[1]), complete())
    ktp = Submission({**FIELDS, "service": "ktp_el"}, {"kk": Upload("kk.png", PNG)})
    third = guestbook.submit(c, _link_for(wa, numbers[2]), ktp)
    runner.drain()

    # THEN only the second request's pre-check names the first (by its number, not the NIK)
    def findings(case: Case) -> list[str]:
        return list((c.store.get(case.id).precheck or {}).get("findings", []))

    assert not [f for f in findings(first) if "masih terbuka" in f]
    assert [f for f in findings(second) if "masih terbuka" in f] == [
        f"Ada permohonan lain yang masih terbuka: {first.reg_no}."
    ]
    assert not [f for f in findings(third) if "masih terbuka" in f]
