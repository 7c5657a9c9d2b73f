"""The queue-triggered functions (notify, command, media_store, precheck, deliver) as Cloud Tasks
calls them: POST, JSON payload, a bearer token and the task's name in a header."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from sapa.bootstrap import Container
from sapa.dev import localserver
from tests.conftest import RecordingQueue
from tests.functions.conftest import (
    WA_ID,
    FakeWhatsApp,
    Flow,
    change,
    deliver_task,
    snapshot,
    tiny_png,
    webhook_body,
)

TASK_KINDS = list(localserver.TASK_KINDS)


def _link_task(queue: RecordingQueue) -> Any:
    (task,) = [t for t in queue.tasks if t.kind == "notify"]
    return task


# ---- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TASK_KINDS)
@pytest.mark.parametrize(
    "token", [None, "wrong-token", "", "t\u00f6ken"], ids=["missing", "wrong", "empty", "non-ascii"]
)
def test_a_task_without_the_right_bearer_is_refused(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    run_task: Callable[..., Any],
    kind: str,
    token: str | None,
) -> None:
    # GIVEN a freshly greeted case whose link task is queued
    case = flow.greet()
    task = _link_task(flow.queue)
    before = snapshot(container, case.id)
    # WHEN someone posts a task without the queue's token
    resp = run_task(
        kind,
        {**task.payload, "command": "confirm_cancel", "wa_id": WA_ID},
        name=task.name,
        token=token,
    )
    # THEN it is refused and nothing happens
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "unauthorized"
    assert wa.sent == []
    assert snapshot(container, case.id) == before


def test_a_basic_auth_header_is_not_a_bearer(
    container: Container, flow: Flow, wa: FakeWhatsApp, client_for: Callable[[str], Any]
) -> None:
    case = flow.greet()
    task = _link_task(flow.queue)
    resp = client_for("notify").post(
        "/",
        json=task.payload,
        headers={
            "Authorization": f"Basic {container.settings.secret('task_token')}",
            "X-CloudTasks-TaskName": task.name,
        },
    )
    assert resp.status_code == 401
    assert wa.sent == []
    assert container.store.get(case.id).state == "greeted"


# ---- notify -----------------------------------------------------------------------------------


def test_notify_sends_the_link_once_even_when_delivered_twice(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    # GIVEN a greeted case and its queued link task
    case = flow.greet()
    task = _link_task(flow.queue)
    # WHEN Cloud Tasks delivers the task, and then (at-least-once) delivers it again
    first = deliver_task(run_task, task)
    second = deliver_task(run_task, task)
    # THEN both answers are 2xx and exactly one WhatsApp message went out
    assert first.status_code == 200
    assert first.get_json() == {"status": "ok", "result": "sent"}
    assert second.status_code == 200
    assert second.get_json()["result"] == "already_sent"
    assert len(wa.sent) == 1
    sent = wa.sent[0]
    assert (sent.kind, sent.phone_number_id, sent.to) == ("text", "demo-730608", WA_ID)
    assert case.reg_no in sent.body
    assert "/guestbook/f/" in sent.body
    # AND the case moved to link_sent once, with one send_link audit event
    stored = container.store.get(case.id)
    assert stored.state == "link_sent"
    events = [e.event for e in container.store.events(case.id)]
    assert events.count("send_link") == 1
    # AND the outbound message is on the conversation once
    outs = [m for m in container.store.messages(case.id) if m.direction == "out"]
    assert len(outs) == 1
    assert outs[0].data["wamid"] == "wamid.out.1"


def test_a_payload_without_case_id_is_dropped_for_good(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    # GIVEN a greeted case
    case = flow.greet()
    before = snapshot(container, case.id)
    # WHEN a notify task arrives without case_id
    resp = run_task("notify", {"kind": "guestbook_link", "then_event": "send_link"})
    # THEN it is answered 200 (Cloud Tasks must not retry it) with status permanent_error
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "permanent_error"
    # AND nothing changed
    assert wa.sent == []
    assert snapshot(container, case.id) == before


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"null", b'{"case_id": ""}'])
def test_an_unusable_payload_is_a_permanent_error(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any], raw: bytes
) -> None:
    case = flow.greet()
    before = snapshot(container, case.id)
    resp = run_task("notify", raw)
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "permanent_error"
    assert wa.sent == []
    assert snapshot(container, case.id) == before


def test_a_task_for_an_unknown_case_is_a_permanent_error(
    flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    resp = run_task("notify", {"case_id": "no-such-case", "kind": "help"})
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "permanent_error"
    assert wa.sent == []


def test_notify_when_whatsapp_is_down_asks_for_a_retry_and_records_nothing(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    # GIVEN a greeted case and its link task, and the WhatsApp API failing transiently
    case = flow.greet()
    task = _link_task(flow.queue)
    before = snapshot(container, case.id)
    wa.down = True
    # WHEN the task runs
    resp = deliver_task(run_task, task)
    # THEN Cloud Tasks is told to retry (503) and nothing is recorded as sent; the link is
    # issued already (step 2 done first, so a resident tapping it at once finds the form open)
    assert resp.status_code == 503
    assert resp.get_json()["error"] == "transient"
    assert wa.sent == []
    after = snapshot(container, case.id)
    assert after["messages"] == before["messages"]
    assert container.store.get(case.id).state == "link_sent"
    # AND the retry, once WhatsApp is back, sends it exactly once
    wa.down = False
    retry = deliver_task(run_task, task)
    assert retry.status_code == 200
    assert len(wa.sent) == 1
    assert container.store.get(case.id).state == "link_sent"


@pytest.mark.parametrize(("kind", "needle"), [("status", "Permohonan"), ("help", "BATAL")])
def test_notify_status_and_help_reply_in_indonesian(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    run_task: Callable[..., Any],
    kind: str,
    needle: str,
) -> None:
    case = flow.greet()
    resp = run_task("notify", {"case_id": case.id, "kind": kind}, name=f"notify-{kind}")
    assert resp.status_code == 200
    assert len(wa.sent) == 1
    assert needle in wa.sent[0].body
    # status and help do not move the case
    assert container.store.get(case.id).state == "greeted"


# ---- command (BATAL, then YA) -----------------------------------------------------------------


def _command(run_task: Callable[..., Any], case: Any, command: str, name: str, **kw: Any) -> Any:
    payload = {"case_id": case.id, "command": command, "wa_id": kw.get("wa_id", WA_ID)}
    return run_task("command", payload, name=name)


def _run_all(run_task: Callable[..., Any], queue: RecordingQueue) -> None:
    """Deliver every queued task twice (Cloud Tasks is at-least-once) until none is left."""
    for _ in range(5):
        tasks = queue.take()
        if not tasks:
            return
        for task in tasks:
            assert deliver_task(run_task, task).status_code == 200
            assert deliver_task(run_task, task).status_code == 200
    raise AssertionError("tasks keep coming")


def test_batal_only_asks_to_confirm_and_a_replay_changes_nothing(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    # GIVEN a case waiting for the resident's guest book
    case = flow.to("link_sent")
    # WHEN his BATAL command runs
    resp = _command(run_task, case, "request_cancel", "command-batal-1")
    # THEN the case is not cancelled yet: the request is noted and the question queued
    assert resp.status_code == 200
    assert resp.get_json()["result"] == "confirmation_asked"
    stored = container.store.get(case.id)
    assert stored.state == "link_sent"
    assert stored.cancel_requested_at == container.clock.now()
    asked = [e for e in container.store.events(case.id) if e.event == "cancel_requested"]
    assert [e.actor_id for e in asked] == [f"wa:{WA_ID}"]
    assert "cancel" not in [e.event for e in container.store.events(case.id)]
    questions = [t for t in flow.queue.tasks if t.kind == "notify"]
    assert [t.payload["kind"] for t in questions] == ["cancel_confirm"]
    after = snapshot(container, case.id)
    queued = list(flow.queue.tasks)
    # WHEN the same task is delivered again (later: Cloud Tasks' backoff)
    container.clock.advance(30)
    replay = _command(run_task, case, "request_cancel", "command-batal-1")
    # THEN it is acknowledged and changes nothing (one request, the same deadline)
    assert replay.status_code == 200
    assert replay.get_json()["result"] == "confirmation_asked"
    assert snapshot(container, case.id) == after
    assert flow.queue.tasks == queued


def test_ya_after_batal_cancels_the_case_and_replays_change_nothing(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    # GIVEN a resident who wrote BATAL
    case = flow.to("link_sent")
    _command(run_task, case, "request_cancel", "command-batal-1")
    flow.queue.take()
    wa.sent.clear()
    # WHEN he confirms with YA a minute later
    container.clock.advance(60)
    resp = _command(run_task, case, "confirm_cancel", "command-ya-1")
    # THEN the case is cancelled by the applicant and the confirmation is queued
    assert resp.status_code == 200
    assert resp.get_json()["result"] == "cancelled"
    stored = container.store.get(case.id)
    assert stored.state == "cancelled"
    assert stored.closed_reason == "dibatalkan pemohon (BATAL)"
    assert stored.cancel_requested_at is None
    cancel_events = [e for e in container.store.events(case.id) if e.event == "cancel"]
    assert len(cancel_events) == 1
    assert cancel_events[0].actor_id == f"wa:{WA_ID}"
    confirmations = [t for t in flow.queue.tasks if t.kind == "notify"]
    assert [t.payload["kind"] for t in confirmations] == ["cancelled"]
    after = snapshot(container, case.id)
    queued = list(flow.queue.tasks)
    # WHEN the YA task is delivered again
    replay = _command(run_task, case, "confirm_cancel", "command-ya-1")
    # THEN it is acknowledged and changes nothing
    assert replay.status_code == 200
    assert replay.get_json()["result"] == "no_pending_request"
    assert snapshot(container, case.id) == after
    assert flow.queue.tasks == queued
    # AND a late replay of the BATAL task changes nothing either
    late = _command(run_task, case, "request_cancel", "command-batal-1")
    assert late.status_code == 200
    assert late.get_json()["result"] == "not_cancellable"
    assert snapshot(container, case.id) == after
    # AND the resident hears exactly once that his case is cancelled
    _run_all(run_task, flow.queue)
    assert [s.body for s in wa.sent] == [f"Permohonan {case.reg_no} telah dibatalkan."]


def test_ya_after_the_confirmation_time_cancels_nothing(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    case = flow.to("link_sent")
    _command(run_task, case, "request_cancel", "command-batal-1")
    container.clock.advance(16 * 60)
    resp = _command(run_task, case, "confirm_cancel", "command-ya-1")
    assert resp.status_code == 200
    assert resp.get_json()["result"] == "no_pending_request"
    stored = container.store.get(case.id)
    assert stored.state == "link_sent"
    assert stored.cancel_requested_at is None


def test_batal_and_ya_in_the_name_of_another_resident_cancel_nothing(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    # GIVEN a case whose resident wrote BATAL
    case = flow.to("link_sent")
    _command(run_task, case, "request_cancel", "command-batal-1")
    flow.queue.take()
    before = snapshot(container, case.id)
    # WHEN BATAL and YA arrive in the name of another resident
    for command in ("request_cancel", "confirm_cancel"):
        resp = _command(run_task, case, command, f"command-{command}-x", wa_id="6289999999999")
        # THEN they cancel nothing, change nothing, and queue nothing
        assert resp.status_code == 200
        assert resp.get_json()["result"] == "not_cancellable"
    assert container.store.get(case.id).state == "link_sent"
    assert snapshot(container, case.id) == before
    assert flow.queue.tasks == []
    # AND the resident's own YA still cancels his case
    resp = _command(run_task, case, "confirm_cancel", "command-ya-1")
    assert resp.get_json()["result"] == "cancelled"


def test_batal_past_the_point_of_cancelling_says_so(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    # GIVEN a signed case (no longer cancellable)
    case = flow.sign(flow.to("approved"))
    flow.queue.take()
    wa.sent.clear()
    # WHEN the resident's BATAL runs (twice)
    for _ in range(2):
        resp = _command(run_task, case, "request_cancel", "command-batal-1")
        assert resp.get_json()["result"] == "not_cancellable"
    # THEN the case is untouched and he is told once why
    stored = container.store.get(case.id)
    assert stored.state == "signed"
    assert stored.cancel_requested_at is None
    _run_all(run_task, flow.queue)
    assert len(wa.sent) == 1
    assert "tidak dapat dibatalkan" in wa.sent[0].body


def test_the_cancel_confirmation_is_still_sent_after_the_case_closed(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    case = flow.to("link_sent")
    wa.sent.clear()
    _command(run_task, case, "request_cancel", "command-batal-1")
    (question,) = [t for t in flow.queue.take() if t.kind == "notify"]
    assert deliver_task(run_task, question).get_json()["result"] == "sent"
    assert "Balas YA" in wa.sent[0].body
    _command(run_task, case, "confirm_cancel", "command-ya-1")
    (confirmation,) = [t for t in flow.queue.tasks if t.kind == "notify"]
    resp = deliver_task(run_task, confirmation)
    assert resp.status_code == 200
    assert resp.get_json()["result"] == "sent"
    assert len(wa.sent) == 2
    assert "dibatalkan" in wa.sent[1].body


# ---- media_store ------------------------------------------------------------------------------


def test_media_store_keeps_a_real_image_once(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    case = flow.greet()
    png = tiny_png()
    sha = wa.add_media("media-1", png, "image/png")
    payload = {
        "case_id": case.id,
        "media_id": "media-1",
        "wamid": "wamid.IMG",
        "sha256": sha,
        "filename": "",
        "caption": "foto KK",
    }
    first = run_task("media_store", payload, name="media-1")
    second = run_task("media_store", payload, name="media-1")
    assert first.status_code == second.status_code == 200
    docs = container.store.get(case.id).documents
    assert len(docs) == 1
    stored = container.blobs.get(docs[0].key)  # re-encoded like a guest-book upload
    assert docs[0].sha256 == hashlib.sha256(stored).hexdigest() != sha
    assert docs[0].source == "whatsapp"
    assert stored.startswith(b"\x89PNG")


def test_media_store_refuses_content_that_is_not_an_accepted_file(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    case = flow.greet()
    sha = wa.add_media("media-2", b"MZ\x90\x00 an executable", "image/jpeg")
    resp = run_task(
        "media_store",
        {"case_id": case.id, "media_id": "media-2", "wamid": "wamid.X", "sha256": sha},
    )
    assert resp.status_code == 200
    assert resp.get_json()["result"] == "rejected"
    assert container.store.get(case.id).documents == []
    assert "media_rejected" in [e.event for e in container.store.events(case.id)]


# ---- precheck ---------------------------------------------------------------------------------


def test_precheck_records_a_complete_submission(
    container: Container, flow: Flow, run_task: Callable[..., Any]
) -> None:
    case = flow.to("form_submitted")
    resp = run_task("precheck", {"case_id": case.id, "run": 1}, name="precheck-1")
    assert resp.status_code == 200
    assert resp.get_json()["result"]["complete"] is True
    assert container.store.get(case.id).precheck["complete"] is True


# ---- deliver ----------------------------------------------------------------------------------


def test_deliver_sends_the_signed_pdf_once_and_closes_the_case(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    run_task: Callable[..., Any],
    post_webhook: Callable[..., Any],
) -> None:
    # GIVEN a signed case and its deliver task
    case = flow.sign(flow.to("approved"))
    (task,) = [t for t in flow.queue.tasks if t.kind == "deliver"]
    wa.sent.clear()
    # WHEN the task is delivered twice
    first = deliver_task(run_task, task)
    second = deliver_task(run_task, task)
    # THEN the resident got the signed PDF once; the case waits for the phone's report
    assert first.status_code == second.status_code == 200
    assert len(wa.sent) == 1
    sent = wa.sent[0]
    assert sent.kind == "document"
    assert sent.data == container.blobs.get(case.signed.key)  # type: ignore[union-attr]
    # named by the document and the request, as the resident keeps it in their phone
    assert sent.filename == f"KTP-EL-{case.reg_no}.pdf"
    assert container.store.get(case.id).state == "signed"
    # WHEN WhatsApp reports it delivered to the resident's phone (twice, as Meta may)
    [doc] = [m for m in container.store.messages(case.id) if m.type == "document"]
    status = {
        "id": str(doc.data["wamid"]),
        "status": "delivered",
        "timestamp": "1764400000",
        "recipient_id": case.wa_id,
    }
    for _ in range(2):
        assert post_webhook(webhook_body(change([], statuses=[status]))).status_code == 200
    # THEN the case is delivered, once
    stored = container.store.get(case.id)
    assert stored.state == "delivered"
    assert [e.event for e in container.store.events(case.id)].count("deliver") == 1


def test_deliver_when_whatsapp_is_down_is_retried_and_nothing_recorded(
    container: Container, flow: Flow, wa: FakeWhatsApp, run_task: Callable[..., Any]
) -> None:
    case = flow.sign(flow.to("approved"))
    (task,) = [t for t in flow.queue.tasks if t.kind == "deliver"]
    before = snapshot(container, case.id)
    wa.sent.clear()
    wa.down = True
    resp = deliver_task(run_task, task)
    assert resp.status_code == 503
    assert wa.sent == []
    assert snapshot(container, case.id) == before


def test_batal_then_ya_on_whatsapp_end_with_a_cancelled_case_and_one_confirmation(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    post_webhook: Callable[..., Any],
    run_task: Callable[..., Any],
) -> None:
    from sapa.domain.texts import text
    from sapa.services.commands import CANCEL_CONFIRM_MINUTES
    from tests.functions.conftest import text_body

    # GIVEN a resident whose link was sent
    case = flow.to("link_sent")
    wa.sent.clear()
    # WHEN he writes "batal" (delivered twice by Meta) and every queued task runs twice
    for _ in range(2):
        assert post_webhook(text_body("wamid.BATAL", "batal")).status_code == 200
    _run_all(run_task, flow.queue)
    # THEN the case is still open and he was asked once to confirm
    assert container.store.get(case.id).state == "link_sent"
    question = text("wa_cancel_confirm", reg_no=case.reg_no, minutes=CANCEL_CONFIRM_MINUTES)
    assert [s.body for s in wa.sent] == [question]
    # WHEN he answers "ya" (delivered twice) and every queued task runs twice
    for _ in range(2):
        assert post_webhook(text_body("wamid.YA", "ya")).status_code == 200
    _run_all(run_task, flow.queue)
    # THEN the case is cancelled and he got exactly one confirmation
    assert container.store.get(case.id).state == "cancelled"
    assert [s.body for s in wa.sent] == [question, f"Permohonan {case.reg_no} telah dibatalkan."]
    assert [e.event for e in container.store.events(case.id)].count("cancel") == 1
