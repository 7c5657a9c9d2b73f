"""End to end over real HTTP: the demo path through all eight SOP steps, and a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from sapa.adapters.pdf import verify_signature
from sapa.dev import demo
from sapa.dev.driver import Office
from sapa.dev.localserver import LocalStack
from sapa.domain.rollup import ALL, SURVEY
from sapa.settings import load_settings

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    s = LocalStack(load_settings(sapa_data_dir=tmp_path / "var"))
    s.start()
    yield s
    s.stop()


def test_demo_path_delivers_a_validly_signed_document(stack: LocalStack) -> None:
    # GIVEN the whole embedded stack on a random port
    # WHEN a resident and each officer do their part over HTTP
    lines: list[str] = []
    tl = demo.run(stack.base_url, out=lines.append, office=Office.of(stack.c))

    # THEN the case is delivered and every one of the eight SOP steps was done by its role
    assert tl["state"] == "delivered"
    done = {s["number"]: s for s in tl["steps"] if s["done_at"]}
    assert sorted(done) == list(range(1, 9))
    assert done[3]["done_by"] == "loket.sombaopu@sapa.test"
    assert done[6]["done_by"] == "operator.siak@sapa.test"
    assert done[8]["done_by"] == "kadis@sapa.test"
    assert done[2]["done_by"] == "system"  # Somba Opu sends the guest-book link automatically
    assert done[1]["done_by"].startswith("pemohon 6281")  # masked, never the raw number
    assert "*" in done[1]["done_by"]
    assert tl["lead_time_seconds"] > 0
    assert not any(s["breached"] for s in tl["steps"])

    # AND the delivered PDF carries a PAdES signature that validates against the dev CA
    c = stack.c
    case_id = tl["case_id"]
    case = c.store.get(case_id)
    assert case.signed is not None and case.draft is not None
    signed = c.blobs.get(case.signed.key)
    report = verify_signature(signed, [c.signer.ca_certificate_pem])  # type: ignore[attr-defined]
    assert report.intact and report.valid and report.trusted
    assert report.covers_whole_document

    # AND the resident was invited to the satisfaction survey and answered it, once, counted
    # in the day's survey cells
    assert case.survey is not None and case.survey.scores["U1"] == 4
    day = case.survey.at.astimezone(ZoneInfo(c.region.timezone)).date()
    assert c.store.rollup_total(SURVEY, day, day, kecamatan=ALL, service=ALL)["n"] == 1

    # AND the QR's verification page shows the document without personal data
    sign_event = next(e for e in c.store.events(case_id) if e.event == "sign")
    page = requests.get(f"{stack.base_url}/verify/d/{sign_event.detail['document_id']}", timeout=10)
    assert page.status_code == 200
    assert case.reg_no in page.text
    assert demo.FORM["nik"] not in page.text
    assert "Andi Baso" not in page.text

    # AND the audit trail holds every transition, in order
    events = [e.event for e in c.store.events(case_id)]
    for expected in (
        "greet",
        "send_link",
        "submit_form",
        "check",
        "contact",
        "forward",
        "enter_siak",
        "approve",
        "sign",
        "deliver",
    ):
        assert expected in events
    assert events.index("sign") < events.index("deliver")


def test_tasks_queued_before_a_stop_are_delivered_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "var"
    # GIVEN a server whose worker is not running when a resident greets
    first = LocalStack(load_settings(sapa_data_dir=data))
    first.start(worker=False)
    sent = requests.post(
        f"{first.base_url}/dev/wa/api/send",
        json={
            "phone_number_id": "demo-730607",
            "from": "6285211112222",
            "name": "Besse",
            "text": "Halo",
        },
        timeout=10,
    ).json()
    assert sent["webhook_status"] == 200
    case = first.c.store.find_open("730607", "6285211112222")
    assert case is not None and case.state == "greeted"
    assert first.c.queue.pending() == 1  # type: ignore[attr-defined]
    # WHEN the server stops and a new one starts on the same data
    first.stop()
    second = LocalStack(load_settings(sapa_data_dir=data))
    second.start()
    try:
        # THEN the queued task is delivered: the link goes out and step 2 is done
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sent_out = any(m.direction == "out" for m in second.c.store.messages(case.id))
            if sent_out and second.c.queue.pending() == 0:  # type: ignore[attr-defined]
                break
            time.sleep(0.1)
        # read after the wait: a case read before the task ran would still say "greeted"
        case = second.c.store.get(case.id)
        assert case.state == "link_sent"
        assert second.c.queue.pending() == 0  # type: ignore[attr-defined]
        outbound = [m for m in second.c.store.messages(case.id) if m.direction == "out"]
        assert len(outbound) == 1 and "/guestbook/f/" in outbound[0].body
    finally:
        second.stop()


def test_healthz_and_unknown_paths(stack: LocalStack) -> None:
    assert requests.get(f"{stack.base_url}/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{stack.base_url}/staff/nope", timeout=5).status_code == 404
