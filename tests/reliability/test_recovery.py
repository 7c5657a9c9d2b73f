"""A sender that dies between WhatsApp accepting a message and recording it: the message's
status webhook records it (from the reference it was sent with), and the task's retry does
not send it again. The crash test meets this window only by chance; here it is made."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sapa.dev import demo
from sapa.dev.localserver import LocalStack
from sapa.dev.simulator import EXTENSION, WaSimulator
from sapa.services import notify
from sapa.settings import load_settings

pytestmark = pytest.mark.e2e
WA_ID = "6281355507777"


class Crash(BaseException):
    """The process dying: nothing after the send runs, no handler sees it."""


class DiesAfterSending:
    def __init__(self, real: Any) -> None:
        self.real = real

    def send_text(self, *args: Any, **kwargs: Any) -> str:
        self.real.send_text(*args, **kwargs)
        raise Crash

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    s = LocalStack(load_settings(sapa_data_dir=tmp_path / "var"))
    s.start(worker=False)  # the test runs the task itself
    yield s
    s.stop()


def test_a_message_whose_sender_died_is_recorded_from_its_status_and_not_sent_again(
    stack: LocalStack,
) -> None:
    c = stack.c
    sim: WaSimulator = stack.app.passthrough.extensions[EXTENSION]  # type: ignore[union-attr]
    # GIVEN a resident's greeting and its guest-book link task
    sent = requests.post(
        f"{stack.base_url}/dev/wa/api/send",
        json={"phone_number_id": demo.PHONE_NUMBER_ID, "from": WA_ID, "text": "Halo"},
        timeout=10,
    ).json()
    assert sent["webhook_status"] == 200
    case = c.store.find_open("730608", WA_ID)
    assert case is not None
    (task,) = c.queue.lease(1, 60)  # type: ignore[attr-defined]
    # WHEN the sender dies right after WhatsApp accepted the link
    real = c.whatsapp
    c.__dict__["whatsapp"] = DiesAfterSending(real)
    with pytest.raises(Crash):
        notify.notify(c, task.payload, task.name)
    c.__dict__["whatsapp"] = real
    assert not [m for m in c.store.messages(case.id) if m.direction == "out"]
    # THEN its status webhook records it, marked as recovered
    deadline = time.monotonic() + 20
    while not [m for m in c.store.messages(case.id) if m.direction == "out"]:
        assert time.monotonic() < deadline, "the status did not record the message"
        time.sleep(0.05)
    (recorded,) = [m for m in c.store.messages(case.id) if m.direction == "out"]
    assert recorded.data["recovered"] is True
    assert recorded.data["kind"] == "guestbook_link"
    # AND the task's retry finds it sent: the resident has the link once
    assert notify.notify(c, task.payload, task.name) == "already_sent"
    phone = sim.store.conversation(demo.PHONE_NUMBER_ID, WA_ID)
    outbound = [r for r in phone if r["direction"] == "out"]
    assert len(outbound) == 1 and "/guestbook/f/" in outbound[0]["text"]
    assert recorded.data["wamid"] == outbound[0]["wamid"]
