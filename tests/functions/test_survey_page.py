"""guestbook /s/<token>: the satisfaction survey behind the invitation's link. One light page,
errors in Bahasa Indonesia that change nothing, the answer kept once, and anonymous to staff:
no officer's view of the case shows what the resident answered."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from sapa.bootstrap import Container
from sapa.domain import ikm
from sapa.domain.case import Case
from sapa.domain.texts import text
from sapa.services import signing, survey
from tests.fakes import FakeWhatsApp
from tests.functions.conftest import Flow, Officer, snapshot

JSON = {"Accept": "application/json"}
SUGGESTION = "Antrean WhatsApp-nya cepat sekali, terima kasih Daeng Kulle"
PAGE_LIMIT = 15 * 1024  # bytes: one screen on a cheap phone over a weak connection


@pytest.fixture
def gb(client_for: Callable[[str], FlaskClient]) -> FlaskClient:
    return client_for("guestbook")


def delivered(flow: Flow, wa: FakeWhatsApp) -> Case:
    """A case whose signed document the resident's phone reported delivered."""
    case = flow.sign(flow.to("approved"))
    signing.deliver(flow.c, {"case_id": case.id}, "deliver-test")
    document = [m for m in wa.sent if m.kind == "document"][-1]
    assert signing.document_status(flow.c, case.id, document.wamid, "delivered")
    flow.queue.take()
    case = flow.c.store.get(case.id)
    assert case.state == "delivered"
    return case


def answers(**over: str) -> dict[str, str]:
    fields = {code: "3" for code in ikm.CODES}
    fields.update(over)
    return fields


def test_the_survey_is_one_light_page_of_nine_questions(
    container: Container, flow: Flow, wa: FakeWhatsApp, gb: FlaskClient
) -> None:
    case = delivered(flow, wa)
    resp = gb.get(f"/s/{survey.serializer(container).dumps(case.id)}")
    assert resp.status_code == 200
    assert len(resp.data) < PAGE_LIMIT, len(resp.data)
    page = resp.get_data(as_text=True)
    for question in ikm.load_survey().questions:
        assert question.text in page
        assert all(answer in page for answer in question.answers)
    assert page.count('type="radio"') == 9 * 4
    assert case.reg_no in page
    assert "Content-Security-Policy" in resp.headers


def test_a_missing_answer_is_named_in_indonesian_and_nothing_is_kept(
    container: Container, flow: Flow, wa: FakeWhatsApp, gb: FlaskClient
) -> None:
    case = delivered(flow, wa)
    token = survey.serializer(container).dumps(case.id)
    before = snapshot(container, case.id)
    fields = answers(text=SUGGESTION)
    del fields["U4"]
    resp = gb.post(f"/s/{token}", data=fields)
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert text("survey_answer_required") in page
    assert 'href="#U4"' in page
    assert SUGGESTION in page  # what the resident wrote is still there
    assert snapshot(container, case.id) == before
    resp = gb.post(f"/s/{token}", data={**fields, "U4": "7"}, headers=JSON)
    assert resp.status_code == 422 and "U4" in resp.get_json()["fields"]
    assert snapshot(container, case.id) == before


def test_the_answer_is_kept_once_and_anonymous_to_every_officer(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    gb: FlaskClient,
    login: Callable[[str], Officer],
) -> None:
    case = delivered(flow, wa)
    token = survey.serializer(container).dumps(case.id)
    resp = gb.post(f"/s/{token}", data=answers(U1="1", sex="1", text=SUGGESTION))
    assert resp.status_code == 200
    assert text("survey_thanks") in resp.get_data(as_text=True)
    # again, by the form or its link: refused, the first answer stands
    again = gb.post(f"/s/{token}", data=answers(U1="4"))
    assert again.status_code == 409
    assert gb.get(f"/s/{token}").status_code == 409
    kept = container.store.get(case.id).survey
    assert kept is not None and kept.scores["U1"] == 1
    # no officer's view of the case shows the answer
    for email in ("loket.sombaopu@sapa.test", "kabid@sapa.test", "kadis@sapa.test"):
        officer = login(email)
        page = officer.get(f"/cases/{case.id}", json=False).get_data(as_text=True)
        data = json.dumps(officer.case(case.id))
        for shown in (page, data):
            assert SUGGESTION not in shown
            assert "Daeng Kulle" not in shown
            assert '"survey"' not in shown and "survey_" not in shown
            assert not any(q.text in shown for q in ikm.load_survey().questions)


def test_a_bad_or_stale_link_gets_a_plain_410(
    container: Container, flow: Flow, wa: FakeWhatsApp, gb: FlaskClient
) -> None:
    resp = gb.get("/s/not-a-token")
    assert resp.status_code == 410
    assert text("survey_link_invalid") in resp.get_data(as_text=True)
    open_case = flow.to("link_sent")
    resp = gb.post(f"/s/{survey.serializer(container).dumps(open_case.id)}", data=answers())
    assert resp.status_code == 410
    assert container.store.get(open_case.id).survey is None


def test_a_complaint_from_the_survey_page_is_filed_once_and_acknowledged(
    container: Container, flow: Flow, wa: FakeWhatsApp, gb: FlaskClient
) -> None:
    case = delivered(flow, wa)
    token = survey.serializer(container).dumps(case.id)
    page = gb.get(f"/s/{token}").get_data(as_text=True)
    assert f'action="{token}/aduan"' in page
    resp = gb.post(f"/s/{token}/aduan", data={"text": "Dokumen terlambat dua minggu"})
    assert resp.status_code == 200 and "k1" in resp.get_data(as_text=True)
    again = gb.post(
        f"/s/{token}/aduan", data={"text": "Dokumen terlambat dua minggu"}, headers=JSON
    )
    assert again.get_json()["complaint"] == "k1"
    (k,) = container.store.get(case.id).complaints
    assert (k.channel, k.text) == ("survey", "Dokumen terlambat dua minggu")
    acks = [t for t in flow.queue.tasks if t.payload.get("kind") == "complaint_received"]
    assert len(acks) == 1
    empty = gb.post(f"/s/{token}/aduan", data={"text": "  "}, headers=JSON)
    assert empty.status_code == 422 and "text" in empty.get_json()["fields"]
    assert gb.post("/s/forged/aduan", data={"text": "x"}).status_code == 410
