"""Inbound webhooks over real HTTP: duplicates, every message type in one batch, statuses."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sapa.domain.texts import text
from tests.functions.conftest import tiny_pdf, tiny_png
from tests.whatsapp.conftest import (
    BONTONOMPO,
    OTHER_WA_ID,
    PNID,
    PNID_B,
    SOMBA_OPU,
    WA_ID,
    Rig,
    change,
    contact,
    envelope,
    status,
)

# ---- duplicates -------------------------------------------------------------------------------


def test_the_same_wamid_posted_five_times_is_one_case_one_message_one_link(rig: Rig) -> None:
    # GIVEN a resident's first message, which Meta delivers 5 times (twice at the same moment)
    m = rig.message("text", {"body": "Halo"}, wamid="wamid.DUP")
    body = envelope(change(PNID, [m], contacts=[contact(WA_ID)]))
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: rig.webhook(body), range(2)))
    answers += [rig.webhook(body) for _ in range(3)]
    # WHEN every queued task runs
    rig.drain()
    # THEN every delivery was acknowledged, and there is one case holding the message once
    assert [a.status_code for a in answers] == [200] * 5
    assert sum(a.json()["routed"] for a in answers) == 1
    assert sum(a.json()["duplicates"] for a in answers) == 4
    cases = rig.c.store.list_cases()
    assert len(cases) == 1
    case = cases[0]
    assert case.state == "link_sent"
    assert [m.id for m in rig.messages(case.id, "in")] == ["wamid.DUP"]
    # AND the simulator's Graph API received exactly one guest-book link
    received = rig.received()
    assert len(received) == 1
    assert received[0]["type"] == "text"
    assert "/guestbook/f/" in received[0]["text"]
    assert case.reg_no in received[0]["text"]
    assert [e.event for e in rig.events(case.id)].count("send_link") == 1


# ---- one batch: 2 entries x 2 changes with every message type -----------------------------------


def test_a_batch_with_every_message_type_lands_on_the_right_cases(rig: Rig) -> None:
    # GIVEN resident A of Somba Opu whose link was sent, and media on the simulator
    case_a = rig.greet()
    (link,) = rig.received()
    png, pdf = tiny_png(), tiny_pdf()
    img_id = rig.upload(png, "image/png")
    doc_id = rig.upload(pdf, "application/pdf")
    # AND one POST of 2 entries x 2 changes: A's messages on Somba Opu's number, those of a new
    # resident B on Bontonompo's (his contact block has no wa_id, only a user_id), statuses
    now = rig.clock.now()
    a_text = rig.message("text", {"body": "mau buat KTP"}, wamid="wamid.A-TEXT")
    a_image = rig.message(
        "image",
        {"id": img_id, "mime_type": "image/png", "sha256": _sha(png), "caption": "foto KK"},
        wamid="wamid.A-IMG",
    )
    a_doc = rig.message(
        "document",
        {"id": doc_id, "mime_type": "application/pdf", "sha256": _sha(pdf), "filename": "kk.pdf"},
        wamid="wamid.A-DOC",
    )
    b_audio = rig.message(
        "audio",
        {"id": "audio-1", "mime_type": "audio/ogg; codecs=opus", "voice": True},
        wa_id=OTHER_WA_ID,
        wamid="wamid.B-AUDIO",
    )
    b_location = rig.message(
        "location",
        {"latitude": -5.2, "longitude": 119.45, "name": "Kantor Camat", "address": "Jl. Poros"},
        wa_id=OTHER_WA_ID,
        wamid="wamid.B-LOC",
    )
    b_contacts = rig.message(
        "contacts",
        [{"name": {"formatted_name": "Daeng Ngalle"}, "phones": [{"phone": "+62811"}]}],
        wa_id=OTHER_WA_ID,
        wamid="wamid.B-CONTACTS",
    )
    a_button = rig.message(
        "interactive",
        {"type": "button_reply", "button_reply": {"id": "lanjut", "title": "Lanjutkan"}},
        wamid="wamid.A-BUTTON",
    )
    a_reaction = rig.message(
        "reaction", {"message_id": link["wamid"], "emoji": "👍"}, wamid="wamid.A-REACT"
    )
    a_unsupported = rig.message("unsupported", wamid="wamid.A-UNSUPPORTED")
    a_unsupported["errors"] = [{"code": 131051, "title": "Message type unknown"}]
    b_template_button = rig.message(
        "button", {"text": "Mulai", "payload": "mulai"}, wa_id=OTHER_WA_ID, wamid="wamid.B-BTN"
    )
    read = status(link["wamid"], "read", now, conversation={"id": "c1"})
    body = envelope(
        entries=[
            [
                change(PNID, [a_text, a_image, a_doc], contacts=[contact(WA_ID)]),
                change(
                    PNID_B,
                    [b_audio, b_location, b_contacts],
                    contacts=[contact(None, "Besse", user_id="ID.BESSE")],
                ),
            ],
            [
                change(
                    PNID,
                    [a_button, a_reaction, a_unsupported],
                    contacts=[contact(WA_ID)],
                    statuses=[read],
                ),
                change(PNID_B, [b_template_button], contacts=[contact(OTHER_WA_ID, "Besse")]),
            ],
        ]
    )
    # WHEN it is delivered
    resp = rig.webhook(body)
    # THEN it is acknowledged with every message routed (the reaction attached to the message
    # it reacts to) and the status counted
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "ok": True,
        "routed": 9,
        "attached": 1,
        "duplicates": 0,
        "unrouted": 0,
        "statuses": 1,
        "notices": 0,
        "ignored": 0,
    }
    # AND every message is stored on its resident's case with a body an officer can read
    case_b = rig.case_of(OTHER_WA_ID, BONTONOMPO)
    assert case_b.applicant_name == "Besse"
    bodies_a = {m.id: (m.type, m.body) for m in rig.messages(case_a.id, "in")}
    bodies_b = {m.id: (m.type, m.body) for m in rig.messages(case_b.id, "in")}
    assert bodies_a == {
        next(iter(bodies_a)): ("text", "Halo"),  # the greeting
        "wamid.A-TEXT": ("text", "mau buat KTP"),
        "wamid.A-IMG": ("image", "foto KK"),
        "wamid.A-DOC": ("document", bodies_a["wamid.A-DOC"][1]),
        "wamid.A-BUTTON": ("interactive", "Lanjutkan"),
        "wamid.A-REACT": ("reaction", "[Reaksi 👍]"),
        "wamid.A-UNSUPPORTED": ("unsupported", "[Pesan jenis unsupported tidak didukung]"),
    }
    assert "kk.pdf" in bodies_a["wamid.A-DOC"][1]
    assert bodies_b["wamid.B-LOC"] == (
        "location",
        "[Lokasi -5.2, 119.45] Kantor Camat Jl. Poros",
    )
    assert bodies_b["wamid.B-CONTACTS"] == ("contacts", "[Kontak] Daeng Ngalle")
    assert bodies_b["wamid.B-BTN"] == ("button", "Mulai")
    assert bodies_b["wamid.B-AUDIO"][0] == "audio"
    assert all(body.strip() for _, body in [*bodies_a.values(), *bodies_b.values()])
    # AND the queue holds media_store tasks for the image and the document only, B's link,
    # the "media unsupported" reply to his voice note and, for A, what SAPA can read
    pending = rig.pending_tasks()
    media = sorted(p["media_id"] for k, _, p in pending if k == "media_store")
    assert media == sorted([img_id, doc_id])
    notify = sorted((p["case_id"] == case_b.id, p["kind"]) for k, _, p in pending if k == "notify")
    assert notify == [
        (False, "message_unreadable"),
        (True, "guestbook_link"),
        (True, "media_unsupported"),
    ]
    assert {k for k, _, _ in pending} == {"media_store", "notify"}
    # AND the status marks A's link read
    assert rig.messages(case_a.id, "out")[0].status == "read"
    # WHEN the tasks run
    deliveries = rig.drain()
    # THEN both files are attached to A's case and B got the link and the reply to his audio
    assert all(d.status == 200 and d.body["status"] == "ok" for d in deliveries), deliveries
    docs = rig.c.store.get(case_a.id).documents
    assert sorted(d.content_type for d in docs) == ["application/pdf", "image/png"]
    replies = [m["text"] for m in rig.received(OTHER_WA_ID, PNID_B)]
    assert len(replies) == 2
    assert any("/guestbook/f/" in r for r in replies)
    assert text("wa_media_unsupported") in replies
    # AND A was told once what SAPA can read (for the unknown type); a button and a reaction
    # ask nothing
    assert [m["text"] for m in rig.received()][1:] == [text("wa_message_unreadable")]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- statuses ---------------------------------------------------------------------------------


def test_statuses_out_of_order_end_with_the_furthest(rig: Rig) -> None:
    # GIVEN a case whose link went out
    case = rig.greet()
    (out,) = rig.messages(case.id, "out")
    wamid = out.data["wamid"]
    now = rig.clock.now()
    # WHEN Meta reports read, then sent, then delivered (separate deliveries), then all again
    for state in ("read", "sent", "delivered"):
        resp = rig.webhook(envelope(change(PNID, statuses=[status(wamid, state, now)])))
        assert resp.status_code == 200 and resp.json()["statuses"] == 1
    rig.webhook(
        envelope(
            change(PNID, statuses=[status(wamid, s, now) for s in ("delivered", "read", "sent")])
        )
    )
    # THEN the stored status is read, and no audit event was added for it
    (out,) = rig.messages(case.id, "out")
    assert out.status == "read"
    assert [e.event for e in rig.events(case.id)] == ["greet", "send_link"]


def test_a_failed_status_is_on_the_case_with_metas_error_code_once(rig: Rig) -> None:
    # GIVEN a case whose link went out
    case = rig.greet()
    (out,) = rig.messages(case.id, "out")
    wamid = out.data["wamid"]
    failed = status(
        wamid,
        "failed",
        rig.clock.now(),
        errors=[{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement"}],
    )
    body = envelope(change(PNID, statuses=[failed]))
    # WHEN Meta reports that it failed, twice (a duplicate delivery), and then a late "sent"
    for _ in range(2):
        assert rig.webhook(body).status_code == 200
    rig.webhook(envelope(change(PNID, statuses=[status(wamid, "sent", rig.clock.now())])))
    # THEN the message is marked failed and the case has one message_failed event with the code
    (out,) = rig.messages(case.id, "out")
    assert out.status == "failed"
    (event,) = rig.events(case.id, "message_failed")
    assert event.detail["wamid"] == wamid
    assert any("131047" in e for e in event.detail["errors"])
    assert event.actor_id == "system"


def test_a_status_for_an_unknown_wamid_changes_nothing(rig: Rig) -> None:
    # GIVEN a case whose link went out
    case = rig.greet()
    before = rig.snapshot(case.id)
    now = rig.clock.now()
    # WHEN statuses arrive for a message SAPA never sent (and one with an unknown state)
    unknown = [
        status("wamid.NOT-OURS", "failed", now, errors=[{"code": 131026, "title": "x"}]),
        status("wamid.NOT-OURS", "read", now),
        status(rig.messages(case.id, "out")[0].data["wamid"], "deleted", now),
    ]
    resp = rig.webhook(envelope(change(PNID, statuses=unknown)))
    # THEN they are acknowledged and nothing changes
    assert resp.status_code == 200
    assert resp.json()["statuses"] == 3
    assert rig.snapshot(case.id) == before
    assert rig.pending_tasks() == []


def test_a_message_for_an_unknown_number_is_acknowledged_and_not_routed(rig: Rig) -> None:
    m = rig.message("text", {"body": "Halo"})
    resp = rig.webhook(envelope(change("999999", [m], contacts=[contact(WA_ID)])))
    assert resp.status_code == 200
    assert resp.json()["unrouted"] == 1
    assert rig.c.store.list_cases() == []
    assert rig.c.store.find_open(SOMBA_OPU, WA_ID) is None


def test_a_wrongly_signed_webhook_is_refused_and_nothing_is_stored(rig: Rig) -> None:
    m = rig.message("text", {"body": "Halo"})
    body = envelope(change(PNID, [m], contacts=[contact(WA_ID)]))
    for signature in (None, "sha256=" + "0" * 64, "sha1=abc"):
        assert rig.webhook(body, signature=signature).status_code == 401
    assert rig.c.store.list_cases() == []
    assert rig.pending_tasks() == []


def test_the_verification_handshake(rig: Rig) -> None:
    token = rig.c.settings.secret("wa_verify_token")
    ok = rig.http.get(
        f"{rig.base}/wa/webhook",
        params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"},
        timeout=10,
    )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    bad = rig.http.get(
        f"{rig.base}/wa/webhook",
        params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
        timeout=10,
    )
    assert bad.status_code == 403


def test_the_simulators_own_resident_messages_reach_the_case(rig: Rig) -> None:
    """The simulator's chat API (its own signing, its real timestamps) drives the same path."""
    answer = rig.sim_send(text="Halo")
    assert answer["webhook_status"] == 200, answer
    rig.drain()
    case = rig.case_of()
    assert case.state == "link_sent"
    assert [m.id for m in rig.messages(case.id, "in")] == [answer["wamid"]]
    # the window counts from the simulator's (real-time) timestamp: the FixedClock is near it
    last = rig.c.store.last_inbound(SOMBA_OPU, WA_ID)
    assert last is not None
    assert abs(rig.clock.now() - last) < timedelta(minutes=5)
