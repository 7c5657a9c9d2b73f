"""The 24-hour customer-service window, as the simulator's Graph API sees it: free text inside,
the approved template outside, nothing (and a note on the case) without a template; and the
signed document that waits outside the window until the resident writes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sapa.ports import Task
from tests.whatsapp.conftest import WA_ID, Rig, wait_until


def _task(rig: Rig, kind: str, payload: dict[str, object], name: str) -> None:
    assert rig.queue.enqueue(Task(kind, payload, name=name))


def test_inside_the_window_the_link_goes_out_as_free_text(rig: Rig) -> None:
    # GIVEN a resident who just wrote
    rig.say("Halo")
    # WHEN the link task runs 23 hours later (a long queue outage): still inside the window
    rig.clock.advance(23 * 3600)
    rig.drain()
    # THEN the Graph API received a text message, no template
    (out,) = rig.received()
    assert out["type"] == "text"
    assert "/guestbook/f/" in out["text"]
    request = rig.graph_request(out["wamid"])
    assert request["type"] == "text"
    assert request["to"] == WA_ID
    case = rig.case_of()
    assert case.state == "link_sent"
    (stored,) = rig.messages(case.id, "out")
    assert (stored.type, stored.data["wamid"]) == ("text", out["wamid"])


def test_outside_the_window_the_link_goes_out_as_its_template(rig: Rig) -> None:
    # GIVEN a resident whose last message is 25 hours old when the link task runs
    rig.say("Halo")
    rig.clock.advance(25 * 3600)
    rig.drain()
    # THEN the Graph API received the configured template with its parameters, and no text
    case = rig.case_of()
    template = rig.c.templates["guestbook_link"]
    (out,) = rig.received()
    assert out["type"] == "template"
    request = rig.graph_request(out["wamid"])
    assert request["type"] == "template"
    assert "text" not in request
    assert request["template"]["name"] == template.name == "sapa_tautan_buku_tamu"
    assert request["template"]["language"] == {"code": template.language}
    (component,) = request["template"]["components"]
    assert component["type"] == "body"
    params = [p["text"] for p in component["parameters"]]
    assert params[0] == case.reg_no
    assert params[1].startswith(f"{rig.c.settings.guestbook_base}/f/")
    assert out["text"] == f"[Templat {template.name}] {case.reg_no} | {params[1]}"
    # AND the case moved on and the conversation holds the template once
    assert case.state == "link_sent"
    (stored,) = rig.messages(case.id, "out")
    assert stored.type == "template"
    assert stored.data["wamid"] == out["wamid"]
    assert template.name in stored.body


def test_outside_the_window_a_kind_without_template_is_not_sent_and_noted_once(rig: Rig) -> None:
    # GIVEN a case whose resident last wrote 25 hours ago
    case = rig.greet()
    rig.clock.advance(25 * 3600)
    sent_before = rig.received()
    # WHEN a help message (no template exists for it) is due, and the task is delivered again
    _task(rig, "notify", {"case_id": case.id, "kind": "help"}, "notify-help-1")
    first = rig.drain()
    replay = rig.post_task("notify", {"case_id": case.id, "kind": "help"}, "notify-help-1")
    # THEN nothing reached the Graph API
    assert [d.body["result"] for d in first] == ["not_sent"]
    assert replay.status_code == 200 and replay.json()["result"] == "not_sent"
    assert rig.received() == sent_before
    # AND the case has one message_not_sent note saying why
    (note,) = rig.events(case.id, "message_not_sent")
    assert note.detail["kind"] == "help"
    assert note.detail["reason"] == "outside_24h_window_no_template"
    assert note.actor_id == "system"
    assert len(rig.messages(case.id, "out")) == 1  # the guest-book link only


def test_a_message_of_the_resident_opens_the_window_again(rig: Rig) -> None:
    # GIVEN a case whose resident last wrote 25 hours ago, and who now writes STATUS
    case = rig.greet()
    rig.clock.advance(25 * 3600)
    rig.say("STATUS")
    # WHEN the status reply runs
    rig.drain()
    # THEN it goes out as free text (the window is open again)
    last = rig.received()[-1]
    assert last["type"] == "text"
    assert case.reg_no in last["text"]


# ---- the signed document and the window -------------------------------------------------------


def test_deliver_outside_the_window_sends_document_ready_then_the_document_on_reply(
    rig: Rig,
) -> None:
    # GIVEN an approved case, signed 25 hours after the resident's last message
    case = rig.approved()
    rig.clock.advance(25 * 3600)
    case = rig.sign(case)
    assert case.signed is not None
    before = rig.received()
    # WHEN its deliver task runs (twice: at-least-once)
    (deliver,) = [(k, n, p) for k, n, p in rig.pending_tasks() if k == "deliver"]
    results = [d.body["result"] for d in rig.drain()]
    again = rig.post_task(deliver[0], deliver[2], deliver[1])
    # THEN the document_ready template went out once, no document, and the case stays signed
    assert results == ["awaiting_window"]
    assert again.json()["result"] == "awaiting_window"
    new = rig.received()[len(before) :]
    assert [m["type"] for m in new] == ["template"]
    request = rig.graph_request(new[0]["wamid"])
    assert request["template"]["name"] == rig.c.templates["document_ready"].name
    assert [p["text"] for p in request["template"]["components"][0]["parameters"]] == [case.reg_no]
    assert rig.c.store.get(case.id).state == "signed"
    # WHEN the resident writes three times (e.g. "ok", "terima kasih", "kirim") and every task
    # runs
    for text in ("ok", "terima kasih", "kirim"):
        rig.say(text)
    assert len([k for k, _, _ in rig.pending_tasks() if k == "deliver"]) == 1
    deliveries = rig.drain()
    # THEN the signed PDF went out exactly once, and the case is delivered when the simulated
    # phone reports it (the simulator posts "sent" then "delivered" statuses to the webhook)
    assert [d.body["result"] for d in deliveries if d.kind == "deliver"] == ["sent"]
    wait_until(lambda: rig.c.store.get(case.id).state == "delivered", what="delivered")
    documents = [m for m in rig.received() if m["type"] == "document"]
    assert len(documents) == 1
    assert documents[0]["document"]["filename"] == f"KTP-EL-{case.reg_no}.pdf"
    request = rig.graph_request(documents[0]["wamid"])
    assert rig.sim.store.media_bytes(request["document"]["id"]) == rig.c.blobs.get(case.signed.key)
    stored = rig.c.store.get(case.id)
    assert stored.state == "delivered"
    assert [e.event for e in rig.events(case.id)].count("deliver") == 1
    assert [m.type for m in rig.messages(case.id, "out")].count("document") == 1


def test_the_document_goes_out_once_when_the_resident_writes_three_times_at_once(
    rig: Rig,
) -> None:
    # GIVEN a signed case waiting for the window, and the queue's worker running (4 threads)
    case = rig.approved()
    rig.clock.advance(25 * 3600)
    case = rig.sign(case)
    rig.drain()
    rig.stack.start_worker()
    # WHEN the resident writes three times at the same moment
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda text: rig.say(text), ["ok", "terima kasih", "kirim"]))
    wait_until(lambda: rig.c.store.get(case.id).state == "delivered", what="delivered")
    wait_until(lambda: rig.queue.stats().pending == 0, what="the queue to drain")
    # THEN he got the document exactly once
    assert len([m for m in rig.received() if m["type"] == "document"]) == 1
    assert [m.type for m in rig.messages(case.id, "out")].count("document") == 1
    assert [e.event for e in rig.events(case.id)].count("deliver") == 1


def test_deliver_inside_the_window_sends_the_document_at_once(rig: Rig) -> None:
    case = rig.sign(rig.approved())
    rig.drain()
    types = [m["type"] for m in rig.received()]
    assert types.count("document") == 1
    assert "template" not in types
    wait_until(lambda: rig.c.store.get(case.id).state == "delivered", what="delivered")
    last = rig.c.store.last_inbound(case.kecamatan, WA_ID)
    assert last is not None and rig.clock.now() - last < timedelta(hours=24)
