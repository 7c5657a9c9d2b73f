"""A resident's keyword commands (BATAL, then YA or TIDAK), typed or tapped: the `command` task."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case
from sapa.domain.errors import IllegalTransition, PermanentError
from sapa.services.names import task_name
from sapa.services.unit import mutate, outbox_task

CANCEL_CONFIRM_MINUTES = 15


def command(c: Container, payload: dict[str, Any], task_name_: str = "") -> str:
    """A resident's keyword command (typed, or a tapped button). BATAL asks to confirm; YA
    within the confirmation time cancels the open case and confirms it, TIDAK keeps it. A case
    past the point of cancelling says so."""
    what = payload.get("command")
    actor = Actor.applicant(str(payload["wa_id"]))
    now = c.clock.now()
    case_id = str(payload["case_id"])
    if what == "request_cancel":

        def ask(case: Case) -> str:
            if actor.id != Actor.applicant(case.wa_id).id:
                return "not_cancellable"  # not the case's resident: nothing to tell him
            if "cancel" not in case.allowed_events(c.sop, actor, now):
                outbox_task(
                    case,
                    "notify",
                    {"case_id": case.id, "kind": "cancel_not_possible"},
                    name=task_name("notify", task_name_ or case.id, "cancel"),
                )
                return "not_cancellable"
            asked = case.cancel_requested_at
            if asked is None or now - asked > timedelta(minutes=CANCEL_CONFIRM_MINUTES):
                # A request already pending (this task delivered again) keeps its deadline.
                case.cancel_requested_at = now
                case.note(actor, "cancel_requested", now)
            outbox_task(
                case,
                "notify",
                {"case_id": case.id, "kind": "cancel_confirm"},
                name=task_name("notify", task_name_ or case.id, "cancel_confirm"),
            )
            return "confirmation_asked"

        return mutate(c, case_id, ask)[1]
    if what == "decline_cancel":

        def keep(case: Case) -> str:
            if actor.id != Actor.applicant(case.wa_id).id or case.cancel_requested_at is None:
                return "no_pending_request"
            case.cancel_requested_at = None
            case.note(actor, "cancel_declined", now)
            outbox_task(
                case,
                "notify",
                {"case_id": case.id, "kind": "cancel_declined"},
                name=task_name("notify", task_name_ or case.id, "cancel_declined"),
            )
            return "kept"

        return mutate(c, case_id, keep)[1]
    if what != "confirm_cancel":
        raise PermanentError("unknown command")

    def cancel(case: Case) -> str:
        if actor.id != Actor.applicant(case.wa_id).id:
            return "not_cancellable"  # another resident's YA leaves this request pending
        asked = case.cancel_requested_at
        if asked is None or now - asked > timedelta(minutes=CANCEL_CONFIRM_MINUTES):
            case.cancel_requested_at = None
            return "no_pending_request"
        case.cancel_requested_at = None
        try:
            case.apply(c.sop, "cancel", actor, now, reason="dibatalkan pemohon (BATAL)")
        except IllegalTransition:
            return "not_cancellable"
        outbox_task(
            case,
            "notify",
            {"case_id": case.id, "kind": "cancelled"},
            name=task_name("notify", case.id, "cancelled"),
        )
        return "cancelled"

    return mutate(c, case_id, cancel)[1]
