"""Contract of the CaseStore port, run against every adapter of the `make_store` fixture
(conftest.py).

Written against `sapa.ports.CaseStore` only. Tests that need a backend-specific handle (the raw
SQLite file, separate OS processes on one file) check for that capability first and skip with a
visible reason on adapters that lack it. To add an adapter (Firestore, ...) add a factory to
`make_store`; `reopen()` builds a fresh adapter on the same persistent data (the "process
restart"). The Firestore run is marked `integration`: it needs java and Google's emulator jar
(skipped with the reason when either is missing).
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sapa.adapters.cloud.firestore_store import FirestoreCaseStore
from sapa.adapters.embedded.sqlite_db import SqliteDb
from sapa.adapters.embedded.sqlite_store import SqliteCaseStore
from sapa.domain.case import Actor, AuditEvent, Case, DocumentRef
from sapa.domain.errors import AlreadyExists, ConcurrentUpdate, NotFound, TransientError
from sapa.domain.sop import default_sop
from sapa.ports import CaseStore, Message
from tests.contract.conftest import MakeStore

Reopen = Callable[[], CaseStore]

KEC = "730608"
OTHER_KEC = "730601"
T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
WITA = timezone(timedelta(hours=8))  # Gowa's local time: same instants, other text


@pytest.fixture
def store(make_store: MakeStore) -> CaseStore:
    return make_store()


@pytest.fixture
def reopen(make_store: MakeStore) -> Reopen:
    return make_store


# ---- helpers ---------------------------------------------------------------------------------


def new_case(
    *, wa_id: str | None = None, kecamatan: str = KEC, at: datetime = T0, name: str = "Andi"
) -> Case:
    """A fresh case (state "greeted", one unsaved "greet" event), unique ids each call."""
    case_id = str(uuid.uuid4())
    return Case.open(
        default_sop(),
        case_id=case_id,
        reg_no=f"REG-{case_id[:8]}",
        kecamatan=kecamatan,
        phone_number_id=f"demo-{kecamatan}",
        wa_id=wa_id or f"62812{uuid.uuid4().int % 10**8:08d}",
        applicant_name=name,
        at=at,
    )


def cancel(case: Case, at: datetime) -> AuditEvent:
    """The applicant cancels: a terminal state."""
    return case.apply(default_sop(), "cancel", Actor.applicant(case.wa_id), at, reason="test")


def snapshot(case: Case) -> dict[str, Any]:
    """Everything the store persists (new_events is transient, version is the store's)."""
    return case.model_dump(exclude={"new_events"})


def message(case_id: str, mid: str, at: datetime, body: str = "", **kw: Any) -> Message:
    return Message(case_id=case_id, id=mid, direction="in", at=at, type="text", body=body, **kw)


def sqlite_db_of(store: CaseStore) -> SqliteDb:
    """Capability check: the raw SQLite database behind the adapter, or skip visibly."""
    db = getattr(store, "db", None)
    if not isinstance(db, SqliteDb):
        pytest.skip(
            f"{type(store).__name__} is not backed by SQLite: storage-level checks of the"
            " events table belong to that adapter's own tests"
        )
    return db


def aware(dt: datetime | None) -> bool:
    return dt is not None and dt.tzinfo is not None and dt.utcoffset() is not None


# ---- create / get ----------------------------------------------------------------------------


def test_create_then_get_round_trips_every_field(store: CaseStore) -> None:
    # GIVEN a case with every kind of field filled in, datetimes in two offsets
    case = new_case()
    doc = DocumentRef(
        key=f"cases/{case.id}/docs/ktp-abc.jpg",
        sha256="ab" * 32,
        size=12345,
        content_type="image/jpeg",
        filename="ktp.jpg",
        requirement="ktp",
        source="whatsapp",
        at=(T0 + timedelta(minutes=3)).astimezone(WITA),
    )
    case.service = "kk_baru"
    case.form = {"nik": "7306081234560001", "anak": [{"nama": "Budi", "umur": 3}], "ok": True}
    case.consent = {"given": True, "at": "2026-11-29T01:02:00+00:00"}
    case.documents.append(doc)
    case.precheck = {"score": 0.75, "missing": []}
    case.siak_ref = "SIAK-1"
    case.draft = doc.model_copy(update={"source": "siak_draft", "key": "cases/x/draft.pdf"})
    case.outbox = [{"kind": "notify", "payload": {"case_id": case.id}, "name": "n-1"}]
    events_before = [e.model_copy() for e in case.new_events]
    assert len(events_before) == 1

    # WHEN it is created and read back
    store.create(case)
    got = store.get(case.id)

    # THEN every persisted field is equal, datetimes still carry a timezone
    assert snapshot(got) == snapshot(case)
    assert got.version == 1
    assert got.new_events == []
    assert (
        len(got.steps) == 2 and got.steps[0].step == "sapa" and got.steps[1].step == "kirim_tautan"
    )
    assert got.documents == [doc]
    assert got.outbox == case.outbox
    assert got.form["anak"] == [{"nama": "Budi", "umur": 3}]
    for dt in (got.created_at, got.updated_at, got.documents[0].at, got.steps[0].done_at):
        assert aware(dt), dt
    assert got.created_at == T0
    assert got.documents[0].at == T0 + timedelta(minutes=3)


def test_get_unknown_id_raises_not_found(store: CaseStore) -> None:
    with pytest.raises(NotFound):
        store.get(str(uuid.uuid4()))


def test_create_persists_new_events_clears_them_and_sets_version_1(store: CaseStore) -> None:
    # GIVEN a new case with one recorded event and one more noted before the first write
    case = new_case()
    case.note(Actor.system(), "link_queued", T0, channel="wa")
    pending = [e.model_copy(deep=True) for e in case.new_events]
    assert [e.seq for e in pending] == [1, 2]

    # WHEN it is created
    store.create(case)

    # THEN the events are stored in order, the in-memory list is cleared, version is 1
    assert case.new_events == []
    assert case.version == 1
    assert store.events(case.id) == pending
    assert store.get(case.id).version == 1


def test_create_same_id_twice_raises_and_changes_nothing(store: CaseStore) -> None:
    case = new_case()
    store.create(case)
    twin = case.model_copy(deep=True, update={"applicant_name": "Someone else", "version": 0})
    twin.wa_id = "628999"
    twin.new_events = [e.model_copy(update={"event": "bogus"}) for e in store.events(case.id)]

    with pytest.raises(AlreadyExists):
        store.create(twin)

    assert store.get(case.id).applicant_name == "Andi"
    assert [e.event for e in store.events(case.id)] == ["greet"]


# ---- save and optimistic concurrency ---------------------------------------------------------


def test_save_bumps_version_appends_events_in_order_and_clears_them(store: CaseStore) -> None:
    # GIVEN a stored case
    case = new_case()
    store.create(case)
    loaded = store.get(case.id)

    # WHEN the system sends the link and notes two things, then saves
    t1 = T0 + timedelta(seconds=5)
    loaded.apply(default_sop(), "send_link", Actor.system(), t1)
    loaded.note(Actor.system(), "message_sent", t1, wamid="wamid.1")
    loaded.note(Actor.system(), "message_read", t1 + timedelta(seconds=1), wamid="wamid.1")
    pending = [e.model_copy(deep=True) for e in loaded.new_events]
    store.save(loaded)

    # THEN the version went 1 → 2, the events were appended after the first, in order
    assert loaded.version == 2
    assert loaded.new_events == []
    got = store.get(case.id)
    assert got.version == 2
    assert got.state == "link_sent"
    assert snapshot(got) == snapshot(loaded)
    events = store.events(case.id)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert [e.event for e in events] == ["greet", "send_link", "message_sent", "message_read"]
    assert events[1:] == pending

    # AND a second save goes 2 → 3
    got.note(Actor.system(), "again", t1 + timedelta(seconds=2))
    store.save(got)
    assert got.version == 3 and store.get(case.id).version == 3
    assert len(store.events(case.id)) == 5


def test_stale_save_raises_concurrent_update_and_first_save_wins(store: CaseStore) -> None:
    # GIVEN two copies of the same stored case
    case = new_case()
    store.create(case)
    first, second = store.get(case.id), store.get(case.id)

    # WHEN both are modified and saved, first one then the other
    first.form["who"] = "first"
    first.note(Actor.system(), "first_edit", T0 + timedelta(seconds=1))
    store.save(first)
    second.form["who"] = "second"
    second.applicant_name = "Overwritten"
    second.note(Actor.system(), "second_edit", T0 + timedelta(seconds=2))

    # THEN the second save is refused
    with pytest.raises(ConcurrentUpdate):
        store.save(second)

    # AND the stored case and trail are exactly the first save's
    stored = store.get(case.id)
    assert stored.version == 2
    assert snapshot(stored) == snapshot(first)
    assert stored.form == {"who": "first"} and stored.applicant_name == "Andi"
    assert [e.event for e in store.events(case.id)] == ["greet", "first_edit"]


def test_failed_save_that_reuses_an_event_seq_changes_nothing(store: CaseStore) -> None:
    # GIVEN a stored case with one event
    case = new_case()
    store.create(case)
    original = store.events(case.id)
    loaded = store.get(case.id)

    # WHEN a save tries to write an event with an existing seq (an attempt to rewrite history)
    loaded.form["x"] = 1
    loaded.new_events = [original[0].model_copy(update={"event": "forged", "actor_id": "evil"})]
    with pytest.raises(Exception):  # noqa: B017 - any error; the contract is "nothing changed"
        store.save(loaded)

    # THEN neither the event nor the case changed: the write was atomic
    assert store.events(case.id) == original
    stored = store.get(case.id)
    assert stored.version == 1 and stored.form == {}


# ---- audit events ----------------------------------------------------------------------------


def test_events_are_all_returned_in_seq_order_and_copies_cannot_change_them(
    store: CaseStore,
) -> None:
    # GIVEN a case saved several times with several events each
    case = new_case()
    store.create(case)
    for i in range(5):
        c = store.get(case.id)
        for j in range(3):
            c.note(Actor.system(), f"e{i}-{j}", T0 + timedelta(seconds=10 * i + j), n=i * 3 + j)
        store.save(c)

    # WHEN the trail is read
    events = store.events(case.id)

    # THEN it holds all 16 events in seq order with their content
    assert [e.seq for e in events] == list(range(1, 17))
    assert [e.event for e in events[1:]] == [f"e{i}-{j}" for i in range(5) for j in range(3)]
    assert [e.detail["n"] for e in events[1:]] == list(range(15))
    assert all(e.case_id == case.id and aware(e.at) for e in events)
    assert events[0].from_state == "" and events[0].to_state == "greeted"

    # AND tampering with what was returned does not touch the stored trail
    events[0].detail["reg_no"] = "forged"
    events.clear()
    again = store.events(case.id)
    assert len(again) == 16 and again[0].detail == {"reg_no": case.reg_no}
    assert store.events(str(uuid.uuid4())) == []


def test_sqlite_events_table_rejects_update_and_delete(store: CaseStore) -> None:
    """SQLite-specific: the append-only rule is enforced by the database itself."""
    db = sqlite_db_of(store)
    case = new_case()
    store.create(case)
    before = store.events(case.id)
    conn = db.conn()

    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE events SET doc = '{}' WHERE case_id = ?", (case.id,))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM events WHERE case_id = ?", (case.id,))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM events")

    assert store.events(case.id) == before


# ---- one open case per applicant and kecamatan -----------------------------------------------


def test_at_most_one_open_case_per_kecamatan_and_applicant(store: CaseStore) -> None:
    # GIVEN an open case of an applicant in a kecamatan
    first = new_case(wa_id="6281200000001")
    store.create(first)

    # WHEN the same applicant gets a second case in the same kecamatan
    second = new_case(wa_id="6281200000001", at=T0 + timedelta(minutes=1))
    with pytest.raises(AlreadyExists):
        store.create(second)

    # THEN nothing of the second was written
    with pytest.raises(NotFound):
        store.get(second.id)
    assert store.events(second.id) == []
    assert store.find_open(KEC, "6281200000001").id == first.id  # type: ignore[union-attr]

    # AND the same applicant may have an open case in another kecamatan
    elsewhere = new_case(wa_id="6281200000001", kecamatan=OTHER_KEC)
    store.create(elsewhere)

    # AND once the first case is terminal, a new one in the same kecamatan may be created
    loaded = store.get(first.id)
    cancel(loaded, T0 + timedelta(minutes=2))
    store.save(loaded)
    third = new_case(wa_id="6281200000001", at=T0 + timedelta(minutes=3))
    store.create(third)
    assert store.get(third.id).state == "greeted"
    assert store.get(first.id).state == "cancelled"


def test_find_open(store: CaseStore) -> None:
    case = new_case(wa_id="6281200000002")
    assert store.find_open(KEC, "6281200000002") is None
    store.create(case)

    found = store.find_open(KEC, "6281200000002")
    assert found is not None and found.id == case.id and found.version == 1
    assert store.find_open(OTHER_KEC, "6281200000002") is None
    assert store.find_open(KEC, "6281200000003") is None

    loaded = store.get(case.id)
    cancel(loaded, T0 + timedelta(minutes=1))
    store.save(loaded)
    assert store.find_open(KEC, "6281200000002") is None


# ---- list_cases ------------------------------------------------------------------------------


def test_list_cases_filters_by_state_and_kecamatan_ordered_by_updated_at(
    store: CaseStore,
) -> None:
    # GIVEN cases created out of time order in two kecamatan, one of them cancelled later
    c3 = new_case(at=T0 + timedelta(minutes=3))
    c1 = new_case(at=T0 + timedelta(minutes=1))
    other = new_case(at=T0 + timedelta(minutes=2), kecamatan=OTHER_KEC)
    c0 = new_case(at=T0)
    for c in (c3, c1, other, c0):
        store.create(c)
    loaded = store.get(c0.id)
    cancel(loaded, T0 + timedelta(minutes=10))  # c0 is now the most recently updated
    store.save(loaded)

    def ids(cases: list[Case]) -> list[str]:
        return [c.id for c in cases]

    # THEN: everything, oldest update first
    assert ids(store.list_cases()) == [c1.id, other.id, c3.id, c0.id]
    # by kecamatan
    assert ids(store.list_cases(kecamatan=KEC)) == [c1.id, c3.id, c0.id]
    assert ids(store.list_cases(kecamatan=OTHER_KEC)) == [other.id]
    # by state(s), any iterable
    assert ids(store.list_cases(states=["greeted"])) == [c1.id, other.id, c3.id]
    assert ids(store.list_cases(states=("cancelled",))) == [c0.id]
    assert ids(store.list_cases(states={"cancelled", "greeted"}, kecamatan=KEC)) == [
        c1.id,
        c3.id,
        c0.id,
    ]
    assert ids(store.list_cases(states=iter(["greeted"]), kecamatan=OTHER_KEC)) == [other.id]
    assert store.list_cases(states=["delivered"]) == []
    assert store.list_cases(states=[]) == []
    # limit keeps the oldest
    assert ids(store.list_cases(limit=2)) == [c1.id, other.id]
    # the cases come back whole, with their version
    listed = {c.id: c for c in store.list_cases()}
    assert listed[c0.id].version == 2 and listed[c0.id].state == "cancelled"
    assert snapshot(listed[c3.id]) == snapshot(store.get(c3.id))


def test_list_cases_updated_since_keeps_recent_updates_in_any_offset(store: CaseStore) -> None:
    # GIVEN cases last updated at T0, T0+1 h (written in WITA) and T0+2 h
    old = new_case(at=T0)
    edge = new_case(at=(T0 + timedelta(hours=1)).astimezone(WITA))
    recent = new_case(at=T0 + timedelta(hours=2), kecamatan=OTHER_KEC)
    for c in (recent, old, edge):
        store.create(c)

    # THEN updated_since is inclusive, compares instants, and combines with the other filters
    since = (T0 + timedelta(hours=1)).astimezone(UTC)
    assert [c.id for c in store.list_cases(updated_since=since)] == [edge.id, recent.id]
    assert [c.id for c in store.list_cases(updated_since=since, kecamatan=KEC)] == [edge.id]
    assert [c.id for c in store.list_cases(updated_since=since, states=["greeted"], limit=1)] == [
        edge.id
    ]
    assert store.list_cases(updated_since=T0 + timedelta(days=1)) == []
    # newest first, and the limit then keeps the newest
    assert [c.id for c in store.list_cases(newest_first=True)] == [recent.id, edge.id, old.id]
    assert [c.id for c in store.list_cases(newest_first=True, limit=1)] == [recent.id]
    assert [c.id for c in store.list_cases(states=["greeted"], newest_first=True, limit=2)] == [
        recent.id,
        edge.id,
    ]


def test_list_cases_orders_by_instant_not_by_offset_text(store: CaseStore) -> None:
    # GIVEN a case updated at 04:00 UTC written in WITA (12:00+08:00) and one at 05:00 UTC
    early = new_case(at=datetime(2026, 11, 29, 12, 0, tzinfo=WITA))
    late = new_case(at=datetime(2026, 11, 29, 5, 0, tzinfo=UTC))
    store.create(late)
    store.create(early)

    # THEN the earlier instant comes first
    assert [c.id for c in store.list_cases()] == [early.id, late.id]


# ---- conversation ----------------------------------------------------------------------------


def test_add_message_is_idempotent_by_id_and_messages_are_in_time_order(
    store: CaseStore,
) -> None:
    case = new_case()
    store.create(case)
    other = new_case()
    store.create(other)
    m2 = message(case.id, "wamid.2", T0 + timedelta(seconds=2), "kedua")
    m1 = message(case.id, "wamid.1", T0 + timedelta(seconds=1), "pertama", data={"k": [1, 2]})
    m3 = Message(
        case_id=case.id,
        id="local-3",
        direction="out",
        at=(T0 + timedelta(seconds=3)).astimezone(WITA),
        type="document",
        body="surat",
        actor_id="officer@x",
        data={"blob": "cases/x.pdf"},
    )
    assert not store.message_exists("wamid.1")

    # WHEN added out of order (and one added twice, with other content the second time)
    assert store.add_message(m2) is True
    assert store.add_message(m3) is True
    assert store.add_message(m1) is True
    assert store.add_message(message(other.id, "wamid.x", T0, "lain")) is True
    assert store.add_message(message(case.id, "wamid.2", T0, "GANTI")) is False
    assert store.add_message(m2) is False

    # THEN the conversation is in time order, the duplicate changed nothing
    got = store.messages(case.id)
    assert got == [m1, m2, m3]
    assert got[1].body == "kedua"
    assert got[0].data == {"k": [1, 2]}
    assert all(aware(m.at) for m in got)
    assert store.message_exists("wamid.1") and store.message_exists("local-3")
    assert not store.message_exists("wamid.nope")
    assert [m.id for m in store.messages(other.id)] == ["wamid.x"]
    assert store.messages(str(uuid.uuid4())) == []


def test_messages_order_by_instant_not_by_offset_text(store: CaseStore) -> None:
    case = new_case()
    store.create(case)
    early = message(case.id, "early", datetime(2026, 11, 29, 12, 0, tzinfo=WITA))  # 04:00Z
    late = message(case.id, "late", datetime(2026, 11, 29, 5, 0, tzinfo=UTC))
    store.add_message(late)
    store.add_message(early)

    assert [m.id for m in store.messages(case.id)] == ["early", "late"]


def test_complete_recovered_replaces_only_a_placeholder_of_the_same_send(
    store: CaseStore,
) -> None:
    # GIVEN a message recorded from its status alone (placeholder text) and an ordinary one
    case = new_case()
    store.create(case)

    def out(id_: str, body: str, at: datetime, **data: Any) -> Message:
        return Message(
            case_id=case.id, id=id_, direction="out", at=at, type="text", body=body, data=data
        )

    placeholder = out("out:link", "(terkirim)", T0, wamid="wamid.L1", kind="x", recovered=True)
    assert store.add_message(placeholder) is True
    assert store.set_message_status("wamid.L1", "delivered", T0) == case.id
    plain = out("out:other", "asli", T0 + timedelta(seconds=1), wamid="wamid.O1")
    assert store.add_message(plain) is True
    real = out("out:link", "Isi sebenarnya", T0 + timedelta(seconds=5), wamid="wamid.L1", kind="x")

    # WHEN another send's record, a missing id or an ordinary message are offered
    assert store.complete_recovered(replace(real, data={"wamid": "wamid.L2"})) is False
    assert store.complete_recovered(replace(real, id="out:none")) is False
    assert store.complete_recovered(replace(plain, body="GANTI")) is False
    # AND the real record of the same send
    assert store.complete_recovered(real) is True

    # THEN only the placeholder took the real text and data, keeping its time and status
    got = {m.id: m for m in store.messages(case.id)}
    assert got["out:link"].body == "Isi sebenarnya"
    assert got["out:link"].data == {"wamid": "wamid.L1", "kind": "x"}
    assert got["out:link"].at == T0 and got["out:link"].status == "delivered"
    assert got["out:other"].body == "asli"
    assert store.complete_recovered(real) is False  # no longer a placeholder


def test_set_message_status_never_goes_back_and_failed_wins(store: CaseStore) -> None:
    # GIVEN an outbound message whose provider id (wamid) differs from its local id
    case = new_case()
    store.create(case)
    out = Message(
        case_id=case.id,
        id="local-out-1",
        direction="out",
        at=T0,
        type="text",
        body="halo",
        data={"wamid": "wamid.OUT1"},
        status="sent",
    )
    assert store.add_message(out) is True

    # WHEN statuses arrive out of order
    assert store.set_message_status("wamid.OUT1", "read", T0 + timedelta(seconds=2)) == case.id
    assert store.set_message_status("wamid.OUT1", "delivered", T0 + timedelta(seconds=1)) == (
        case.id
    )

    # THEN the later status stays; failed replaces any; unknown ids and statuses change nothing
    assert store.messages(case.id)[0].status == "read"
    assert store.set_message_status("wamid.nope", "read", T0) is None
    assert store.set_message_status("wamid.OUT1", "bogus", T0) is None
    assert store.messages(case.id)[0].status == "read"
    assert store.set_message_status("wamid.OUT1", "failed", T0 + timedelta(seconds=3)) == case.id
    assert store.messages(case.id)[0].status == "failed"
    assert store.set_message_status("local-out-1", "read", T0) is None  # not a provider id


def test_redact_messages_blanks_text_and_media_once(store: CaseStore) -> None:
    case = new_case()
    store.create(case)
    other = new_case()
    store.create(other)
    store.add_message(message(case.id, "wamid.r1", T0, "NIK saya 7306...", data={"media": "m1"}))
    store.add_message(message(case.id, "wamid.r2", T0 + timedelta(seconds=1), "foto KK"))
    store.add_message(message(other.id, "wamid.r3", T0, "tetap"))

    assert store.redact_messages(case.id) == 2

    got = store.messages(case.id)
    assert [m.id for m in got] == ["wamid.r1", "wamid.r2"]
    assert all(m.body == got[0].body and m.data == {} for m in got)
    assert "7306" not in got[0].body
    assert store.redact_messages(case.id) == 0  # already redacted
    assert store.messages(other.id)[0].body == "tetap"
    assert store.message_exists("wamid.r1")


# ---- latest_for, with_outbox -----------------------------------------------------------------


def test_latest_for_returns_the_most_recently_updated_case_open_or_closed(
    store: CaseStore,
) -> None:
    wa = "6281200000007"
    assert store.latest_for(KEC, wa) is None
    first = new_case(wa_id=wa, at=T0)
    store.create(first)
    assert store.latest_for(KEC, wa).id == first.id  # type: ignore[union-attr]

    loaded = store.get(first.id)
    cancel(loaded, T0 + timedelta(minutes=1))
    store.save(loaded)
    closed = store.latest_for(KEC, wa)
    assert closed is not None and closed.id == first.id and closed.state == "cancelled"
    assert closed.version == 2

    second = new_case(wa_id=wa, at=T0 + timedelta(minutes=5))
    store.create(second)
    assert store.latest_for(KEC, wa).id == second.id  # type: ignore[union-attr]
    assert store.latest_for(OTHER_KEC, wa) is None


def test_with_outbox_lists_only_cases_with_pending_tasks(store: CaseStore) -> None:
    empty = new_case(at=T0)
    late = new_case(at=T0 + timedelta(minutes=2))
    late.outbox = [{"kind": "notify", "payload": {"n": 1}, "name": "t-2"}]
    early = new_case(at=T0 + timedelta(minutes=1))
    early.outbox = [{"kind": "notify", "payload": {"n": 2}, "name": "t-1"}]
    for c in (empty, late, early):
        store.create(c)

    assert [c.id for c in store.with_outbox()] == [early.id, late.id]
    assert [c.id for c in store.with_outbox(limit=1)] == [early.id]

    # WHEN the outbox of one is drained and saved
    drained = store.get(early.id)
    drained.outbox = []
    drained.note(Actor.system(), "outbox_drained", T0 + timedelta(minutes=3))
    store.save(drained)
    assert [c.id for c in store.with_outbox()] == [late.id]
    assert store.with_outbox()[0].outbox == late.outbox


# ---- dedupe keys, sequences, contacts --------------------------------------------------------


def test_claim_key_once_and_get_key(store: CaseStore) -> None:
    assert store.get_key("wamid.A") is None

    assert store.claim_key("wamid.A", value={"case_id": "c1", "n": [1, 2]}) is True
    assert store.claim_key("wamid.A", value={"case_id": "c2"}) is False
    assert store.claim_key("wamid.A") is False

    assert store.get_key("wamid.A") == {"case_id": "c1", "n": [1, 2]}
    assert store.claim_key("callback-1") is True
    assert store.get_key("callback-1") is None  # stored without value
    assert store.claim_key("callback-1") is False
    assert store.claim_key("empty", value={}) is True
    assert store.get_key("empty") == {}


def test_next_sequence_counts_per_scope(store: CaseStore) -> None:
    assert [store.next_sequence("reg:730608:2026") for _ in range(3)] == [1, 2, 3]
    assert store.next_sequence("reg:730601:2026") == 1
    assert store.next_sequence("reg:730608:2026") == 4


def test_next_sequence_is_unique_under_threads(store: CaseStore) -> None:
    # GIVEN 8 threads released together
    threads_n, calls = 8, 25
    barrier = threading.Barrier(threads_n)
    results: list[list[int]] = [[] for _ in range(threads_n)]
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(calls):
                results[i].append(store.next_sequence("threads"))
        except BaseException as exc:
            errors.append(exc)

    # WHEN each takes 25 numbers
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    # THEN together they got exactly 1..200, each thread's in increasing order
    assert errors == []
    got = [n for r in results for n in r]
    assert len(got) == threads_n * calls
    assert sorted(got) == list(range(1, threads_n * calls + 1))
    assert all(r == sorted(r) for r in results)
    assert store.next_sequence("threads") == threads_n * calls + 1


def _sequence_process(path: str, scope: str, calls: int, barrier: Any, out: Any) -> None:
    store = SqliteCaseStore(Path(path))
    barrier.wait(timeout=60)
    out.put([store.next_sequence(scope) for _ in range(calls)])


def test_sqlite_next_sequence_is_unique_across_processes(store: CaseStore) -> None:
    """SQLite-specific: two OS processes on the same database file."""
    db = sqlite_db_of(store)
    store.next_sequence("procs")  # the file and schema exist before the children start
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    calls = 100
    procs = [
        ctx.Process(target=_sequence_process, args=(str(db.path), "procs", calls, barrier, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    got = [out.get(timeout=60), out.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    numbers = got[0] + got[1]
    assert sorted(numbers) == list(range(2, 2 + 2 * calls))  # 1 was taken above
    assert store.next_sequence("procs") == 2 + 2 * calls


def test_record_contact_keeps_the_latest(store: CaseStore) -> None:
    t = T0 + timedelta(hours=1)
    assert store.last_inbound(KEC, "628A") is None

    store.record_contact(KEC, "628A", t)
    store.record_contact(KEC, "628A", t - timedelta(minutes=30))  # an older, late delivery
    assert store.last_inbound(KEC, "628A") == t

    store.record_contact(KEC, "628A", t + timedelta(microseconds=1))
    assert store.last_inbound(KEC, "628A") == t + timedelta(microseconds=1)
    assert aware(store.last_inbound(KEC, "628A"))
    # per kecamatan and applicant
    assert store.last_inbound(OTHER_KEC, "628A") is None
    assert store.last_inbound(KEC, "628B") is None


def test_counters_with_an_expiry_are_forgotten_after_it_and_numbering_never(
    store: CaseStore,
) -> None:
    # GIVEN a registration-number sequence and two rate-limit windows ending at T0 and T0+1 min
    assert store.next_sequence("730608-20261129") == 1
    assert store.next_sequence("rl:a:1", expires_at=T0) == 1
    assert store.next_sequence("rl:a:1", expires_at=T0) == 2
    assert store.next_sequence("rl:a:2", expires_at=T0 + timedelta(minutes=1)) == 1
    # THEN nothing goes before its time (strictly after it), and the sequence never
    assert store.forget_expired_counters(T0) == 0
    assert store.forget_expired_counters(T0 + timedelta(seconds=1)) == 1
    assert store.forget_expired_counters(T0 + timedelta(days=3650)) == 1
    assert store.next_sequence("730608-20261129") == 2
    # AND a forgotten window starts again from one (it is only ever asked for while it runs)
    assert store.next_sequence("rl:a:1", expires_at=T0) == 1


def test_forget_contacts_by_number_or_by_silence(store: CaseStore) -> None:
    # GIVEN one number known to two kecamatan, and two others, one silent for long
    store.record_contact(KEC, "628A", T0 + timedelta(days=10))
    store.record_contact(OTHER_KEC, "628A", T0)
    store.record_contact(KEC, "628B", T0 + timedelta(days=10))
    store.record_contact(KEC, "628C", T0 - timedelta(days=400))
    # THEN nothing goes without a condition
    assert store.forget_contacts() == 0
    # AND a number goes from every kecamatan, nobody else with it
    assert store.forget_contacts(wa_id="628A") == 2
    assert store.last_inbound(KEC, "628A") is None
    assert store.last_inbound(OTHER_KEC, "628A") is None
    assert store.last_inbound(KEC, "628B") is not None
    # AND silence before a cutoff (strictly before) takes only the long-silent one
    assert store.forget_contacts(inbound_before=T0 - timedelta(days=400)) == 0
    assert store.forget_contacts(inbound_before=T0) == 1
    assert store.last_inbound(KEC, "628C") is None
    assert store.last_inbound(KEC, "628B") == T0 + timedelta(days=10)


def test_record_contact_compares_instants_not_offset_text(store: CaseStore) -> None:
    late = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
    early = datetime(2026, 11, 29, 12, 0, tzinfo=WITA)  # 04:00 UTC, but "12" > "05" as text

    store.record_contact(KEC, "628C", late)
    store.record_contact(KEC, "628C", early)
    assert store.last_inbound(KEC, "628C") == late

    store.record_contact(KEC, "628D", early)
    store.record_contact(KEC, "628D", late)
    assert store.last_inbound(KEC, "628D") == late


# ---- concurrent read-modify-write ------------------------------------------------------------


def test_concurrent_read_modify_write_loses_no_update(store: CaseStore) -> None:
    # GIVEN a stored case with a counter in its form, and 4 threads released together
    case = new_case()
    case.form["counter"] = 0
    store.create(case)
    threads_n, increments = 4, 25
    barrier = threading.Barrier(threads_n)
    saved = [0] * threads_n
    conflicts = [0] * threads_n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            while saved[i] < increments:
                c = store.get(case.id)
                c.form["counter"] += 1
                c.note(Actor.system(), "count", T0, by=i, to=c.form["counter"])
                try:
                    store.save(c)
                except ConcurrentUpdate:
                    conflicts[i] += 1
                    continue
                saved[i] += 1
        except BaseException as exc:
            errors.append(exc)

    # WHEN each thread does 25 load → increment → save, retrying on ConcurrentUpdate
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    # THEN no increment was lost: counter = successful saves = version - 1 = events - 1
    assert errors == []
    total = sum(saved)
    assert total == threads_n * increments
    final = store.get(case.id)
    assert final.form["counter"] == total
    assert final.version == 1 + total
    events = store.events(case.id)
    assert len(events) == 1 + total
    assert [e.seq for e in events] == list(range(1, total + 2))
    assert [e.detail["to"] for e in events[1:]] == list(range(1, total + 1))


# ---- restart ---------------------------------------------------------------------------------


def test_everything_survives_reopen(store: CaseStore, reopen: Reopen) -> None:
    # GIVEN a store with a saved case, messages, a key, a sequence and a contact
    case = new_case(wa_id="6281200000009")
    case.form["a"] = 1
    store.create(case)
    loaded = store.get(case.id)
    loaded.note(Actor.system(), "noted", T0 + timedelta(seconds=1))
    store.save(loaded)
    m = message(case.id, "wamid.r", T0 + timedelta(seconds=2), "halo")
    store.add_message(m)
    store.claim_key("wamid.r", value={"case_id": case.id})
    assert [store.next_sequence("reg") for _ in range(3)] == [1, 2, 3]
    store.record_contact(KEC, "6281200000009", T0 + timedelta(seconds=2))

    # WHEN a fresh adapter opens the same data
    again = reopen()

    # THEN everything is there, and counters and constraints carry on
    got = again.get(case.id)
    assert snapshot(got) == snapshot(loaded)
    assert got.version == 2
    assert [e.event for e in again.events(case.id)] == ["greet", "noted"]
    assert again.find_open(KEC, "6281200000009") is not None
    assert again.list_cases()[0].id == case.id
    assert again.messages(case.id) == [m]
    assert again.message_exists("wamid.r")
    assert again.add_message(m) is False
    assert again.claim_key("wamid.r") is False
    assert again.get_key("wamid.r") == {"case_id": case.id}
    assert again.next_sequence("reg") == 4
    assert again.last_inbound(KEC, "6281200000009") == T0 + timedelta(seconds=2)
    with pytest.raises(AlreadyExists):
        again.create(new_case(wa_id="6281200000009"))
    # a stale copy from before the restart is still detected
    stale = store.get(case.id)
    got.note(Actor.system(), "after_restart", T0 + timedelta(seconds=3))
    again.save(got)
    stale.note(Actor.system(), "stale", T0 + timedelta(seconds=4))
    with pytest.raises(ConcurrentUpdate):
        again.save(stale)


# ---- the cloud adapter stays out of the embedded default's imports ---------------------------


def test_importing_the_firestore_adapter_does_not_import_google_cloud(tmp_path: Path) -> None:
    """Cold starts: the module, and a container configured for Firestore, load no client library
    until the store is first used."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"  # a *-nspkg.pth may pre-load the bare namespace
        "import sapa.adapters.cloud.firestore_store as m\n"
        "from sapa.bootstrap import Container\n"
        "from sapa.settings import load_settings\n"
        f"s = load_settings(sapa_data_dir={str(tmp_path)!r}, store='firestore', gcp_project='p')\n"
        "store = Container(s).store\n"
        "assert isinstance(store, m.FirestoreCaseStore), store\n"
        "new = set(sys.modules) - before\n"
        "prefixes = ('google.cloud', 'google.api_core', 'grpc')\n"
        "loaded = sorted(n for n in new if n.startswith(prefixes))\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "STORE"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("error", ["Aborted", "DeadlineExceeded", "ServiceUnavailable"])
def test_firestore_backend_errors_become_transient(error: str) -> None:
    gx = pytest.importorskip("google.api_core.exceptions", reason="google-api-core not installed")

    class Down:
        def collection(self, name: str) -> Any:
            raise getattr(gx, error)("backend says no")

        def batch(self) -> Any:
            raise getattr(gx, error)("backend says no")

    store = FirestoreCaseStore("p", client=Down())
    with pytest.raises(TransientError):
        store.get("x")
    with pytest.raises(TransientError):
        store.create(new_case())
    with pytest.raises(TransientError):
        store.next_sequence("s")


# ---- personal data: the access log and the data-subject index (UU 27/2022) ----------------


def access(case: Case, at: datetime, *, actor: str = "loket@sapa.test", what: str = "case") -> Any:
    from sapa.ports import AccessRecord

    return AccessRecord(
        at=at,
        actor_id=actor,
        role="loket",
        case_id=case.id,
        reg_no=case.reg_no,
        what=what,
        client="c0ffee",
    )


def test_access_log_keeps_every_record_and_filters_by_window_case_and_officer(
    store: CaseStore,
) -> None:
    # GIVEN reads of two cases by two officers, one written with Gowa's offset
    a, b = new_case(), new_case()
    records = [
        access(a, T0, what="case"),
        access(a, T0 + timedelta(minutes=1), what="document:0"),
        access(b, (T0 + timedelta(minutes=2)).astimezone(WITA), actor="admin@sapa.test"),
        access(a, T0 + timedelta(minutes=3), actor="admin@sapa.test", what="handoff"),
    ]
    for r in records:
        store.log_access(r)
    end = T0 + timedelta(hours=1)
    # THEN the whole window returns them all, oldest first, every field intact
    got = store.accesses(T0, end)
    assert [(r.case_id, r.what, r.actor_id) for r in got] == [
        (r.case_id, r.what, r.actor_id) for r in records
    ]
    assert got[0] == records[0]
    assert all(aware(r.at) for r in got)
    assert got[2].at == records[2].at  # the same instant, whatever offset it was written in
    # AND the window is [since, until): a record exactly at `until` is left out
    assert [r.what for r in store.accesses(T0 + timedelta(minutes=1), records[3].at)] == [
        "document:0",
        "case",
    ]
    # AND filters by case, by officer, both, and the limit work
    assert [r.what for r in store.accesses(T0, end, case_id=a.id)] == [
        "case",
        "document:0",
        "handoff",
    ]
    assert [r.case_id for r in store.accesses(T0, end, actor_id="admin@sapa.test")] == [
        b.id,
        a.id,
    ]
    assert [r.what for r in store.accesses(T0, end, case_id=a.id, actor_id="admin@sapa.test")] == [
        "handoff"
    ]
    assert len(store.accesses(T0, end, limit=2)) == 2
    assert store.accesses(T0 - timedelta(days=1), T0) == []


def test_sqlite_access_log_rejects_update_and_delete(store: CaseStore) -> None:
    db = sqlite_db_of(store)
    store.log_access(access(new_case(), T0))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.conn().execute("UPDATE accesses SET actor_id = 'someone-else'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.conn().execute("DELETE FROM accesses")
    assert [r.actor_id for r in store.accesses(T0, T0 + timedelta(1))] == ["loket@sapa.test"]


NIK_A = "7306081508900001"
NIK_B = "7306084507950002"


def resident_case(nik: str | None, wa_id: str, *, form_wa: str | None = None, at: datetime = T0):  # type: ignore[no-untyped-def]
    case = new_case(wa_id=wa_id, at=at)
    if nik:
        case.form["nik"] = nik
    if form_wa:
        case.form["wa_number"] = form_wa
    return case


def test_cases_of_subject_finds_a_residents_cases_by_nik_or_whatsapp_number(
    store: CaseStore, reopen: Reopen
) -> None:
    # GIVEN one resident's two cases (one before the guest book: no NIK yet), another's case
    # that names a second WhatsApp number in its form, and a stranger's
    first = resident_case(NIK_A, "6281111111111", at=T0)
    second = resident_case(None, "6281111111111", at=T0 + timedelta(hours=1))
    second.kecamatan = OTHER_KEC
    other = resident_case(
        NIK_B, "6282222222222", form_wa="6283333333333", at=T0 + timedelta(hours=2)
    )
    stranger = resident_case("7306080101010003", "6284444444444")
    for case in (second, first, other, stranger):
        store.create(case)
    # THEN the NIK finds the case that holds it; the number finds both of its cases, oldest
    # first; the form's number counts; both at once give the union; unknowns give nothing
    assert [k.id for k in store.cases_of_subject(nik=NIK_A)] == [first.id]
    assert [k.id for k in store.cases_of_subject(wa_id="6281111111111")] == [first.id, second.id]
    assert [k.id for k in store.cases_of_subject(wa_id="6283333333333")] == [other.id]
    both = store.cases_of_subject(nik=NIK_B, wa_id="6281111111111")
    assert [k.id for k in both] == [first.id, second.id, other.id]
    assert store.cases_of_subject(nik="7306080000000000") == []
    assert store.cases_of_subject() == []
    assert store.cases_of_subject(wa_id="6281111111111", limit=1)[0].id == first.id
    # AND a reopened store (a restart) still finds them: the index key is kept
    again = reopen()
    assert [k.id for k in again.cases_of_subject(nik=NIK_A)] == [first.id]
    loaded = again.cases_of_subject(nik=NIK_A)[0]
    assert snapshot(loaded) == snapshot(store.get(first.id))


def test_cases_of_subject_follows_a_correction_and_an_anonymisation(store: CaseStore) -> None:
    case = resident_case(NIK_A, "6281111111111")
    store.create(case)
    # WHEN the NIK is corrected
    case.form["nik"] = NIK_B
    store.save(case)
    # THEN the old NIK finds nothing, the new one finds the case
    assert store.cases_of_subject(nik=NIK_A) == []
    assert [k.id for k in store.cases_of_subject(nik=NIK_B)] == [case.id]
    # WHEN the case is anonymised (masked values)
    case.form["nik"] = "7306********0002"
    case.wa_id = "6281*******111"
    store.save(case)
    # THEN neither the NIK nor the number finds it any more
    assert store.cases_of_subject(nik=NIK_B) == []
    assert store.cases_of_subject(wa_id="6281111111111") == []


def _raw_subject_index(store: CaseStore, case_id: str) -> list[str]:
    """What the backend keeps in the subject index of one case (backend-specific read)."""
    db = getattr(store, "db", None)
    if isinstance(db, SqliteDb):
        rows = db.conn().execute("SELECT hash FROM subjects WHERE case_id = ?", (case_id,))
        return [r[0] for r in rows]
    if isinstance(store, FirestoreCaseStore):
        return list(store._case_ref(case_id).get().get("subjects"))
    pytest.skip(f"no raw view of {type(store).__name__}'s subject index")


def test_the_subject_index_holds_keyed_hashes_never_the_nik_or_number(store: CaseStore) -> None:
    import hashlib

    case = resident_case(NIK_A, "6281111111111")
    store.create(case)
    raw = _raw_subject_index(store, case.id)
    assert len(raw) == 2
    plain = {"nik:" + NIK_A, "wa:6281111111111", NIK_A, "6281111111111"}
    unkeyed = {hashlib.sha256(p.encode()).hexdigest() for p in plain}
    for value in raw:
        assert all(p not in value for p in plain)
        assert value not in unkeyed  # keyed: a plain hash of the term is not it
        assert len(value) == 64


def test_cases_of_subject_finds_a_resident_known_by_username(store: CaseStore) -> None:
    # GIVEN a case of a resident known only by their business-scoped user id, and one of a
    # resident whose number came with their id
    username = "ID.73061349120865530274"
    only_id = resident_case(None, username)
    joined = resident_case(None, "6281111111111", at=T0 + timedelta(hours=1))
    joined.wa_user_id = "ID.73069999000011112222"
    store.create(only_id)
    store.create(joined)
    # THEN each id finds its case (the index holds keyed hashes, as for numbers)
    assert [k.id for k in store.cases_of_subject(wa_id=username)] == [only_id.id]
    assert [k.id for k in store.cases_of_subject(wa_id="ID.73069999000011112222")] == [joined.id]
    assert store.get(joined.id).wa_user_id == "ID.73069999000011112222"


def test_notices_are_kept_once_and_listed_newest_first(store: CaseStore, reopen: Reopen) -> None:
    def notice(event: str, at: datetime) -> dict[str, Any]:
        return {"field": "message_template_status_update", "event": event, "at": at.isoformat()}

    # GIVEN three notices, one delivered twice, in an order that is not their time order
    assert store.keep_notice("k2", notice("PAUSED", T0 + timedelta(hours=2)))
    assert store.keep_notice("k1", notice("APPROVED", T0))
    assert not store.keep_notice("k1", notice("APPROVED", T0))
    assert store.keep_notice("k3", notice("FLAGGED", T0 + timedelta(hours=1)))
    # THEN each is kept once, newest first, and a restart keeps them
    assert [n["event"] for n in store.notices()] == ["PAUSED", "FLAGGED", "APPROVED"]
    assert [n["event"] for n in store.notices(limit=1)] == ["PAUSED"]
    assert [n["event"] for n in reopen().notices()] == ["PAUSED", "FLAGGED", "APPROVED"]
