"""The SOP is data: the bundled Gowa SOP, another office's SOP, and malformed SOP files."""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sapa.domain.case import Actor, Case
from sapa.domain.errors import Forbidden, IllegalTransition
from sapa.domain.sla import timeline
from sapa.domain.sop import Sop, default_sop, load_sop

# ---- the bundled Gowa SOP -----------------------------------------------------------------------

# (number, role, mutu baku in seconds, output) exactly as printed in the office's SOP sheet.
GOWA_STEPS = [
    (1, "pemohon", 30, "Percakapan WA"),
    (2, "loket", 60, "Database Buku Tamu"),
    (3, "loket", 60, "Database Buku Tamu"),
    (4, "loket", 600, "Percakapan WA"),
    (5, "verifikator", 60, "Percakapan WA, file permohonan"),
    (6, "operator_siak", 600, "Database kependudukan"),
    (7, "kabid", 30, None),
    (8, "kadis", 30, None),
]


def test_given_bundled_sop_then_it_has_exactly_the_eight_steps_of_the_gowa_sop(sop: Sop) -> None:
    assert [s.number for s in sop.steps] == list(range(1, 9))
    assert sop.id == "gowa-wa-2020"
    assert "Gowa" in sop.office


@pytest.mark.parametrize(("number", "role", "mutu_baku", "output"), GOWA_STEPS)
def test_given_bundled_sop_then_each_step_has_its_role_mutu_baku_and_output(
    sop: Sop, number: int, role: str, mutu_baku: int, output: str | None
) -> None:
    step = sop.steps[number - 1]
    assert step.number == number
    assert step.role == role
    assert step.mutu_baku_seconds == mutu_baku
    if output is not None:
        assert step.output == output
    assert step.kegiatan  # every step says what is done, in Indonesian


def test_given_bundled_sop_then_the_standard_total_is_24_minutes_30_seconds(sop: Sop) -> None:
    assert sop.standard_total_seconds == 1470
    assert timedelta(seconds=sop.standard_total_seconds) == timedelta(minutes=24, seconds=30)


def test_given_bundled_sop_then_only_step_2_is_automatable_and_the_system_may_do_it(
    sop: Sop,
) -> None:
    assert [s.number for s in sop.steps if s.automatable] == [2]
    send_link = sop.transition("send_link", "greeted")
    assert send_link is not None
    assert set(send_link.roles) == {"loket", "system"}
    check = sop.transition("check", "form_submitted")
    assert check is not None
    assert check.roles == ("loket",)


def test_given_bundled_sop_then_steps_chain_state_to_state(sop: Sop) -> None:
    assert sop.steps[0].from_state == ""
    assert sop.steps[0].to_state == sop.initial_state == "greeted"
    # steps 3..8 follow one another; between 2 and 3 the resident fills the guest book
    for prev, nxt in zip(sop.steps[2:], sop.steps[3:], strict=False):
        assert prev.to_state == nxt.from_state
    assert sop.steps[1].to_state == "link_sent"
    assert sop.steps[2].from_state == "form_submitted"


def test_given_bundled_sop_then_lookups_answer_from_the_data(sop: Sop) -> None:
    assert sop.step("input_siak").number == 6
    with pytest.raises(KeyError):
        sop.step("no_such_step")
    assert sop.step_for_event("approve") == sop.step("persetujuan")
    assert sop.step_for_event("cancel") is None
    assert sop.step_waiting_in("entered_in_siak") == sop.step("persetujuan")
    assert sop.step_waiting_in("link_sent") is None  # waiting on the resident
    assert sop.step_producing("entered_in_siak") == sop.step("input_siak")
    assert sop.previous_step(sop.step("persetujuan")) == sop.step("input_siak")
    assert sop.previous_step(sop.steps[0]) is None


def test_given_bundled_sop_then_roles_states_and_settings_are_as_configured(sop: Sop) -> None:
    assert sop.roles == {
        "pemohon",
        "loket",
        "verifikator",
        "operator_siak",
        "kabid",
        "kadis",
        "admin",
        "system",
    }
    assert sop.kecamatan_roles == {"loket"}
    assert sop.terminal_states == {"delivered", "rejected", "cancelled", "expired"}
    assert sop.states == {
        "greeted",
        "link_sent",
        "form_submitted",
        "checked",
        "contacted",
        "forwarded",
        "entered_in_siak",
        "approved",
        "signed",
        "delivered",
        "awaiting_correction",
        "returned",
        "rejected",
        "cancelled",
        "expired",
    }
    assert sop.claim_timeout_seconds == 1800
    assert sop.lead_time_target_seconds == 86400


def test_given_no_path_when_loading_then_the_bundled_sop_is_loaded() -> None:
    assert load_sop().steps == default_sop().steps
    assert default_sop() is default_sop()  # loaded once


# ---- another office's SOP is another file -------------------------------------------------------

OTHER_SOP = """
[sop]
id = "contoh-3-langkah"
title = "Pelayanan Contoh"
office = "Dinas Kependudukan Kabupaten Contoh"
lead_time_target_seconds = 3600
claim_timeout_seconds = 600
kecamatan_roles = ["petugas"]
roles = ["pemohon", "petugas", "kepala", "admin", "system"]
initial_state = "datang"
terminal_states = ["selesai", "batal"]

[[steps]]
number = 1
key = "daftar"
event = "register"
kegiatan = "Mendaftar"
role = "pemohon"
mutu_baku_seconds = 20
output = "Percakapan WA"
from_state = ""
to_state = "datang"

[[steps]]
number = 2
key = "proses"
event = "process"
kegiatan = "Memproses permohonan"
role = "petugas"
mutu_baku_seconds = 300
output = "Berkas"
from_state = "datang"
to_state = "diproses"

[[steps]]
number = 3
key = "ttd"
event = "sign"
kegiatan = "Menandatangani"
role = "kepala"
mutu_baku_seconds = 45
output = "Dokumen"
from_state = "diproses"
to_state = "ditandatangani"

[[transitions]]
event = "return"
from = ["diproses"]
to = "returned"
roles = ["@step"]

[[transitions]]
event = "deliver"
from = ["ditandatangani"]
to = "selesai"
roles = ["system"]

[[transitions]]
event = "cancel"
from = ["datang", "diproses", "returned"]
to = "batal"
roles = ["pemohon", "admin"]
"""


@pytest.fixture
def other_sop(tmp_path: Path) -> Sop:
    path = tmp_path / "sop_contoh.toml"
    path.write_text(OTHER_SOP, encoding="utf-8")
    return load_sop(path)


def test_given_another_offices_file_when_loaded_then_its_steps_and_times_are_used(
    other_sop: Sop,
) -> None:
    assert other_sop.id == "contoh-3-langkah"
    assert [(s.number, s.role, s.mutu_baku_seconds) for s in other_sop.steps] == [
        (1, "pemohon", 20),
        (2, "petugas", 300),
        (3, "kepala", 45),
    ]
    assert other_sop.standard_total_seconds == 365
    assert other_sop.kecamatan_roles == {"petugas"}
    assert other_sop.claim_timeout_seconds == 600


def test_given_another_offices_sop_when_a_case_runs_then_the_case_machinery_is_unchanged(
    other_sop: Sop,
) -> None:
    t0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    petugas = Actor(id="p-1", role="petugas", kecamatan="K1")
    petugas_lain = Actor(id="p-2", role="petugas", kecamatan="K1")
    kepala = Actor(id="k-1", role="kepala")
    case = Case.open(
        other_sop,
        case_id="c-9",
        reg_no="CTH-1",
        kecamatan="K1",
        phone_number_id="x",
        wa_id="628111",
        applicant_name="Budi",
        at=t0,
    )
    assert case.state == "datang"
    assert case.waiting_step(other_sop) == other_sop.step("proses")
    assert case.allowed_events(other_sop, petugas, t0) == ["process"]
    assert case.allowed_events(other_sop, Actor.applicant("628111"), t0) == ["cancel"]

    # the Gowa events mean nothing here
    with pytest.raises(IllegalTransition):
        case.apply(other_sop, "check", petugas, t0)

    case.claim(other_sop, petugas, t0 + timedelta(seconds=10))
    case.apply(other_sop, "process", petugas, t0 + timedelta(seconds=400))  # 390 s > 300 s
    assert case.state == "diproses"

    # the head returns the case exactly one step, and only a petugas can redo it
    case.apply(other_sop, "return", kepala, t0 + timedelta(seconds=410))
    assert (case.state, case.returned_to) == ("returned", "proses")
    with pytest.raises(IllegalTransition):
        case.apply(other_sop, "process", kepala, t0 + timedelta(seconds=420))
    case.apply(other_sop, "process", petugas_lain, t0 + timedelta(seconds=430))
    assert (case.state, case.returned_to) == ("diproses", None)

    case.apply(other_sop, "sign", kepala, t0 + timedelta(seconds=460))
    case.apply(other_sop, "deliver", Actor.system(), t0 + timedelta(seconds=470))
    assert case.state == "selesai"
    assert not case.is_open(other_sop)

    tl = timeline(other_sop, case, t0 + timedelta(days=1))
    assert tl.finished
    assert tl.lead_time_seconds == 470
    assert tl.standard_total_seconds == 365
    assert tl.lead_time_target_seconds == 3600
    assert [t.step.key for t in tl.breaches] == ["proses"]
    assert [t.mutu_baku_seconds for t in tl.steps] == [20, 300, 45, 300, 45]
    assert [e.seq for e in case.new_events] == list(range(1, len(case.new_events) + 1))


def test_given_another_offices_sop_when_an_officer_of_another_kecamatan_acts_then_forbidden(
    other_sop: Sop,
) -> None:
    t0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    case = Case.open(
        other_sop,
        case_id="c-9",
        reg_no="CTH-1",
        kecamatan="K1",
        phone_number_id="x",
        wa_id="628111",
        applicant_name="Budi",
        at=t0,
    )
    with pytest.raises(Forbidden):
        case.apply(other_sop, "process", Actor(id="p-9", role="petugas", kecamatan="K2"), t0)


# ---- malformed SOP files ------------------------------------------------------------------------


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sop.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def _with_numbers(numbers: list[int]) -> str:
    """OTHER_SOP with its three steps renumbered, in file order, to `numbers`."""
    given = iter(numbers)
    return re.sub(r"(?m)^number = \d+$", lambda _: f"number = {next(given)}", OTHER_SOP)


@pytest.mark.parametrize(
    "numbers", [[2, 1, 3], [1, 3, 2], [1, 1, 2], [0, 1, 2], [2, 3, 4], [1, 2, 4]]
)
def test_given_steps_out_of_order_when_loading_then_value_error(
    tmp_path: Path, numbers: list[int]
) -> None:
    with pytest.raises(ValueError, match="numbered"):
        load_sop(_write(tmp_path, _with_numbers(numbers)))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('role = "petugas"', 'role = "satpam"'),  # a step performed by an unknown role
        ('role = "kepala"', 'role = "bupati"'),
        ('role = "pemohon"', 'role = "tamu"'),  # even the first step, which has no transition
        ('roles = ["system"]', 'roles = ["robot"]'),  # a transition naming an unknown role
        ('roles = ["pemohon", "admin"]', 'roles = ["pemohon", "superadmin"]'),
    ],
)
def test_given_an_unknown_role_when_loading_then_value_error(
    tmp_path: Path, old: str, new: str
) -> None:
    assert old in OTHER_SOP
    with pytest.raises(ValueError, match="role"):
        load_sop(_write(tmp_path, OTHER_SOP.replace(old, new, 1)))


def test_given_two_loads_of_one_file_then_the_sops_are_equal_and_hashable() -> None:
    # a frozen value object: usable as a dict key or a functools.cache argument
    assert load_sop() == default_sop()
    assert hash(load_sop()) == hash(default_sop())
    assert len({load_sop(), default_sop()}) == 1
