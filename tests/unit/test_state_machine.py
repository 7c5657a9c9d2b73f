"""The case state machine against the bundled SOP: the full (state, event, role) table and the
rules around it (happy path, kecamatan and applicant guards, claims, returns, corrections, audit).

The expected answers of the table are derived here straight from the TOML file, independently
of `sapa.domain.sop`, so a mistake in the SOP parser cannot hide a mistake in the state machine.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import pytest

from sapa.domain.case import Actor, Case
from sapa.domain.errors import Conflict, Forbidden, IllegalTransition, SapaError
from sapa.domain.sop import Sop, default_sop

SOP = default_sop()
RAW: dict[str, Any] = tomllib.loads(
    resources.files("sapa.data").joinpath("sop_gowa.toml").read_text("utf-8")
)
RAW_STEPS: list[dict[str, Any]] = RAW["steps"]
RAW_TRANSITIONS: list[dict[str, Any]] = RAW["transitions"]

STATES = sorted(SOP.states)
EVENTS = sorted({s["event"] for s in RAW_STEPS} | {t["event"] for t in RAW_TRANSITIONS} | {"claim"})
ROLES = sorted(SOP.roles)
RETURN_ORIGINS = next(t["from"] for t in RAW_TRANSITIONS if t["event"] == "return")

# Every state, with "returned" once per state a case can be returned from (the step to redo
# differs); 18 variants.
VARIANTS: list[tuple[str, str | None]] = [
    (state, origin)
    for state in STATES
    for origin in (RETURN_ORIGINS if state == "returned" else [None])
]


def _variant_id(v: tuple[str, str | None]) -> str:
    return v[0] if v[1] is None else f"{v[0]}@{v[1]}"


# ---- the expected truth, from the raw TOML ------------------------------------------------------


def _raw_waiting_step(state: str, returned_from: str | None) -> dict[str, Any] | None:
    """The step someone must do next. After a return it is the step that produced the state
    the case was returned from: returning goes back exactly one step."""
    if state == "returned":
        return next(s for s in RAW_STEPS if s["to_state"] == returned_from)
    return next((s for s in RAW_STEPS if s.get("from_state") and s["from_state"] == state), None)


def expected_move(state: str, returned_from: str | None, event: str, role: str) -> str | None:
    """The state `role` moves the case to with `event`, or None if the SOP forbids it."""
    waiting = _raw_waiting_step(state, returned_from)
    for s in RAW_STEPS:
        if s["event"] == event and s.get("from_state") == state and state:
            roles = {s["role"], "system"} if s.get("automatable") else {s["role"]}
            if role in roles:
                return str(s["to_state"])
    redo = state == "returned" and waiting is not None and event == waiting["event"]
    if redo and waiting is not None and role == waiting["role"]:
        return str(waiting["to_state"])
    for t in RAW_TRANSITIONS:
        if t["event"] != event or state not in t["from"]:
            continue
        roles = {r for r in t["roles"] if r != "@step"}
        if "@step" in t["roles"] and waiting is not None:
            roles.add(waiting["role"])
        if role in roles:
            return str(t["to"])
    return None


def expected_claim(state: str, returned_from: str | None, role: str) -> bool:
    waiting = _raw_waiting_step(state, returned_from)
    if waiting is None:
        return False
    return role == waiting["role"] or (role == "system" and bool(waiting.get("automatable")))


def _later(case: Case, seconds: float = 60) -> datetime:
    return case.updated_at + timedelta(seconds=seconds)


def test_given_the_toml_then_the_parsed_sop_has_the_same_states_events_and_roles() -> None:
    raw_states = {RAW["sop"]["initial_state"], *RAW["sop"]["terminal_states"]}
    for s in RAW_STEPS:
        raw_states |= {s["from_state"], s["to_state"]} - {""}
    for t in RAW_TRANSITIONS:
        raw_states |= {*t["from"], t["to"]}
    assert set(STATES) == raw_states
    assert len(VARIANTS) == 18
    assert set(ROLES) == set(RAW["sop"]["roles"])
    assert len(EVENTS) == 16


# ---- the table ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_table_apply_succeeds_exactly_when_the_sop_allows_it(
    case_at: Callable[..., Case],
    make_actor: Callable[..., Actor],
    variant: tuple[str, str | None],
    event: str,
    role: str,
) -> None:
    # GIVEN a case in `state`, and a well-formed actor of `role` (right kecamatan, right wa_id)
    state, returned_from = variant
    case = case_at(state, returned_from)
    who = make_actor(role)
    before = case.model_dump()
    seq = case.event_seq
    now = _later(case)
    expected = expected_move(state, returned_from, event, role)

    if expected is not None:
        # WHEN the SOP allows the move THEN it happens and is audited once
        audit = case.apply(SOP, event, who, now)
        assert case.state == expected
        assert case.new_events == [audit]
        assert (audit.seq, audit.event, audit.actor_id, audit.role) == (
            seq + 1,
            event,
            who.id,
            role,
        )
        assert (audit.from_state, audit.to_state) == (state, expected)
        assert case.updated_at == now
    else:
        # WHEN the SOP does not allow it THEN IllegalTransition, and nothing changed
        with pytest.raises(IllegalTransition) as info:
            case.apply(SOP, event, who, now)
        err = info.value
        assert (err.case_id, err.state, err.event, err.actor) == (case.id, state, event, who.id)
        assert err.detail == {"case_id": case.id, "state": state, "event": event, "actor": who.id}
        assert err.message.startswith(f"Tindakan '{event}' tidak dapat dilakukan oleh ")
        assert case.reg_no in err.message
        assert case.model_dump() == before
        assert case.new_events == []


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_table_allowed_events_lists_exactly_what_the_sop_allows(
    case_at: Callable[..., Case],
    make_actor: Callable[..., Actor],
    variant: tuple[str, str | None],
    role: str,
) -> None:
    state, returned_from = variant
    case = case_at(state, returned_from)
    expected = {e for e in EVENTS if expected_move(state, returned_from, e, role) is not None}
    assert set(case.allowed_events(SOP, make_actor(role), _later(case))) == expected


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_table_claim_succeeds_exactly_for_the_role_of_the_waiting_step(
    case_at: Callable[..., Case],
    make_actor: Callable[..., Actor],
    variant: tuple[str, str | None],
    role: str,
) -> None:
    state, returned_from = variant
    case = case_at(state, returned_from)
    who = make_actor(role)
    now = _later(case)
    if expected_claim(state, returned_from, role):
        audit = case.claim(SOP, who, now)
        run = case.current_run(SOP)
        assert run is not None
        assert (run.claimed_by, run.claimed_at) == (who.id, now)
        assert (audit.event, audit.from_state, audit.to_state) == ("claim", state, state)
        assert case.state == state
    else:
        with pytest.raises(IllegalTransition) as info:
            case.claim(SOP, who, now)
        assert (info.value.event, info.value.state, info.value.actor) == ("claim", state, who.id)
        assert case.new_events == []


# ---- the happy path -----------------------------------------------------------------------------

HAPPY = [
    ("greeted", None, None),
    ("link_sent", "send_link", "loket"),
    ("form_submitted", "submit_form", "pemohon"),
    ("checked", "check", "loket"),
    ("contacted", "contact", "loket"),
    ("forwarded", "forward", "verifikator"),
    ("entered_in_siak", "enter_siak", "operator_siak"),
    ("approved", "approve", "kabid"),
    ("signed", "sign", "kadis"),
    ("delivered", "deliver", "system"),
]


@pytest.mark.parametrize("link_sender", ["loket", "system"])
def test_given_a_new_case_when_every_step_is_done_by_its_role_then_it_is_delivered(
    make_case: Callable[..., Case],
    make_actor: Callable[..., Actor],
    clock: Callable[[float], datetime],
    link_sender: str,
) -> None:
    case = make_case()
    states = [case.state]
    t = 0.0
    for _state, event, role in HAPPY[1:]:
        assert event is not None and role is not None
        if event == "send_link":
            role = link_sender
        who = make_actor(role)
        # officers take the case first ("ambil"), then finish it some time later
        if role not in ("pemohon", "system"):
            t += 5
            case.claim(SOP, who, clock(t))
        t += 20
        case.apply(SOP, event, who, clock(t))
        states.append(case.state)

    assert states == [s for s, _, _ in HAPPY]
    assert not case.is_open(SOP)
    assert case.closed_reason is None
    assert case.current_run(SOP) is None

    # THEN each SOP step ran exactly once, in order, with ready ≤ claimed ≤ done and its doer
    assert [r.step for r in case.steps] == [s.key for s in SOP.steps]
    doers = {"sapa": "pemohon", "kirim_tautan": link_sender}
    for _state, event, role in HAPPY[2:]:
        step = SOP.step_for_event(str(event))
        if step is not None:
            doers[step.key] = str(role)
    for run in case.steps:
        assert run.ready_at is not None
        assert run.claimed_at is not None
        assert run.done_at is not None
        assert run.ready_at <= run.claimed_at <= run.done_at
        assert run.done_by == make_actor(doers[run.step]).id
        assert run.claimed_by == run.done_by
        assert run.outcome == SOP.step(run.step).event
    # officers' runs were claimed before they were done
    [siak] = case.runs("input_siak")
    assert siak.claimed_at is not None and siak.done_at is not None
    assert siak.claimed_at < siak.done_at


def test_given_a_greeting_when_the_case_opens_then_step_1_is_done_and_step_2_waits(
    sop: Sop, make_case: Callable[..., Case], clock: Callable[[float], datetime]
) -> None:
    case = make_case()
    assert case.state == "greeted"
    assert case.created_at == case.updated_at == clock(0)
    first, second = case.steps
    assert (first.step, first.done_by, first.outcome) == ("sapa", f"wa:{case.wa_id}", "greet")
    assert first.ready_at == first.claimed_at == first.done_at == clock(0)
    assert (second.step, second.ready_at, second.claimed_at, second.done_at) == (
        "kirim_tautan",
        clock(0),
        None,
        None,
    )
    assert case.waiting_step(sop) == sop.step("kirim_tautan")
    assert case.current_run(sop) is second
    [greet] = case.new_events
    assert (greet.seq, greet.event, greet.from_state, greet.to_state, greet.role) == (
        1,
        "greet",
        "",
        "greeted",
        "pemohon",
    )
    assert greet.detail == {"reg_no": case.reg_no}


# ---- guards -------------------------------------------------------------------------------------


def test_given_a_loket_of_another_kecamatan_when_acting_then_forbidden(
    sop: Sop, case_at: Callable[..., Case], make_actor: Callable[..., Actor]
) -> None:
    case = case_at("form_submitted")
    stranger = make_actor("loket", kecamatan="730601")
    nobody = Actor(id="loket-x", role="loket")  # no kecamatan at all
    for who in (stranger, nobody):
        with pytest.raises(Forbidden) as info:
            case.apply(sop, "check", who, _later(case))
        assert "kecamatan Anda" in info.value.message
        with pytest.raises(Forbidden):
            case.claim(sop, who, _later(case))
        assert case.allowed_events(sop, who, _later(case)) == []
    assert case.state == "form_submitted"
    assert case.new_events == []

    # WHEN the loket of the case's own kecamatan acts THEN it works
    case.apply(sop, "check", make_actor("loket"), _later(case))
    assert case.state == "checked"


def test_given_another_wa_number_when_it_submits_or_cancels_then_refused(
    sop: Sop, case_at: Callable[..., Case], make_actor: Callable[..., Actor]
) -> None:
    case = case_at("link_sent")
    intruder = make_actor("pemohon", wa_id="6285298765432")
    for event in ("submit_form", "cancel"):
        with pytest.raises(IllegalTransition) as info:
            case.apply(sop, event, intruder, _later(case))
        assert info.value.actor == intruder.id
    assert case.allowed_events(sop, intruder, _later(case)) == []
    assert case.state == "link_sent"

    case.apply(sop, "submit_form", make_actor("pemohon"), _later(case))
    assert case.state == "form_submitted"


def test_given_a_system_actor_then_it_may_do_only_the_automatable_step_and_its_own_moves(
    sop: Sop, case_at: Callable[..., Case]
) -> None:
    case = case_at("form_submitted")
    with pytest.raises(IllegalTransition):
        case.apply(sop, "check", Actor.system(), _later(case))
    with pytest.raises(IllegalTransition):
        case.claim(sop, Actor.system(), _later(case))
    greeted = case_at("greeted")
    greeted.apply(sop, "send_link", Actor.system(), _later(greeted))
    assert greeted.state == "link_sent"
    assert greeted.runs("kirim_tautan")[0].done_by == "system"


# ---- claims -------------------------------------------------------------------------------------


@pytest.fixture
def claimed(case_at: Callable[..., Case], make_actor: Callable[..., Actor]) -> Case:
    """A case waiting for the check (step 3), claimed by loket-1 at T."""
    case = case_at("form_submitted")
    case.claim(SOP, make_actor("loket", n=1), _later(case))
    case.new_events.clear()
    return case


def _claim_time(case: Case) -> datetime:
    run = case.current_run(SOP)
    assert run is not None and run.claimed_at is not None
    return run.claimed_at


def test_given_a_claim_when_another_officer_acts_then_conflict(
    claimed: Case, make_actor: Callable[..., Actor]
) -> None:
    other = make_actor("loket", n=2)
    t = _claim_time(claimed)
    for when in (t, t + timedelta(seconds=SOP.claim_timeout_seconds - 1)):
        with pytest.raises(Conflict) as info:
            claimed.apply(SOP, "check", other, when)
        assert not isinstance(info.value, IllegalTransition)
        assert "sedang ditangani oleh loket-1" in info.value.message
        with pytest.raises(Conflict):
            claimed.apply(SOP, "request_correction", other, when)
        with pytest.raises(Conflict):
            claimed.claim(SOP, other, when)
        assert claimed.allowed_events(SOP, other, when) == []
    assert claimed.state == "form_submitted"
    assert claimed.new_events == []


def test_given_a_claim_when_the_claimer_acts_then_it_works_and_keeps_the_claim_time(
    claimed: Case, make_actor: Callable[..., Actor]
) -> None:
    t = _claim_time(claimed)
    claimed.apply(SOP, "check", make_actor("loket", n=1), t + timedelta(seconds=30))
    [run] = claimed.runs("periksa")
    assert (run.claimed_at, run.done_at, run.done_by) == (t, t + timedelta(seconds=30), "loket-1")


def test_given_an_abandoned_claim_when_the_timeout_has_passed_then_another_officer_may_act(
    claimed: Case, make_actor: Callable[..., Actor]
) -> None:
    other = make_actor("loket", n=2)
    later = _claim_time(claimed) + timedelta(seconds=SOP.claim_timeout_seconds + 1)
    assert "check" in claimed.allowed_events(SOP, other, later)
    claimed.apply(SOP, "check", other, later)
    [run] = claimed.runs("periksa")
    assert (run.done_by, claimed.state) == ("loket-2", "checked")


def test_given_an_abandoned_claim_when_another_officer_claims_then_the_claim_moves(
    claimed: Case, make_actor: Callable[..., Actor]
) -> None:
    later = _claim_time(claimed) + timedelta(seconds=SOP.claim_timeout_seconds + 1)
    claimed.claim(SOP, make_actor("loket", n=2), later)
    run = claimed.current_run(SOP)
    assert run is not None
    assert (run.claimed_by, run.claimed_at) == ("loket-2", later)


def test_given_a_claim_when_the_claimer_releases_then_another_officer_may_act_at_once(
    claimed: Case, make_actor: Callable[..., Actor]
) -> None:
    t = _claim_time(claimed) + timedelta(seconds=5)
    audit = claimed.release(SOP, make_actor("loket", n=1), t)
    assert (audit.event, audit.from_state, audit.to_state) == (
        "release",
        "form_submitted",
        "form_submitted",
    )
    run = claimed.current_run(SOP)
    assert run is not None
    assert (run.claimed_by, run.claimed_at) == (None, None)
    claimed.apply(SOP, "check", make_actor("loket", n=2), t + timedelta(seconds=1))
    assert claimed.state == "checked"


def test_given_a_claim_when_someone_else_releases_it_then_illegal(
    claimed: Case, make_actor: Callable[..., Actor]
) -> None:
    with pytest.raises(IllegalTransition) as info:
        claimed.release(SOP, make_actor("loket", n=2), _later(claimed))
    assert info.value.event == "release"
    run = claimed.current_run(SOP)
    assert run is not None and run.claimed_by == "loket-1"


def test_given_no_claim_when_releasing_then_illegal(
    case_at: Callable[..., Case], make_actor: Callable[..., Actor]
) -> None:
    case = case_at("form_submitted")
    with pytest.raises(IllegalTransition):
        case.release(SOP, make_actor("loket"), _later(case))
    link_sent = case_at("link_sent")  # no step waits: nothing to release
    with pytest.raises(IllegalTransition):
        link_sent.release(SOP, make_actor("loket"), _later(link_sent))


def test_given_a_claim_when_the_claimer_claims_again_then_an_event_but_the_same_claim(
    claimed: Case, make_actor: Callable[..., Actor]
) -> None:
    t = _claim_time(claimed)
    audit = claimed.claim(SOP, make_actor("loket", n=1), t + timedelta(seconds=10))
    assert audit.event == "claim"
    assert _claim_time(claimed) == t


def test_given_a_claim_then_admin_may_still_reject_and_the_applicant_may_still_cancel(
    claimed: Case, make_actor: Callable[..., Actor]
) -> None:
    when = _claim_time(claimed) + timedelta(seconds=1)
    other = claimed.model_copy(deep=True)
    claimed.apply(SOP, "reject", make_actor("admin"), when, reason="data palsu")
    assert (claimed.state, claimed.closed_reason) == ("rejected", "data palsu")
    other.apply(SOP, "cancel", make_actor("pemohon"), when)
    assert (other.state, other.closed_reason) == ("cancelled", "cancel")


# ---- returns ------------------------------------------------------------------------------------


def test_given_entered_in_siak_when_kabid_returns_then_only_operator_siak_can_redo_the_input(
    case_at: Callable[..., Case], make_actor: Callable[..., Actor]
) -> None:
    case = case_at("entered_in_siak")
    t = _later(case)
    audit = case.apply(SOP, "return", make_actor("kabid"), t, reason="NIK salah ketik")
    assert (case.state, case.returned_to) == ("returned", "input_siak")
    assert (audit.from_state, audit.to_state, audit.detail) == (
        "entered_in_siak",
        "returned",
        {"reason": "NIK salah ketik"},
    )
    assert case.waiting_step(SOP) == SOP.step("input_siak")
    [approval] = case.runs("persetujuan")
    assert (approval.outcome, approval.done_by) == ("return", "kabid-1")
    redo = case.current_run(SOP)
    assert redo is not None and redo.step == "input_siak" and redo.ready_at == t
    assert len(case.runs("input_siak")) == 2

    for role in ("kabid", "kadis", "loket", "verifikator", "system", "pemohon", "admin"):
        with pytest.raises(IllegalTransition):
            case.apply(SOP, "enter_siak", make_actor(role), t + timedelta(seconds=1))

    case.apply(SOP, "enter_siak", make_actor("operator_siak", n=2), t + timedelta(seconds=60))
    assert (case.state, case.returned_to) == ("entered_in_siak", None)
    assert case.waiting_step(SOP) == SOP.step("persetujuan")
    waiting = case.current_run(SOP)
    assert waiting is not None
    assert (waiting.step, waiting.done_at, waiting.ready_at) == (
        "persetujuan",
        None,
        t + timedelta(seconds=60),
    )
    assert [r.done_by for r in case.runs("input_siak")] == ["operator_siak-1", "operator_siak-2"]
    assert "approve" in case.allowed_events(SOP, make_actor("kabid"), t + timedelta(seconds=61))


@pytest.mark.parametrize("origin", RETURN_ORIGINS)
def test_given_any_return_then_it_goes_back_exactly_one_step(
    case_at: Callable[..., Case], make_actor: Callable[..., Actor], origin: str
) -> None:
    case = case_at(origin)
    waiting = case.waiting_step(SOP)
    assert waiting is not None
    case.apply(SOP, "return", make_actor(waiting.role), _later(case))
    back = case.waiting_step(SOP)
    assert back is not None
    assert back.number == waiting.number - 1
    assert case.returned_to == back.key
    # redoing it brings the case back to where it was returned from
    case.apply(SOP, back.event, make_actor(back.role), _later(case))
    assert (case.state, case.returned_to) == (origin, None)


# ---- corrections --------------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["form_submitted", "checked", "contacted"])
def test_given_a_correction_request_when_the_resident_resubmits_then_a_new_check_run_opens(
    case_at: Callable[..., Case], make_actor: Callable[..., Actor], start: str
) -> None:
    case = case_at(start)
    waiting = case.waiting_step(SOP)
    assert waiting is not None
    runs_before = len(case.runs("periksa"))
    t = _later(case)
    case.apply(SOP, "request_correction", make_actor(waiting.role), t, reason="KK buram")
    assert case.state == "awaiting_correction"
    assert case.waiting_step(SOP) is None and case.current_run(SOP) is None
    assert all(not r.open for r in case.steps)
    closed = case.runs(waiting.key)[-1]
    assert (closed.outcome, closed.done_at) == ("request_correction", t)

    case.apply(SOP, "submit_form", make_actor("pemohon"), t + timedelta(hours=2))
    assert case.state == "form_submitted"
    runs = case.runs("periksa")
    assert len(runs) == runs_before + 1
    assert runs[-1].open and runs[-1].ready_at == t + timedelta(hours=2)
    assert case.current_run(SOP) is runs[-1]


# ---- terminal states ----------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(SOP.terminal_states))
def test_given_a_terminal_state_then_nothing_is_accepted(
    case_at: Callable[..., Case], make_actor: Callable[..., Actor], state: str
) -> None:
    case = case_at(state)
    assert not case.is_open(SOP)
    assert case.waiting_step(SOP) is None
    for role in ROLES:
        who = make_actor(role)
        assert case.allowed_events(SOP, who, _later(case)) == []
        for event in EVENTS:
            with pytest.raises(IllegalTransition):
                case.apply(SOP, event, who, _later(case))
        with pytest.raises(IllegalTransition):
            case.claim(SOP, who, _later(case))
        with pytest.raises(IllegalTransition):
            case.release(SOP, who, _later(case))
    assert case.new_events == []


@pytest.mark.parametrize(
    ("state", "reason"),
    [("rejected", "uji"), ("cancelled", "uji"), ("expired", "uji"), ("delivered", None)],
)
def test_given_a_closing_move_then_the_closed_reason_is_recorded_except_on_delivery(
    case_at: Callable[..., Case], state: str, reason: str | None
) -> None:
    case = case_at(state)
    assert case.closed_reason == reason
    assert case.closed_at is not None and case.closed_at == case.updated_at


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v[0] not in SOP.terminal_states])
def test_given_an_open_case_then_it_has_no_closing_time(
    case_at: Callable[..., Case], variant: tuple[str, str | None]
) -> None:
    case = case_at(*variant)
    assert case.is_open(SOP)
    assert (case.closed_at, case.closed_reason) == (None, None)


# ---- audit --------------------------------------------------------------------------------------


def test_given_a_busy_case_then_every_change_appends_exactly_one_event_with_seq_plus_one(
    make_case: Callable[..., Case],
    make_actor: Callable[..., Actor],
    clock: Callable[[float], datetime],
) -> None:
    case = make_case()
    script: list[tuple[str, str, dict[str, Any]]] = [
        ("send_link", "system", {}),
        ("submit_form", "pemohon", {}),
        ("claim", "loket", {}),
        ("release", "loket", {}),
        ("claim", "loket", {}),
        ("request_correction", "loket", {"reason": "KTP buram"}),
        ("submit_form", "pemohon", {}),
        ("check", "loket", {}),
        ("contact", "loket", {}),
        ("forward", "verifikator", {}),
        ("claim", "operator_siak", {}),
        ("enter_siak", "operator_siak", {"siak_ref": "X1"}),
        ("return", "kabid", {"reason": "foto"}),
        ("enter_siak", "operator_siak", {}),
        ("approve", "kabid", {}),
        ("sign", "kadis", {}),
        ("deliver", "system", {}),
    ]
    for i, (event, role, detail) in enumerate(script, start=1):
        who = make_actor(role)
        before_state, before_seq = case.state, case.event_seq
        n_events = len(case.new_events)
        when = clock(i * 60)
        if event == "claim":
            audit = case.claim(SOP, who, when)
        elif event == "release":
            audit = case.release(SOP, who, when)
        else:
            audit = case.apply(SOP, event, who, when, **detail)
        assert len(case.new_events) == n_events + 1
        assert case.new_events[-1] is audit
        assert audit.seq == before_seq + 1 == case.event_seq
        assert (audit.case_id, audit.at, audit.actor_id, audit.role, audit.event) == (
            case.id,
            when,
            who.id,
            role,
            event,
        )
        assert audit.from_state == before_state
        assert audit.to_state == case.state
        if event in ("claim", "release"):
            assert case.state == before_state  # claims never move the case
            assert "step" in audit.detail
        else:
            assert audit.detail == detail
    assert case.state == "delivered"
    assert [e.seq for e in case.new_events] == list(range(1, len(script) + 2))


def test_given_a_note_then_an_event_is_recorded_without_a_state_change(
    case_at: Callable[..., Case], make_actor: Callable[..., Actor]
) -> None:
    case = case_at("checked")
    seq = case.event_seq
    audit = case.note(make_actor("loket"), "document_attached", _later(case), key="blob/1")
    assert (audit.seq, audit.from_state, audit.to_state) == (seq + 1, "checked", "checked")
    assert audit.detail == {"key": "blob/1"}
    assert case.state == "checked"


def test_given_new_events_then_they_are_not_part_of_the_stored_document(
    make_case: Callable[..., Case],
) -> None:
    case = make_case()
    assert case.new_events
    assert "new_events" not in case.model_dump()
    assert Case.model_validate_json(case.model_dump_json()).event_seq == case.event_seq


# ---- asking without doing: may_claim and may_be_assigned ------------------------------------


OTHER_KECAMATAN = "730601"  # Bontonompo: not the case's
WAITING_ROLE = {"form_submitted": "loket", "contacted": "verifikator", "forwarded": "operator_siak"}
WAITING_ROLE["approved"] = "kadis"


@pytest.mark.parametrize("state", ["form_submitted", "contacted", "forwarded", "approved"])
def test_may_claim_answers_exactly_what_claim_would_do_and_changes_nothing(
    state: str,
    case_at: Callable[..., Case],
    sop: Sop,
    clock: Callable[[float], datetime],
    make_actor: Callable[..., Actor],
) -> None:
    actor = make_actor
    roles = ("loket", "verifikator", "operator_siak", "kabid", "kadis", "admin", "system")
    candidates = [actor(r) for r in roles] + [actor("loket", kecamatan=OTHER_KECAMATAN)]
    claimed = case_at(state)
    first = actor(WAITING_ROLE[state])
    claimed.claim(sop, first, clock(10_000))
    for case in (case_at(state), claimed):
        for who in [*candidates, actor(WAITING_ROLE[state], n=2)]:
            before = case.model_dump()
            asked = case.may_claim(sop, who, clock(10_010))
            assert case.model_dump() == before
            try:
                case.model_copy(deep=True).claim(sop, who, clock(10_010))
                did = True
            except SapaError:
                did = False
            assert asked == did, (state, who.role, who.kecamatan)


def test_may_be_assigned_follows_reassign_role_and_kecamatan(
    case_at: Callable[..., Case],
    sop: Sop,
    clock: Callable[[float], datetime],
    make_actor: Callable[..., Actor],
) -> None:
    actor = make_actor
    case = case_at("form_submitted")  # the counter's step: a kecamatan role
    assert case.may_be_assigned(sop, actor("loket", n=2))
    assert not case.may_be_assigned(sop, actor("loket", kecamatan=OTHER_KECAMATAN))
    assert not case.may_be_assigned(sop, actor("verifikator"))
    assert not case_at("delivered").may_be_assigned(sop, actor("loket"))
    # and reassign agrees
    case.reassign(sop, actor("admin"), actor("loket", n=2), clock(10_000))
    with pytest.raises(SapaError):
        case.reassign(sop, actor("admin"), actor("loket", kecamatan=OTHER_KECAMATAN), clock(10_010))
