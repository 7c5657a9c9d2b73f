"""A status webhook of a message SAPA sent but has not recorded yet: the status records it at
once with a placeholder text (so a dead sender's retry finds it sent), and a live sender puts
its real text in the placeholder's place. Nothing is sent twice, nothing sent goes
unrecorded, and the resident's conversation keeps what the resident got."""

from __future__ import annotations

from typing import Any

import pytest

from sapa.adapters.clock import FixedClock
from sapa.adapters.meta_webhook import StatusUpdate
from sapa.bootstrap import Container
from sapa.domain.texts import text
from sapa.ports import Message, Task
from sapa.services import intake, notify, signing
from sapa.services.notify import SEND_HOLD_SECONDS
from tests.fakes import FakeWhatsApp, Sent
from tests.services.conftest import Runner, greet
from tests.services.test_pipeline import KADIS, act, to_approved


class Crash(BaseException):
    """The process dying: nothing after the send runs, no handler sees it."""


class AfterSending(FakeWhatsApp):
    """Sends like the fake (under ids of its own, `ids`: no other fake hands them out), then
    does `after` with the text or document it took before the sender has the API's answer."""

    ids = "wamid.AFTER-"

    def __init__(self) -> None:
        super().__init__(prefix=self.ids)
        self.took = Sent("", "", "", "")

    def after(self) -> None: ...

    def answer(self, message: Sent) -> str:
        if message.kind in ("text", "document"):
            self.took = message
            self.after()
        return message.wamid


class StatusBeforeReturn(AfterSending):
    """The message's status webhook is handled before the sender even has the API's answer
    (the webhook reaching another instance, faster than this one)."""

    ids = "wamid.QUICK-"

    def __init__(self, c: Container, status: str = "sent") -> None:
        super().__init__()
        self.c, self.status = c, status

    def after(self) -> None:
        _report(self.c, self.took, self.status)


class DiesAfterSending(AfterSending):
    ids = "wamid.DIED-"

    def after(self) -> None:
        raise Crash


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
        notify.notify(c, task.payload, task.name or "")
    return task, dying.took


def _signed(c: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock) -> str:
    """A case signed by the head of office, its delivery task not yet run."""
    case_id = to_approved(c, runner, wa, clock)
    act(c, case_id, KADIS, "sign")
    runner.drain(kinds={"esign_request"})
    return case_id


def _take(c: Container, kind: str) -> list[Task]:
    queue: Any = c.queue
    tasks = [t for t in queue.tasks if t.kind == kind]
    for t in tasks:
        queue.tasks.remove(t)
    return tasks


def _outbound(c: Container, case_id: str) -> list[Message]:
    return [m for m in c.store.messages(case_id) if m.direction == "out"]


def _report(c: Container, took: Sent, status: str) -> None:
    intake.receive(
        c,
        [],
        [
            StatusUpdate(
                took.wamid,
                took.phone_number_id,
                status,
                c.clock.now(),
                reference=took.reference or "",
            )
        ],
    )


def test_a_status_that_beats_a_live_sender_keeps_the_real_text(
    container: Container, runner: Runner
) -> None:
    c = container
    task = _link_task(c)
    # GIVEN an API whose status webhook is handled before the sender records the message
    c.whatsapp = StatusBeforeReturn(c, "delivered")  # type: ignore[misc]
    # WHEN the link is sent
    assert notify.notify(c, task.payload, task.name or "") == "sent"
    # THEN the conversation holds the text the resident got, with the reported status
    (msg,) = _outbound(c, task.payload["case_id"])
    assert "/guestbook/f/" in msg.body and not msg.data.get("recovered")
    assert msg.status == "delivered"
    assert len(c.whatsapp.sent) == 1  # type: ignore[attr-defined]


def test_a_dead_senders_message_is_recorded_from_its_status_and_not_sent_again(
    container: Container, runner: Runner, clock: FixedClock
) -> None:
    c = container
    # GIVEN a sender that died right after WhatsApp accepted the link
    task, took = _link_sent_then_died(c)
    case_id = task.payload["case_id"]
    # WHEN its status comes (while the dead sender's hold lasts)
    _report(c, took, "read")
    # THEN the message is recorded at once, marked as recovered
    (msg,) = _outbound(c, case_id)
    assert msg.data["recovered"] is True and msg.data["wamid"] == took.wamid
    assert msg.body == text("wa_recovered_body") and msg.status == "read"
    # AND the task's retry, even while the dead sender's hold lasts, sends nothing
    fresh = FakeWhatsApp()
    c.whatsapp = fresh  # type: ignore[misc]
    assert notify.notify(c, task.payload, task.name or "") == "already_sent"
    clock.advance(SEND_HOLD_SECONDS + 1)
    assert notify.notify(c, task.payload, task.name or "") == "already_sent"
    assert fresh.sent == []


def test_a_live_deliverer_overtaken_by_the_phones_report_keeps_its_caption(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = _signed(c, runner, wa, clock)
    (task,) = _take(c, "deliver")
    # GIVEN an API whose "delivered" report is handled before the deliverer records the document
    c.whatsapp = StatusBeforeReturn(c, "delivered")  # type: ignore[misc]
    # WHEN the signed document is delivered
    assert signing.deliver(c, task.payload, task.name or "") == "sent"
    # THEN the case is delivered and the conversation holds the real caption, once
    case = c.store.get(case_id)
    assert case.state == "delivered"
    (doc,) = [m for m in _outbound(c, case_id) if m.type == "document"]
    assert doc.body == signing.delivery_caption(c, case)
    assert not doc.data.get("recovered") and doc.status == "delivered"
    assert len(c.whatsapp.sent) == 1  # type: ignore[attr-defined]


def test_a_dead_deliverers_document_delivers_the_case_from_its_status(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = _signed(c, runner, wa, clock)
    (task,) = _take(c, "deliver")
    dying = DiesAfterSending()
    c.whatsapp = dying  # type: ignore[misc]
    # GIVEN the signed document sent, its sender dead before recording it
    with pytest.raises(Crash):
        signing.deliver(c, task.payload, task.name or "")
    # WHEN the phone reports it delivered
    _report(c, dying.took, "delivered")
    # THEN the case is delivered, and the retry sends nothing
    assert c.store.get(case_id).state == "delivered"
    clock.advance(SEND_HOLD_SECONDS + 1)
    fresh = FakeWhatsApp()
    c.whatsapp = fresh  # type: ignore[misc]
    assert signing.deliver(c, task.payload, task.name or "") == "already_sent"
    assert fresh.sent == []
    (doc,) = [m for m in _outbound(c, case_id) if m.type == "document"]
    assert doc.data["wamid"] == dying.took.wamid and doc.data["recovered"] is True


def test_a_failure_reported_before_the_record_is_noted_for_staff(
    container: Container, runner: Runner, clock: FixedClock
) -> None:
    c = container
    task, took = _link_sent_then_died(c)
    case_id = task.payload["case_id"]
    # WHEN WhatsApp reports the unrecorded message failed, twice
    for _ in range(2):
        status = StatusUpdate(
            took.wamid,
            took.phone_number_id,
            "failed",
            clock.now(),
            errors=("131026 Message undeliverable",),
            reference=took.reference or "",
        )
        intake.receive(c, [], [status])
    # THEN staff see it on the case once, and the message is recorded as failed
    notes = [e for e in c.store.events(case_id) if e.event == "message_failed"]
    assert len(notes) == 1 and notes[0].detail["wamid"] == took.wamid
    (msg,) = _outbound(c, case_id)
    assert msg.status == "failed"
