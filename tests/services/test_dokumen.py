"""DOKUMEN: a resident gets their signed document again, without opening a new request."""

from __future__ import annotations

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.services import intake
from tests.fakes import FakeWhatsApp, Sent
from tests.services.conftest import Runner, inbound
from tests.services.test_pipeline import (
    KADIS,
    act,
    to_approved,
)


def delivered_case(c: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock) -> str:
    case_id = to_approved(c, runner, wa, clock)
    act(c, case_id, KADIS, "sign")
    runner.drain()
    assert c.store.get(case_id).state == "delivered"
    return case_id


def documents(wa: FakeWhatsApp) -> list[Sent]:
    return [m for m in wa.sent if m.kind == "document"]


def test_dokumen_sends_the_signed_pdf_again_once_per_request(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = delivered_case(c, runner, wa, clock)
    assert len(documents(wa)) == 1
    # WHEN the resident, weeks later, writes DOKUMEN
    clock.advance(30 * 86400)
    ask = inbound("dokumen", wamid="wamid.DOK1", at=clock.now())
    intake.receive(c, [ask], [])
    intake.receive(c, [ask], [])  # Meta delivers it twice
    runner.drain()
    # THEN the same signed PDF goes out again, once, and no new request is opened
    assert len(documents(wa)) == 2
    assert documents(wa)[1].data == documents(wa)[0].data
    assert [k.id for k in c.store.list_cases()] == [case_id]
    assert c.store.find_open("730608", "6281234567890") is None


def test_a_revoked_document_is_not_sent_again(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = delivered_case(c, runner, wa, clock)
    act(c, case_id, KADIS, "revoke_document", reason="Data keliru")
    intake.receive(c, [inbound("DOKUMEN", wamid="wamid.DOK2", at=clock.now())], [])
    runner.drain()
    assert len(documents(wa)) == 1
    assert "dicabut" in wa.sent[-1].body


def test_the_case_is_delivered_only_when_the_phone_reports_the_document(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    from sapa.adapters.meta_webhook import StatusUpdate

    c = container
    runner.phone_reports_delivery = False  # this test plays Meta's statuses itself
    case_id = to_approved(c, runner, wa, clock)
    act(c, case_id, KADIS, "sign")
    runner.drain()
    [doc] = documents(wa)
    # WHEN the API accepted the document and WhatsApp says only "sent"
    intake.receive(c, [], [StatusUpdate(doc.wamid, "demo-730608", "sent", clock.now())])
    # THEN the case is signed, not yet delivered
    assert c.store.get(case_id).state == "signed"
    # AND a status for some other message changes nothing
    intake.receive(c, [], [StatusUpdate("wamid.OTHER", "demo-730608", "read", clock.now())])
    assert c.store.get(case_id).state == "signed"
    # WHEN the phone reports it read (delivered may never come: statuses arrive out of order)
    intake.receive(c, [], [StatusUpdate(doc.wamid, "demo-730608", "read", clock.now())])
    intake.receive(c, [], [StatusUpdate(doc.wamid, "demo-730608", "delivered", clock.now())])
    # THEN the case is delivered, once
    assert c.store.get(case_id).state == "delivered"
    assert [e.event for e in c.store.events(case_id)].count("deliver") == 1


def test_a_status_that_outruns_the_record_is_applied_by_the_sender(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    from sapa.adapters.meta_webhook import StatusUpdate

    c = container
    runner.phone_reports_delivery = False
    case_id = to_approved(c, runner, wa, clock)
    act(c, case_id, KADIS, "sign")
    runner.drain(kinds={"notify", "precheck", "siak_handoff", "esign_request"})
    # GIVEN Meta's "delivered" for the next document arrives before SAPA recorded sending it
    next_wamid = wa.next_wamid()
    intake.receive(c, [], [StatusUpdate(next_wamid, "demo-730608", "delivered", clock.now())])
    # WHEN the deliver task sends and records it
    runner.drain()
    # THEN the parked status is applied
    assert c.store.get(case_id).state == "delivered"
