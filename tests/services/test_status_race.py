"""A status webhook that arrives before its sender has recorded the message: the real text is
kept when the sender is alive, a placeholder recorded when it died (nothing sent twice)."""

from __future__ import annotations

import threading
import time

from sapa.adapters.meta_webhook import StatusUpdate
from sapa.bootstrap import Container
from sapa.services import intake, messaging
from sapa.services.unit import hold
from tests.services.conftest import Runner, greet

WAMID = "wamid.RACE1"


def _status(c: Container, case_id: str, message_id: str) -> StatusUpdate:
    case = c.store.get(case_id)
    return StatusUpdate(
        WAMID,
        case.phone_number_id,
        "sent",
        c.clock.now(),
        reference=messaging.send_reference(case, message_id, "text", "contacted"),
    )


def test_a_quick_status_waits_for_a_live_sender_and_keeps_the_real_text(
    container: Container, runner: Runner
) -> None:
    c = container
    case_id = greet(c)
    runner.drain()
    message_id = "out:notify-race"
    # GIVEN a sender that holds the message and records it 0.3 s after the status comes in
    assert hold(c, message_id, 60) is not None

    def sender() -> None:
        time.sleep(0.3)
        messaging.record_outbound(
            c,
            c.store.get(case_id),
            message_id,
            "text",
            "Isi yang sebenarnya",
            {"wamid": WAMID, "kind": "contacted"},
        )

    thread = threading.Thread(target=sender)
    thread.start()
    # WHEN the status arrives first
    intake.receive(c, [], [_status(c, case_id, message_id)])
    thread.join()
    # THEN the message holds the sender's text, with the status applied
    (msg,) = [m for m in c.store.messages(case_id) if m.id == message_id]
    assert msg.body == "Isi yang sebenarnya" and not msg.data.get("recovered")
    assert msg.status == "sent"


def test_a_status_of_a_dead_senders_message_records_it_after_the_grace(
    container: Container, runner: Runner
) -> None:
    c = container
    case_id = greet(c)
    runner.drain()
    message_id = "out:notify-dead"
    assert hold(c, message_id, 60) is not None  # taken by a sender that then died
    started = time.monotonic()
    intake.receive(c, [], [_status(c, case_id, message_id)])
    waited = time.monotonic() - started
    (msg,) = [m for m in c.store.messages(case_id) if m.id == message_id]
    assert msg.data["recovered"] is True and msg.data["wamid"] == WAMID
    assert intake.RECORD_GRACE_SECONDS <= waited < intake.RECORD_GRACE_SECONDS + 5
