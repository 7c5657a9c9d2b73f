"""esign_callback (an asynchronous signer hands back the signed PDF) and verify (the public page
behind the QR code)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.services import signing
from tests.functions.conftest import NIK, Flow, blob_files, esign_signature, snapshot, tiny_pdf


@pytest.fixture
def approved(flow: Flow) -> Case:
    """A case walked through the SOP by the services until the head of division approved it."""
    return flow.to("approved")


@pytest.fixture
def callback(container: Container, client_for: Callable[[str], FlaskClient]) -> Callable[..., Any]:
    """`callback(body, signature=<default: valid>)` → response."""
    client = client_for("esign_callback")
    default = object()

    def post(body: dict[str, Any] | bytes, signature: Any = default) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        sig = esign_signature(container, raw) if signature is default else signature
        if sig is not None:
            headers["X-Sapa-Signature"] = sig
        return client.post("/", data=raw, headers=headers)

    return post


def _signed_blobs(c: Container) -> list[str]:
    return [str(p) for p in blob_files(c) if "/signed/" in str(p)]


# ---- esign_callback ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=" + "0" * 64, "sha256=", "OTHER-SECRET", "OTHER-BYTES", "sha256=\u00e9\u00e9"],
    ids=["missing", "forged", "empty", "other-secret", "over-other-bytes", "non-ascii"],
)
def test_a_forged_callback_is_refused_and_nothing_is_stored(
    container: Container,
    flow: Flow,
    approved: Case,
    callback: Callable[..., Any],
    signature: str | None,
) -> None:
    # GIVEN an approved case and a callback body for its draft
    body = flow.callback_body(approved)
    raw = json.dumps(body).encode()
    if signature == "OTHER-SECRET":
        import hmac

        signature = "sha256=" + hmac.new(b"guessed", raw, hashlib.sha256).hexdigest()
    elif signature == "OTHER-BYTES":
        signature = esign_signature(container, raw + b" ")
    before = snapshot(container, approved.id)
    # WHEN it arrives without a valid HMAC
    resp = callback(raw, signature=signature)
    # THEN it is refused and nothing is stored: no signed PDF, no state change, no task
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "unauthorized"
    assert snapshot(container, approved.id) == before
    assert _signed_blobs(container) == []
    assert flow.queue.tasks == []


def test_a_valid_callback_signs_the_case_and_queues_delivery(
    container: Container, flow: Flow, approved: Case, callback: Callable[..., Any]
) -> None:
    # GIVEN an approved case and the signer's callback for its draft's document id
    pdf = tiny_pdf("KTP-el bertanda tangan")
    body = flow.callback_body(approved, pdf)
    assert body["document_id"] == signing.document_id(approved)
    # WHEN the signed callback arrives
    resp = callback(body)
    # THEN it is accepted
    assert resp.status_code == 200
    assert resp.get_json() == {"accepted": True}
    # AND the case is signed, holding the signed PDF as sent (the draft is kept)
    case = container.store.get(approved.id)
    assert case.state == "signed"
    assert case.signature_id == "sig-0001"
    assert case.signed is not None
    assert case.signed.sha256 == hashlib.sha256(pdf).hexdigest()
    assert container.blobs.get(case.signed.key) == pdf
    assert case.draft == approved.draft
    (sign_event,) = [e for e in container.store.events(case.id) if e.event == "sign"]
    assert sign_event.actor_id == "kadis@sapa.test"
    assert sign_event.detail["document_id"] == body["document_id"]
    # AND exactly one deliver task is queued for that document
    delivers = [t for t in flow.queue.tasks if t.kind == "deliver"]
    assert len(delivers) == 1
    assert delivers[0].payload == {"case_id": case.id, "document_id": body["document_id"]}


def test_the_same_callback_replayed_is_not_accepted_again(
    container: Container, flow: Flow, approved: Case, callback: Callable[..., Any]
) -> None:
    # GIVEN a callback already accepted
    body = flow.callback_body(approved)
    assert callback(body).get_json() == {"accepted": True}
    after = snapshot(container, approved.id)
    blobs = blob_files(container)
    queued = list(flow.queue.tasks)
    # WHEN the signer sends it again
    resp = callback(body)
    # THEN it is acknowledged as not accepted and nothing changes
    assert resp.status_code == 200
    assert resp.get_json() == {"accepted": False}
    assert snapshot(container, approved.id) == after
    assert blob_files(container) == blobs
    assert flow.queue.tasks == queued


def test_a_callback_for_another_draft_is_refused(
    container: Container, flow: Flow, approved: Case, callback: Callable[..., Any]
) -> None:
    body = {**flow.callback_body(approved), "document_id": "0" * 24}
    before = snapshot(container, approved.id)
    resp = callback(body)
    assert resp.status_code == 400
    assert snapshot(container, approved.id) == before
    assert [t for t in flow.queue.tasks if t.kind == "deliver"] == []


def test_a_callback_for_a_case_not_yet_approved_is_a_conflict(
    container: Container, flow: Flow, callback: Callable[..., Any]
) -> None:
    case = flow.to("entered_in_siak")
    before = snapshot(container, case.id)
    resp = callback(flow.callback_body(case))
    assert resp.status_code == 409
    assert resp.get_json()["error"] == "illegal_transition"
    assert snapshot(container, case.id) == before


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("pdf_base64"),
        lambda b: b.update(pdf_base64="%%% not base64 %%%"),
        lambda b: b.update(signed_at="yesterday"),
        lambda b: b.update(actor={"id": "x"}),
    ],
    ids=["no-pdf", "bad-base64", "bad-date", "bad-actor"],
)
def test_an_incomplete_signed_callback_is_a_bad_request(
    container: Container,
    flow: Flow,
    approved: Case,
    callback: Callable[..., Any],
    mutate: Callable[[dict[str, Any]], Any],
) -> None:
    body = flow.callback_body(approved)
    mutate(body)
    before = snapshot(container, approved.id)
    resp = callback(body)
    assert resp.status_code == 400
    assert snapshot(container, approved.id) == before


def test_malformed_json_with_a_valid_hmac_is_a_bad_request(
    container: Container, approved: Case, callback: Callable[..., Any]
) -> None:
    before = snapshot(container, approved.id)
    resp = callback(b"{not json")
    assert resp.status_code == 400
    assert snapshot(container, approved.id) == before


# ---- verify -----------------------------------------------------------------------------------


@pytest.fixture
def verify(client_for: Callable[[str], FlaskClient]) -> FlaskClient:
    return client_for("verify")


def test_an_unknown_document_id_is_a_404_page(verify: FlaskClient, flow: Flow) -> None:
    flow.to("approved")  # a case exists, but nothing is signed
    resp = verify.get("/d/0123456789abcdef01234567")
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"
    assert "tidak terdaftar" in resp.get_data(as_text=True)
    assert resp.headers["Content-Security-Policy"]
    api = verify.get("/d/0123456789abcdef01234567", headers={"Accept": "application/json"})
    assert api.status_code == 404
    assert api.get_json() == {"status": "not_found"}


def test_an_approved_but_unsigned_document_is_not_verifiable(
    verify: FlaskClient, approved: Case
) -> None:
    resp = verify.get(f"/d/{signing.document_id(approved)}")
    assert resp.status_code == 404


def test_a_signed_document_shows_type_number_and_masked_holder_never_the_nik(
    container: Container,
    verify: FlaskClient,
    flow: Flow,
    approved: Case,
    callback: Callable[..., Any],
) -> None:
    # GIVEN a document signed through the callback
    body = flow.callback_body(approved)
    assert callback(body).get_json() == {"accepted": True}
    doc_id = body["document_id"]
    # WHEN anyone scans its QR code
    resp = verify.get(f"/d/{doc_id}")
    # THEN the page shows what was issued, its number and a masked name
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "KTP Elektronik" in html
    assert approved.reg_no in html
    assert "A*** B***" in html
    assert "SAH" in html
    # AND never the NIK, the KK number, the full name or the WhatsApp number
    for secret in (NIK, NIK[:12], approved.form["kk"], "Andi Baso", approved.wa_id):
        assert secret not in html, secret
    # AND the JSON form says the same
    api = verify.get(f"/d/{doc_id}", headers={"Accept": "application/json"})
    assert api.status_code == 200
    view = api.get_json()
    assert view["document_type"] == "KTP Elektronik"
    assert view["reg_no"] == approved.reg_no
    assert view["holder"] == "A*** B***"
    assert view["status"] == "valid"
    assert NIK not in api.get_data(as_text=True)


def test_a_presented_pdf_is_compared_with_the_issued_one(
    verify: FlaskClient, flow: Flow, approved: Case, callback: Callable[..., Any]
) -> None:
    pdf = tiny_pdf("KTP-el bertanda tangan")
    body = flow.callback_body(approved, pdf)
    assert callback(body).get_json() == {"accepted": True}
    from io import BytesIO

    same = verify.post(
        f"/d/{body['document_id']}",
        data={"file": (BytesIO(pdf), "a.pdf")},
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    other = verify.post(
        f"/d/{body['document_id']}",
        data={"file": (BytesIO(tiny_pdf("palsu")), "b.pdf")},
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert same.get_json()["hash_matches"] is True
    assert other.get_json()["hash_matches"] is False


def test_callback_pdf_is_the_exact_bytes_sent(flow: Flow, approved: Case) -> None:
    # guard for the helper itself: the body carries the PDF base64-encoded, unchanged
    pdf = tiny_pdf("x")
    assert base64.b64decode(flow.callback_body(approved, pdf)["pdf_base64"]) == pdf


def test_a_callback_retried_after_a_store_outage_leaves_the_document_verifiable(
    container: Container,
    flow: Flow,
    approved: Case,
    callback: Callable[..., Any],
    verify: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a store that is unavailable (TransientError, as the CaseStore port allows) exactly
    # when the document id is registered for the verification page, right after the case
    # was saved as signed
    from sapa.domain.errors import TransientError

    real = container.store.claim_key
    failures = []

    def flaky(key: str, *, value: dict[str, Any] | None = None) -> bool:
        if key.startswith("doc-") and not failures:
            failures.append(key)
            raise TransientError("store unavailable")
        return real(key, value=value)

    monkeypatch.setattr(container.store, "claim_key", flaky)
    body = flow.callback_body(approved)
    # WHEN the callback fails with 503 and the signer retries it
    first = callback(body)
    assert first.status_code == 503
    assert failures
    retry = callback(body)
    assert retry.status_code == 200
    # THEN the case is signed once and the QR code's page verifies the document
    assert container.store.get(approved.id).state == "signed"
    assert len([t for t in flow.queue.tasks if t.kind == "deliver"]) == 1
    page = verify.get(f"/d/{body['document_id']}")
    assert page.status_code == 200
    assert approved.reg_no in page.get_data(as_text=True)


# ---- the synchronous path: kadis signs in the workspace, esign_request runs the signer -------


def test_kadis_signs_and_the_esign_request_task_produces_a_verifiable_document(
    container: Container,
    flow: Flow,
    approved: Case,
    client_for: Callable[[str], FlaskClient],
    run_task: Callable[..., Any],
    verify: FlaskClient,
) -> None:
    # GIVEN the head of office logged in to the workspace
    staff = client_for("staff")
    csrf = staff.post(
        "/login", data={"email": "kadis@sapa.test"}, headers={"Accept": "application/json"}
    ).get_json()["csrf"]
    # WHEN he signs, and the queued esign_request task runs (twice: at-least-once)
    resp = staff.post(
        f"/cases/{approved.id}/sign", data={"csrf": csrf}, headers={"Accept": "application/json"}
    )
    assert resp.status_code == 200, resp.get_json()
    (task,) = [t for t in flow.queue.tasks if t.kind == "esign_request"]
    first = run_task("esign_request", task.payload, name=task.name)
    again = run_task("esign_request", task.payload, name=task.name)
    # THEN the case is signed once, delivery is queued once, and the QR page verifies it
    assert first.get_json()["result"] == "signed"
    assert again.get_json()["result"] == "already_signed"
    case = container.store.get(approved.id)
    assert case.state == "signed"
    assert [e.event for e in container.store.events(case.id)].count("sign") == 1
    assert len([t for t in flow.queue.tasks if t.kind == "deliver"]) == 1
    page = verify.get(f"/d/{task.payload['document_id']}")
    assert page.status_code == 200
    assert "A*** B***" in page.get_data(as_text=True)


def test_the_kadis_sees_why_signing_failed_and_todays_passphrase_failures(
    container: Container,
    approved: Case,
    client_for: Callable[[str], FlaskClient],
    run_task: Callable[..., Any],
) -> None:
    from sapa.adapters.bsre_signer import WRONG_PASSPHRASE, BsreSigner
    from sapa.domain.texts import text
    from tests.conftest import RecordingQueue
    from tests.contract.bsre_fake import FakeBsre

    with FakeBsre() as fake:
        # GIVEN SAPA signing through BSrE
        container.settings = container.settings.model_copy(update={"signer": "bsre"})  # type: ignore[misc]
        container.signer = BsreSigner(  # type: ignore[misc]
            fake.base_url, fake.username, fake.password, fake.nik, timeout=10
        )
        staff = client_for("staff")
        login = staff.post(
            "/login", data={"email": "kadis@sapa.test"}, headers={"Accept": "application/json"}
        )
        csrf = login.get_json()["csrf"]
        # WHEN the head of office signs with a wrong passphrase and the signer task runs
        resp = staff.post(
            f"/cases/{approved.id}/sign",
            data={"csrf": csrf, "passphrase": "salah-ketik"},
            headers={"Accept": "application/json"},
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)
        queue = container.queue
        assert isinstance(queue, RecordingQueue)
        (task,) = [t for t in queue.tasks if t.kind == "esign_request"]
        answer = run_task("esign_request", task.payload, task.name or "t")
        assert answer.status_code == 200  # permanent: recorded, not retried
        assert len([r for r in fake.received if r.api == "v1"]) == 1
        # THEN the case page shows why, how many failures today, and the form to try again
        page = staff.get(f"/cases/{approved.id}").get_data(as_text=True)
        assert WRONG_PASSPHRASE in page
        assert text("passphrase_failures", count=1) in page
        assert 'name="passphrase"' in page
