"""Who may do what, when: every officer × every action × every state through the staff function.

GIVEN a Somba Opu case in each state of the happy path (and awaiting_correction, returned),
WHEN each demo officer posts each action to the staff function,
THEN it is either done (2xx) with exactly the change the SOP prescribes, or refused
(403/409/422) with nothing changed: not the case, its events, its messages or the queue.

The expectation is derived here, independently, from sop_gowa.toml and staff_demo.toml (the
waiting step's role, "@step", kecamatan scope), not by asking the code under test.
"""

from __future__ import annotations

import io
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sapa.bootstrap import Container
from tests.conftest import RecordingQueue

from .conftest import (
    ADMIN,
    DATA,
    KABID,
    KADIS,
    LIBRARY_STATES,
    LOKET,
    LOKET_ELSEWHERE,
    OPERATOR,
    SOMBA_OPU,
    STAFF_TOML,
    VERIFIKATOR,
    Library,
    Officer,
    changes,
    siak_draft,
    snapshot,
)

SOP = tomllib.loads((DATA / "sop_gowa.toml").read_text("utf-8"))
STEPS: list[dict[str, Any]] = SOP["steps"]
TRANSITIONS: dict[str, dict[str, Any]] = {t["event"]: t for t in SOP["transitions"]}
KECAMATAN_ROLES = set(SOP["sop"]["kecamatan_roles"])
TERMINAL = set(SOP["sop"]["terminal_states"])
STAFF = {s["email"]: s for s in STAFF_TOML}

OFFICERS = {
    "loket": LOKET,
    "loket_elsewhere": LOKET_ELSEWHERE,
    "verifikator": VERIFIKATOR,
    "operator_siak": OPERATOR,
    "kabid": KABID,
    "kadis": KADIS,
    "admin": ADMIN,
}
ACTIONS = (
    "claim",
    "check",
    "contact",
    "forward",
    "enter_siak",
    "approve",
    "sign",
    "request_correction",
    "return",
    "reject",
    "reassign",
    "reply",
    "send_link",
)
STEP_EVENTS = {s["event"] for s in STEPS}


# ---- the oracle: what sop_gowa.toml prescribes ---------------------------------------------------


def waiting_step(key: str) -> dict[str, Any] | None:
    """The step someone must do next in state `key` ("returned@X": the step that produced X,
    done again — "Kembalikan satu langkah")."""
    state, _, returned_from = key.partition("@")
    if state == "returned":
        return next(s for s in STEPS if s["to_state"] == returned_from)
    return next((s for s in STEPS if s["from_state"] == state and s["from_state"]), None)


def in_scope(email: str, role: str, kecamatan: str = SOMBA_OPU) -> bool:
    return role not in KECAMATAN_ROLES or STAFF[email].get("kecamatan") == kecamatan


def may_see(email: str) -> bool:
    roles = STAFF[email]["roles"]
    return not all(r in KECAMATAN_ROLES for r in roles) or in_scope(email, roles[0])


def holds(email: str, role: str) -> bool:
    return role in STAFF[email]["roles"] and in_scope(email, role)


def assignee_for(key: str) -> str:
    """An officer who may take over the waiting step (any officer if nobody waits)."""
    step = waiting_step(key)
    if step is None:
        return VERIFIKATOR
    return next(s["email"] for s in STAFF_TOML if holds(s["email"], step["role"]))


@dataclass(frozen=True)
class Done:
    """An allowed action: the state after it, the audit events it appends (event, actor) and
    whose claim the waiting step carries afterwards (None: not checked)."""

    state: str
    events: tuple[tuple[str, str], ...]
    claimed_by: str | None = None
    task: str | None = None  # the kind of task it queues, if any


def expected(key: str, email: str, action: str) -> Done | None:
    """What the SOP says `email` doing `action` on a case in `key` leads to (None: refused)."""
    state = key.partition("@")[0]
    step = waiting_step(key)
    if not may_see(email):
        return None
    if action == "claim":
        if step is not None and holds(email, step["role"]):
            return Done(state, (("claim", email),), claimed_by=email)
        return None
    if action == "reply":
        # whoever speaks for the step at hand (the counter while the resident has the turn),
        # or an admin; never on a closed case
        if state in TERMINAL:
            return None
        link_role = next(s["role"] for s in STEPS if s["event"] == "send_link")
        speaker = step["role"] if step else link_role
        if "admin" in STAFF[email]["roles"] or holds(email, speaker):
            return Done(state, (("reply", email),), task="notify")
        return None
    if action == "reassign":
        if "admin" in STAFF[email]["roles"] and step is not None:
            to = assignee_for(key)
            return Done(state, (("reassign", email),), claimed_by=to)
        return None
    if action in STEP_EVENTS:
        mine = next(s for s in STEPS if s["event"] == action)
        if step is None or step["key"] != mine["key"] or not holds(email, mine["role"]):
            return None
        if action == "send_link":  # done when the link has gone out (a notify task)
            return Done(state, (("claim", email),), claimed_by=email, task="notify")
        if action == "sign":  # done when the signer has signed (an esign_request task)
            return Done(
                state,
                (("claim", email), ("sign_requested", email)),
                claimed_by=email,
                task="esign_request",
            )
        task = {"contact": "notify", "forward": "siak_handoff"}.get(action)
        return Done(mine["to_state"], ((action, email),), task=task)
    t = TRANSITIONS[action]
    if state not in t["from"]:
        return None
    roles = {step["role"] if r == "@step" and step else r for r in t["roles"]}
    if not any(holds(email, r) for r in roles):
        return None
    task = {"request_correction": "notify", "reject": "notify"}.get(action)
    return Done(t["to"], ((action, email),), task=task)


def form_for(key: str, action: str) -> dict[str, Any]:
    """Valid input for the action, so that only who/when decides."""
    if action in ("request_correction", "return", "reject"):
        return {"reason": "Alasan uji matriks"}
    if action == "enter_siak":
        return {"siak_ref": "SIAK-7306-0001", "draft": (io.BytesIO(siak_draft()), "konsep.pdf")}
    if action == "reassign":
        return {"assignee": assignee_for(key)}
    if action == "reply":
        return {"message": "Mohon ditunggu, berkas sedang diproses."}
    if action == "contact":
        return {"note": "Pemohon dihubungi lewat WA"}
    return {}


# The oracle itself must agree with what the SOP table in the README says (a spot check, so a
# mistake in `expected` does not silently make the matrix vacuous).
def test_the_oracle_reads_the_sop_like_the_readme() -> None:
    assert expected("form_submitted", LOKET, "check") == Done("checked", (("check", LOKET),))
    assert expected("form_submitted", LOKET_ELSEWHERE, "check") is None
    assert expected("contacted", VERIFIKATOR, "request_correction") is not None
    assert expected("contacted", LOKET, "request_correction") is None
    assert expected("returned@entered_in_siak", OPERATOR, "enter_siak") is not None
    assert expected("returned@entered_in_siak", ADMIN, "reject") is not None
    assert expected("approved", KADIS, "sign") is not None
    assert expected("delivered", ADMIN, "reply") is None
    cells = [(k, e, a) for k in LIBRARY_STATES for e in OFFICERS.values() for a in ACTIONS]
    allowed = [cell for cell in cells if expected(*cell) is not None]
    # 74 of 1183: 24 replies (the officer of the step at hand, or an admin, on an open case),
    # 50 SOP moves and claims
    assert (len(cells), len(allowed)) == (1183, 74)
    assert sum(a == "reply" for _, _, a in allowed) == 24
    assert expected("link_sent", LOKET, "reply") is not None  # the resident has the turn
    assert expected("form_submitted", KABID, "reply") is None  # not the kabid's step


# ---- the matrix ----------------------------------------------------------------------------------


def restore(c: Container, library: Library) -> None:
    """Put the library's cases back (after an action that changed one) and empty the queue."""
    c.store.db.close()  # type: ignore[attr-defined]
    del c.__dict__["store"]
    library.seed(c, blobs=False)
    q = c.queue
    assert isinstance(q, RecordingQueue)
    q.tasks.clear()
    q.names.clear()


def check(c: Container, officer: Officer, key: str, case_id: str, action: str) -> bool:
    """One cell of the matrix; True when the action changed the case."""
    email = officer.email
    before = snapshot(c, case_id)
    want = expected(key, email, action)

    # WHEN the officer posts the action
    resp = officer.act(case_id, action, **form_for(key, action))
    after = snapshot(c, case_id)
    body = resp.get_json()

    if want is None:
        # THEN it is refused, and nothing at all changed (case, events, messages, queue)
        assert resp.status_code in (403, 409, 422), (resp.status_code, body)
        if not may_see(email):
            assert resp.status_code == 403, body  # as when he opens the case
        assert not changes(before, after), changes(before, after)
        return False
    # THEN it is done, with the change the SOP prescribes
    assert resp.status_code == 200, body
    case = c.store.get(case_id)
    assert body["case"]["state"] == want.state
    assert case.state == want.state
    new = c.store.events(case_id)[len(before["events"]) :]
    assert [(e.event, e.actor_id) for e in new] == list(want.events)
    assert case.version > before["case"]["version"]
    if want.claimed_by is not None:
        run = next(r for r in reversed(case.steps) if r.done_at is None)
        assert run.claimed_by == want.claimed_by
    queued = {kind for kind, _ in after["tasks"][len(before["tasks"]) :]}
    assert queued == ({want.task} if want.task else set())
    if want.state != key.partition("@")[0] and action in STEP_EVENTS:
        # a step done: one more run of it is closed, by this officer
        def runs(steps: list[dict[str, Any]]) -> int:
            return sum(r["done_by"] == email and r["outcome"] == action for r in steps)

        assert runs([r.model_dump() for r in case.steps]) == runs(before["case"]["steps"]) + 1
    return True


@pytest.mark.parametrize("who", list(OFFICERS))
@pytest.mark.parametrize("key", LIBRARY_STATES)
def test_matrix(
    container: Container,
    library: Library,
    bare_cases: dict[str, str],
    login: Callable[[str], Officer],
    subtests: pytest.Subtests,
    key: str,
    who: str,
) -> None:
    # GIVEN a case in state `key` and one officer of the demo directory
    officer = login(OFFICERS[who])
    for action in ACTIONS:
        with subtests.test(msg=action):
            changed = False
            try:
                changed = check(container, officer, key, bare_cases[key], action)
            finally:
                if changed:  # the next action must find the case as it was
                    restore(container, library)
