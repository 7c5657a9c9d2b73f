"""guestbook: the resident's form behind the signed WhatsApp link (GET the form, POST it)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from PIL import ExifTags, Image

from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.domain.texts import text
from sapa.services import guestbook as guestbook_service
from sapa.services import notify
from tests.conftest import aged_token
from tests.functions.conftest import (
    KK,
    NIK,
    Flow,
    blob_files,
    snapshot,
    tiny_pdf,
    tiny_png,
    valid_fields,
)

JSON = {"Accept": "application/json"}


@pytest.fixture
def gb(client_for: Callable[[str], FlaskClient]) -> FlaskClient:
    return client_for("guestbook")


@pytest.fixture
def waiting(flow: Flow) -> Case:
    """A case whose guest-book link has been sent (state link_sent)."""
    return flow.to("link_sent")


def expired_token(c: Container, case_id: str) -> str:
    """A genuinely signed guest-book token past guestbook_link_days."""
    return aged_token(
        notify.link_serializer(c), case_id, c.settings.guestbook_link_days * 86400 + 3600
    )


def phone_photo() -> bytes:
    """A JPEG as a phone writes it: EXIF with the camera and the GPS position it was taken at."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "HP Murah"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (5.0, 12.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (119.0, 27.0, 0.0)
    img = Image.new("RGB", (48, 32), (180, 60, 20))
    img.paste((20, 60, 180), (0, 0, 24, 16))
    out = BytesIO()
    img.save(out, format="JPEG", exif=exif)
    data = out.getvalue()
    assert Image.open(BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # really there
    return data


def assert_clean_image(stored: bytes, fmt: str, size: tuple[int, int]) -> None:
    """`stored` is a valid image of that format and size that carries no EXIF at all."""
    img = Image.open(BytesIO(stored))
    img.load()  # decodes: a valid image, not just a plausible header
    assert img.format == fmt
    assert img.size == size
    assert dict(img.getexif()) == {}
    assert "exif" not in img.info
    assert b"Exif\x00\x00" not in stored
    assert b"HP Murah" not in stored


def stored_objects(c: Container) -> dict[str, bytes]:
    """The blob store's objects by key (the dot-named sidecars left out)."""
    root = c.settings.sapa_data_dir / "blobs"
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in blob_files(c)
        if not p.name.startswith(".")
    }


def uploaded_shown(html: str) -> set[str]:
    """The requirements the form marks as already uploaded."""
    return set(re.findall(r'data-uploaded="([^"]+)"', html))


def form_data(
    fields: dict[str, str] | None = None, files: dict[str, tuple[bytes, str]] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = dict(valid_fields() if fields is None else fields)
    chosen = (
        {"kk": (tiny_png(), "kk.png"), "ktp_lama": (tiny_pdf(), "ktp-lama.pdf")}
        if files is None
        else files
    )
    for key, (raw, filename) in chosen.items():
        data[f"doc_{key}"] = (BytesIO(raw), filename)
    return data


# ---- GET --------------------------------------------------------------------------------------


def test_the_link_opens_the_form_in_indonesian(gb: FlaskClient, flow: Flow, waiting: Case) -> None:
    # GIVEN the link the resident received on WhatsApp
    sent = flow.wa.sent[-1].body
    link = next(w for w in sent.split() if "/guestbook/f/" in w)
    token = link.rsplit("/f/", 1)[1]
    # WHEN he opens it
    resp = gb.get(f"/f/{token}")
    # THEN he gets a small HTML form, in Indonesian, naming his registration number
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert len(resp.get_data()) < 100 * 1024
    assert '<html lang="id">' in html
    assert waiting.reg_no in html
    assert "Buku Tamu" in html
    assert "Kirim permohonan" in html
    assert 'name="nik"' in html
    assert 'enctype="multipart/form-data"' in html
    # AND each input has its label, the NIK and KK a hint of what to type
    assert '<label for="nik">NIK</label>' in html
    assert "16 angka, seperti pada KTP-el atau KK." in html
    assert 'aria-describedby="hint-nik ' in html
    assert '<label for="kk">Nomor KK</label>' in html
    assert '<label for="wa_number">Nomor WhatsApp</label>' in html
    # AND the desa is chosen from his kecamatan's own list
    assert '<select id="desa" name="desa"' in html
    assert re.search(r"<option[^>]*>Sungguminasa</option>", html)
    assert "Tamallayang" not in html  # a kelurahan of Bontonompo
    # AND the page is not cached and may not be framed
    assert resp.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    # AND his WhatsApp number is prefilled in local form
    assert 'value="081234567890"' in html


def _assert_gone(resp: Any) -> None:
    assert resp.status_code == 410
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "tidak berlaku" in html
    assert "&#34;HALO&#34;" in html or '"HALO"' in html


def test_a_tampered_token_is_gone(
    container: Container, gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    token = flow.token(waiting)
    head, sig = token.rsplit(".", 1)
    tampered = f"{head}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    before = snapshot(container, waiting.id)
    _assert_gone(gb.get(f"/f/{tampered}"))
    _assert_gone(gb.post(f"/f/{tampered}", data=form_data(), content_type="multipart/form-data"))
    assert snapshot(container, waiting.id) == before


def test_a_token_signed_with_another_secret_is_gone(gb: FlaskClient, waiting: Case) -> None:
    forged = URLSafeTimedSerializer("guessed-secret", salt="sapa.guestbook").dumps(waiting.id)
    _assert_gone(gb.get(f"/f/{forged}"))


def test_an_expired_token_is_gone_with_a_friendly_page(
    container: Container, gb: FlaskClient, waiting: Case
) -> None:
    # GIVEN a link issued longer ago than guestbook_link_days
    token = expired_token(container, waiting.id)
    # (sanity: only its age is wrong: with a longer max_age the service's serializer takes it)
    days = container.settings.guestbook_link_days
    assert notify.link_serializer(container).loads(token, max_age=(days + 1) * 86400) == (
        waiting.id
    )
    # WHEN the resident opens it
    resp = gb.get(f"/f/{token}")
    # THEN a friendly page tells him to send HALO for a new link
    _assert_gone(resp)


def test_an_expired_token_answers_json_when_asked(
    container: Container, gb: FlaskClient, waiting: Case
) -> None:
    resp = gb.get(
        f"/f/{expired_token(container, waiting.id)}", headers={"Accept": "application/json"}
    )
    assert resp.status_code == 410
    assert resp.get_json()["error"] == "link_invalid"


def test_a_path_that_is_not_a_link_is_not_found(gb: FlaskClient) -> None:
    assert gb.get("/").status_code == 404
    assert gb.get("/f").status_code == 404
    assert gb.get("/x/abc").status_code == 404


# ---- POST: invalid --------------------------------------------------------------------------


# A text file named .jpg and a PDF that only has the header: each is sent next to a valid PDF of
# the old KTP, so the refusal has to tell a good document from a bad one in the same request.
TEXT_AS_JPG = b"just some text, not an image\n"
BROKEN_PDF = b"%PDF-1.7\ngarbage"
KTP_PDF = tiny_pdf("KTP-el lama")

# id: (fields changed, files sent (None: a valid KK photo and KTP PDF), field named, documents kept)
INVALID = {
    "nik-not-16-digits": (dict(nik="73060815089"), None, "nik", {"kk", "ktp_lama"}),
    "nik-birthdate-mismatch": (
        dict(birth_date="1991-08-15"),
        None,
        "birth_date",
        {"kk", "ktp_lama"},
    ),
    "nik-impossible-date": (dict(nik="7306083213900001"), None, "nik", {"kk", "ktp_lama"}),
    "missing-required-document": (
        None,
        {"ktp_lama": (KTP_PDF, "ktp.pdf")},
        "doc_kk",
        {"ktp_lama"},
    ),
    "jpg-that-is-text": (
        None,
        {"kk": (TEXT_AS_JPG, "kk.jpg"), "ktp_lama": (KTP_PDF, "ktp.pdf")},
        "doc_kk",
        {"ktp_lama"},
    ),
    "pdf-header-but-broken": (
        None,
        {"kk": (BROKEN_PDF, "kk.pdf"), "ktp_lama": (KTP_PDF, "ktp.pdf")},
        "doc_kk",
        {"ktp_lama"},
    ),
    "no-consent": (dict(consent=""), None, "consent", {"kk", "ktp_lama"}),
    "missing-name": (dict(name=""), None, "name", {"kk", "ktp_lama"}),
    "desa-of-another-kecamatan": (dict(desa="Tamallayang"), None, "desa", {"kk", "ktp_lama"}),
    # no valid service: the documents are still filed under the requirements they were
    # picked for (as a document picked on its own is) and kept, ready for the chosen service
    "unknown-service": (dict(service="paspor"), None, "service", {"kk", "ktp_lama"}),
    "bad-wa-number": (dict(wa_number="12345"), None, "wa_number", {"kk", "ktp_lama"}),
}

# What a refused submission may change about the case: the draft, the kept documents and the
# count of their audit events (and the time of the write). Everything else (state, service,
# form, consent, steps, corrections) stays as it was.
KEPT_PROGRESS = {"draft_form", "documents", "event_seq", "updated_at"}


def _case_without_progress(snap: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snap["case"].items() if k not in KEPT_PROGRESS}


@pytest.mark.parametrize(("over", "files", "field", "kept"), INVALID.values(), ids=INVALID.keys())
def test_an_invalid_form_is_refused_and_keeps_only_the_entries_and_the_valid_documents(
    container: Container,
    gb: FlaskClient,
    flow: Flow,
    waiting: Case,
    over: dict[str, str] | None,
    files: dict[str, tuple[bytes, str]] | None,
    field: str,
    kept: set[str],
) -> None:
    # GIVEN a case waiting for the guest book, and no stored files yet
    token = flow.token(waiting)
    before = snapshot(container, waiting.id)
    objects_before = stored_objects(container)
    queued_before = list(flow.queue.tasks)
    fields = valid_fields(**(over or {}))
    if over and "consent" in over and not over["consent"]:
        del fields["consent"]
    sent = (
        files
        if files is not None
        else {"kk": (tiny_png(), "kk.png"), "ktp_lama": (KTP_PDF, "ktp.pdf")}
    )
    # WHEN the resident posts a form with one mistake
    resp = gb.post(f"/f/{token}", data=form_data(fields, sent), content_type="multipart/form-data")
    # THEN the form comes back 422 naming the field
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Periksa kembali isian yang ditandai." in html
    assert 'class="error"' in html
    # AND what he typed is still there, and the documents already kept are marked as such
    assert 'value="Jl. Masjid Raya No. 1"' in html
    assert f'value="{fields["nik"]}"' in html
    assert f'value="{fields.get("birth_date", "")}"' in html
    assert uploaded_shown(html) == kept

    # AND the case did not move: same state, service, form, consent and steps; nothing queued
    after = snapshot(container, waiting.id)
    case = container.store.get(waiting.id)
    assert case.state == waiting.state == "link_sent"
    assert _case_without_progress(after) == _case_without_progress(before)
    assert after["messages"] == before["messages"]
    assert flow.queue.tasks == queued_before
    # AND the typed entries are the draft, exactly (the consent is given anew on each submit)
    assert case.draft_form == {k: v for k, v in fields.items() if k != "consent"}
    # AND exactly the documents that passed their checks are attached, each in the audit trail
    assert {d.requirement for d in case.documents} == kept
    new_events = after["events"][len(before["events"]) :]
    assert after["events"][: len(before["events"])] == before["events"]
    assert sorted(e["event"] for e in new_events) == ["document_uploaded"] * len(kept)
    assert {e["detail"]["requirement"] for e in new_events} == kept
    assert all(e["actor_id"] == f"wa:{waiting.wa_id}" for e in new_events)
    assert all(e["from_state"] == e["to_state"] == "link_sent" for e in new_events)
    assert after["case"]["event_seq"] == before["case"]["event_seq"] + len(kept)
    # AND the blob store holds exactly those documents: a refused file is never stored
    objects = stored_objects(container)
    assert set(objects) - set(objects_before) == {d.key for d in case.documents}
    for d in case.documents:
        assert hashlib.sha256(objects[d.key]).hexdigest() == d.sha256
    if "ktp_lama" in kept:  # a PDF is kept byte for byte
        assert objects[guestbook_service.documents_by_requirement(case)["ktp_lama"].key] == KTP_PDF
    bad = [raw for raw, _ in sent.values() if raw in (TEXT_AS_JPG, BROKEN_PDF)]
    assert not any(raw in data for raw in bad for data in objects.values())

    # AND the JSON form of the same request names exactly that field, and sending the same
    # again (a retry on a weak connection) stores nothing twice and changes nothing
    api = gb.post(
        f"/f/{token}",
        data=form_data(fields, sent),
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert api.status_code == 422
    assert field in api.get_json()["fields"]
    assert snapshot(container, waiting.id) == after
    assert stored_objects(container) == objects
    assert flow.queue.tasks == queued_before


def test_the_re_rendered_form_shows_the_document_error_of_the_chosen_service(
    gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    resp = gb.post(
        f"/f/{flow.token(waiting)}",
        data=form_data(files={"ktp_lama": (tiny_pdf(), "ktp.pdf")}),
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Dokumen wajib belum diunggah: Kartu Keluarga." in html
    assert 'value="ktp_el" selected' in html


def test_markup_in_an_entry_is_escaped_when_the_form_comes_back(
    gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    resp = gb.post(
        f"/f/{flow.token(waiting)}",
        data=form_data(valid_fields(name='"><script>alert(1)</script>', nik="1")),
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


# ---- POST: valid ------------------------------------------------------------------------------


def test_a_valid_form_submits_the_case(
    container: Container, gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    # GIVEN the resident's link, a phone photo of his KK (with GPS in its EXIF) and a real PDF
    # of his old KTP
    token = flow.token(waiting)
    jpg, pdf = phone_photo(), tiny_pdf()
    # WHEN he posts the completed form
    resp = gb.post(
        f"/f/{token}",
        data=form_data(files={"kk": (jpg, "kk.jpg"), "ktp_lama": (pdf, "ktp-lama.pdf")}),
        content_type="multipart/form-data",
    )
    # THEN he sees the confirmation with his registration number
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert waiting.reg_no in resp.get_data(as_text=True)
    assert "Permohonan terkirim" in resp.get_data(as_text=True)
    # AND the case is form_submitted with his data, and the draft is done with
    case = container.store.get(waiting.id)
    assert case.state == "form_submitted"
    assert case.service == "ktp_el"
    assert case.form["nik"] == NIK
    assert case.form["kk"] == KK
    assert case.form["desa"] == "Sungguminasa"
    assert case.form["wa_number"] == "6281234567890"
    assert case.draft_form == {}
    # AND both documents are stored with the sha256 of what is stored
    docs = {d.requirement: d for d in case.documents}
    assert set(docs) == {"kk", "ktp_lama"}
    stored_kk, stored_pdf = (
        container.blobs.get(docs["kk"].key),
        container.blobs.get(docs["ktp_lama"].key),
    )
    assert docs["kk"].sha256 == hashlib.sha256(stored_kk).hexdigest()
    assert docs["ktp_lama"].sha256 == hashlib.sha256(stored_pdf).hexdigest()
    # AND the photo is re-encoded: still a JPEG of the same size, but without any EXIF (GPS),
    # so it is not the uploaded bytes; the PDF is kept as sent
    assert docs["kk"].content_type == "image/jpeg"
    assert_clean_image(stored_kk, "JPEG", (48, 32))
    assert stored_kk != jpg
    assert docs["kk"].sha256 != hashlib.sha256(jpg).hexdigest()
    assert docs["ktp_lama"].content_type == "application/pdf"
    assert stored_pdf == pdf
    # AND the consent is recorded with its version and time
    assert case.consent is not None
    assert case.consent["version"] == guestbook_service.CONSENT_VERSION
    assert case.consent["at"] == container.clock.now().isoformat()
    # AND the pre-check and the confirmation message are queued
    kinds = {(t.kind, t.payload.get("kind")) for t in flow.queue.tasks}
    assert kinds == {("precheck", None), ("notify", "form_received")}
    assert all(t.payload["case_id"] == case.id and t.name for t in flow.queue.tasks)
    # AND the submission is in the audit trail, by the applicant, naming the documents
    (submitted,) = [e for e in container.store.events(case.id) if e.event == "submit_form"]
    assert submitted.actor_id == f"wa:{case.wa_id}"
    assert sorted(submitted.detail["documents"]) == ["kk", "ktp_lama"]


def test_after_submission_the_link_is_gone(
    container: Container, gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    token = flow.token(waiting)
    first = gb.post(f"/f/{token}", data=form_data(), content_type="multipart/form-data")
    assert first.status_code == 200
    after = snapshot(container, waiting.id)
    blobs = blob_files(container)
    # WHEN the same form is posted again (a double tap, a back button)
    again = gb.post(f"/f/{token}", data=form_data(), content_type="multipart/form-data")
    # THEN the link no longer works and nothing changes
    _assert_gone(again)
    assert gb.get(f"/f/{token}").status_code == 410
    assert snapshot(container, waiting.id) == after
    assert blob_files(container) == blobs


def test_a_valid_form_answers_json_when_asked(gb: FlaskClient, flow: Flow, waiting: Case) -> None:
    resp = gb.post(
        f"/f/{flow.token(waiting)}",
        data=form_data(),
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert resp.status_code == 200
    assert resp.get_json() == {"reg_no": waiting.reg_no, "state": "form_submitted"}


def test_the_link_of_a_cancelled_case_is_gone(
    container: Container, gb: FlaskClient, flow: Flow, run_task: Callable[..., Any]
) -> None:
    # GIVEN a case waiting for its guest book, which the resident cancels: BATAL, then YA
    case = flow.to("link_sent")
    for command in ("request_cancel", "confirm_cancel"):
        payload = {"case_id": case.id, "command": command, "wa_id": case.wa_id}
        assert run_task("command", payload, name=f"command-{command}").status_code == 200
    assert container.store.get(case.id).state == "cancelled"
    # WHEN the resident opens the link he still has
    # THEN the page says it is no longer valid
    _assert_gone(gb.get(f"/f/{flow.token(case)}"))


def test_a_file_over_the_upload_limit_is_refused(
    container: Container, gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    container.settings = container.settings.model_copy(update={"max_upload_mb": 1})  # type: ignore[misc]
    big = tiny_png() + b"\0" * (1024 * 1024)
    before = snapshot(container, waiting.id)
    objects = stored_objects(container)
    resp = gb.post(
        f"/f/{flow.token(waiting)}",
        data=form_data(files={"kk": (big, "kk.png"), "ktp_lama": (KTP_PDF, "ktp.pdf")}),
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert resp.status_code == 422
    assert resp.get_json()["fields"]["doc_kk"] == "Ukuran berkas melebihi batas 1 MB."
    # THEN the state is untouched, the big file is not stored, the valid PDF next to it is
    after = snapshot(container, waiting.id)
    assert _case_without_progress(after) == _case_without_progress(before)
    case = container.store.get(waiting.id)
    assert case.state == "link_sent"
    assert [d.requirement for d in case.documents] == ["ktp_lama"]
    assert set(stored_objects(container)) - set(objects) == {case.documents[0].key}
    # AND the same limit holds for a document picked on its own
    one = gb.post(
        f"/f/{flow.token(waiting)}/doc/kk",
        data={"file": (BytesIO(big), "kk.png")},
        content_type="multipart/form-data",
    )
    assert one.status_code == 422
    assert one.get_json()["message"] == "Ukuran berkas melebihi batas 1 MB."
    assert snapshot(container, waiting.id) == after


# ---- drafts and documents sent one by one ----------------------------------------------------


def test_a_draft_is_kept_without_a_state_change_and_shown_when_the_link_is_opened_again(
    container: Container, gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    token = flow.token(waiting)
    before = snapshot(container, waiting.id)
    objects = stored_objects(container)
    # WHEN the page saves what the resident has typed so far (with a field no form has)
    resp = gb.post(
        f"/f/{token}/draft",
        data={"name": "Besse Daeng Ngai", "nik": "73060857", "address": "Jl. Poros", "state": "x"},
    )
    # THEN it is saved as the draft, and only the form's own fields are
    assert resp.status_code == 200
    assert resp.get_json() == {"saved": True}
    case = container.store.get(waiting.id)
    assert case.draft_form == {
        "name": "Besse Daeng Ngai",
        "nik": "73060857",
        "address": "Jl. Poros",
    }
    # AND nothing else changed: no state change, no event, no document, nothing queued
    after = snapshot(container, waiting.id)
    assert _case_without_progress(after) == _case_without_progress(before)
    assert after["events"] == before["events"]
    assert case.documents == [] and case.form == {} and case.state == "link_sent"
    assert stored_objects(container) == objects
    assert flow.queue.tasks == []
    # AND the form shows it when the link is opened again
    html = gb.get(f"/f/{token}").get_data(as_text=True)
    assert 'value="Besse Daeng Ngai"' in html
    assert 'value="73060857"' in html
    assert 'value="Jl. Poros"' in html


def test_a_document_picked_on_its_own_is_stored_at_once_without_exif(
    container: Container, gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    token = flow.token(waiting)
    before = snapshot(container, waiting.id)
    jpg = phone_photo()
    # WHEN the resident picks the photo of his KK
    resp = gb.post(
        f"/f/{token}/doc/kk",
        data={"file": (BytesIO(jpg), "kk.jpg")},
        content_type="multipart/form-data",
    )
    # THEN it is stored at once, attached to its requirement and in the audit trail
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["stored"] is True and body["filename"] == "kk.jpg"
    case = container.store.get(waiting.id)
    (doc,) = case.documents
    assert doc.requirement == "kk" and doc.content_type == "image/jpeg"
    assert body["size"] == doc.size
    stored = container.blobs.get(doc.key)
    assert hashlib.sha256(stored).hexdigest() == doc.sha256
    assert_clean_image(stored, "JPEG", (48, 32))
    (event,) = snapshot(container, waiting.id)["events"][len(before["events"]) :]
    assert event["event"] == "document_uploaded"
    assert event["detail"] == {"requirement": "kk", "sha256": doc.sha256}
    # AND the state did not change
    assert case.state == "link_sent"
    assert flow.queue.tasks == []
    # AND the form says it is there, and a submission without it counts it
    assert "kk" in uploaded_shown(gb.get(f"/f/{token}").get_data(as_text=True))
    done = gb.post(f"/f/{token}", data=form_data(files={}), content_type="multipart/form-data")
    assert done.status_code == 200, done.get_data(as_text=True)
    submitted = container.store.get(waiting.id)
    assert submitted.state == "form_submitted"
    assert [d.key for d in submitted.documents] == [doc.key]


REFUSED_DOCS = {
    "text-named-jpg": ("kk", TEXT_AS_JPG, "kk.jpg", text("file_type")),
    "broken-pdf": ("kk", BROKEN_PDF, "kk.pdf", text("pdf_unreadable")),
    "empty": ("kk", b"", "kk.png", text("file_empty")),
    "unknown-requirement": ("paspor", tiny_png(), "p.png", text("service_unknown")),
}


@pytest.mark.parametrize(
    ("requirement", "raw", "filename", "message"), REFUSED_DOCS.values(), ids=REFUSED_DOCS.keys()
)
def test_a_bad_document_picked_on_its_own_is_refused_and_not_stored(
    container: Container,
    gb: FlaskClient,
    flow: Flow,
    waiting: Case,
    requirement: str,
    raw: bytes,
    filename: str,
    message: str,
) -> None:
    before = snapshot(container, waiting.id)
    objects = stored_objects(container)
    resp = gb.post(
        f"/f/{flow.token(waiting)}/doc/{requirement}",
        data={"file": (BytesIO(raw), filename)},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422
    assert resp.get_json()["message"] == message
    assert snapshot(container, waiting.id) == before
    assert stored_objects(container) == objects


def test_after_submission_drafts_and_documents_are_refused_too(
    container: Container, gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    token = flow.token(waiting)
    assert (
        gb.post(f"/f/{token}", data=form_data(), content_type="multipart/form-data").status_code
        == 200
    )
    after = snapshot(container, waiting.id)
    objects = stored_objects(container)
    draft = gb.post(f"/f/{token}/draft", data={"name": "Orang Lain"}, headers=JSON)
    doc = gb.post(
        f"/f/{token}/doc/kk",
        data={"file": (BytesIO(phone_photo()), "kk.jpg")},
        content_type="multipart/form-data",
        headers=JSON,
    )
    assert draft.status_code == doc.status_code == 410
    assert draft.get_json()["error"] == doc.get_json()["error"] == "link_invalid"
    assert snapshot(container, waiting.id) == after
    assert stored_objects(container) == objects


# ---- a correction request -------------------------------------------------------------------


def test_a_correction_request_offers_only_the_flagged_items(
    container: Container, gb: FlaskClient, flow: Flow
) -> None:
    # GIVEN a submitted case whose counter officer asked for a new KK photo and a fuller address
    case = flow.to("form_submitted")
    case = flow.act(
        case,
        flow.loket_of(case.kecamatan),
        "request_correction",
        corrections={"doc:kk": "Foto buram", "field:address": "RT/RW belum ada"},
    )
    assert case.state == "awaiting_correction"
    # WHEN the resident opens his link
    resp = gb.get(f"/f/{flow.token(case)}")
    # THEN the form names what to fix and offers only those items
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Kartu Keluarga: Foto buram" in html
    assert "Alamat: RT/RW belum ada" in html
    assert 'id="address"' in html
    assert 'name="doc_kk"' in html
    for hidden in ('id="nik"', 'id="name"', 'id="kk"', 'id="desa"', 'name="doc_ktp_lama"'):
        assert hidden not in html
    assert '<select id="service"' not in html
    assert 'type="hidden" name="service" value="ktp_el"' in html
    # (the KK photo to be replaced is not shown as already uploaded)
    assert "kk" not in uploaded_shown(html)


# ---- every problem at once, beside its field ---------------------------------------------------

REQUIRED = ("name", "nik", "kk", "birth_date", "desa", "address")


def _error_beside(html: str, name: str, message: str) -> None:
    """`message` stands in the error paragraph of input `name`, and the input points at it."""
    assert f'<p class="error" id="err-{name}">{message}</p>' in html, (name, message)
    tag = re.search(rf'<(?:input|select)[^>]*\bid="{name}"[^>]*>', html, re.S)
    assert tag is not None, name
    assert 'aria-invalid="true"' in tag.group(0), name
    assert f"err-{name}" in tag.group(0), name


def test_an_empty_submit_names_every_problem_at_once_beside_its_field(
    container: Container, gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    # GIVEN a resident who presses "Kirim permohonan" on an untouched form
    token = flow.token(waiting)
    before = snapshot(container, waiting.id)
    resp = gb.post(f"/f/{token}", data={}, content_type="multipart/form-data")
    # THEN the form comes back with every problem, not one at a time
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Jenis layanan tidak dikenal" not in html
    _error_beside(html, "service", "Pilih jenis layanan.")
    for name in REQUIRED:
        _error_beside(html, name, "Wajib diisi.")
    assert (
        '<p class="error" id="err-consent">Persetujuan pemrosesan data wajib dicentang.</p>' in html
    )
    assert re.search(r'<input type="checkbox" id="consent"[^>]*aria-invalid="true"', html)
    # AND a list at the top links each problem to its field, in the form's order
    summary = re.findall(r'<li><a href="#([^"]+)">([^<]+)</a></li>', html)
    assert [anchor for anchor, _ in summary] == [
        "service",
        "name",
        "nik",
        "kk",
        "birth_date",
        "desa",
        "address",
        "consent",
    ]
    assert ("service", "Pilih jenis layanan.") in summary
    assert ("name", "Nama lengkap: Wajib diisi.") in summary
    # AND nothing about the case changed, nothing was queued
    assert _case_without_progress(snapshot(container, waiting.id)) == _case_without_progress(before)
    assert container.store.get(waiting.id).state == "link_sent"
    assert flow.queue.tasks == []
    # AND the JSON answer names the same problems
    api = gb.post(f"/f/{token}", data={}, headers=JSON)
    assert api.status_code == 422
    assert api.get_json()["fields"] == {
        "service": "Pilih jenis layanan.",
        **{name: "Wajib diisi." for name in REQUIRED},
        "consent": "Persetujuan pemrosesan data wajib dicentang.",
    }


def test_with_the_service_chosen_the_missing_documents_come_with_the_other_problems(
    gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    resp = gb.post(
        f"/f/{flow.token(waiting)}",
        data={"service": "ktp_el"},
        content_type="multipart/form-data",
        headers=JSON,
    )
    assert resp.status_code == 422
    fields = resp.get_json()["fields"]
    # the KK is required for a KTP-el, the old KTP is not
    assert fields["doc_kk"] == "Dokumen wajib belum diunggah: Kartu Keluarga."
    assert "doc_ktp_lama" not in fields
    assert set(fields) == {"doc_kk", "consent", *REQUIRED}


def test_every_kind_of_mistake_is_named_in_one_answer(
    container: Container, gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    container.settings = container.settings.model_copy(update={"max_upload_mb": 1})  # type: ignore[misc]
    big_pdf = tiny_pdf() + b"\0" * (1024 * 1024)
    fields = valid_fields(service="kk", name="", nik="73060815089", kk="12AB", consent="")
    del fields["consent"]
    data = form_data(
        fields, {"kk_lama": (TEXT_AS_JPG, "kk.jpg"), "buku_nikah": (big_pdf, "nikah.pdf")}
    )
    # WHEN the resident sends a form with six mistakes
    resp = gb.post(
        f"/f/{flow.token(waiting)}", data=data, content_type="multipart/form-data", headers=JSON
    )
    # THEN the one answer names all six, each in plain words
    assert resp.status_code == 422
    assert resp.get_json()["fields"] == {
        "name": "Wajib diisi.",
        "nik": text("nik_length"),
        "kk": text("kk_length"),
        "doc_kk_lama": text("file_type"),
        "doc_buku_nikah": text("file_too_large", limit_mb=1),
        "consent": text("consent_required"),
    }
    # AND neither file was kept
    assert container.store.get(waiting.id).documents == []
    # AND the page shows each beside its field, the documents inside the KK's fieldset
    page = gb.post(
        f"/f/{flow.token(waiting)}",
        data=form_data(
            fields, {"kk_lama": (TEXT_AS_JPG, "kk.jpg"), "buku_nikah": (big_pdf, "nikah.pdf")}
        ),
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert (
        '<p class="error" id="err-doc-kk-kk_lama">Berkas harus berupa JPG, PNG, atau PDF.</p>'
        in (page)
    )
    assert (
        '<p class="error" id="err-doc-kk-buku_nikah">Ukuran berkas melebihi batas 1 MB.</p>' in page
    )
    summary = re.findall(r'<li><a href="#([^"]+)">([^<]+)</a></li>', page)
    assert ("doc_kk_kk_lama", "KK lama: Berkas harus berupa JPG, PNG, atau PDF.") in summary
    assert ("nik", "NIK harus terdiri dari 16 angka.") in summary  # names its field already


def test_documents_can_be_picked_from_files_and_gallery_not_only_the_camera(
    gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    html = gb.get(f"/f/{flow.token(waiting)}").get_data(as_text=True)
    inputs = re.findall(r'<input[^>]*type="file"[^>]*>', html, re.S)
    assert inputs
    for tag in inputs:
        # no `capture`: the phone offers the camera, the gallery and its files
        assert "capture" not in tag
        accept = re.search(r'accept="([^"]+)"', tag)
        assert accept is not None
        assert {"image/jpeg", "image/png", "application/pdf", ".pdf"} <= set(
            accept.group(1).split(",")
        )
    assert "pilih dari galeri atau berkas" in html


def test_the_page_with_every_error_stays_small_and_runs_only_its_own_code(
    gb: FlaskClient, flow: Flow, waiting: Case
) -> None:
    # GIVEN the heaviest page: every service's documents shown and every field in error
    resp = gb.post(f"/f/{flow.token(waiting)}", data={}, content_type="multipart/form-data")
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert len(resp.get_data()) < 100 * 1024
    csp = resp.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    (nonce,) = set(re.findall(r"'nonce-([^']+)'", csp))
    assert html.count("<script") == html.count(f'<script nonce="{nonce}"') == 1
    assert html.count("<style") == html.count(f'<style nonce="{nonce}"') == 1
    assert " style=" not in html


def test_the_service_named_on_whatsapp_is_preselected_until_the_resident_chooses(
    container: Container, gb: FlaskClient, flow: Flow
) -> None:
    # GIVEN a resident whose first WhatsApp message asked for a KK
    case = flow.send_link(flow.greet(text="Selamat pagi, mau urus KK"))
    token = flow.token(case)
    # THEN the guest book opens with Kartu Keluarga chosen, its documents asked for
    html = gb.get(f"/f/{token}").get_data(as_text=True)
    assert 'value="kk" selected' in html
    # WHEN they choose another service (the page saves it as the draft)
    gb.post(f"/f/{token}/draft", data={"service": "kia"})
    # THEN their choice is what the form shows
    html = gb.get(f"/f/{token}").get_data(as_text=True)
    assert 'value="kia" selected' in html and 'value="kk" selected' not in html
    # AND an empty submit reports what that service still needs
    fields = gb.post(f"/f/{token}", data={"service": "kia"}, headers=JSON).get_json()["fields"]
    assert {"doc_kk", "doc_akta_kelahiran"} <= set(fields) and "service" not in fields
