"""wa_webhook: Meta's verification handshake and the signed inbound events."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from sapa.adapters.meta_webhook import sign_body
from sapa.bootstrap import Container
from tests.conftest import RecordingQueue
from tests.functions.conftest import (
    BONTONOMPO,
    OTHER_WA_ID,
    SOMBA_OPU,
    TS,
    WA_ID,
    all_cases,
    change,
    text_body,
    text_message,
    webhook_body,
)

# ---- GET: the verification handshake ----------------------------------------------------------


def test_handshake_with_the_right_token_echoes_the_challenge(
    container: Container, client_for: Callable[[str], FlaskClient]
) -> None:
    # GIVEN the verify token configured for the app
    token = container.settings.secret("wa_verify_token")
    # WHEN Meta calls with it
    resp = client_for("wa_webhook").get(
        "/",
        query_string={
            "hub.mode": "subscribe",
            "hub.verify_token": token,
            "hub.challenge": "1158201444",
        },
    )
    # THEN the challenge comes back as the body
    assert resp.status_code == 200
    assert resp.get_data(as_text=True) == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "42"},
        {"hub.mode": "subscribe", "hub.challenge": "42"},
        {"hub.challenge": "42"},
        {"hub.mode": "subscribe", "hub.verify_token": "t\u00f6ken", "hub.challenge": "42"},
    ],
    ids=["wrong-token", "missing-token", "missing-mode-and-token", "non-ascii-token"],
)
def test_handshake_without_the_right_token_is_forbidden(
    client_for: Callable[[str], FlaskClient], params: dict[str, str]
) -> None:
    resp = client_for("wa_webhook").get("/", query_string=params)
    assert resp.status_code == 403
    assert "42" not in resp.get_data(as_text=True)


def test_handshake_with_the_right_token_but_wrong_mode_is_forbidden(
    container: Container, client_for: Callable[[str], FlaskClient]
) -> None:
    token = container.settings.secret("wa_verify_token")
    resp = client_for("wa_webhook").get(
        "/",
        query_string={"hub.mode": "unsubscribe", "hub.verify_token": token, "hub.challenge": "42"},
    )
    assert resp.status_code == 403


# ---- POST: a first message -------------------------------------------------------------------


def _nothing_stored(c: Container, queue: RecordingQueue) -> None:
    assert all_cases(c) == []
    assert not c.store.message_exists("wamid.A1")
    assert queue.tasks == []


def test_first_message_opens_a_case_and_queues_the_guestbook_link(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any]
) -> None:
    # GIVEN a resident who never wrote before
    # WHEN he greets the Somba Opu number
    resp = post_webhook(text_body("wamid.A1", "Halo"))
    # THEN one case exists in Somba Opu with today's first registration number
    assert resp.status_code == 200
    assert resp.get_json()["routed"] == 1
    cases = all_cases(container)
    assert len(cases) == 1
    case = cases[0]
    assert case.kecamatan == SOMBA_OPU
    assert case.wa_id == WA_ID
    assert case.state == "greeted"
    assert re.fullmatch(rf"{SOMBA_OPU}-\d{{8}}-0001", case.reg_no)
    assert case.reg_no == f"{SOMBA_OPU}-20261129-0001"  # 09:00 WITA on the FixedClock's day
    assert case.applicant_name == "Andi Baso"
    # AND the message is stored on it
    msgs = container.store.messages(case.id)
    assert [(m.id, m.direction, m.body) for m in msgs] == [("wamid.A1", "in", "Halo")]
    # AND exactly one notify task sends the link and then completes SOP step 2
    assert len(queue.tasks) == 1
    task = queue.tasks[0]
    assert task.kind == "notify"
    assert task.name
    assert task.payload == {"case_id": case.id, "kind": "guestbook_link", "then_event": "send_link"}


def test_the_same_delivery_again_changes_nothing(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any]
) -> None:
    # GIVEN a first message already received
    raw = text_body("wamid.A1", "Halo")
    assert post_webhook(raw).status_code == 200
    case = all_cases(container)[0]
    before_events = container.store.events(case.id)
    # WHEN Meta delivers the very same body again
    resp = post_webhook(raw)
    # THEN it is acknowledged and recognised as a duplicate
    assert resp.status_code == 200
    assert resp.get_json()["duplicates"] == 1
    assert resp.get_json()["routed"] == 0
    # AND there is no second case, message or task
    assert [k.id for k in all_cases(container)] == [case.id]
    assert len(container.store.messages(case.id)) == 1
    assert len(queue.tasks) == 1
    assert container.store.events(case.id) == before_events


@pytest.mark.parametrize(
    "signature",
    [
        "sha256=" + "0" * 64,
        None,
        "sha1=deadbeef",
        "OTHER-BYTES",
        "sha256=\u00e9t\u00e9",
    ],
    ids=["forged", "missing", "wrong-scheme", "over-other-bytes", "non-ascii"],
)
def test_a_bad_signature_is_refused_and_nothing_is_stored(
    container: Container,
    queue: RecordingQueue,
    post_webhook: Callable[..., Any],
    signature: str | None,
) -> None:
    # GIVEN a valid message body
    raw = text_body("wamid.A1", "Halo")
    if signature == "OTHER-BYTES":
        # a real signature, but over a different body (a replayed header on altered bytes)
        signature = sign_body(
            container.settings.secret("wa_app_secret"), text_body("wamid.A1", "Halo!")
        )
    # WHEN it arrives with a signature that does not prove Meta sent these bytes
    resp = post_webhook(raw, signature=signature)
    # THEN it is refused
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "unauthorized"
    # AND nothing is stored or queued
    _nothing_stored(container, queue)


def test_a_signature_made_with_another_secret_is_refused(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any]
) -> None:
    raw = text_body("wamid.A1", "Halo")
    resp = post_webhook(raw, signature=sign_body("not-the-app-secret", raw))
    assert resp.status_code == 401
    _nothing_stored(container, queue)


def test_malformed_json_with_a_valid_signature_is_a_bad_request(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any]
) -> None:
    resp = post_webhook(b'{"object": "whatsapp_business_account", "entry": [')
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "permanent"
    _nothing_stored(container, queue)


@pytest.mark.parametrize(
    "body",
    [
        {"hello": "world"},
        [1, 2, 3],
        {"object": "page", "entry": []},
        "just a string",
    ],
    ids=["no-object", "array", "other-object", "string"],
)
def test_json_that_is_not_a_whatsapp_payload_is_a_bad_request(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any], body: Any
) -> None:
    resp = post_webhook(json.dumps(body).encode())
    assert resp.status_code == 400
    _nothing_stored(container, queue)


@pytest.mark.parametrize(
    "changes",
    [
        [{"value": {}}],
        [
            {
                "field": "messages",
                "value": {"messages": [{"from": WA_ID, "id": "w", "type": "text"}]},
            }
        ],
        [{"field": "messages", "value": "not an object"}],
        ["not a change"],
        [{"field": "automatic_events", "value": {"event": "PURCHASE"}}],
    ],
    ids=[
        "no-field-no-metadata",
        "messages-without-metadata",
        "value-string",
        "change-string",
        "unknown-field",
    ],
)
def test_a_change_sapa_cannot_read_is_acknowledged_and_changes_nothing(
    container: Container,
    queue: RecordingQueue,
    post_webhook: Callable[..., Any],
    changes: list[Any],
) -> None:
    # GIVEN a Meta notification whose change SAPA cannot read (Meta retries a non-200 for days
    # and then disables the webhook)
    body = {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": changes}]}
    resp = post_webhook(json.dumps(body).encode())
    # THEN it is acknowledged and nothing is stored or queued
    assert resp.status_code == 200
    assert resp.get_json()["routed"] == 0
    _nothing_stored(container, queue)


def test_an_unreadable_change_does_not_refuse_the_good_change_beside_it(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any]
) -> None:
    good = change([text_message("wamid.GOOD1", "Halo")])
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "calls", "value": {}}, good]}],
    }
    resp = post_webhook(json.dumps(body).encode())
    assert resp.status_code == 200
    assert resp.get_json()["routed"] == 1
    assert len(all_cases(container)) == 1


def test_unknown_phone_number_id_is_acknowledged_but_not_routed(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any]
) -> None:
    body = webhook_body(change([text_message("wamid.A1", "Halo")], phone_number_id="1234567890123"))
    resp = post_webhook(body)
    # 200, so Meta does not keep retrying a message no kecamatan owns
    assert resp.status_code == 200
    assert resp.get_json()["unrouted"] == 1
    assert resp.get_json()["routed"] == 0
    _nothing_stored(container, queue)


def test_every_entry_change_and_message_of_a_batch_is_parsed(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any]
) -> None:
    # GIVEN a payload of 2 entries x 2 changes with text, image, document, a status update
    # and a contact block without wa_id
    image = {
        "from": WA_ID,
        "id": "wamid.IMG",
        "timestamp": TS,
        "type": "image",
        "image": {
            "id": "media-img-1",
            "mime_type": "image/jpeg",
            "sha256": "abc",
            "caption": "foto KK",
        },
    }
    document = {
        "from": WA_ID,
        "id": "wamid.DOC",
        "timestamp": TS,
        "type": "document",
        "document": {"id": "media-doc-1", "mime_type": "application/pdf", "filename": "akta.pdf"},
    }
    sticker_without_id = {
        "from": WA_ID,
        "timestamp": TS,
        "type": "text",
        "text": {"body": "no id: skipped"},
    }
    status = {"id": "wamid.out.1", "status": "delivered", "timestamp": TS, "recipient_id": WA_ID}
    changes = [
        change([text_message("wamid.T1", "Halo"), text_message("wamid.T2", "mau buat KTP")]),
        change([image], contacts=[{"profile": {"name": "Andi"}}]),  # contact without wa_id
        change([document, sticker_without_id]),
        change([], statuses=[status], contacts=[]),
    ]
    body = webhook_body(*changes, entries=2)
    assert len(body["entry"]) == 2
    assert all(len(e["changes"]) == 2 for e in body["entry"])
    # WHEN it is delivered
    resp = post_webhook(body)
    # THEN every message with an id is attached to the one case of this resident
    assert resp.status_code == 200
    result = resp.get_json()
    assert result["routed"] == 4
    assert result["statuses"] == 1
    cases = all_cases(container)
    assert len(cases) == 1
    case = cases[0]
    msgs = {m.id: m for m in container.store.messages(case.id)}
    assert set(msgs) == {"wamid.T1", "wamid.T2", "wamid.IMG", "wamid.DOC"}
    assert msgs["wamid.IMG"].type == "image"
    assert msgs["wamid.IMG"].body == "foto KK"
    assert msgs["wamid.IMG"].data["media_id"] == "media-img-1"
    assert msgs["wamid.DOC"].data["filename"] == "akta.pdf"
    # AND the image and the document are fetched by media_store tasks, the link sent once
    kinds = sorted(t.kind for t in queue.tasks)
    assert kinds == ["media_store", "media_store", "notify"]
    media = {t.payload["media_id"]: t.payload for t in queue.tasks if t.kind == "media_store"}
    assert set(media) == {"media-img-1", "media-doc-1"}
    assert media["media-img-1"]["sha256"] == "abc"
    assert media["media-doc-1"]["filename"] == "akta.pdf"
    assert all(p["case_id"] == case.id for p in media.values())


@pytest.mark.parametrize(
    ("word", "kind", "payload"),
    [
        ("STATUS", "notify", {"kind": "status"}),
        ("status", "notify", {"kind": "status"}),
        ("Bantuan", "notify", {"kind": "help"}),
        ("BATAL", "command", {"command": "request_cancel", "wa_id": WA_ID}),
        ("batal", "command", {"command": "request_cancel", "wa_id": WA_ID}),
        (" Batal! ", "command", {"command": "request_cancel", "wa_id": WA_ID}),
    ],
)
def test_keywords_queue_their_task(
    container: Container,
    queue: RecordingQueue,
    post_webhook: Callable[..., Any],
    word: str,
    kind: str,
    payload: dict[str, str],
) -> None:
    # GIVEN a resident with an open case
    assert post_webhook(text_body("wamid.A1", "Halo")).status_code == 200
    case = all_cases(container)[0]
    queue.take()
    # WHEN he sends the keyword
    resp = post_webhook(text_body("wamid.A2", word))
    # THEN exactly the keyword's task is queued for his case
    assert resp.status_code == 200
    assert len(queue.tasks) == 1, queue.tasks
    task = queue.tasks[0]
    assert task.kind == kind
    assert task.payload == {"case_id": case.id, **payload}


def test_ya_without_a_pending_batal_is_just_a_word(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any]
) -> None:
    # GIVEN a resident with an open case who never wrote BATAL
    assert post_webhook(text_body("wamid.A1", "Halo")).status_code == 200
    queue.take()
    # WHEN he answers "ya" in conversation
    assert post_webhook(text_body("wamid.A2", "ya")).status_code == 200
    # THEN nothing is queued: a plain "ya" confirms nothing
    assert queue.tasks == []


@pytest.mark.parametrize("word", ["YA", "ya", " Ya! ", "ya batal", "YA  BATAL."])
def test_ya_after_batal_queues_the_confirmation(
    container: Container,
    queue: RecordingQueue,
    post_webhook: Callable[..., Any],
    run_task: Callable[..., Any],
    word: str,
) -> None:
    # GIVEN a resident who wrote BATAL and whose request_cancel task ran
    assert post_webhook(text_body("wamid.A1", "Halo")).status_code == 200
    case = all_cases(container)[0]
    queue.take()
    assert post_webhook(text_body("wamid.A2", "BATAL")).status_code == 200
    (ask,) = queue.take()
    assert run_task(ask.kind, ask.payload, name=ask.name).get_json()["result"] == (
        "confirmation_asked"
    )
    queue.take()  # the question itself (a notify task)
    # WHEN he answers YA
    assert post_webhook(text_body("wamid.A3", word)).status_code == 200
    # THEN exactly the confirm_cancel command is queued for his case
    (task,) = queue.tasks
    assert task.kind == "command"
    assert task.payload == {"case_id": case.id, "command": "confirm_cancel", "wa_id": WA_ID}


def test_an_ordinary_sentence_containing_a_keyword_is_not_a_command(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any]
) -> None:
    assert post_webhook(text_body("wamid.A1", "Halo")).status_code == 200
    queue.take()
    assert post_webhook(text_body("wamid.A2", "saya tidak mau batal")).status_code == 200
    assert queue.tasks == []


def test_a_second_resident_in_another_kecamatan_gets_his_own_case(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any]
) -> None:
    # GIVEN a case in Somba Opu
    assert post_webhook(text_body("wamid.A1", "Halo")).status_code == 200
    # WHEN another resident greets the Bontonompo number
    resp = post_webhook(text_body("wamid.B1", "Halo", wa_id=OTHER_WA_ID, kecamatan=BONTONOMPO))
    # THEN he has his own case there, numbered in Bontonompo's own daily sequence
    assert resp.status_code == 200
    cases = {k.kecamatan: k for k in all_cases(container)}
    assert set(cases) == {SOMBA_OPU, BONTONOMPO}
    assert cases[BONTONOMPO].wa_id == OTHER_WA_ID
    assert cases[BONTONOMPO].reg_no == f"{BONTONOMPO}-20261129-0001"
    assert cases[SOMBA_OPU].wa_id == WA_ID
    assert [m.id for m in container.store.messages(cases[BONTONOMPO].id)] == ["wamid.B1"]
    assert {t.payload["case_id"] for t in queue.tasks} == {k.id for k in cases.values()}


def test_the_same_resident_in_two_kecamatan_has_two_cases(
    container: Container, post_webhook: Callable[..., Any]
) -> None:
    assert post_webhook(text_body("wamid.A1", "Halo")).status_code == 200
    assert post_webhook(text_body("wamid.A2", "Halo", kecamatan=BONTONOMPO)).status_code == 200
    assert sorted(k.kecamatan for k in all_cases(container)) == [BONTONOMPO, SOMBA_OPU]


def test_a_second_message_of_the_resident_joins_his_open_case(
    container: Container, queue: RecordingQueue, post_webhook: Callable[..., Any]
) -> None:
    assert post_webhook(text_body("wamid.A1", "Halo")).status_code == 200
    assert post_webhook(text_body("wamid.A2", "mau buat KTP")).status_code == 200
    cases = all_cases(container)
    assert len(cases) == 1
    assert [m.id for m in container.store.messages(cases[0].id)] == ["wamid.A1", "wamid.A2"]
    # the link task has a deterministic name: the second message queues no second link
    assert [t.kind for t in queue.tasks] == ["notify"]


@pytest.mark.parametrize("target", ["wa_webhook", "guestbook", "verify"])
def test_a_body_over_the_size_limit_is_a_413_without_a_traceback(
    container: Container,
    client_for: Callable[[str], FlaskClient],
    target: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a function whose server refuses bodies over 1 KiB (the local server's limit, scaled)
    client = client_for(target)
    app = client.application
    old = app.config.get("MAX_CONTENT_LENGTH")
    app.config["MAX_CONTENT_LENGTH"] = 1024
    try:
        # WHEN 4 KiB arrive
        path = {"wa_webhook": "/", "guestbook": "/f/x", "verify": "/d/x"}[target]
        raw = b"x" * 4096
        headers = {"X-Hub-Signature-256": sign_body("s", raw)}
        resp = client.post(path, data={"blob": raw.decode()}, headers=headers)
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old
    # THEN a short 413 in Indonesian, and no ERROR or traceback in the log
    assert resp.status_code == 413, resp.get_data(as_text=True)[:300]
    assert "terlalu besar" in resp.get_data(as_text=True)
    assert not [r for r in caplog.records if r.levelno >= 40 or r.exc_info]
