"""The satisfaction survey on the resident's side: one invitation once the signed document reached
their phone (text in the 24-hour window, the template outside it), never to a resident who asked
not to be surveyed, an erased case or with surveys off; the answer kept once, checked, masked
and counted in the `skm` rollup cells."""

from __future__ import annotations

import pytest

from sapa.adapters.clock import FixedClock
from sapa.adapters.meta_webhook import StatusUpdate
from sapa.bootstrap import Container
from sapa.domain import ikm
from sapa.domain.errors import Conflict, ValidationFailed
from sapa.domain.rollup import ALL, SURVEY
from sapa.domain.texts import text
from sapa.services import intake, survey
from sapa.services.unit import mutate
from tests.conftest import aged_token
from tests.fakes import FakeWhatsApp, Sent
from tests.services.conftest import Runner, inbound
from tests.services.test_pipeline import KADIS, act, to_approved

WA_ID = "6281234567890"


def invitations(wa: FakeWhatsApp) -> list[Sent]:
    return [
        m
        for m in wa.sent
        if "survei kepuasan" in m.body.lower() or m.body == "sapa_survei_kepuasan"
    ]


def signed_not_reported(c: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock) -> str:
    """A case whose signed document went out; the phone has not reported it yet."""
    runner.phone_reports_delivery = False
    case_id = to_approved(c, runner, wa, clock)
    act(c, case_id, KADIS, "sign")
    runner.drain()
    assert c.store.get(case_id).state != "delivered"
    return case_id


def report(c: Container, wa: FakeWhatsApp, status: str = "delivered") -> None:
    document = [m for m in wa.sent if m.kind == "document"][-1]
    intake.receive(c, [], [StatusUpdate(document.wamid, "demo-730608", status, c.clock.now())])


def test_one_invitation_once_the_phone_reports_the_document_however_often_it_does(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = signed_not_reported(c, runner, wa, clock)
    # GIVEN the signed document sent but not yet on the phone: no invitation
    runner.drain()
    assert invitations(wa) == []
    # WHEN the phone reports it delivered, then Meta repeats it and reports it read
    report(c, wa)
    runner.drain()
    report(c, wa)
    report(c, wa, "read")
    runner.drain()
    # THEN one invitation, as text (the window is open), with a survey link of this case
    (invite,) = invitations(wa)
    assert invite.kind == "buttons" and invite.to == WA_ID
    assert invite.params == ["Ajukan aduan", "Jangan tanya lagi"]
    token = invite.body.split("/s/")[1].split()[0]
    assert survey.resolve(c, token).id == case_id
    assert "TANPA SURVEI" in invite.body


def test_outside_the_24_hour_window_the_invitation_is_the_utility_template(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = signed_not_reported(c, runner, wa, clock)
    # GIVEN the phone was off for a day and a half
    clock.advance(36 * 3600)
    report(c, wa)
    runner.drain()
    (invite,) = invitations(wa)
    assert invite.kind == "template" and invite.body == "sapa_survei_kepuasan"
    reg_no, link = invite.params
    assert reg_no == c.store.get(case_id).reg_no
    assert survey.resolve(c, link.split("/s/")[1]).id == case_id


def test_a_resident_who_wrote_tanpa_survei_is_never_invited(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = signed_not_reported(c, runner, wa, clock)
    # GIVEN the resident asked not to be surveyed (typed in lower case, with a full stop)
    intake.receive(c, [inbound("tanpa survei.", wamid="wamid.no-survey", at=clock.now())], [])
    runner.drain()
    assert [m.body for m in wa.sent][-1] == text("wa_survey_declined")
    # WHEN the document is delivered
    report(c, wa)
    runner.drain()
    # THEN no invitation, and the case is delivered all the same
    assert invitations(wa) == []
    assert c.store.get(case_id).state == "delivered"


def test_tanpa_survei_after_the_case_closed_opens_no_new_request(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = signed_not_reported(c, runner, wa, clock)
    report(c, wa)
    runner.drain()
    before = len(c.store.list_cases(limit=50))
    intake.receive(c, [inbound("TANPA SURVEI", wamid="wamid.later", at=clock.now())], [])
    runner.drain()
    assert len(c.store.list_cases(limit=50)) == before
    assert c.store.find_open("730608", WA_ID) is None
    assert [m.body for m in wa.sent][-1] == text("wa_survey_declined")
    assert survey.opted_out(c, WA_ID)
    assert c.store.get(case_id).state == "delivered"


def test_no_invitation_to_an_erased_case_or_with_surveys_off(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = signed_not_reported(c, runner, wa, clock)
    report(c, wa)
    invite = [t for t in runner.queue.tasks if t.payload.get("kind") == survey.INVITE]
    assert len(invite) == 1
    # GIVEN the case's personal data was erased before the invitation went out
    now = clock.now()

    def erase(case):  # type: ignore[no-untyped-def]
        case.retention["personal_data"] = now.isoformat()

    mutate(c, case_id, erase)
    runner.drain()
    assert invitations(wa) == []
    # AND with surveys switched off, a delivered case is not invited either
    case = c.store.get(case_id)
    case.retention.clear()
    c.settings.survey_invite = False
    assert survey.not_invited(c, case) == "survey_off"


def answers(**over: str) -> dict[str, str]:
    fields = {code: "4" for code in ikm.CODES}
    fields.update(over)
    return fields


def test_the_answer_is_kept_once_masked_and_counted(
    container: Container, delivered: str, clock: FixedClock
) -> None:
    c = container
    case = c.store.get(delivered)
    token = survey.serializer(c).dumps(case.id)
    fields = answers(
        U3="2",
        U7="3",
        age="2",
        sex="2",
        text="Petugas ramah. Hubungi saya 0812-3456-7890, NIK 7306081205150003.",
    )
    survey.submit(c, token, fields)
    kept = c.store.get(delivered).survey
    assert kept is not None
    assert kept.scores == {**{code: 4 for code in ikm.CODES}, "U3": 2, "U7": 3}
    assert kept.profile == {"age": "20–29 tahun", "sex": "Perempuan"}
    assert "3456" not in kept.text and "7306081205150003" not in kept.text
    assert kept.text.startswith("Petugas ramah.")
    # no audit event carries the answer
    assert not [e for e in c.store.events(delivered) if "survey" in e.event]
    # a second answer changes nothing
    with pytest.raises(Conflict):
        survey.submit(c, token, answers(U1="1"))
    assert c.store.get(delivered).survey == kept
    # the answer is in the day's cells, and the index read from them is the regulation's
    day = clock.now().date()
    cells = c.store.rollup_total(SURVEY, day, day, kecamatan=ALL, service=ALL)
    assert cells["n"] == 1 and cells["u|U3|2"] == 1 and cells["p|sex|2"] == 1
    totals = {code: sum(s * cells.get(f"u|{code}|{s}", 0) for s in ikm.SCALE) for code in ikm.CODES}
    assert ikm.from_totals(cells["n"], totals) == ikm.compute([kept.scores])
    # the roles of the officers who did the case's steps got the answer; no officer is named
    roles = {k.split("|")[1] for k in cells if k.startswith("r|")}
    assert {"kadis", "loket"} <= roles
    assert not any("@" in k for k in cells)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (answers(U5=""), "U5"),
        (answers(U5="5"), "U5"),
        ({k: v for k, v in answers().items() if k != "U9"}, "U9"),
        (answers(age="9"), "age"),
        (answers(text="x" * 501), "text"),
    ],
)
def test_an_incomplete_or_forged_answer_is_refused_and_changes_nothing(
    container: Container, delivered: str, fields: dict[str, str], field: str
) -> None:
    c = container
    token = survey.serializer(c).dumps(delivered)
    with pytest.raises(ValidationFailed) as refused:
        survey.submit(c, token, fields)
    assert field in refused.value.fields
    assert c.store.get(delivered).survey is None


def test_a_tampered_expired_or_undelivered_link_is_refused(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock, delivered: str
) -> None:
    c = container
    token = survey.serializer(c).dumps(delivered)
    with pytest.raises(survey.SurveyLinkInvalid):
        survey.resolve(c, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    old = aged_token(survey.serializer(c), delivered, c.settings.survey_link_days * 86400 + 60)
    with pytest.raises(survey.SurveyLinkInvalid):
        survey.resolve(c, old)
    # a guest-book link is not a survey link
    from sapa.services.notify import link_serializer

    with pytest.raises(survey.SurveyLinkInvalid):
        survey.resolve(c, link_serializer(c).dumps(delivered))
    # a case still open has no survey
    intake.receive(c, [inbound("Halo", wa_id="6281111111111", wamid="wamid.other")], [])
    other = c.store.find_open("730608", "6281111111111")
    assert other is not None
    with pytest.raises(survey.SurveyLinkInvalid):
        survey.resolve(c, survey.serializer(c).dumps(other.id))
