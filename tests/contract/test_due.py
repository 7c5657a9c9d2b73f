"""Contract of the CaseStore's due times (`sapa.domain.agenda`), run against every adapter: the
embedded SQLite store and the Firestore store on Google's emulator over a real socket.

A store given an agenda indexes, in the same write as the case, when the SLA sweep and the
retention sweep next have something to do with it and who holds its waiting step. These tests
check that `due_cases` finds a case exactly from that moment on, earliest first, page after
page; that a save moves the moment; that `claimed_by` follows the claim; that `recount` puts
right a moment computed under another configuration; and that `put_key` replaces a record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from sapa.domain.agenda import Agenda, Schedule
from sapa.domain.case import Actor, Case
from sapa.domain.sla import SlaClocks, parse_sweep
from sapa.domain.sop import default_sop
from sapa.ports import CaseStore
from tests.contract.conftest import MakeStore
from tests.contract.test_case_store import new_case

SOP = default_sop()
KEC = "730608"
MONDAY = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
LOKET = Actor(id="loket.sombaopu@sapa.test", role="loket", kecamatan=KEC)
OTHER = Actor(id="loket.lain@sapa.test", role="loket", kecamatan=KEC)
US = timedelta(microseconds=1)
SWEEP = parse_sweep(
    {
        "escalation": {"grace_minutes": 30},
        "residents": {
            "guestbook": {"state": "link_sent", "remind_after_hours": 24, "expire_after_days": 7}
        },
    }
)
SCHEDULE = Schedule(timedelta(days=90), timedelta(days=365), timedelta(days=3650))
# Every step on raw (wall-clock) time: the moments below are plain sums.
AGENDA = Agenda(SOP, SlaClocks(), SWEEP, SCHEDULE)

Build = Callable[[Agenda | None], CaseStore]


@pytest.fixture
def build(make_store: MakeStore) -> Build:
    return lambda agenda: make_store(agenda=(lambda: agenda) if agenda is not None else None)


@pytest.fixture
def store(build: Build) -> CaseStore:
    return build(AGENDA)


def link_sent(at: datetime = MONDAY) -> Case:
    case = new_case(kecamatan=KEC, at=at)
    case.apply(SOP, "send_link", Actor.system(), at + timedelta(seconds=2))
    return case


def submitted(at: datetime = MONDAY) -> Case:
    """The guest book in 60 s after the link: step 3 (the check, mutu baku 60 s) waits."""
    case = link_sent(at)
    case.service = "ktp_el"
    case.apply(SOP, "submit_form", Actor.applicant(case.wa_id), at + timedelta(seconds=62))
    return case


def ids(store: CaseStore, kind: str, now: datetime, **kw: object) -> list[str]:
    return [d.case.id for d in store.due_cases(kind, now, **kw)]  # type: ignore[arg-type]


# ---- when a case is due -----------------------------------------------------------------------


def test_a_waiting_step_is_due_just_past_its_mutu_baku(store: CaseStore) -> None:
    # GIVEN a guest book submitted at +62 s: the check (mutu baku 60 s) is ready then
    case = submitted()
    store.create(case)
    breach = MONDAY + timedelta(seconds=62 + 60) + US
    # THEN the case is not due a microsecond before its breach, and due from then on
    assert ids(store, "sla", breach - US) == []
    found = store.due_cases("sla", breach)
    assert [d.case.id for d in found] == [case.id]
    assert found[0].at == breach
    assert found[0].case.version == 1
    # AND it is not due for retention: it is open
    assert ids(store, "retention", MONDAY + timedelta(days=10_000)) == []


def test_recording_the_breach_moves_the_case_to_its_escalation(store: CaseStore) -> None:
    case = submitted()
    store.create(case)
    # WHEN the sweep records the breach of the check's run (its flag on the case)
    case.sla_flags["breach:2:periksa"] = "x"
    store.save(case)
    # THEN the case is next due at the escalation: the mutu baku and the 30 min grace
    escalation = MONDAY + timedelta(seconds=62 + 60 + 1800)
    assert ids(store, "sla", escalation - US) == []
    assert [d.at for d in store.due_cases("sla", escalation)] == [escalation]


def test_a_claim_measures_the_handling_time_and_names_the_holder(store: CaseStore) -> None:
    case = submitted()
    store.create(case)
    claimed = MONDAY + timedelta(seconds=100)
    case.claim(SOP, LOKET, claimed)
    store.save(case)
    # THEN the breach is due 60 s of handling after the claim
    (due,) = store.due_cases("sla", claimed + timedelta(days=1))
    assert due.at == claimed + timedelta(seconds=60) + US
    # AND the officer's claims hold it; nobody else's
    assert [k.id for k in store.claimed_by(LOKET.id)] == [case.id]
    assert store.claimed_by(OTHER.id) == []
    # WHEN the check is done, the next step (another role) waits unclaimed
    case.apply(SOP, "check", LOKET, claimed + timedelta(seconds=30))
    store.save(case)
    assert store.claimed_by(LOKET.id) == []


def test_a_resident_who_never_fills_the_guest_book_is_due_for_the_reminder(
    store: CaseStore,
) -> None:
    case = link_sent()
    store.create(case)
    sent = MONDAY + timedelta(seconds=2)
    # the lead-time target (24 h from the greeting) comes first, then the reminder
    lead = MONDAY + timedelta(seconds=SOP.lead_time_target_seconds) + US
    assert [d.at for d in store.due_cases("sla", sent + timedelta(days=30))] == [lead]
    case.sla_flags["lead_time"] = "x"
    store.save(case)
    assert [d.at for d in store.due_cases("sla", sent + timedelta(days=30))] == [
        sent + timedelta(hours=24)
    ]
    # WHEN the reminder is recorded, the expiry after 7 days is next
    case.sla_flags[f"reminder:link_sent:{sent.isoformat()}"] = "x"
    store.save(case)
    assert [d.at for d in store.due_cases("sla", sent + timedelta(days=30))] == [
        sent + timedelta(days=7)
    ]


def test_a_closed_case_is_due_for_each_retention_class_in_turn(store: CaseStore) -> None:
    case = link_sent()
    case.apply(SOP, "cancel", Actor.applicant(case.wa_id), MONDAY + timedelta(hours=1))
    store.create(case)
    closed = MONDAY + timedelta(hours=1)
    # THEN it is no longer due for the SLA sweep, and due for its documents after 90 days
    assert ids(store, "sla", closed + timedelta(days=10_000)) == []
    assert [d.at for d in store.due_cases("retention", closed + timedelta(days=400))] == [
        closed + timedelta(days=90)
    ]
    case.retention["documents"] = "x"
    store.save(case)
    assert [d.at for d in store.due_cases("retention", closed + timedelta(days=400))] == [
        closed + timedelta(days=365)
    ]
    case.retention["personal_data"] = "x"
    store.save(case)  # no signed document: nothing more is ever due
    assert ids(store, "retention", closed + timedelta(days=10_000)) == []


# ---- reading them -----------------------------------------------------------------------------


def test_due_cases_come_earliest_first_page_after_page(store: CaseStore) -> None:
    # GIVEN five cases submitted a minute apart, in shuffled order of creation
    made = {}
    for minute in (3, 0, 4, 1, 2):
        case = submitted(MONDAY + timedelta(minutes=minute))
        store.create(case)
        made[minute] = case.id
    now = MONDAY + timedelta(hours=1)
    expected = [made[m] for m in range(5)]
    assert ids(store, "sla", now) == expected
    # WHEN read two at a time from where the last page ended
    pages: list[str] = []
    after = None
    while True:
        page = store.due_cases("sla", now, limit=2, after=after)
        pages += [d.case.id for d in page]
        if len(page) < 2:
            break
        after = (page[-1].at, page[-1].case.id)
    assert pages == expected
    # AND only those due by `now`
    assert ids(store, "sla", MONDAY + timedelta(minutes=2, seconds=122) + US) == expected[:3]


def test_cases_due_at_the_same_moment_are_paged_by_id(store: CaseStore) -> None:
    cases = [submitted() for _ in range(3)]
    for case in cases:
        store.create(case)
    now = MONDAY + timedelta(hours=1)
    first = store.due_cases("sla", now, limit=1)
    rest = store.due_cases("sla", now, after=(first[0].at, first[0].case.id))
    assert [d.case.id for d in first + rest] == sorted(c.id for c in cases)


def test_claims_are_paged_by_id(store: CaseStore) -> None:
    held = []
    for _ in range(3):
        case = submitted()
        case.claim(SOP, LOKET, MONDAY + timedelta(seconds=70))
        store.create(case)
        held.append(case.id)
    first = store.claimed_by(LOKET.id, limit=2)
    rest = store.claimed_by(LOKET.id, after=first[-1].id)
    assert [k.id for k in first + rest] == sorted(held)


def test_recount_puts_right_a_moment_computed_under_another_configuration(
    build: Build,
) -> None:
    # GIVEN a case indexed with a 30-minute grace
    store = build(AGENDA)
    case = submitted()
    case.sla_flags["breach:2:periksa"] = "x"
    store.create(case)
    # WHEN the office changes the grace to 2 hours and the case is recounted
    longer = Agenda(SOP, SlaClocks(), parse_sweep({"escalation": {"grace_minutes": 120}}), SCHEDULE)
    changed = build(longer)
    later = MONDAY + timedelta(days=30)
    assert [d.at for d in changed.due_cases("sla", later)] == [
        MONDAY + timedelta(seconds=122 + 1800)
    ]
    changed.recount(case.id)
    # THEN its due time is the new one, and the case itself is untouched
    assert [d.at for d in changed.due_cases("sla", later)] == [
        MONDAY + timedelta(seconds=122 + 7200)
    ]
    assert changed.get(case.id).version == 1


def test_a_store_without_an_agenda_finds_nothing_due(build: Build) -> None:
    store = build(None)
    case = submitted()
    case.claim(SOP, LOKET, MONDAY + timedelta(seconds=70))
    store.create(case)
    assert ids(store, "sla", MONDAY + timedelta(days=365)) == []
    assert store.claimed_by(LOKET.id) == []


def test_an_unknown_kind_of_due_time_is_refused(store: CaseStore) -> None:
    with pytest.raises(ValueError, match="unknown due time"):
        store.due_cases("nope", MONDAY)


def test_put_key_replaces_what_claim_key_created(store: CaseStore) -> None:
    assert store.claim_key("agenda:test", value={"n": 1})
    store.put_key("agenda:test", {"n": 2})
    assert store.get_key("agenda:test") == {"n": 2}
    store.put_key("agenda:new", {"n": 3})
    assert store.get_key("agenda:new") == {"n": 3}
    assert not store.claim_key("agenda:new")


# ---- complaints --------------------------------------------------------------------------------


def test_open_complaints_are_found_by_their_deadline_until_closed(store: CaseStore) -> None:
    # GIVEN two cases, each with a complaint, the second's due first
    first, second = link_sent(), link_sent(MONDAY + timedelta(seconds=1))
    resident = Actor.applicant(first.wa_id)
    kabid = Actor(id="kabid@sapa.test", role="kabid")
    day = timedelta(days=1)
    first.file_complaint("lama", "whatsapp", MONDAY, MONDAY + 5 * day, resident)
    second.file_complaint("salah", "whatsapp", MONDAY, MONDAY + 2 * day, resident)
    for case in (first, second):
        store.create(case)
    # THEN the complaint worklist's read finds both, the earliest deadline first
    far = MONDAY + 365 * day
    assert ids(store, "complaint", far) == [second.id, first.id]
    assert ids(store, "complaint", MONDAY + 3 * day) == [second.id]
    # WHEN the second complaint is answered, it stays; once closed, it leaves
    case = store.get(second.id)
    case.answer_complaint("k1", kabid, "maaf", MONDAY + day)
    store.save(case)
    assert ids(store, "complaint", far) == [second.id, first.id]
    case = store.get(second.id)
    case.close_complaint("k1", kabid, "resolved", "", MONDAY + day)
    store.save(case)
    assert ids(store, "complaint", far) == [first.id]
