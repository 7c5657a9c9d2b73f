"""guestbook: the resident's form behind the signed WhatsApp link (GET the form, POST it)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.services import guestbook as guestbook_service
from sapa.services import messaging
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


@pytest.fixture
def gb(client_for: Callable[[str], FlaskClient]) -> FlaskClient:
    return client_for("guestbook")


@pytest.fixture
def waiting(flow: Flow) -> Case:
    """A case whose guest-book link has been sent (state link_sent)."""
    return flow.to("link_sent")


def expired_token(c: Container, case_id: str) -> str:
    """A genuinely signed link token whose timestamp lies past guestbook_link_days.

    itsdangerous stamps and checks with the real `time.time()`, not SAPA's Clock, so the
    FixedClock cannot age a link. Rather than patching `time.time` globally, the token is made
    with a TimestampSigner whose `get_timestamp` answers a moment in the past; everything else
    (secret, salt, serializer) is what the service itself uses, so only the age differs."""
    age = c.settings.guestbook_link_days * 86400 + 3600

    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    real = messaging.link_serializer(c)
    serializer = URLSafeTimedSerializer(real.secret_keys[-1], salt=real.salt, signer=PastSigner)
    return serializer.dumps(case_id)


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
    assert messaging.link_serializer(container).loads(token, max_age=(days + 1) * 86400) == (
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


INVALID = {
    "nik-not-16-digits": (dict(nik="73060815089"), None, "nik"),
    "nik-birthdate-mismatch": (dict(birth_date="1991-08-15"), None, "birth_date"),
    "nik-impossible-date": (dict(nik="7306083213900001"), None, "nik"),
    "missing-required-document": (None, {"ktp_lama": (tiny_pdf(), "ktp.pdf")}, "doc_kk"),
    "jpg-that-is-text": (None, {"kk": (b"just some text, not an image\n", "kk.jpg")}, "doc_kk"),
    "pdf-header-but-broken": (None, {"kk": (b"%PDF-1.7\ngarbage", "kk.pdf")}, "doc_kk"),
    "no-consent": (dict(consent=""), None, "consent"),
    "missing-name": (dict(name=""), None, "name"),
    "unknown-service": (dict(service="paspor"), None, "service"),
    "bad-wa-number": (dict(wa_number="12345"), None, "wa_number"),
}


@pytest.mark.parametrize(("over", "files", "field"), INVALID.values(), ids=INVALID.keys())
def test_an_invalid_form_is_refused_with_field_errors_and_keeps_the_entries(
    container: Container,
    gb: FlaskClient,
    flow: Flow,
    waiting: Case,
    over: dict[str, str] | None,
    files: dict[str, tuple[bytes, str]] | None,
    field: str,
) -> None:
    # GIVEN a case waiting for the guest book, and no stored files yet
    token = flow.token(waiting)
    before = snapshot(container, waiting.id)
    blobs_before = blob_files(container)
    queued_before = list(flow.queue.tasks)
    fields = valid_fields(**(over or {}))
    if over and "consent" in over and not over["consent"]:
        del fields["consent"]
    # WHEN the resident posts a form with one mistake
    resp = gb.post(f"/f/{token}", data=form_data(fields, files), content_type="multipart/form-data")
    # THEN the form comes back 422 naming the field
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Periksa kembali isian yang ditandai." in html
    assert 'class="error"' in html
    # AND what he typed is still there
    assert 'value="Jl. Masjid Raya No. 1"' in html
    assert f'value="{fields["nik"]}"' in html
    assert f'value="{fields.get("birth_date", "")}"' in html
    # AND the case, its documents and the blob store are untouched, nothing queued
    assert snapshot(container, waiting.id) == before
    assert blob_files(container) == blobs_before
    assert flow.queue.tasks == queued_before
    # AND the JSON form of the same request names exactly that field
    api = gb.post(
        f"/f/{token}",
        data=form_data(fields, files),
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert api.status_code == 422
    assert field in api.get_json()["fields"]
    assert snapshot(container, waiting.id) == before


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
    # GIVEN the resident's link, a real PNG of his KK and a real PDF of his old KTP
    token = flow.token(waiting)
    png, pdf = tiny_png(), tiny_pdf()
    # WHEN he posts the completed form
    resp = gb.post(
        f"/f/{token}",
        data=form_data(files={"kk": (png, "kk.png"), "ktp_lama": (pdf, "ktp-lama.pdf")}),
        content_type="multipart/form-data",
    )
    # THEN he sees the confirmation with his registration number
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert waiting.reg_no in resp.get_data(as_text=True)
    assert "Permohonan terkirim" in resp.get_data(as_text=True)
    # AND the case is form_submitted with his data
    case = container.store.get(waiting.id)
    assert case.state == "form_submitted"
    assert case.service == "ktp_el"
    assert case.form["nik"] == NIK
    assert case.form["kk"] == KK
    assert case.form["wa_number"] == "6281234567890"
    # AND both documents are stored with their sha256, the content as sent
    docs = {d.requirement: d for d in case.documents}
    assert set(docs) == {"kk", "ktp_lama"}
    assert docs["kk"].sha256 == hashlib.sha256(png).hexdigest()
    assert docs["kk"].content_type == "image/png"
    assert docs["ktp_lama"].sha256 == hashlib.sha256(pdf).hexdigest()
    assert docs["ktp_lama"].content_type == "application/pdf"
    assert container.blobs.get(docs["kk"].key) == png
    assert container.blobs.get(docs["ktp_lama"].key) == pdf
    # AND the consent is recorded with its version and time
    assert case.consent is not None
    assert case.consent["version"] == guestbook_service.CONSENT_VERSION
    assert case.consent["at"] == container.clock.now().isoformat()
    # AND the pre-check and the confirmation message are queued
    kinds = {(t.kind, t.payload.get("kind")) for t in flow.queue.tasks}
    assert kinds == {("precheck", None), ("notify", "form_received")}
    assert all(t.payload["case_id"] == case.id and t.name for t in flow.queue.tasks)
    # AND the submission is in the audit trail, by the applicant
    (submitted,) = [e for e in container.store.events(case.id) if e.event == "submit_form"]
    assert submitted.actor_id == f"wa:{case.wa_id}"


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
    blobs = blob_files(container)
    resp = gb.post(
        f"/f/{flow.token(waiting)}",
        data=form_data(files={"kk": (big, "kk.png")}),
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert resp.status_code == 422
    assert resp.get_json()["fields"]["doc_kk"] == "Ukuran berkas melebihi batas 1 MB."
    assert snapshot(container, waiting.id) == before
    assert blob_files(container) == blobs
