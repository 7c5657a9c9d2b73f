"""staff: the complaint worklist (/complaints) and the complaints on the case page, through the
staff function: the heads and the admin see, answer and close; an officer of the steps sees the
complaint on the case but has no form for it and is refused if they post one."""

from __future__ import annotations

from collections.abc import Callable

from sapa.adapters.meta_webhook import InboundMessage
from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.services import intake, signing
from tests.fakes import FakeWhatsApp
from tests.functions.conftest import Flow, Officer

LOKET = "loket.sombaopu@sapa.test"
COMPLAINT = "Nama ayah di akta salah ketik"


def complained(flow: Flow, wa: FakeWhatsApp) -> Case:
    case = flow.sign(flow.to("approved"))
    signing.deliver(flow.c, {"case_id": case.id}, "deliver-test")
    document = [m for m in wa.sent if m.kind == "document"][-1]
    signing.document_status(flow.c, case.id, document.wamid, "delivered")
    m = InboundMessage(
        wamid="wamid.aduan",
        phone_number_id=case.phone_number_id,
        wa_id=case.wa_id,
        profile_name="Andi",
        at=flow.c.clock.now(),
        type="text",
        text=f"ADUAN {COMPLAINT}",
    )
    intake.receive(flow.c, [m], [])
    flow.queue.take()
    case = flow.c.store.get(case.id)
    assert len(case.complaints) == 1
    return case


def test_the_heads_see_answer_and_close_a_complaint(
    container: Container, flow: Flow, wa: FakeWhatsApp, login: Callable[[str], Officer]
) -> None:
    case = complained(flow, wa)
    kabid = login("kabid@sapa.test")
    listed = kabid.get("/complaints").get_json()["complaints"]
    assert [(k["reg_no"], k["complaint"], k["state"]) for k in listed] == [
        (case.reg_no, "k1", "open")
    ]
    page = kabid.get("/complaints", json=False).get_data(as_text=True)
    assert COMPLAINT in page and f"/cases/{case.id}#complaint-k1" in page
    html = kabid.get(f"/cases/{case.id}", json=False).get_data(as_text=True)
    assert COMPLAINT in html and "complaint_reply" in html and "complaint_close" in html
    resp = kabid.act(case, "complaint_reply", complaint="k1", message="Segera kami perbaiki.")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    resp = kabid.act(case, "complaint_close", complaint="k1", outcome="resolved")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert kabid.get("/complaints").get_json()["complaints"] == []
    html = kabid.get(f"/cases/{case.id}", json=False).get_data(as_text=True)
    assert "Segera kami perbaiki." in html and "ditindaklanjuti dan selesai" in html
    events = [e.event for e in container.store.events(case.id)]
    assert events[-2:] == ["complaint_replied", "complaint_closed"]
    # AND the quarter's report counts it, by outcome, in all and in its kecamatan and service
    rows = kabid.get("/skm?periode=2026-T4").get_json()["complaints"]
    everyone = {"filed": 1, "replied": 1, "late": 0, "closed": 1, "outcomes": [1, 0, 0]}
    assert {k: rows[0][k] for k in everyone} == everyone
    groups = {(r["group"], r["name"]) for r in rows[1:]}
    assert ("Kecamatan", "Somba Opu") in groups and len(groups) == 2


def test_an_officer_of_the_steps_may_not_handle_complaints(
    container: Container, flow: Flow, wa: FakeWhatsApp, login: Callable[[str], Officer]
) -> None:
    case = complained(flow, wa)
    loket = login(LOKET)
    assert loket.get("/complaints").status_code == 403
    html = loket.get(f"/cases/{case.id}", json=False).get_data(as_text=True)
    assert COMPLAINT in html and "complaint_reply" not in html
    refused = loket.act(case, "complaint_reply", complaint="k1", message="Tidak ada.")
    assert refused.status_code in (403, 409)
    assert container.store.get(case.id).complaints[0].replied_at is None
    kabid = login("kabid@sapa.test")
    assert (
        kabid.act(case, "complaint_reply", complaint="k1", message="x", csrf=False).status_code
        == 403
    )
    bad = kabid.act(case, "complaint_close", complaint="k1", outcome="")
    assert bad.status_code == 422 and "outcome" in bad.get_json()["fields"]
    assert container.store.get(case.id).complaints[0].closed_at is None
