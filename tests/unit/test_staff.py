"""domain.staff: which SOP roles an officer may hold, the audit trail's before/after, the
last-admin rule, and which claim must go back to the queue (Case.return_claim)."""

from __future__ import annotations

from dataclasses import replace

from sapa.domain.case import Actor
from sapa.domain.sop import default_sop
from sapa.domain.staff import (
    Roster,
    StaffMember,
    changes,
    keeps_an_admin,
    may_hold,
    officer_roles,
    stale_claim,
)
from tests.unit.conftest import KECAMATAN, OTHER_KECAMATAN, at, drive, new_case

SOP = default_sop()
LOKET = StaffMember("loket-1", "Loket", ("loket",), kecamatan=KECAMATAN)
ADMIN = StaffMember("admin@x.id", "Admin", ("admin",))


def claimed_case(when: float = 100.0):  # type: ignore[no-untyped-def]
    """A case waiting for the counter's check, claimed by LOKET at `when`."""
    case = new_case()
    drive(case, SOP, "form_submitted")
    case.claim(SOP, Actor(id=LOKET.email, role="loket", kecamatan=KECAMATAN), at(when))
    return case


def test_officers_hold_the_sops_roles_but_the_residents_and_sapas_own() -> None:
    assert officer_roles(SOP) == [
        "loket",
        "verifikator",
        "operator_siak",
        "kabid",
        "kadis",
        "admin",
    ]


def test_the_trail_shows_only_what_changed_and_masks_the_number() -> None:
    moved = replace(LOKET, kecamatan=OTHER_KECAMATAN, wa_number="6281211110001")
    assert changes(LOKET, moved) == {
        "kecamatan": (KECAMATAN, OTHER_KECAMATAN),
        "wa_number": (None, "6281******001"),
    }
    assert changes(LOKET, LOKET) == {}
    assert changes(None, ADMIN) == {"name": (None, "Admin"), "roles": (None, ["admin"])}


def test_a_change_may_not_leave_the_office_without_an_active_admin() -> None:
    roster = Roster(3, (ADMIN, LOKET))
    assert not keeps_an_admin(roster, replace(ADMIN, active=False))
    assert not keeps_an_admin(roster, replace(ADMIN, roles=("kabid",)))
    other = StaffMember("admin2@x.id", "Admin 2", ("admin", "kabid"))
    assert keeps_an_admin(roster.with_member(other), replace(ADMIN, active=False))
    assert roster.active_admins() == [ADMIN.email]


def test_who_may_hold_a_claim() -> None:
    assert may_hold(LOKET, "loket", KECAMATAN, SOP)
    assert not may_hold(LOKET, "loket", OTHER_KECAMATAN, SOP)  # another kecamatan's counter
    assert not may_hold(replace(LOKET, active=False), "loket", KECAMATAN, SOP)
    assert not may_hold(replace(LOKET, roles=("verifikator",)), "loket", KECAMATAN, SOP)
    assert may_hold(ADMIN, "admin", OTHER_KECAMATAN, SOP)  # not a kecamatan role
    assert not may_hold(None, "loket", KECAMATAN, SOP)


def test_only_a_claim_its_known_officer_may_no_longer_hold_is_stale() -> None:
    case = claimed_case(when=100)
    read = at(200)  # the roster's moment, after the claim
    assert stale_claim(case, SOP, Roster(1, (LOKET,)), as_of=read) is None
    for gone in (
        replace(LOKET, active=False),
        replace(LOKET, kecamatan=OTHER_KECAMATAN),
        replace(LOKET, roles=("kabid",)),
    ):
        assert stale_claim(case, SOP, Roster(2, (gone,)), as_of=read) == LOKET.email
    inactive = Roster(2, (replace(LOKET, active=False),))
    # unknown to the roster (added after it was read), or claimed after its moment: left alone
    assert stale_claim(case, SOP, Roster(2, (ADMIN,)), as_of=read) is None
    assert stale_claim(case, SOP, inactive, as_of=at(99)) is None


def test_returning_a_claim_is_a_system_event_and_happens_once() -> None:
    case = claimed_case()
    event = case.return_claim(SOP, LOKET.email, at(300), reason="officer_inactive")
    assert event is not None
    assert (event.actor_id, event.role, event.event) == ("system", "system", "claim_returned")
    assert event.detail == {"step": "periksa", "from": LOKET.email, "reason": "officer_inactive"}
    run = case.current_run(SOP)
    assert run is not None and (run.claimed_by, run.claimed_at) == (None, None)
    assert case.return_claim(SOP, LOKET.email, at(301), reason="officer_inactive") is None
    assert case.updated_at == at(300)
