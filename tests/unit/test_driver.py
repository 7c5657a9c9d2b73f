"""sapa.dev.driver, the one walk of a case along the SOP that tests, benchmarks and the demo use:
it reads the order from the SOP file and the officers from the staff file, so it must agree
with the hand-written HAPPY_PATH (the independent oracle, conftest.py) and keep driving when
another SOP renames or reorders steps. Walked here on the domain alone (`DomainDesk`)."""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from sapa.dev.driver import (
    Office,
    Standing,
    StepInput,
    Stuck,
    happy_path,
    step,
    walk,
)
from sapa.domain.case import Actor
from sapa.domain.sop import Sop, default_sop, load_sop
from sapa.ports import StaffMember

from .conftest import HAPPY_PATH, KECAMATAN, OTHER_KECAMATAN, T0, WA_ID, new_case

LOKET = StaffMember("loket@x", "Loket", ("loket",), KECAMATAN)
STAFF = (
    StaffMember("loket.lain@x", "Loket lain", ("loket",), OTHER_KECAMATAN),
    LOKET,
    StaffMember("loket.kedua@x", "Loket kedua", ("loket",), KECAMATAN),
    StaffMember("verifikator@x", "Verifikator", ("verifikator",)),
    StaffMember("operator@x", "Operator", ("operator_siak",)),
    StaffMember("kabid@x", "Kabid", ("kabid",)),
    StaffMember("kadis@x", "Kadis", ("kadis",)),
    StaffMember("admin@x", "Admin", ("admin",)),
)
# What the system does by itself in a state (the test's own knowledge of the Gowa SOP).
SYSTEM_MOVES = {"greeted": "send_link", "signed": "deliver"}


class DomainDesk:
    """A desk on one in-memory case, moved with the domain's own commands. With `lossy`, the
    answer of every other action is lost (it was done all the same), like a server killed
    just after the work."""

    def __init__(self, sop: Sop, *, lossy: bool = False, **modes: str) -> None:
        self._office = Office(sop, STAFF, modes)
        self.case = new_case(sop)
        self.lossy = lossy
        self.acted: list[tuple[str, str, dict[str, str], tuple[str, ...]]] = []
        self.t = 0

    @property
    def office(self) -> Office:
        return self._office

    def _at(self) -> Any:
        self.t += 10
        return T0 + timedelta(seconds=self.t)

    def look(self, case_id: str) -> Standing:
        run = self.case.current_run(self.office.sop)
        return Standing(
            state=self.case.state,
            kecamatan=self.case.kecamatan,
            reg_no=self.case.reg_no,
            claimed_by=run.claimed_by if run else None,
            events=tuple(e.event for e in self.case.new_events),
        )

    def act(self, email: str, case_id: str, action: str, given: StepInput) -> bool:
        sop = self.office.sop
        staff = next(s for s in STAFF if s.email == email)
        actor = Actor(id=email, role=staff.roles[0], kecamatan=staff.kecamatan, name=staff.name)
        if action == "claim":
            self.case.claim(sop, actor, self._at())
        else:
            self.case.apply(sop, action, actor, self._at())
        self.acted.append((email, action, given.form, tuple(given.files)))
        return not (self.lossy and len(self.acted) % 2)

    def submit(self, case_id: str) -> None:
        self.case.apply(self.office.sop, "submit_form", Actor.applicant(WA_ID), self._at())

    def settle(self, case_id: str) -> None:
        pass

    def wait(self, case_id: str, standing: Standing) -> None:
        event = SYSTEM_MOVES.get(standing.state)
        if event is None:
            raise Stuck(f"nothing moves {standing.state}")
        self.case.apply(self.office.sop, event, Actor.system(), self._at())


CONTACT = (
    'key = "hubungi"\nevent = "contact"\nkegiatan = "Menghubungi nomor WA pemohon"\nrole = "loket"'
)
FORWARD = (
    'key = "teruskan"\nevent = "forward"\n'
    'kegiatan = "Mengirim file dan data permohonan"\nrole = "verifikator"'
)


def sop_file(tmp_path: Path, *changes: tuple[str, str]) -> Sop:
    """The bundled SOP file with `changes` (old, new) made to its text, loaded from disk."""
    text = resources.files("sapa.data").joinpath("sop_gowa.toml").read_text("utf-8")
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "sop_lain.toml"
    path.write_text(text, "utf-8")
    return load_sop(path)


def trail(desk: DomainDesk) -> list[str]:
    return [e.event for e in desk.case.new_events if e.event != "claim"]


def test_the_path_is_the_hand_written_happy_path_of_the_gowa_sop() -> None:
    path = happy_path(default_sop())
    assert (path[0].event, path[0].role, path[0].to_state) == ("greet", "pemohon", "greeted")
    assert tuple((m.event, m.role, m.to_state) for m in path[1:]) == HAPPY_PATH


def test_a_walk_does_the_happy_path_in_order_each_step_by_its_officer() -> None:
    desk = DomainDesk(default_sop())
    end = walk(desk, "case-1", "delivered")
    assert end.state == "delivered"
    assert trail(desk) == ["greet", *(event for event, _, _ in HAPPY_PATH)]
    # each officer claims the step, then does it; the counter is the case's kecamatan's first
    officers = [(email, action) for email, action, _, _ in desk.acted]
    assert officers == [
        ("loket@x", "claim"),
        ("loket@x", "check"),
        ("loket@x", "claim"),
        ("loket@x", "contact"),
        ("verifikator@x", "claim"),
        ("verifikator@x", "forward"),
        ("operator@x", "claim"),
        ("operator@x", "enter_siak"),
        ("kabid@x", "claim"),
        ("kabid@x", "approve"),
        ("kadis@x", "claim"),
        ("kadis@x", "sign"),
    ]
    # step 6 carries the SIAK reference and its draft
    (siak,) = [a for a in desk.acted if a[1] == "enter_siak"]
    assert siak[2] == {"siak_ref": f"SIAK-{desk.case.reg_no}"} and siak[3] == ("draft",)


def test_a_walk_stops_where_it_is_told_and_carries_on_from_there() -> None:
    desk = DomainDesk(default_sop())
    assert walk(desk, "case-1", "contacted", claim=False).state == "contacted"
    assert [a for _, a, _, _ in desk.acted] == ["check", "contact"]
    walk(desk, "case-1", "approved", claim=False)
    assert trail(desk)[-3:] == ["forward", "enter_siak", "approve"]
    # a case already past the goal is left alone
    assert walk(desk, "case-1", "checked").state == "approved"


def test_a_sop_with_a_step_renamed_and_two_swapped_still_drives(tmp_path: Path) -> None:
    # step 7's event renamed; steps 4 and 5 swap who does what (forward before contact)
    sop = sop_file(
        tmp_path,
        ('event = "approve"', 'event = "setujui"'),
        (CONTACT, "<step 4>"),
        (FORWARD, CONTACT),
        ("<step 4>", FORWARD),
    )
    desk = DomainDesk(sop)
    walk(desk, "case-1", "delivered", passphrase="rahasia")
    assert [(e, a) for e, a, _, _ in desk.acted if a != "claim"] == [
        ("loket@x", "check"),
        ("verifikator@x", "forward"),
        ("loket@x", "contact"),
        ("operator@x", "enter_siak"),
        ("kabid@x", "setujui"),
        ("kadis@x", "sign"),
    ]
    # the signer's passphrase goes with the signature only
    assert [form for _, a, form, _ in desk.acted if form.get("passphrase")] == [
        {"passphrase": "rahasia"}
    ]
    assert desk.case.state == "delivered"


def test_in_a_manual_kecamatan_the_counter_sends_the_link() -> None:
    desk = DomainDesk(default_sop(), **{KECAMATAN: "manual"})
    walk(desk, "case-1", "link_sent")
    assert [(e, a) for e, a, _, _ in desk.acted] == [
        ("loket@x", "claim"),
        ("loket@x", "send_link"),
    ]


def test_answers_lost_after_the_work_never_make_the_walk_repeat_it() -> None:
    desk = DomainDesk(default_sop(), lossy=True)
    walk(desk, "case-1", "delivered")
    events = trail(desk)
    assert events == ["greet", *(event for event, _, _ in HAPPY_PATH)]
    claims = [e for e in desk.case.new_events if e.event == "claim"]
    assert len(claims) == 6  # one per officer's step, none taken twice


def test_one_step_does_only_itself_once_the_case_waits_for_it() -> None:
    desk = DomainDesk(default_sop())
    walk(desk, "case-1", "form_submitted")
    # a step the case does not wait for yet is waited for, never done ahead of its time
    with pytest.raises(Stuck, match="form_submitted"):
        step(desk, "case-1", "contact")
    assert desk.acted == []
    assert step(desk, "case-1", "check") is True
    assert desk.case.state == "checked"
    assert [a for _, a, _, _ in desk.acted] == ["claim", "check"]


def test_a_case_off_the_happy_path_stops_the_walk() -> None:
    desk = DomainDesk(default_sop())
    walk(desk, "case-1", "form_submitted")
    desk.case.apply(
        default_sop(),
        "request_correction",
        Actor(id="loket@x", role="loket", kecamatan=KECAMATAN),
        T0,
    )
    with pytest.raises(Stuck, match="awaiting_correction"):
        walk(desk, "case-1", "delivered")


def test_the_officer_of_a_step_is_the_first_of_the_staff_file_holding_its_role() -> None:
    office = Office(default_sop(), STAFF)
    assert office.officer("loket", KECAMATAN) == "loket@x"  # not the kecamatan's second
    assert office.officer("loket", OTHER_KECAMATAN) == "loket.lain@x"
    assert office.officer("kabid", OTHER_KECAMATAN) == "kabid@x"  # not kecamatan-bound
    assert office.first_officer(KECAMATAN) == "loket@x"
    assert office.officers(KECAMATAN) == [
        "loket@x",
        "verifikator@x",
        "operator@x",
        "kabid@x",
        "kadis@x",
    ]
