"""The retention schedule: documents deleted, personal data anonymised, once, in the audit."""

from __future__ import annotations

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.services import guestbook, retention
from tests.fakes import FakeWhatsApp
from tests.services.conftest import Runner, greet
from tests.services.test_pipeline import LOKET, act, submission, to_submitted, token_from

DAY = 86400


def rejected_case(c: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock) -> str:
    case_id = to_submitted(c, runner, wa, clock)
    act(c, case_id, LOKET, "reject", reason="Bukan warga Gowa")
    runner.drain()
    return case_id


def test_nothing_happens_before_the_schedule_says_so(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = rejected_case(c, runner, wa, clock)
    clock.advance(89 * DAY)
    swept = retention.sweep(c)
    # (only the rate-limit windows of the resident's messages, long over, are gone)
    assert swept.pop("counters_forgotten") >= 1
    assert swept == {
        "documents_deleted": 0,
        "anonymised": 0,
        "signed_deleted": 0,
        "contacts_forgotten": 0,
    }
    assert retention.sweep(c)["counters_forgotten"] == 0
    case = c.store.get(case_id)
    assert case.documents and all(c.blobs.exists(d.key) for d in case.documents)


def test_documents_then_personal_data_go_each_once_and_the_audit_says_so(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = rejected_case(c, runner, wa, clock)
    keys = [d.key for d in c.store.get(case_id).documents]
    clock.advance(91 * DAY)
    first = retention.sweep(c)
    assert first["documents_deleted"] == len(keys) == 2 and first["contacts_forgotten"] == 0
    assert not any(c.blobs.exists(k) for k in keys)
    assert c.store.get(case_id).documents == []
    assert retention.sweep(c)["documents_deleted"] == 0  # once
    clock.advance(275 * DAY)
    swept = retention.sweep(c)
    assert swept["anonymised"] == 1
    # the number's last-message time went with it (silent for more than the 365 days)
    assert swept["contacts_forgotten"] == 1
    assert c.store.last_inbound("730608", "6281234567890") is None
    case = c.store.get(case_id)
    assert case.form["nik"] == "7306********0001" and case.form["name"] == "A*** B***"
    assert "address" not in case.form and "6281234567890" not in case.model_dump_json()
    # (the append-only audit trail keeps the resident's actor id: it is the legal record)
    assert all(m.body.startswith("[dihapus") for m in c.store.messages(case_id))
    assert retention.sweep(c)["anonymised"] == 0
    events = [e.event for e in c.store.events(case_id)]
    assert events.count("retention_documents") == 1
    assert events.count("retention_personal_data") == 1
    # what the SOP measures stays: the registration number, the steps, who did them
    assert case.reg_no and case.runs("periksa") and "reject" in events


def test_a_new_case_for_the_same_resident_is_not_touched(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    old = rejected_case(c, runner, wa, clock)
    clock.advance(400 * DAY)
    new = greet(c, wamid="wamid.LATER", at=clock.now())
    runner.drain()
    guestbook.submit(c, token_from(wa), submission())
    retention.sweep(c)
    assert c.store.get(old).retention.keys() >= {"documents", "personal_data"}
    fresh = c.store.get(new)
    assert fresh.retention == {} and fresh.form["nik"] == "7306081708900001"
    assert c.store.last_inbound("730608", "6281234567890") == clock.now()  # wrote just now
