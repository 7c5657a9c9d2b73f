"""DOKUMEN: a resident gets their signed document again, without opening a new request."""

from __future__ import annotations

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.pdf import simple_pdf
from sapa.services import intake
from tests.services.conftest import FakeWhatsApp, Runner, inbound
from tests.services.test_pipeline import KABID, KADIS, LOKET, OPERATOR, VERIF, act, to_submitted


def delivered_case(c: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock) -> str:
    case_id = to_submitted(c, runner, wa, clock)
    for staff, action in [(LOKET, "check"), (LOKET, "contact"), (VERIF, "forward")]:
        act(c, case_id, staff, action)
    act(c, case_id, OPERATOR, "enter_siak", siak_ref="S", draft_pdf=simple_pdf("KK", ["1"]))
    act(c, case_id, KABID, "approve")
    act(c, case_id, KADIS, "sign")
    runner.drain()
    assert c.store.get(case_id).state == "delivered"
    return case_id


def documents(wa: FakeWhatsApp) -> list[dict[str, object]]:
    return [m for m in wa.sent if m["type"] == "document"]


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
    assert documents(wa)[1]["data"] == documents(wa)[0]["data"]
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
    assert "dicabut" in str(wa.sent[-1]["body"])
