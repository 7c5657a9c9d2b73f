"""services.staff_admin: officers changed by an admin, checked field by field, each change on
the staff audit trail, the last active admin kept, and the claims of an officer who may no
longer act returned to the queue (by the admin's change, or by the SLA sweep after an
interruption); and the staff file seeding an empty store only."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.domain.errors import (
    ConcurrentUpdate,
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from sapa.domain.staff import (
    EMAIL_INVALID,
    EMAIL_TAKEN,
    EMAIL_TAKEN_INACTIVE,
    LAST_ADMIN,
    StaffEvent,
    StaffMember,
)
from sapa.services import sla_sweep, staff_admin
from sapa.services.staff_admin import OfficerForm
from tests.conftest import make_container
from tests.functions.conftest import BONTONOMPO, SOMBA_OPU, Flow

# the function tests' fixture: cases walked along the SOP with the services
from tests.functions.conftest import flow as flow

ADMIN = "admin@sapa.test"
LOKET = "loket.sombaopu@sapa.test"
KABID = "kabid@sapa.test"
NEW = "andi.loket@gowakab.go.id"


def member(c: Container, email: str) -> StaffMember:
    found = c.staff.get(email)
    assert found is not None, email
    return found


def state(c: Container) -> tuple[Any, ...]:
    """Everything a refused change must leave as it was."""
    return (c.store.staff_roster(), c.store.staff_events())


def form(**over: Any) -> OfficerForm:
    values: dict[str, Any] = {
        "email": NEW,
        "name": "Andi Petugas",
        "roles": ("loket",),
        "kecamatan": SOMBA_OPU,
        "wa": "",
    }
    values.update(over)
    return OfficerForm(**values)


def claimed(flow: Flow, email: str, **who: Any) -> Case:
    """A case waiting for the counter's check, taken by `email`."""
    case = flow.to("form_submitted", **who)
    return flow.act(case, email, "claim")


# ---- adding: every field checked, nothing changed when refused ---------------------------------


@pytest.mark.parametrize(
    ("over", "errors"),
    [
        ({"email": "andi.gowakab.go.id"}, {"email": EMAIL_INVALID}),
        ({"email": "andi@gowakab"}, {"email": EMAIL_INVALID}),
        ({"name": "   "}, {"name": "Nama wajib diisi."}),
        ({"roles": ("loket", "lurah")}, {"roles": "Peran tidak dikenal: lurah."}),
        ({"roles": ("pemohon",)}, {"roles": "Peran tidak dikenal: pemohon."}),
        ({"roles": ()}, {"roles": "Pilih sedikitnya satu peran."}),
        (
            {"kecamatan": ""},
            {"kecamatan": "Kecamatan wajib dipilih untuk Petugas Loket Pelayanan."},
        ),
        ({"kecamatan": "730699"}, {"kecamatan": "Kecamatan tidak dikenal."}),
        ({"wa": "12345"}, {"wa": "Nomor WhatsApp tidak valid. Contoh: 081234567890."}),
        ({"email": LOKET.upper()}, {"email": EMAIL_TAKEN}),
    ],
)
def test_a_refused_officer_is_refused_beside_its_field_and_changes_nothing(
    container: Container, over: dict[str, Any], errors: dict[str, str]
) -> None:
    c = container
    admin = member(c, ADMIN)
    before = state(c)
    with pytest.raises(ValidationFailed) as refused:
        staff_admin.add(c, admin, form(**over))
    assert refused.value.fields == errors
    assert refused.value.message == "Periksa kembali isian yang ditandai."
    assert state(c) == before


def test_every_mistake_of_one_form_is_named_at_once(container: Container) -> None:
    with pytest.raises(ValidationFailed) as refused:
        staff_admin.add(
            container,
            member(container, ADMIN),
            form(email="x", name="", roles=("loket",), kecamatan="", wa="0"),
        )
    assert set(refused.value.fields) == {"email", "name", "kecamatan", "wa"}


def test_an_added_officer_is_stored_as_the_staff_file_would_and_audited(
    container: Container, clock: FixedClock
) -> None:
    c = container
    admin = member(c, ADMIN)
    # WHEN an admin adds a counter officer, typing the address in capitals and a local number
    done = staff_admin.add(
        c,
        admin,
        form(email=" Andi.Loket@GOWAKAB.go.id ", name="Andi  Petugas", wa="0812-3456-789"),
    )
    # THEN the officer is kept under the lower-case address, the number in WhatsApp's form
    expected = StaffMember(NEW, "Andi Petugas", ("loket",), SOMBA_OPU, "628123456789")
    assert done.officer == expected and done.event == "officer_added"
    assert c.staff.get(NEW) == expected
    # AND the trail says who added whom, when, with each value (the number masked)
    (event, *_) = c.store.staff_events()
    assert event == StaffEvent(
        at=clock.now(),
        actor_id=ADMIN,
        event="officer_added",
        officer=NEW,
        changes={
            "name": (None, "Andi Petugas"),
            "roles": (None, ["loket"]),
            "kecamatan": (None, SOMBA_OPU),
            "wa_number": (None, "6281*****789"),
        },
    )
    assert "628123456789" not in repr(c.store.staff_events())


def test_a_kecamatan_without_a_kecamatan_role_is_not_kept(container: Container) -> None:
    done = staff_admin.add(
        container, member(container, ADMIN), form(roles=("verifikator",), kecamatan=SOMBA_OPU)
    )
    assert done.officer.kecamatan is None


def test_an_inactive_officers_address_is_taken_too_and_says_so(container: Container) -> None:
    c = container
    admin = member(c, ADMIN)
    staff_admin.set_active(c, admin, LOKET, False)
    with pytest.raises(ValidationFailed) as refused:
        staff_admin.add(c, admin, form(email=LOKET))
    assert refused.value.fields == {"email": EMAIL_TAKEN_INACTIVE}


def test_only_an_admin_manages_officers(container: Container) -> None:
    c = container
    loket = member(c, LOKET)
    before = state(c)
    calls: list[Callable[[], Any]] = [
        lambda: staff_admin.roster(c, loket),
        lambda: staff_admin.add(c, loket, form()),
        lambda: staff_admin.change(c, loket, form(email=LOKET)),
        lambda: staff_admin.set_active(c, loket, KABID, False),
    ]
    for call in calls:
        with pytest.raises(Forbidden, match="Hanya admin"):
            call()
    assert state(c) == before


# ---- changing ----------------------------------------------------------------------------------


def test_a_change_records_only_what_changed_before_and_after(container: Container) -> None:
    c = container
    admin = member(c, ADMIN)
    old = member(c, LOKET)
    done = staff_admin.change(
        c,
        admin,
        form(
            email=LOKET,
            name=old.name,
            kecamatan=BONTONOMPO,
            wa="0812999900",
            revision=old.revision,
        ),
    )
    assert done.event == "officer_changed"
    assert c.staff.get(LOKET) == replace(old, kecamatan=BONTONOMPO, wa_number="62812999900")
    (event, *_) = c.store.staff_events()
    assert (event.actor_id, event.event, event.officer) == (ADMIN, "officer_changed", LOKET)
    assert event.changes == {
        "kecamatan": (SOMBA_OPU, BONTONOMPO),
        "wa_number": (None, "6281****900"),
    }


def test_a_change_that_changes_nothing_records_nothing(container: Container) -> None:
    c = container
    old = member(c, LOKET)
    before = state(c)
    done = staff_admin.change(
        c, member(c, ADMIN), form(email=LOKET, name=old.name, revision=old.revision)
    )
    assert done.event is None and done.returned == []
    assert state(c) == before


def test_a_change_filled_in_before_another_admins_change_is_refused(container: Container) -> None:
    c = container
    admin = member(c, ADMIN)
    shown = member(c, LOKET).revision  # the form was opened now
    staff_admin.change(c, admin, form(email=LOKET, name="Nama Baru", revision=shown))
    before = state(c)
    with pytest.raises(Conflict, match="baru saja diubah oleh admin lain"):
        staff_admin.change(c, admin, form(email=LOKET, name="Nama Lama", revision=shown))
    assert state(c) == before


def test_an_unknown_officer_cannot_be_changed(container: Container) -> None:
    c = container
    admin = member(c, ADMIN)
    with pytest.raises(NotFound):
        staff_admin.change(c, admin, form(email="nobody@gowakab.go.id"))
    with pytest.raises(NotFound):
        staff_admin.set_active(c, admin, "nobody@gowakab.go.id", False)


# ---- the last admin --------------------------------------------------------------------------


def test_the_last_active_admin_can_neither_leave_nor_give_up_the_role(container: Container) -> None:
    c = container
    admin = member(c, ADMIN)
    before = state(c)
    with pytest.raises(Conflict) as leaving:
        staff_admin.set_active(c, admin, ADMIN, False)
    assert leaving.value.message == LAST_ADMIN
    with pytest.raises(ValidationFailed) as stepping_down:
        staff_admin.change(c, admin, form(email=ADMIN, name=admin.name, roles=("kabid",)))
    assert stepping_down.value.fields == {"roles": LAST_ADMIN}
    assert state(c) == before
    # WHEN another admin exists, the first may step down (and then leave)
    staff_admin.add(c, admin, form(email="admin2@gowakab.go.id", roles=("admin",), kecamatan=""))
    staff_admin.change(c, admin, form(email=ADMIN, name=admin.name, roles=("kabid",)))
    assert c.store.staff_roster().active_admins() == ["admin2@gowakab.go.id"]


def test_two_admins_leaving_at_once_leave_one_admin(container: Container) -> None:
    """Each sees the other as the remaining admin: the roster's version makes the second
    save re-check on what the first did."""
    c = container
    first = member(c, ADMIN)
    staff_admin.add(c, first, form(email="admin2@gowakab.go.id", roles=("admin",), kecamatan=""))
    second = member(c, "admin2@gowakab.go.id")
    store = c.store
    original = store.save_staff
    raced = threading.Event()

    def racing_save(*args: Any, **kw: Any) -> int:
        # the first admin's save is overtaken by the second admin deactivating the first
        if not raced.is_set():
            raced.set()
            staff_admin.set_active(c, second, ADMIN, False)
        return original(*args, **kw)

    store.save_staff = racing_save  # type: ignore[method-assign]
    try:
        with pytest.raises(Conflict, match="admin aktif terakhir"):
            staff_admin.set_active(c, first, "admin2@gowakab.go.id", False)
    finally:
        store.save_staff = original  # type: ignore[method-assign]
    assert c.store.staff_roster().active_admins() == ["admin2@gowakab.go.id"]


def test_a_save_that_never_gets_through_says_to_try_again(container: Container) -> None:
    c = container
    admin = member(c, ADMIN)
    store = c.store

    def always_late(*args: Any, **kw: Any) -> int:
        raise ConcurrentUpdate("officers changed meanwhile")

    store.save_staff = always_late  # type: ignore[method-assign]
    with pytest.raises(ConcurrentUpdate) as busy:
        staff_admin.add(c, admin, form())
    assert busy.value.message == staff_admin.BUSY


# ---- deactivation: no more acting, claims back to the queue ------------------------------------


def test_deactivating_an_officer_returns_their_claims_as_a_system_action(
    container: Container, flow: Flow, clock: FixedClock
) -> None:
    c = container
    admin = member(c, ADMIN)
    # GIVEN the Somba Opu counter officer holds two cases, and Bontonompo's holds one
    mine = [claimed(flow, LOKET, wa_id=f"62811000000{i}") for i in (1, 2)]
    bontonompo = flow.loket_of(BONTONOMPO)
    theirs = claimed(flow, bontonompo, wa_id="628110000003", kecamatan=BONTONOMPO)
    clock.advance(60)
    # WHEN the admin deactivates him
    done = staff_admin.set_active(c, admin, LOKET, False)
    # THEN he is no longer found, so he can no longer act
    assert done.event == "officer_deactivated" and c.staff.get(LOKET) is None
    # AND his two claims went back to the queue, each recorded on its case by the system
    assert sorted(done.returned) == sorted(k.reg_no for k in mine)
    for case in mine:
        stored = c.store.get(case.id)
        run = stored.current_run(c.sop)
        assert run is not None and run.claimed_by is None and run.claimed_at is None
        last = c.store.events(case.id)[-1]
        assert (last.actor_id, last.role, last.event) == ("system", "system", "claim_returned")
        assert last.detail == {"step": "periksa", "from": LOKET, "reason": "officer_inactive"}
    # AND the other kecamatan's claim is untouched
    run = c.store.get(theirs.id).current_run(c.sop)
    assert run is not None and run.claimed_by == bontonompo
    # AND the staff trail says which cases went back, after the deactivation
    returned, deactivated = c.store.staff_events()[:2]
    assert (deactivated.actor_id, deactivated.event) == (ADMIN, "officer_deactivated")
    assert deactivated.changes == {"active": (True, False)}
    assert (returned.actor_id, returned.event, returned.officer) == (
        "system",
        "claims_returned",
        LOKET,
    )
    assert returned.detail["count"] == 2
    assert sorted(returned.detail["cases"]) == sorted(k.reg_no for k in mine)


def test_deactivating_again_changes_nothing_and_returns_nothing_twice(
    container: Container, flow: Flow
) -> None:
    c = container
    admin = member(c, ADMIN)
    case = claimed(flow, LOKET)
    staff_admin.set_active(c, admin, LOKET, False)
    before = (state(c), c.store.events(case.id))
    again = staff_admin.set_active(c, admin, LOKET, False)
    assert again.event is None and again.returned == []
    assert (state(c), c.store.events(case.id)) == before


def test_a_claim_left_behind_by_an_interrupted_change_is_returned_by_the_repeat(
    container: Container, flow: Flow
) -> None:
    c = container
    case = claimed(flow, LOKET)
    # GIVEN the deactivation was saved but its process died before returning the claim
    roster = c.store.staff_roster()
    off = replace(roster.get(LOKET), active=False)  # type: ignore[arg-type]
    c.store.save_staff([off], [], expected_version=roster.version)
    # WHEN the admin, seeing him inactive, presses "Nonaktifkan" again (nothing to change)
    again = staff_admin.set_active(c, member(c, ADMIN), LOKET, False)
    # THEN the claim goes back now
    assert again.event is None and again.returned == [case.reg_no]


def test_the_sla_sweep_returns_a_claim_its_officer_may_no_longer_hold(
    container: Container, flow: Flow, clock: FixedClock
) -> None:
    c = container
    case = claimed(flow, LOKET)
    # GIVEN the officer was moved to Bontonompo by a change whose claim return never ran
    roster = c.store.staff_roster()
    moved = replace(roster.get(LOKET), kecamatan=BONTONOMPO)  # type: ignore[arg-type]
    c.store.save_staff([moved], [], expected_version=roster.version)
    clock.advance(1)
    # WHEN the sweep runs (twice)
    first, second = sla_sweep.sweep(c), sla_sweep.sweep(c)
    # THEN the claim went back once, as the system, saying why
    assert first["claims_returned"] == 1 and second["claims_returned"] == 0
    returned = [e for e in c.store.events(case.id) if e.event == "claim_returned"]
    assert [(e.actor_id, e.detail["reason"]) for e in returned] == [("system", "officer_moved")]


def test_the_sla_sweep_leaves_claims_it_cannot_judge_alone(
    container: Container, flow: Flow, clock: FixedClock
) -> None:
    c = container
    # GIVEN a claim by an officer the roster does not know (added after the sweep read it,
    # or kept elsewhere), and a claim taken after the sweep's moment
    case = claimed(flow, LOKET)
    roster = c.store.staff_roster()
    c.store.save_staff(
        [replace(roster.get(LOKET), active=False)],  # type: ignore[arg-type]
        [],
        expected_version=roster.version,
    )
    stored = c.store.get(case.id)
    run = stored.current_run(c.sop)
    assert run is not None
    run.claimed_at = clock.now() + timedelta(seconds=5)  # taken "after" the sweep's now
    c.store.save(stored)
    other = claimed(flow, flow.loket_of(BONTONOMPO), wa_id="628110000009", kecamatan=BONTONOMPO)
    stored = c.store.get(other.id)
    run = stored.current_run(c.sop)
    assert run is not None
    run.claimed_by = "stranger@gowakab.go.id"
    c.store.save(stored)
    # WHEN the sweep runs, THEN it returns neither
    assert sla_sweep.sweep(c)["claims_returned"] == 0


def test_moving_an_officer_returns_only_the_claims_of_the_old_kecamatan(
    container: Container, flow: Flow
) -> None:
    c = container
    admin = member(c, ADMIN)
    case = claimed(flow, LOKET)
    old = member(c, LOKET)
    done = staff_admin.change(
        c, admin, form(email=LOKET, name=old.name, kecamatan=BONTONOMPO, revision=old.revision)
    )
    assert done.returned == [case.reg_no]
    assert c.store.events(case.id)[-1].detail["reason"] == "officer_moved"


def test_a_reactivated_officer_may_act_again(container: Container, flow: Flow) -> None:
    c = container
    admin = member(c, ADMIN)
    staff_admin.set_active(c, admin, LOKET, False)
    done = staff_admin.set_active(c, admin, LOKET, True)
    assert done.event == "officer_reactivated"
    assert c.store.staff_events()[0].changes == {"active": (False, True)}
    case = flow.to("form_submitted")
    assert flow.act(case, LOKET, "check").state == "checked"


# ---- the staff file seeds an empty store only ---------------------------------------------------

STAFF_FILE = """
[[staff]]
email = "Kepala.Dinas@gowakab.go.id"
name = "Kepala Dinas"
roles = ["kadis", "admin"]

[[staff]]
email = "loket@gowakab.go.id"
name = "Petugas Loket"
roles = ["loket"]
kecamatan = "730608"
wa = "0812 1111 0001"
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "var"


def with_file(data_dir: Path, tmp_path: Path, body: str, name: str) -> Container:
    path = tmp_path / name
    path.write_text(body, "utf-8")
    c = make_container(data_dir, staff_file=path)
    c.clock = FixedClock()  # type: ignore[misc]
    return c


def test_the_staff_file_seeds_an_empty_store_and_is_not_read_once_it_holds_officers(
    data_dir: Path, tmp_path: Path
) -> None:
    # GIVEN a first start with the office's staff file
    first = with_file(data_dir, tmp_path, STAFF_FILE, "staff.toml")
    # THEN its officers are the store's, added by the system from the file
    emails = [m.email for m in first.staff.all()]
    assert emails == ["kepala.dinas@gowakab.go.id", "loket@gowakab.go.id"]
    loket = first.staff.get("loket@gowakab.go.id")
    assert loket is not None and loket.wa_number == "6281211110001"
    events = first.store.staff_events()
    assert {(e.actor_id, e.event, e.detail["source"]) for e in events} == {
        ("system", "officer_added", "staff_file")
    }
    # WHEN an admin deactivates the counter officer, and SAPA restarts with an edited file
    admin = first.staff.get("kepala.dinas@gowakab.go.id")
    assert admin is not None
    staff_admin.set_active(first, admin, "loket@gowakab.go.id", False)
    edited = STAFF_FILE + '[[staff]]\nemail = "baru@gowakab.go.id"\nname = "B"\nroles = ["kabid"]\n'
    again = with_file(data_dir, tmp_path, edited, "staff2.toml")
    # THEN the store decides: the file's new entry is not there, the deactivation holds
    assert [m.email for m in again.staff.all()] == ["kepala.dinas@gowakab.go.id"]
    assert again.staff.get("baru@gowakab.go.id") is None
    assert len(again.store.staff_events()) == len(events) + 1


def test_in_the_cloud_a_function_without_the_staff_file_seeds_nothing(tmp_path: Path) -> None:
    from sapa.adapters.staff_store import StoreStaffDirectory

    c = make_container(tmp_path / "var")
    c.settings = c.settings.model_copy(update={"sapa_env": "cloud"})  # type: ignore[misc]
    directory = c.staff
    assert isinstance(directory, StoreStaffDirectory)
    assert directory.all() == [] and c.store.staff_version() == 0


def test_the_dashboard_keeps_a_deactivated_officers_name_on_past_work(
    container: Container, flow: Flow, clock: FixedClock
) -> None:
    from sapa.services import dashboard

    c = container
    # GIVEN the Somba Opu counter officer checked a case, then was deactivated
    flow.act(claimed(flow, LOKET), LOKET, "check")
    staff_admin.set_active(c, member(c, ADMIN), LOKET, False)
    # WHEN the dashboard of that day is read (from the rollups, and exactly from the cases)
    today = clock.now().astimezone(ZoneInfo(c.region.timezone)).date()
    filters = dashboard.parse_filters(
        {"from": today.isoformat(), "to": today.isoformat()},
        today=today,
        region=c.region,
        catalogue=c.catalogue,
    )
    # THEN his row still shows his name, not his e-mail
    for read in (dashboard.load, dashboard.load_from_cases):
        names = {o.officer: o.name for o in read(c, filters).officers}
        assert names[LOKET] == "Petugas Loket Somba Opu", read.__name__
