"""Officers' work on a case around the SOP's steps: who acts in which role, and the moves that
are not steps (claim, release, corrections, returns, rejection, cancellation, reassignment,
replies). Each step's own work is in services.steps, found by its SOP event."""

from __future__ import annotations

from collections.abc import Callable

from sapa.bootstrap import Container
from sapa.domain.case import COMPLAINT_OUTCOMES, COMPLAINT_ROLES, REVOKE_ROLES, Actor, Case
from sapa.domain.errors import Conflict, Forbidden, SapaError, ValidationFailed
from sapa.domain.texts import text
from sapa.ports import Message, StaffMember
from sapa.services.names import reply_message_id, task_name
from sapa.services.steps import PREPARE, STEPS, Act, ActionInput, Handler
from sapa.services.unit import mutate, outbox_task

__all__ = ["ActionInput", "acting_role", "correction_summary", "perform"]

NEEDS_REASON = {"request_correction", "return", "reject", "revoke_document"}


def acting_role(c: Container, case: Case, staff: StaffMember, action: str) -> Actor:
    """The role in which `staff` performs `action` on `case`: the waiting step's role if they
    hold it, else admin for the actions admins may take."""
    waiting = case.waiting_step(c.sop)
    candidates = [waiting.role] if waiting else []
    if action == "reply":
        speaker = case.reply_role(c.sop)
        candidates = [speaker, "admin"] if speaker else ["admin"]
    if action in ("reject", "cancel", "reassign", "revoke_document"):
        candidates.append("admin")
    if action == "revoke_document":
        candidates = list(REVOKE_ROLES)
    if action == "reassign":
        candidates = ["admin"]
    if action in ("complaint_reply", "complaint_close"):
        candidates = list(COMPLAINT_ROLES)
    role = next((r for r in candidates if r in staff.roles), None)
    if role is None:
        if not staff.roles:
            raise Forbidden(text("forbidden_role"))
        # Not this officer's turn: let the state machine refuse it with the precise reason.
        role = staff.roles[0]
    return Actor(id=staff.email, role=role, kecamatan=staff.kecamatan, name=staff.name)


def perform(c: Container, case_id: str, staff: StaffMember, action: str, data: ActionInput) -> Case:
    """Do `action` on the case as `staff`: an SOP step (services.steps.STEPS) or a move around
    the steps (MOVES); anything else is applied as an SOP transition, which the domain refuses
    with the precise reason when it is not one. The domain checks role, kecamatan, claim and
    state; a step another officer holds is refused naming that officer by name."""
    try:
        return _perform(c, case_id, staff, action, data)
    except Conflict as exc:
        holder = exc.detail.get("holder")
        member = c.staff.get(str(holder)) if holder else None
        if member is None:
            raise
        raise Conflict(text("claimed_by_other", who=member.name), holder=holder) from None


def _perform(
    c: Container, case_id: str, staff: StaffMember, action: str, data: ActionInput
) -> Case:
    itemised = action == "request_correction" and _corrections(data)
    if action in NEEDS_REASON and not data.reason.strip() and not itemised:
        raise ValidationFailed(text("form_has_errors"), {"reason": text("required")})
    prepare = PREPARE.get(action)
    draft = prepare(c, case_id, data) if prepare is not None else None
    handler = STEPS.get(action) or MOVES.get(action) or _transition(action)
    now = c.clock.now()
    replaced: list[str] = []  # what the saved change leaves unreferenced (deleted after it)
    after: list[Callable[[], object]] = []  # what is written once the change is saved

    def change(case: Case) -> None:
        act = Act(c, acting_role(c, case, staff, action), now, data, draft)
        handler(act, case)
        replaced[:] = act.replaced
        after[:] = act.after

    try:
        updated, _ = mutate(c, case_id, change)
    except Exception:
        # a refused action leaves no draft behind that nothing points to
        if draft is not None and _unreferenced(c, case_id, draft.key):
            c.blobs.delete(draft.key)
        raise
    for key in replaced:
        c.blobs.delete(key)
    for write in after:
        write()
    return updated


def _unreferenced(c: Container, case_id: str, key: str) -> bool:
    try:
        case = c.store.get(case_id)
    except SapaError:
        return False  # cannot tell: keep it
    return case.draft is None or case.draft.key != key


def _transition(event: str) -> Handler:
    """A move the SOP's transitions define with nothing more to it (return, cancel)."""

    def handler(act: Act, case: Case) -> None:
        act.apply(case, event)

    return handler


def _claim(act: Act, case: Case) -> None:
    case.claim(act.c.sop, act.actor, act.now)


def _release(act: Act, case: Case) -> None:
    case.release(act.c.sop, act.actor, act.now)


def _revoke_document(act: Act, case: Case) -> None:
    case.revoke_document(act.actor, act.data.reason.strip()[:500], act.now)


def _corrections(data: ActionInput) -> dict[str, str]:
    return {k: v.strip()[:300] for k, v in data.corrections.items() if v.strip()}


def _request_correction(act: Act, case: Case) -> None:
    """Back to the resident with what to fix, item by item; the resident is told (with a
    fresh guest-book link)."""
    general = act.data.reason.strip()[:300]
    case.corrections = {**_corrections(act.data), **({"general": general} if general else {})}
    case.corrections_at = act.now
    detail = act.apply(
        case,
        "request_correction",
        corrections=dict(case.corrections),
        reason=correction_summary(act.c, case),
    )
    _tell_resident(case, "correction", detail["reason"])


def _reject(act: Act, case: Case) -> None:
    detail = act.apply(case, "reject")
    _tell_resident(case, "rejected", detail.get("reason", ""))


def _tell_resident(case: Case, kind: str, reason: str) -> None:
    outbox_task(
        case,
        "notify",
        {"case_id": case.id, "kind": kind, "params": {"reason": reason}},
        name=task_name("notify", case.id, kind, case.event_seq),
    )


def _reassign(act: Act, case: Case) -> None:
    c, admin, now = act.c, act.actor, act.now
    target = c.staff.get(act.data.assignee.strip())
    step = case.waiting_step(c.sop)
    if target is None or step is None or step.role not in target.roles:
        raise ValidationFailed(text("form_has_errors"), {"assignee": text("assignee_invalid")})
    to = Actor(id=target.email, role=step.role, kecamatan=target.kecamatan, name=target.name)
    case.reassign(c.sop, admin, to, now)


PENDING = "pending:"  # the id prefix of a reply on its way (see _reply)


def _reply(act: Act, case: Case) -> None:
    """An officer writes to the resident from the case file; the notify queue sends it (inside
    the 24-hour window only: a free text has no template, so outside it the case says so).

    Until it is sent, the conversation holds it as on its way (id `PENDING` + the id it will
    be sent under), so the officer sees it at once and does not write it again; the case page
    shows the sent message in its place (views.conversation)."""
    c, actor, now = act.c, act.actor, act.now
    body = act.data.message.strip()
    if not body:
        raise ValidationFailed(text("form_has_errors"), {"message": text("required")})
    case.guard_reply(c.sop, actor, now)
    event = case.note(actor, "reply", now, length=len(body))
    sent_as = reply_message_id(case.id, event.seq)
    outbox_task(
        case,
        "notify",
        {
            "case_id": case.id,
            "kind": "text",
            "params": {"body": body[:4000]},
            "actor": actor.model_dump(),
        },
        name=sent_as.removeprefix("out:"),
    )
    pending = Message(
        case_id=case.id,
        id=PENDING + sent_as,
        direction="out",
        at=now,
        type="text",
        body=body[:4000],
        actor_id=actor.id,
        data={"pending_for": sent_as},
    )
    act.after.append(lambda: c.store.add_message(pending))


def _complaint_reply(act: Act, case: Case) -> None:
    """A head or the admin answers a complaint: audited on the case, sent to the resident (the
    template outside the 24-hour window carries the answer on one line)."""
    body = act.data.message.strip()[:2000]
    if not body:
        raise ValidationFailed(text("form_has_errors"), {"message": text("required")})
    event = case.answer_complaint(act.data.complaint, act.actor, body, act.now)
    outbox_task(
        case,
        "notify",
        {
            "case_id": case.id,
            "kind": "complaint_reply",
            "params": {"body": body, "reply": " ".join(body.split())[:900]},
            "actor": act.actor.model_dump(),
        },
        name=task_name("notify", case.id, "complaint_reply", event.seq),
    )


def _complaint_close(act: Act, case: Case) -> None:
    """Close a complaint with its outcome; the resident is told it, and where to go next."""
    from sapa.domain.texts import COMPLAINT_OUTCOME_LABELS

    outcome = act.data.outcome.strip()
    if outcome not in COMPLAINT_OUTCOMES:
        raise ValidationFailed(
            text("form_has_errors"), {"outcome": text("complaint_outcome_unknown")}
        )
    event = case.close_complaint(
        act.data.complaint, act.actor, outcome, act.data.note.strip()[:1000], act.now
    )
    outbox_task(
        case,
        "notify",
        {
            "case_id": case.id,
            "kind": "complaint_closed",
            "params": {"outcome": COMPLAINT_OUTCOME_LABELS[outcome]},
        },
        name=task_name("notify", case.id, "complaint_closed", event.seq),
    )


def correction_summary(c: Container, case: Case) -> str:
    """One line per item to fix, with the document's or field's name: what the resident reads."""
    from sapa.domain.texts import FIELD_LABELS

    names: dict[str, str] = {}
    if case.service:
        names = {r.key: r.name for r in c.catalogue.get(case.service).requirements}
    lines = []
    for key, why in case.corrections.items():
        kind, _, name = key.partition(":")
        label = names.get(name, name) if kind == "doc" else FIELD_LABELS.get(name, name)
        lines.append(f"- {label}: {why}" if kind in ("doc", "field") else f"- {why}")
    return "\n".join(lines)


# The moves around the steps, by action name (claim/release/reassign/reply/revoke_document are
# the service's own; the others are SOP transitions with something more to do).
MOVES: dict[str, Handler] = {
    "claim": _claim,
    "release": _release,
    "reassign": _reassign,
    "reply": _reply,
    "revoke_document": _revoke_document,
    "request_correction": _request_correction,
    "reject": _reject,
    "complaint_reply": _complaint_reply,
    "complaint_close": _complaint_close,
}
