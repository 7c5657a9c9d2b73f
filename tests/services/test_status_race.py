"""A status webhook of a message SAPA sent but has not recorded yet. While the sender holds
the message the status is parked: a live sender records its real text (and the status), a
dead sender's retry records it under the reported wamid without sending again. Once nobody
holds it, the status records it at once with a placeholder. Nothing is sent twice, nothing
sent goes unrecorded."""

from __future__ import annotations

from typing import Any

import pytest

from sapa.adapters.clock import FixedClock
from sapa.adapters.meta_webhook import StatusUpdate
from sapa.bootstrap import Container
from sapa.domain.texts import text
from sapa.ports import Message, Task
from sapa.services import intake, messaging, signing
from sapa.services.messaging import SEND_HOLD_SECONDS
from tests.services.conftest import FakeWhatsApp, Runner, greet
from tests.services.test_pipeline import KADIS, act, to_approved


class Crash(BaseException):
    """The process dying: nothing after the send runs, no handler sees it."""


class Sent:
    """What the WhatsApp API took, with the reference it echoes in its statuses."""

    def __init__(self) -> None:
        self.wamid = ""
        self.reference = ""
        self.pnid = ""


class StatusBeforeReturn(FakeWhatsApp):
    """The API accepts the message and its status webhook is handled before the sender even
    has the API's answer (the webhook of another instance, faster than this one)."""

    def __init__(self, c: Container, status: str = "sent") -> None:
        super().__init__()
        self.c, self.status = c, status

    def send_text(
        self, phone_number_id: str, to: str, body: str, *, reference: str | None = None
    ) -> str:
        wamid = super().send_text(phone_number_id, to, body, reference=reference)
        status = StatusUpdate(
            wamid, phone_number_id, self.status, self.c.clock.now(), reference=reference or ""
        )
        intake.receive(self.c, [], [status])
        return wamid


class DiesAfterSending(FakeWhatsApp):
    def __init__(self) -> None:
        super().__init__()
        self.took = Sent()

    def _took(self, wamid: str, pnid: str, reference: str | None) -> None:
        # an id no other fake of the test hands out
        self.took.wamid = wamid.replace("wamid.", "wamid.DIED-")
        self.took.pnid, self.took.reference = pnid, reference or ""
        raise Crash

    def send_text(
        self, phone_number_id: str, to: str, body: str, *, reference: str | None = None
    ) -> str:
        self._took(super().send_text(phone_number_id, to, body), phone_number_id, reference)
        raise AssertionError("unreachable")

    def send_document(
        self,
        phone_number_id: str,
        to: str,
        data: bytes,
        filename: str,
        caption: str,
        *,
        reference: str | None = None,
    ) -> str:
        wamid = super().send_document(phone_number_id, to, data, filename, caption)
        self._took(wamid, phone_number_id, reference)
        raise AssertionError("unreachable")


def _link_task(c: Container) -> Task:
    """A greeting, and the task that sends the resident the guest-book link (not yet run)."""
    greet(c)
    queue: Any = c.queue
    (task,) = [t for t in queue.tasks if t.kind == "notify"]
    queue.tasks.remove(task)
    return task


def _link_sent_then_died(c: Container) -> tuple[Task, Sent]:
    """The guest-book link task run by a sender that dies right after WhatsApp took it."""
    task = _link_task(c)
    dying = DiesAfterSending()
    c.whatsapp = dying  # type: ignore[misc]
    with pytest.raises(Crash):
        messaging.notify(c, task.payload, task.name or "")
    return task, dying.took


def _outbound(c: Container, case_id: str) -> list[Message]:
    return [m for m in c.store.messages(case_id) if m.direction == "out"]


def _report(c: Container, took: Sent, status: str) -> None:
    intake.receive(
        c,
        [],
        [StatusUpdate(took.wamid, took.pnid, status, c.clock.now(), reference=took.reference)],
    )


def test_a_status_that_beats_a_live_sender_keeps_the_real_text(
    container: Container, runner: Runner
) -> None:
    c = container
    task = _link_task(c)
    # GIVEN an API whose status webhook is handled before the sender records the message
    c.whatsapp = StatusBeforeReturn(c, "delivered")  # type: ignore[misc]
    # WHEN the link is sent
    assert messaging.notify(c, task.payload, task.name or "") == "sent"
    # THEN the conversation holds the text the resident got, with the reported status
    (msg,) = _outbound(c, task.payload["case_id"])
    assert "/guestbook/f/" in msg.body and not msg.data.get("recovered")
    assert msg.status == "delivered"
    assert len(c.whatsapp.sent) == 1  # type: ignore[attr-defined]


def test_a_dead_senders_retry_records_the_reported_message_without_sending_it_again(
    container: Container, runner: Runner, clock: FixedClock
) -> None:
    c = container
    # GIVEN a sender that died right after WhatsApp accepted the link
    task, took = _link_sent_then_died(c)
    case_id = task.payload["case_id"]
    # WHEN its status comes while the dead sender's hold has not run out
    _report(c, took, "sent")
    assert _outbound(c, case_id) == []  # parked: the sender might still record it
    # AND the task is retried once the hold is over
    clock.advance(SEND_HOLD_SECONDS + 1)
    fresh = FakeWhatsApp()
    c.whatsapp = fresh  # type: ignore[misc]
    assert messaging.notify(c, task.payload, task.name or "") == "sent"
    # THEN the message is recorded with its real text and WhatsApp's id, and not sent again
    assert fresh.sent == []
    (msg,) = _outbound(c, case_id)
    assert msg.data["wamid"] == took.wamid and "/guestbook/f/" in msg.body
    assert msg.status == "sent" and not msg.data.get("recovered")
    assert messaging.notify(c, task.payload, task.name or "") == "already_sent"


def test_a_status_after_the_hold_records_a_placeholder_and_the_retry_sends_nothing(
    container: Container, runner: Runner, clock: FixedClock
) -> None:
    c = container
    task, took = _link_sent_then_died(c)
    case_id = task.payload["case_id"]
    # GIVEN the dead sender's hold ran out (its task may never run again)
    clock.advance(SEND_HOLD_SECONDS + 1)
    # WHEN a status of the message arrives
    _report(c, took, "read")
    # THEN the message is recorded at once, marked as recovered
    (msg,) = _outbound(c, case_id)
    assert msg.data["recovered"] is True and msg.data["wamid"] == took.wamid
    assert msg.body == text("wa_recovered_body") and msg.status == "read"
    # AND a retry of the task sends nothing
    fresh = FakeWhatsApp()
    c.whatsapp = fresh  # type: ignore[misc]
    assert messaging.notify(c, task.payload, task.name or "") == "already_sent"
    assert fresh.sent == []


def test_a_dead_deliverers_retry_records_the_document_and_delivers_the_case(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_approved(c, runner, wa, clock)
    act(c, case_id, KADIS, "sign")
    runner.drain(kinds={"esign_request"})
    queue: Any = c.queue
    (task,) = [t for t in queue.tasks if t.kind == "deliver"]
    queue.tasks.remove(task)
    dying = DiesAfterSending()
    c.whatsapp = dying  # type: ignore[misc]
    # GIVEN the signed document sent, its sender dead before recording it
    with pytest.raises(Crash):
        signing.deliver(c, task.payload, task.name or "")
    # WHEN the phone reports it delivered while the hold lasts, and the task is retried later
    _report(c, dying.took, "delivered")
    assert c.store.get(case_id).state != "delivered"
    clock.advance(SEND_HOLD_SECONDS + 1)
    fresh = FakeWhatsApp()
    c.whatsapp = fresh  # type: ignore[misc]
    assert signing.deliver(c, task.payload, task.name or "") == "sent"
    # THEN the document is recorded under WhatsApp's id with its caption, not sent twice,
    # and the case is delivered
    assert fresh.sent == []
    (doc,) = [m for m in _outbound(c, case_id) if m.type == "document"]
    assert doc.data["wamid"] == dying.took.wamid and doc.body.startswith(
        text("wa_delivered_caption", reg_no=c.store.get(case_id).reg_no)[:20]
    )
    assert c.store.get(case_id).state == "delivered"


def test_a_failure_reported_before_the_record_is_noted_for_staff(
    container: Container, runner: Runner, clock: FixedClock
) -> None:
    c = container
    task, took = _link_sent_then_died(c)
    case_id = task.payload["case_id"]
    # WHEN WhatsApp reports the unrecorded message failed, twice, while the hold lasts
    for _ in range(2):
        intake.receive(
            c,
            [],
            [
                StatusUpdate(
                    took.wamid,
                    took.pnid,
                    "failed",
                    clock.now(),
                    errors=("131026 Message undeliverable",),
                    reference=took.reference,
                )
            ],
        )
    # THEN staff see it on the case once, though the message is not recorded yet
    notes = [e for e in c.store.events(case_id) if e.event == "message_failed"]
    assert len(notes) == 1 and notes[0].detail["wamid"] == took.wamid
    # AND the retry records it, failed, without sending it again
    clock.advance(SEND_HOLD_SECONDS + 1)
    fresh = FakeWhatsApp()
    c.whatsapp = fresh  # type: ignore[misc]
    messaging.notify(c, task.payload, task.name or "")
    (msg,) = _outbound(c, case_id)
    assert fresh.sent == [] and msg.status == "failed"
