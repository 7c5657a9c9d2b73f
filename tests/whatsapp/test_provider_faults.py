"""The Graph API failing (the simulator's fault injection): a throttled or broken provider is
retried by the durable queue and the message goes out exactly once; a refusal is recorded."""

from __future__ import annotations

import pytest

from tests.whatsapp.conftest import Rig, wait_until


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_provider_fault_is_retried_by_the_queue_and_the_link_sent_once(
    rig: Rig, status: int
) -> None:
    # GIVEN the Graph API answers the next two calls with the fault, and the worker runs
    rig.faults(status, 2)
    rig.stack.start_worker()
    # WHEN a resident greets
    rig.say("Halo")
    case = rig.case_of()
    # THEN the queue redelivers the link task until the fault clears, and it is sent once
    wait_until(lambda: rig.messages(case.id, "out"), what="the link to be recorded")
    wait_until(lambda: rig.queue.stats().pending == 0, what="the queue to drain")
    assert rig.fault_state() == {"status": 0, "remaining": 0}  # both faulty answers were given
    (out,) = rig.received()
    assert out["type"] == "text" and "/guestbook/f/" in out["text"]
    (stored,) = rig.messages(case.id, "out")
    assert stored.data["wamid"] == out["wamid"]
    assert rig.c.store.get(case.id).state == "link_sent"
    assert [e.event for e in rig.events(case.id)].count("send_link") == 1
    assert rig.events(case.id, "message_not_sent") == []
    assert rig.queue.dead_letters() == []


def test_each_attempt_of_a_faulty_send_is_a_503_until_it_is_sent(rig: Rig) -> None:
    # GIVEN a greeted case, and a throttling provider for the next three calls
    rig.say("Halo")
    rig.faults(429, 3)
    # WHEN the queue delivers the link task
    deliveries = [d for d in rig.drain() if d.kind == "notify"]
    # THEN three attempts were refused with 503 (retry) and the fourth sent the link
    assert [(d.retry, d.status) for d in deliveries] == [(0, 503), (1, 503), (2, 503), (3, 200)]
    assert deliveries[-1].body["result"] == "sent"
    assert len(rig.received()) == 1


def test_a_provider_refusal_is_recorded_on_the_case_and_not_retried(rig: Rig) -> None:
    # GIVEN a greeted case, and the Graph API refusing the next call (a 400, not transient)
    rig.say("Halo")
    rig.faults(400, 1)
    # WHEN the link task runs
    deliveries = [d for d in rig.drain() if d.kind == "notify"]
    # THEN it ran once and was dropped (200 to the queue), with the refusal noted on the case
    assert [(d.status, d.body["status"]) for d in deliveries] == [(200, "permanent_error")]
    case = rig.case_of()
    (note,) = rig.events(case.id, "message_not_sent")
    assert note.detail["kind"] == "guestbook_link"
    assert "Simulated fault" in note.detail["reason"]
    assert rig.received() == []
    assert rig.queue.dead_letters() == []
