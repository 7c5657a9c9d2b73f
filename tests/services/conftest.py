"""Service-test helpers: a WhatsApp port fake and a runner that plays the task queue."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from sapa.adapters.meta_webhook import InboundMessage
from sapa.bootstrap import Container
from sapa.domain.errors import TransientError
from sapa.ports import MediaContent, Task
from sapa.services import commands, guestbook, handoff, intake, media, notify, signing
from tests.conftest import RecordingQueue


@dataclass
class FakeWhatsApp:
    """Records what would go to residents; can be told to fail like an outage."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, bytes] = field(default_factory=dict)
    fail_next: int = 0

    def _maybe_fail(self) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise TransientError("WhatsApp API 503")

    def send_text(
        self, phone_number_id: str, to: str, body: str, *, reference: str | None = None
    ) -> str:
        self._maybe_fail()
        self.sent.append({"type": "text", "from": phone_number_id, "to": to, "body": body})
        return f"wamid.OUT{len(self.sent)}"

    def send_template(
        self,
        phone_number_id: str,
        to: str,
        name: str,
        language: str,
        params: list[str],
        *,
        reference: str | None = None,
    ) -> str:
        self._maybe_fail()
        self.sent.append(
            {"type": "template", "from": phone_number_id, "to": to, "name": name, "params": params}
        )
        return f"wamid.OUT{len(self.sent)}"

    def send_buttons(
        self,
        phone_number_id: str,
        to: str,
        body: str,
        buttons: list[tuple[str, str]],
        *,
        reference: str | None = None,
    ) -> str:
        self._maybe_fail()
        self.sent.append(
            {"type": "buttons", "from": phone_number_id, "to": to, "body": body, "buttons": buttons}
        )
        return f"wamid.OUT{len(self.sent)}"

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
        self._maybe_fail()
        self.sent.append(
            {
                "type": "document",
                "from": phone_number_id,
                "to": to,
                "filename": filename,
                "data": data,
                "caption": caption,
                "wamid": f"wamid.OUT{len(self.sent) + 1}",
            }
        )
        return f"wamid.OUT{len(self.sent)}"

    def fetch_media(self, media_id: str) -> MediaContent:
        self._maybe_fail()
        data = self.media[media_id]
        return MediaContent(data, "application/octet-stream", hashlib.sha256(data).hexdigest())


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

    def _report_delivered(self, sent: list[dict[str, Any]]) -> None:
        """Like Meta: documents that went out are reported delivered by the resident's phone."""
        from datetime import UTC, datetime

        from sapa.adapters.meta_webhook import StatusUpdate

        statuses = [
            StatusUpdate(m["wamid"], str(m["from"]), "delivered", datetime.now(UTC))
            for m in sent
            if m["type"] == "document"
        ]
        if statuses:
            intake.receive(self.c, [], statuses)


@pytest.fixture
def wa(container: Container) -> FakeWhatsApp:
    fake = FakeWhatsApp()
    container.whatsapp = fake  # type: ignore[misc]
    return fake


@pytest.fixture
def runner(container: Container, wa: FakeWhatsApp) -> Runner:
    return Runner(container)


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
