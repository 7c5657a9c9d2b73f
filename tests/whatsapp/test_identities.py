"""Residents as WhatsApp knows them: by number, by username (a business-scoped user id, BSUID,
with or without a number), changing number or id; and messages that ask for nothing
(reactions, edits, revokes, echoes of the office's own app) kept on the resident's case."""

from __future__ import annotations

from sapa.domain.texts import text
from sapa.services import handoff, retention, subject, views
from tests.functions.conftest import tiny_png
from tests.whatsapp.conftest import (
    PNID,
    SOMBA_OPU,
    WA_ID,
    Rig,
    b64_sha256,
    change,
    contact,
    envelope,
    wait_until,
)

USERNAME = "ID.73061349120865530274"  # a resident who hides their number behind a username
NEW_ID = "ID.73069999000011112222"


def _post(rig: Rig, value: dict[str, object], field: str = "messages") -> dict[str, object]:
    body = envelope(change(PNID))
    body["entry"][0]["changes"][0]["field"] = field
    body["entry"][0]["changes"][0]["value"].update(value)
    resp = rig.webhook(body)
    assert resp.status_code == 200, resp.text
    answer: dict[str, object] = resp.json()
    return answer


# ---- username only ----------------------------------------------------------------------------


def test_a_resident_known_only_by_username_is_served_through_the_whole_sop(rig: Rig) -> None:
    # GIVEN a resident whose webhooks carry their BSUID and no number
    # WHEN they greet, fill in the guest book and the officers take the request to the end
    case = rig.sign(rig.approved(USERNAME))
    rig.drain()
    # THEN their case is keyed by the BSUID, every message went to it as Meta's `recipient`
    assert case.wa_id == USERNAME and case.wa_user_id == USERNAME
    received = rig.received(USERNAME)
    assert any("/guestbook/f/" in m["text"] for m in received)
    for m in received:
        sent = rig.graph_request(m["wamid"])
        assert sent["recipient"] == USERNAME and "to" not in sent
    # AND the signed document reached them and the case is delivered
    assert [m["type"] for m in received].count("document") == 1
    wait_until(lambda: rig.c.store.get(case.id).state == "delivered", what="delivered")
    # AND the admin's data-subject search finds them by that id
    admin = rig.c.staff.get("admin@sapa.test")
    assert admin is not None
    found = subject.find(rig.c, admin, subject.parse_subject(wa=USERNAME))
    assert [k.id for k in found] == [case.id]


def test_the_number_and_the_username_of_one_resident_join_on_one_case(rig: Rig) -> None:
    # GIVEN a resident who greeted by number, Meta sending their BSUID beside it
    m = rig.message("text", {"body": "Halo"})
    m["from_user_id"] = USERNAME
    _post(rig, {"messages": [m], "contacts": [contact(WA_ID, user_id=USERNAME)]})
    rig.drain()
    case = rig.case_of(WA_ID)
    assert case.wa_user_id == USERNAME
    # WHEN they later write with their BSUID only (they adopted a username)
    rig.say("STATUS", wa_id=USERNAME)
    rig.drain()
    # THEN the message lands on the same case, no second case opens, and the answer goes to
    # their number
    assert len(rig.c.store.list_cases()) == 1
    assert [x.body for x in rig.messages(case.id, "in")] == ["Halo", "STATUS"]
    assert len(rig.received(WA_ID)) == 2


def test_a_rotated_business_scoped_id_still_finds_the_case(rig: Rig) -> None:
    # GIVEN a username-only resident's open case
    rig.say("Halo", wa_id=USERNAME)
    rig.drain()
    case = rig.case_of(USERNAME)
    # WHEN Meta reports their BSUID changed (user_id_update) and they write with the new one
    answer = _post(
        rig,
        {
            "user_id_update": [
                {
                    "detail": "User id has been updated.",
                    "user_id": {"previous": USERNAME, "current": NEW_ID},
                    "timestamp": rig.ts(),
                }
            ]
        },
        field="user_id_update",
    )
    assert answer["routed"] == 0
    rig.say("STATUS", wa_id=NEW_ID)
    rig.drain()
    # THEN it is still their one case, now addressed by the new id
    assert len(rig.c.store.list_cases()) == 1
    case = rig.c.store.get(case.id)
    assert case.wa_id == NEW_ID and case.wa_user_id == NEW_ID
    assert rig.graph_request(rig.received(NEW_ID)[-1]["wamid"])["recipient"] == NEW_ID


def test_a_new_number_takes_the_open_case_along_and_staff_are_told(rig: Rig) -> None:
    # GIVEN a resident's open case
    case = rig.greet()
    new_number = "6285211112222"
    # WHEN WhatsApp says they changed number
    notice = rig.message(
        "system",
        {
            "body": f"User A changed from {WA_ID} to {new_number}",
            "wa_id": new_number,
            "type": "user_changed_number",
        },
    )
    answer = _post(rig, {"messages": [notice]})
    # THEN no case opens, the case now answers to the new number, and the audit says so
    assert answer["attached"] == 1 and answer["routed"] == 0
    assert len(rig.c.store.list_cases()) == 1
    assert rig.c.store.get(case.id).wa_id == new_number
    moved = rig.events(case.id, "wa_number_changed")
    assert len(moved) == 1 and moved[0].detail["moved"] is True
    assert new_number not in str(moved[0].detail)  # masked in the audit
    # AND the resident writing from the new number reaches the same case
    rig.say("STATUS", wa_id=new_number)
    rig.drain()
    assert len(rig.c.store.list_cases()) == 1
    assert rig.received(new_number)


# ---- messages about messages ------------------------------------------------------------------


def test_reactions_edits_and_revokes_attach_and_open_nothing(rig: Rig) -> None:
    # GIVEN a resident's case with their message and the link we sent
    case = rig.greet()
    (link,) = rig.received()
    first = rig.say("mau urus KK")
    # WHEN they react 👍 to the link, edit their message, then delete another one
    photo = rig.say("foto salah")
    react = rig.message("reaction", {"message_id": link["wamid"], "emoji": "👍"})
    edit = rig.message(
        "edit",
        {
            "original_message_id": first,
            "message": {"type": "text", "text": {"body": "mau urus KTP"}},
        },
    )
    revoke = rig.message("revoke", {"original_message_id": photo})
    answer = _post(rig, {"messages": [react, edit, revoke], "contacts": [contact(WA_ID)]})
    rig.drain()
    # THEN nothing opens, no reply goes out, all three are kept on the case
    assert answer["attached"] == 3 and answer["routed"] == 0
    assert len(rig.c.store.list_cases()) == 1
    assert len(rig.received()) == 1
    # AND staff see the reaction on the link, the new text (the original kept, marked edited)
    # and the deleted message marked deleted
    shown = views.conversation(rig.messages(case.id))
    by_id = {m["id"]: m for m in shown}
    assert by_id[link["wamid"]]["reactions"] == ["👍"]
    assert by_id[first]["body"] == "mau urus KTP" and by_id[first]["edited_from"] == "mau urus KK"
    assert by_id[photo]["deleted"] is True
    assert {m["type"] for m in shown} <= {"text", "image", "document", "template"}
    # WHEN the reaction is removed
    unreact = rig.message("reaction", {"message_id": link["wamid"]})
    _post(rig, {"messages": [unreact], "contacts": [contact(WA_ID)]})
    # THEN it is gone from the view
    shown = views.conversation(rig.messages(case.id))
    assert {m["id"]: m for m in shown}[link["wamid"]]["reactions"] == []


def test_a_reaction_from_someone_without_a_case_is_acknowledged_and_opens_nothing(
    rig: Rig,
) -> None:
    react = rig.message("reaction", {"message_id": "wamid.OLD", "emoji": "👍"})
    answer = _post(rig, {"messages": [react], "contacts": [contact(WA_ID)]})
    assert answer["ignored"] == 1 and answer["routed"] == 0
    assert rig.c.store.list_cases() == []
    assert rig.c.store.find_open(SOMBA_OPU, WA_ID) is None


def test_an_officers_reply_from_the_business_app_is_kept_as_the_offices_message(
    rig: Rig,
) -> None:
    case = rig.greet()
    echo = {
        "from": "62411000008",
        "to": WA_ID,
        "id": "wamid.ECHO1",
        "timestamp": rig.ts(),
        "type": "text",
        "text": {"body": "Berkas Bapak sudah kami terima."},
    }
    answer = _post(rig, {"message_echoes": [echo]}, field="smb_message_echoes")
    assert answer["attached"] == 1
    out = [m for m in rig.messages(case.id, "out") if m.id == "wamid.ECHO1"]
    assert len(out) == 1 and out[0].body == "Berkas Bapak sudah kami terima."
    assert out[0].actor_id == "wa-business-app"
    # nothing was sent by SAPA for it
    assert len(rig.received()) == 1


def test_a_history_sync_is_not_live(rig: Rig) -> None:
    old = rig.message("text", {"body": "Halo dari dulu"})
    answer = _post(
        rig,
        {"history": [{"threads": [{"id": WA_ID, "messages": [old]}]}]},
        field="history",
    )
    assert answer["ignored"] == 1 and answer["routed"] == 0
    assert rig.c.store.list_cases() == []


def test_an_unknown_kind_is_answered_with_what_sapa_can_read(rig: Rig) -> None:
    poll = rig.message("unsupported", {"type": "poll"})
    _post(rig, {"messages": [poll], "contacts": [contact(WA_ID)]})
    rig.drain()
    texts = [m["text"] for m in rig.received()]
    assert text("wa_message_unreadable") in texts


def test_a_revoked_photo_is_hidden_from_staff_and_the_siak_package(rig: Rig) -> None:
    # GIVEN a resident's photo, copied to the case
    case = rig.greet()
    png = tiny_png()
    media_id = rig.upload(png, "image/png")
    photo = rig.message(
        "image", {"id": media_id, "mime_type": "image/png", "sha256": b64_sha256(png)}
    )
    _post(rig, {"messages": [photo], "contacts": [contact(WA_ID)]})
    rig.drain()
    (doc,) = rig.c.store.get(case.id).documents
    assert doc.wamid == photo["id"] and doc.withdrawn_at is None
    # WHEN they delete the message on WhatsApp
    revoke = rig.message("revoke", {"original_message_id": photo["id"]})
    _post(rig, {"messages": [revoke], "contacts": [contact(WA_ID)]})
    # THEN the file is withdrawn (kept in storage), the audit says so, staff do not see it
    case = rig.c.store.get(case.id)
    (doc,) = case.documents
    assert doc.withdrawn_at is not None
    assert rig.c.blobs.exists(doc.key)
    assert len(rig.events(case.id, "document_withdrawn")) == 1
    assert views.case_summary(rig.c, case)["documents"][0]["withdrawn"] is True
    assert handoff._latest_documents(case) == []
    # AND the counter officer's document link answers 404 with the reason
    rig.http.post(
        f"{rig.base}/staff/login",
        data={"email": "loket.sombaopu@sapa.test"},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    resp = rig.http.get(
        f"{rig.base}/staff/cases/{case.id}/documents/0",
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 404
    assert text("document_withdrawn") in resp.text


def test_anonymisation_forgets_the_business_scoped_id(rig: Rig) -> None:
    m = rig.message("text", {"body": "Halo"})
    m["from_user_id"] = USERNAME
    _post(rig, {"messages": [m], "contacts": [contact(WA_ID, user_id=USERNAME)]})
    case = rig.case_of(WA_ID)
    assert [k.id for k in rig.c.store.cases_of_subject(wa_id=USERNAME)] == [case.id]
    retention._anonymise(rig.c, case, rig.clock.now())
    case = rig.c.store.get(case.id)
    assert case.wa_user_id is None and USERNAME not in case.model_dump_json()
    assert rig.c.store.cases_of_subject(wa_id=USERNAME) == []
