"""Service-test helpers: a runner that plays the task queue, and a greeting through intake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sapa.adapters.clock import FixedClock
from sapa.adapters.meta_webhook import InboundMessage
from sapa.bootstrap import Container
from sapa.ports import Task
from sapa.services import commands, guestbook, handoff, intake, media, notify, signing
from tests.conftest import RecordingQueue
from tests.fakes import FakeWhatsApp, Sent

HANDLERS: dict[str, Callable[[Container, dict[str, Any], str], Any]] = {
    "notify": notify.notify,
    "command": commands.command,
    "media_store": lambda c, p, n: media.media_store(c, p),
    "precheck": lambda c, p, n: guestbook.precheck(c, p),
    "siak_handoff": lambda c, p, n: handoff.siak_handoff(c, p),
    "esign_request": signing.esign_request,
    "deliver": signing.deliver,
}


class Runner:
    """Runs queued tasks through the services, the way the queue's worker would."""

    def __init__(self, c: Container) -> None:
        self.c = c
        self.done: list[Task] = []
        wa = c.__dict__.get("whatsapp")
        self.whatsapp: FakeWhatsApp | None = wa if isinstance(wa, FakeWhatsApp) else None
        self.phone_reports_delivery = True

    @property
    def queue(self) -> RecordingQueue:
        q = self.c.queue
        assert isinstance(q, RecordingQueue)
        return q

    def drain(self, *, kinds: set[str] | None = None) -> list[Task]:
        ran: list[Task] = []
        while True:
            batch = [t for t in self.queue.tasks if kinds is None or t.kind in kinds]
            if not batch:
                return ran
            for task in batch:
                self.queue.tasks.remove(task)
                before = len(self.whatsapp.sent) if self.whatsapp else 0
                HANDLERS[task.kind](self.c, task.payload, task.name or "")
                ran.append(task)
                self.done.append(task)
                if self.whatsapp is not None and self.phone_reports_delivery:
                    self._report_delivered(self.whatsapp.sent[before:])

    def _report_delivered(self, sent: list[Sent]) -> None:
        """Like Meta: documents that went out are reported delivered by the resident's phone."""
        from datetime import UTC, datetime

        from sapa.adapters.meta_webhook import StatusUpdate

        statuses = [
            StatusUpdate(m.wamid, m.phone_number_id, "delivered", datetime.now(UTC))
            for m in sent
            if m.kind == "document"
        ]
        if statuses:
            intake.receive(self.c, [], statuses)


@pytest.fixture
def runner(container: Container, wa: FakeWhatsApp) -> Runner:
    return Runner(container)


@pytest.fixture
def delivered(container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock) -> str:
    """A case whose signed document the resident's phone reported delivered (its survey
    invitation sent)."""
    from tests.services.test_survey import report, signed_not_reported

    case_id = signed_not_reported(container, runner, wa, clock)
    report(container, wa)
    runner.drain()
    return case_id


def inbound(
    text: str = "Halo",
    *,
    wa_id: str = "6281234567890",
    wamid: str = "wamid.A1",
    pnid: str = "demo-730608",
    type_: str = "text",
    media_id: str | None = None,
    at: Any = None,
) -> InboundMessage:
    from datetime import UTC, datetime

    return InboundMessage(
        wamid=wamid,
        phone_number_id=pnid,
        wa_id=wa_id,
        profile_name="Andi",
        at=at or datetime(2026, 11, 29, 1, 0, tzinfo=UTC),
        type=type_,
        text=text,
        media_id=media_id,
    )


def greet(c: Container, **kw: Any) -> str:
    intake.receive(c, [inbound(**kw)], [])
    case = c.store.find_open("730608", kw.get("wa_id", "6281234567890"))
    assert case is not None
    return case.id
