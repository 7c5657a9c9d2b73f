"""Shared helpers for the pure domain tests: times, actors, and cases driven to any state.

Everything here builds cases through the public commands (`Case.open`, `apply`), so a case
"in state X" is always one that a real sequence of SOP moves can produce.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import pytest

from sapa.domain.case import Actor, Case
from sapa.domain.sop import Sop, default_sop

T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)  # 09:00 WITA, a Monday morning at the office
KECAMATAN = "730608"  # Somba Opu
OTHER_KECAMATAN = "730601"  # Bontonompo
WA_ID = "6281234567890"
OTHER_WA_ID = "6285298765432"


def at(seconds: float) -> datetime:
    """T0 plus `seconds`."""
    return T0 + timedelta(seconds=seconds)


@cache
def raw_sop() -> dict[str, Any]:
    """The bundled SOP file as plain TOML data, read without going through `sapa.domain.sop`."""
    text = resources.files("sapa.data").joinpath("sop_gowa.toml").read_text("utf-8")
    return tomllib.loads(text)


def actor(role: str, *, kecamatan: str = KECAMATAN, wa_id: str = WA_ID, n: int = 1) -> Actor:
    """A well-formed actor of `role` for a case of `kecamatan` opened by `wa_id`."""
    if role == "pemohon":
        return Actor.applicant(wa_id)
    if role == "system":
        return Actor.system()
    return Actor(
        id=f"{role}-{n}",
        role=role,
        kecamatan=kecamatan if role == "loket" else None,
        name=f"{role} {n}",
    )


def new_case(sop: Sop | None = None, *, case_id: str = "case-1", when: datetime = T0) -> Case:
    return Case.open(
        sop or default_sop(),
        case_id=case_id,
        reg_no="GWA-20260105-0001",
        kecamatan=KECAMATAN,
        phone_number_id="demo-730608",
        wa_id=WA_ID,
        applicant_name="Andi Baso",
        at=when,
    )


# The happy path of the Gowa SOP as (event, role, state reached). Written out by hand on purpose:
# it is the specification the state machine is checked against.
HAPPY_PATH: tuple[tuple[str, str, str], ...] = (
    ("send_link", "loket", "link_sent"),
    ("submit_form", "pemohon", "form_submitted"),
    ("check", "loket", "checked"),
    ("contact", "loket", "contacted"),
    ("forward", "verifikator", "forwarded"),
    ("enter_siak", "operator_siak", "entered_in_siak"),
    ("approve", "kabid", "approved"),
    ("sign", "kadis", "signed"),
    ("deliver", "system", "delivered"),
)
HAPPY_STATES = ("greeted", *(state for _, _, state in HAPPY_PATH))

# Who performs the step waiting in each state of the happy path (the "@step" role).
STEP_ROLE_IN = {
    "form_submitted": "loket",
    "checked": "loket",
    "contacted": "verifikator",
    "forwarded": "operator_siak",
    "entered_in_siak": "kabid",
    "approved": "kadis",
}

# How to reach the states off the happy path: (state to start from, event, role).
DETOURS: dict[str, tuple[str, str, str]] = {
    "awaiting_correction": ("form_submitted", "request_correction", "loket"),
    "rejected": ("form_submitted", "reject", "admin"),
    "cancelled": ("greeted", "cancel", "pemohon"),
    "expired": ("greeted", "expire", "system"),
}

RETURN_ORIGINS = ("contacted", "forwarded", "entered_in_siak", "approved")


def drive(case: Case, sop: Sop, until: str, *, start: float = 0.0, step: float = 10.0) -> float:
    """Apply the happy path to `case` until it is in `until`; returns the last time used."""
    t = start
    for event, role, reached in HAPPY_PATH:
        if case.state == until:
            break
        t += step
        case.apply(sop, event, actor(role), at(t))
        assert case.state == reached
    assert case.state == until, f"{until} is not on the happy path"
    return t


def case_in(state: str, returned_from: str | None = None) -> Case:
    """A fresh case (deep copy) in `state`; for "returned", returned from `returned_from`."""
    return _case_in(state, returned_from).model_copy(deep=True)


@cache
def _case_in(state: str, returned_from: str | None) -> Case:
    sop = default_sop()
    case = new_case(sop)
    if state in HAPPY_STATES:
        drive(case, sop, state)
    elif state == "returned":
        origin = returned_from or "entered_in_siak"
        t = drive(case, sop, origin)
        case.apply(sop, "return", actor(STEP_ROLE_IN[origin]), at(t + 10), reason="kurang jelas")
    else:
        origin, event, role = DETOURS[state]
        t = drive(case, sop, origin)
        case.apply(sop, event, actor(role), at(t + 10), reason="uji")
    assert case.state == state
    case.new_events.clear()
    return case


# ---- fixtures (test modules use these rather than importing this file) --------------------------


@pytest.fixture
def sop() -> Sop:
    return default_sop()


@pytest.fixture
def raw() -> dict[str, Any]:
    return raw_sop()


@pytest.fixture
def make_actor() -> Callable[..., Actor]:
    return actor


@pytest.fixture
def make_case() -> Callable[..., Case]:
    return new_case


@pytest.fixture
def case_at() -> Callable[..., Case]:
    """`case_at(state, returned_from=None)`: a fresh case in that state."""
    return case_in


@pytest.fixture
def drive_to() -> Callable[..., float]:
    """`drive_to(case, sop, state)`: walk the happy path until `state`."""
    return drive


@pytest.fixture
def clock() -> Callable[[float], datetime]:
    """`clock(s)`: the test epoch T0 plus s seconds."""
    return at
