"""The sla_sweep function as Cloud Scheduler calls it: POST with the task bearer token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from tests.conftest import RecordingQueue
from tests.fakes import FakeWhatsApp
from tests.functions.conftest import OTHER_WA_ID, Flow, snapshot

HOUR = 3600


def post(client_for: Callable[[str], Any], token: str | None) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return client_for("sla_sweep").post("/", headers=headers)


@pytest.mark.parametrize(
    "token", [None, "wrong-token", "", "t\u00f6ken"], ids=["missing", "wrong", "empty", "non-ascii"]
)
def test_the_sweep_without_the_bearer_token_is_refused(
    container: Container,
    flow: Flow,
    clock: FixedClock,
    client_for: Callable[[str], Any],
    token: str | None,
) -> None:
    # GIVEN a step long past its mutu baku
    case = flow.to("form_submitted")
    clock.advance(2 * HOUR)
    before = snapshot(container, case.id)
    # WHEN someone calls the sweep without the task token
    resp = post(client_for, token)
    # THEN it is refused and nothing is recorded
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "unauthorized"
    assert snapshot(container, case.id) == before


def test_the_sweep_returns_what_it_did_and_a_repeat_does_nothing(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    queue: RecordingQueue,
    clock: FixedClock,
    client_for: Callable[[str], Any],
) -> None:
    token = container.settings.secret("task_token")
    # GIVEN a resident who never filled the guest book and a check nobody took, a day ago
    waiting = flow.send_link(flow.greet(wa_id=OTHER_WA_ID))
    untaken = flow.to("form_submitted")
    clock.advance(25 * HOUR)
    sent = len(wa.sent)
    # WHEN Cloud Scheduler calls the sweep
    resp = post(client_for, token)
    # THEN it answers with the counts
    assert resp.status_code == 200
    assert resp.get_json() == {
        "status": "ok",
        "breaches": 1,
        "escalations": 1,
        "lead_time_breaches": 2,
        "reminders": 1,
        "expired": 0,
        "claims_returned": 0,
        "complaints_late": 0,
    }
    events = [e.event for e in container.store.events(untaken.id)]
    assert events.count("sla_breach") == events.count("sla_escalated") == 1
    (reminder,) = [t for t in queue.take() if t.kind == "notify"]
    assert reminder.payload == {"case_id": waiting.id, "kind": "reminder_guestbook", "params": {}}
    # AND called again it does nothing more
    again = post(client_for, token)
    assert again.status_code == 200
    counts = ("breaches", "escalations", "lead_time_breaches", "reminders", "expired")
    assert {k: v for k, v in again.get_json().items() if k != "status"} == dict.fromkeys(
        (*counts, "claims_returned", "complaints_late"), 0
    )
    assert queue.tasks == []
    assert len(wa.sent) == sent  # the reminder goes out through its notify task


def test_the_sweep_expires_and_tells_the_resident(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    clock: FixedClock,
    client_for: Callable[[str], Any],
) -> None:
    token = container.settings.secret("task_token")
    case = flow.to("link_sent")
    clock.advance(7 * 24 * HOUR)
    resp = post(client_for, token)
    assert resp.status_code == 200 and resp.get_json()["expired"] == 1
    assert container.store.get(case.id).state == "expired"
    notice = wa.sent[-1]
    assert (notice.kind, notice.body) == ("template", "sapa_permohonan_kedaluwarsa")
    assert post(client_for, token).get_json()["expired"] == 0
    assert [s.body for s in wa.sent].count("sapa_permohonan_kedaluwarsa") == 1
