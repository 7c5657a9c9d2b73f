"""Contract of the CaseStore's officer methods (the staff directory and its audit trail), and
of the StoreStaffDirectory over them, run against every adapter of the `make_store` fixture:
SQLite, and Firestore on Google's emulator over a real socket (marked `integration`; skipped
with the reason without java or the jar)."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sapa.adapters.staff_store import StoreStaffDirectory
from sapa.domain.errors import ConcurrentUpdate
from sapa.domain.staff import ADDED, CHANGED, StaffEvent, StaffMember, changes
from sapa.ports import CaseStore
from tests.contract.conftest import MakeStore
from tests.contract.test_case_store import sqlite_db_of

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
ADMIN = StaffMember("admin@gowakab.go.id", "Admin Dinas", ("admin",))
LOKET = StaffMember(
    "loket.sombaopu@gowakab.go.id",
    "Andi Petugas",
    ("loket",),
    kecamatan="730608",
    wa_number="6281211110001",
)
KABID = StaffMember("kabid@gowakab.go.id", "Kepala Bidang", ("kabid", "admin"), active=False)


@pytest.fixture
def store(make_store: MakeStore) -> CaseStore:
    return make_store()


def added(member: StaffMember, *, by: str = ADMIN.email, at: datetime = T0) -> StaffEvent:
    return StaffEvent(at, by, ADDED, member.email, changes(None, member))


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# ---- the store ----------------------------------------------------------------------------------


def test_an_empty_store_has_no_officers_at_version_0(store: CaseStore) -> None:
    assert store.staff_version() == 0
    roster = store.staff_roster()
    assert (roster.version, roster.officers) == (0, ())
    assert store.staff_events() == []


def test_saved_officers_round_trip_ordered_by_email_with_their_events(store: CaseStore) -> None:
    # GIVEN three officers, one inactive, saved in one write with their events
    members = [LOKET, KABID, ADMIN]
    version = store.save_staff(members, [added(m) for m in members], expected_version=0)
    # THEN the version is 1, and every field comes back as saved, ordered by e-mail
    assert version == 1 == store.staff_version()
    roster = store.staff_roster()
    assert roster.version == 1
    assert roster.officers == (ADMIN, KABID, LOKET)
    assert roster.get("LOKET.SombaOpu@gowakab.go.id ") == LOKET
    assert roster.active_admins() == [ADMIN.email]  # the inactive kabid is no admin now
    # AND the events too (newest first: the last of the write first)
    events = store.staff_events()
    assert [e.officer for e in events] == [ADMIN.email, KABID.email, LOKET.email]
    assert events[-1] == added(LOKET)
    assert events[-1].changes["wa_number"] == (None, "6281******001")


def test_a_save_replaces_the_officer_of_its_email_and_keeps_the_others(store: CaseStore) -> None:
    store.save_staff([ADMIN, LOKET], [added(ADMIN), added(LOKET)], expected_version=0)
    moved = replace(LOKET, kecamatan="730601", wa_number=None)
    at = T0 + timedelta(minutes=1)
    event = StaffEvent(at, ADMIN.email, CHANGED, LOKET.email, changes(LOKET, moved))
    assert store.save_staff([moved], [event], expected_version=1) == 2
    assert store.staff_roster().officers == (ADMIN, moved)
    assert store.staff_events()[0] == event
    assert event.changes == {
        "kecamatan": ("730608", "730601"),
        "wa_number": ("6281******001", None),
    }


def test_a_save_on_a_stale_version_writes_nothing(store: CaseStore) -> None:
    # GIVEN officers at version 2
    store.save_staff([ADMIN], [added(ADMIN)], expected_version=0)
    store.save_staff([LOKET], [added(LOKET)], expected_version=1)
    before = (store.staff_roster(), store.staff_events())
    # WHEN a change based on version 1 (or one from the future) is saved
    for stale in (0, 1, 3):
        with pytest.raises(ConcurrentUpdate):
            store.save_staff([replace(ADMIN, active=False)], [added(KABID)], expected_version=stale)
    # THEN nothing changed: not the officers, not the trail, not the version
    assert (store.staff_roster(), store.staff_events()) == before
    assert store.staff_version() == 2


def test_concurrent_saves_on_one_version_let_exactly_one_through(store: CaseStore) -> None:
    # GIVEN 4 writers holding the same roster (version 1) and released together
    store.save_staff([ADMIN], [added(ADMIN)], expected_version=0)
    writers = 4
    barrier = threading.Barrier(writers)
    won: list[int] = []
    lost: list[int] = []
    errors: list[BaseException] = []

    def write(i: int) -> None:
        member = StaffMember(f"petugas{i}@gowakab.go.id", f"Petugas {i}", ("verifikator",))
        try:
            barrier.wait()
            store.save_staff([member], [added(member)], expected_version=1)
            won.append(i)
        except ConcurrentUpdate:
            lost.append(i)
        except BaseException as exc:  # the emulator may abort under contention: not a win
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # THEN exactly one change went in, with its event, and the version moved by one
    assert errors == []
    assert len(won) == 1 and len(lost) == writers - 1
    roster = store.staff_roster()
    assert roster.version == 2
    assert [m.email for m in roster.officers] == [ADMIN.email, f"petugas{won[0]}@gowakab.go.id"]
    assert [e.officer for e in store.staff_events()] == [
        f"petugas{won[0]}@gowakab.go.id",
        ADMIN.email,
    ]


def test_staff_events_are_newest_first_across_saves_and_limited(store: CaseStore) -> None:
    version = 0
    for i in range(12):  # more than 10, so text order of the ids would show
        member = StaffMember(f"p{i}@gowakab.go.id", f"P {i}", ("kadis",))
        event = added(member, at=T0 + timedelta(seconds=i))
        version = store.save_staff([member], [event], expected_version=version)
    events = store.staff_events()
    assert [e.officer for e in events] == [f"p{i}@gowakab.go.id" for i in reversed(range(12))]
    assert [e.officer for e in store.staff_events(limit=3)] == [
        "p11@gowakab.go.id",
        "p10@gowakab.go.id",
        "p9@gowakab.go.id",
    ]


def test_officers_and_their_trail_survive_reopen(store: CaseStore, make_store: MakeStore) -> None:
    store.save_staff([ADMIN, LOKET], [added(ADMIN), added(LOKET)], expected_version=0)
    again = make_store()
    assert again.staff_roster() == store.staff_roster()
    assert again.staff_events() == store.staff_events()
    with pytest.raises(ConcurrentUpdate):
        again.save_staff([KABID], [added(KABID)], expected_version=0)


def test_sqlite_staff_events_table_rejects_update_and_delete(store: CaseStore) -> None:
    db = sqlite_db_of(store)
    store.save_staff([ADMIN], [added(ADMIN)], expected_version=0)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.conn().execute("UPDATE staff_events SET doc = '{}'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.conn().execute("DELETE FROM staff_events")
    assert [e.officer for e in store.staff_events()] == [ADMIN.email]


# ---- the directory over the store ---------------------------------------------------------------


def test_the_directory_seeds_an_empty_store_once_and_then_never_reads_the_file(
    store: CaseStore,
) -> None:
    # GIVEN two instances starting at once on an empty store, each with the staff file
    reads: list[int] = []

    def staff_file() -> list[StaffMember]:
        reads.append(1)
        return [replace(ADMIN), replace(LOKET)]

    barrier = threading.Barrier(2)
    directories = [StoreStaffDirectory(store, now=lambda: T0, seed=staff_file) for _ in "ab"]
    found: list[list[StaffMember]] = []

    def start(d: StoreStaffDirectory) -> None:
        barrier.wait()
        found.append(d.all())

    threads = [threading.Thread(target=start, args=(d,)) for d in directories]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # THEN both see the file's officers, written once, each added by the system
    assert found == [[ADMIN, LOKET], [ADMIN, LOKET]]
    assert store.staff_version() == 1
    events = store.staff_events()
    assert sorted(e.officer for e in events) == [ADMIN.email, LOKET.email]
    assert {(e.actor_id, e.event, e.detail["source"]) for e in events} == {
        ("system", ADDED, "staff_file")
    }
    # AND once the store holds officers, a new instance never reads the file
    reads.clear()
    later = StoreStaffDirectory(store, now=lambda: T0, seed=staff_file)
    assert later.get(LOKET.email) == LOKET
    assert reads == []


def test_the_directory_finds_only_active_officers(store: CaseStore) -> None:
    store.save_staff([ADMIN, LOKET, KABID], [], expected_version=0)
    d = StoreStaffDirectory(store, now=lambda: T0)
    assert d.get(" Loket.SombaOpu@GOWAKAB.go.id") == LOKET
    assert d.get(KABID.email) is None
    assert d.get("nobody@gowakab.go.id") is None
    assert d.all() == [ADMIN, LOKET]
    assert d.all(include_inactive=True) == [ADMIN, KABID, LOKET]


def test_without_a_cache_every_call_sees_the_latest_change(store: CaseStore) -> None:
    store.save_staff([ADMIN, LOKET], [], expected_version=0)
    d = StoreStaffDirectory(store, now=lambda: T0, ttl_seconds=0)
    assert d.get(LOKET.email) == LOKET
    store.save_staff([replace(LOKET, active=False)], [], expected_version=1)
    assert d.get(LOKET.email) is None


def test_a_cached_directory_sees_a_change_after_its_ttl_or_a_refresh(store: CaseStore) -> None:
    # GIVEN a directory that keeps what it read for 30 s, and has read the officers
    store.save_staff([ADMIN, LOKET], [], expected_version=0)
    tick = Ticker()
    d = StoreStaffDirectory(store, now=lambda: T0, ttl_seconds=30, monotonic=tick)
    assert d.get(LOKET.email) == LOKET
    # WHEN another instance deactivates the officer
    store.save_staff([replace(LOKET, active=False)], [], expected_version=1)
    # THEN within the 30 s this instance still finds him; after them it does not
    tick.t += 29
    assert d.get(LOKET.email) == LOKET
    tick.t += 1.5
    assert d.get(LOKET.email) is None
    # AND a refresh (the change was made here) is seen at once
    store.save_staff([LOKET], [], expected_version=2)
    d.refresh()
    assert d.get(LOKET.email) == LOKET
