"""Officers' work on a case (SOP steps 2–8): claim, perform the step, return, reject."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case, DocumentRef
from sapa.domain.documents import sniff
from sapa.domain.errors import Forbidden, PermanentError, SapaError, ValidationFailed
from sapa.domain.texts import text
from sapa.ports import StaffMember
from sapa.services.names import task_name
from sapa.services.unit import mutate, outbox_task

# Actions that are not SOP events but the service's own.
ACTIONS = {"claim", "release", "sign"}
NEEDS_REASON = {"request_correction", "return", "reject", "revoke_document"}


@dataclass
class ActionInput:
    reason: str = ""
    siak_ref: str = ""
    draft_pdf: bytes | None = None
    note: str = ""
    # request_correction: "doc:<requirement>" / "field:<name>" → what is wrong with it
    corrections: dict[str, str] = field(default_factory=dict)
    assignee: str = ""  # reassign: the officer's email
    passphrase: str = field(default="", repr=False)  # sign with BSrE: never stored or logged
    message: str = ""  # reply: the text for the resident


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
        candidates = ["kadis", "admin"]
    if action == "reassign":
        candidates = ["admin"]
    role = next((r for r in candidates if r in staff.roles), None)
    if role is None:
        if not staff.roles:
            raise Forbidden(text("forbidden_role"))
        # Not this officer's turn: let the state machine refuse it with the precise reason.
        role = staff.roles[0]
    return Actor(id=staff.email, role=role, kecamatan=staff.kecamatan, name=staff.name)


def perform(c: Container, case_id: str, staff: StaffMember, action: str, data: ActionInput) -> Case:
    """Do `action` on the case as `staff`. The domain checks role, kecamatan, claim and state."""
    corrections = {k: v.strip()[:300] for k, v in data.corrections.items() if v.strip()}
    if action == "request_correction" and corrections:
        pass  # the items are the reasons
    elif action in NEEDS_REASON and not data.reason.strip():
        raise ValidationFailed(text("form_has_errors"), {"reason": text("required")})
    draft: DocumentRef | None = None
    if action == "enter_siak":
        draft = _store_draft(c, case_id, data)
    now = c.clock.now()
    replaced: list[str] = []  # the draft this one replaces (deleted once the change is saved)

    def change(case: Case) -> None:
        replaced.clear()
        actor = acting_role(c, case, staff, action)
        if action == "claim":
            case.claim(c.sop, actor, now)
            return
        if action == "release":
            case.release(c.sop, actor, now)
            return
        if action == "sign":
            _request_signature(c, case, actor, now, data.passphrase)
            return
        if action == "reassign":
            _reassign(c, case, actor, data.assignee, now)
            return
        if action == "reply":
            _reply(c, case, actor, data.message, now)
            return
        if action == "revoke_document":
            case.revoke_document(actor, data.reason.strip()[:500], now)
            return
        if action == "send_link":
            # Manual mode: the officer sends the link; the step is done when it has gone out.
            if action not in case.allowed_events(c.sop, actor, now):
                case.apply(c.sop, action, actor, now)  # raises the precise error
            case.claim(c.sop, actor, now)
            run_key = case.waiting_step(c.sop).key  # type: ignore[union-attr]
            outbox_task(
                case,
                "notify",
                {
                    "case_id": case.id,
                    "kind": "guestbook_link",
                    "then_event": "send_link",
                    "actor": actor.model_dump(),
                },
                name=task_name("notify", case.id, "link", len(case.runs(run_key))),
            )
            return
        detail: dict[str, Any] = {}
        if data.reason:
            detail["reason"] = data.reason.strip()[:500]
        if data.note.strip():
            detail["note"] = data.note.strip()[:1000]
        if action == "request_correction":
            general = data.reason.strip()[:300]
            case.corrections = {**corrections, **({"general": general} if general else {})}
            case.corrections_at = now
            detail["corrections"] = dict(case.corrections)
            detail["reason"] = correction_summary(c, case)
        if draft is not None:
            case.siak_ref = data.siak_ref.strip()
            if case.draft is not None and case.draft.key != draft.key:
                replaced.append(case.draft.key)
            case.draft = draft
            detail.update(siak_ref=case.siak_ref, draft_sha256=draft.sha256)
        case.apply(c.sop, action, actor, now, **detail)
        _after(c, case, action, detail)

    try:
        updated, _ = mutate(c, case_id, change)
    except Exception:
        # a refused action leaves no draft behind that nothing points to
        if draft is not None and _unreferenced(c, case_id, draft.key):
            c.blobs.delete(draft.key)
        raise
    for key in replaced:
        c.blobs.delete(key)
    return updated


def _unreferenced(c: Container, case_id: str, key: str) -> bool:
    try:
        case = c.store.get(case_id)
    except SapaError:
        return False  # cannot tell: keep it
    return case.draft is None or case.draft.key != key


def _reassign(c: Container, case: Case, admin: Actor, email: str, now: Any) -> None:
    target = c.staff.get(email.strip())
    step = case.waiting_step(c.sop)
    if target is None or step is None or step.role not in target.roles:
        raise ValidationFailed(text("form_has_errors"), {"assignee": text("assignee_invalid")})
    to = Actor(id=target.email, role=step.role, kecamatan=target.kecamatan, name=target.name)
    case.reassign(c.sop, admin, to, now)


def _reply(c: Container, case: Case, actor: Actor, message: str, now: Any) -> None:
    """An officer writes to the resident from the case file; the notify queue sends it (inside
    the 24-hour window only: a free text has no template, so outside it the case says so)."""
    body = message.strip()
    if not body:
        raise ValidationFailed(text("form_has_errors"), {"message": text("required")})
    case.guard_reply(c.sop, actor, now)
    case.note(actor, "reply", now, length=len(body))
    outbox_task(
        case,
        "notify",
        {
            "case_id": case.id,
            "kind": "text",
            "params": {"body": body[:4000]},
            "actor": actor.model_dump(),
        },
        name=task_name("notify", case.id, "reply", case.event_seq),
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


def _after(c: Container, case: Case, action: str, detail: dict[str, Any]) -> None:
    """What a performed step sets in motion (tasks saved with the change, in its outbox)."""
    n = case.event_seq
    if action == "contact":
        outbox_task(
            case,
            "notify",
            {"case_id": case.id, "kind": "contacted"},
            name=task_name("notify", case.id, "contacted", n),
        )
    elif action == "forward":
        outbox_task(
            case, "siak_handoff", {"case_id": case.id}, name=task_name("siak_handoff", case.id, n)
        )
    elif action in ("request_correction", "reject"):
        kind = "correction" if action == "request_correction" else "rejected"
        outbox_task(
            case,
            "notify",
            {"case_id": case.id, "kind": kind, "params": {"reason": detail.get("reason", "")}},
            name=task_name("notify", case.id, kind, n),
        )


def _store_draft(c: Container, case_id: str, data: ActionInput) -> DocumentRef:
    errors = {}
    if not data.siak_ref.strip():
        errors["siak_ref"] = text("siak_ref_required")
    pdf = data.draft_pdf or b""
    if not pdf or sniff(pdf) != "application/pdf":
        errors["draft"] = text("draft_required")
    elif len(pdf) > c.settings.max_upload_mb * 1024 * 1024:
        errors["draft"] = text("file_too_large", limit_mb=c.settings.max_upload_mb)
    else:
        from sapa.pdf import pdf_page_count

        try:
            pdf_page_count(pdf)
        except PermanentError:
            errors["draft"] = text("pdf_unreadable")
    if errors:
        raise ValidationFailed(text("form_has_errors"), errors)
    digest = hashlib.sha256(pdf).hexdigest()
    ref = c.blobs.put(f"cases/{case_id}/siak/draft-{digest[:32]}.pdf", pdf, "application/pdf")
    return DocumentRef(
        key=ref.key,
        sha256=ref.sha256,
        size=ref.size,
        content_type="application/pdf",
        filename="konsep-siak.pdf",
        source="siak_draft",
        at=c.clock.now(),
    )


def document_id(case: Case) -> str:
    """The signed document's public id: stable per case and draft version (idempotency key)."""
    assert case.draft is not None
    return hashlib.sha256(f"{case.id}:{case.draft.sha256}".encode()).hexdigest()[:24]


def _request_signature(c: Container, case: Case, actor: Actor, now: Any, passphrase: str) -> None:
    """SOP step 8 starts: the head of office asks for the TTE; the signer works in a task. A
    signer that needs the passphrase gets it sealed in the task (see services.sealed)."""
    if "sign" not in case.allowed_events(c.sop, actor, now):
        case.apply(c.sop, "sign", actor, now)  # raises the precise IllegalTransition
    if case.draft is None:
        raise ValidationFailed(text("draft_required"), {"draft": text("draft_required")})
    if c.settings.signer == "bsre" and not passphrase:
        raise ValidationFailed(
            text("passphrase_required"), {"passphrase": text("passphrase_required")}
        )
    run = case.current_run(c.sop)
    if run is not None and run.claimed_by is None:
        case.claim(c.sop, actor, now)
    doc_id = document_id(case)
    case.note(actor, "sign_requested", now, document_id=doc_id)
    payload: dict[str, Any] = {
        "case_id": case.id,
        "document_id": doc_id,
        "actor": actor.model_dump(),
    }
    if passphrase:
        from sapa.services.sealed import seal

        payload["sealed_passphrase"] = seal(c, passphrase)
    # One task per request: after a refused passphrase the head of office may ask again.
    outbox_task(
        case, "esign_request", payload, name=task_name("esign_request", doc_id, case.event_seq)
    )


def siak_handoff(c: Container, payload: dict[str, Any]) -> str:
    """Build the SIAK operator's hand-off package when the files are forwarded (SIAK has no
    API: a person types the data in) and attach it to the case. Idempotent: the package of the
    same data is the same object, and a case that has one keeps it."""
    from sapa.services.handoff import build_package

    case = c.store.get(str(payload["case_id"]))
    siak = c.sop.step_for_event("enter_siak")
    waiting = case.waiting_step(c.sop)
    if siak is None or waiting is None or waiting.key != siak.key:
        return "skipped"
    if _handoff_current(c, case):
        return "already_ready"  # built for this forward already (the task came twice)
    data = build_package(c, case)
    digest = hashlib.sha256(data).hexdigest()
    ref = c.blobs.put(f"cases/{case.id}/siak/handoff-{digest[:32]}.zip", data, "application/zip")
    now = c.clock.now()
    replaced: list[str] = []

    def attach(case: Case) -> str:
        replaced.clear()
        if case.handoff is not None and (
            case.handoff.sha256 == ref.sha256 or _handoff_current(c, case)
        ):
            return "already_ready"
        if case.handoff is not None:
            replaced.append(case.handoff.key)
        case.handoff = DocumentRef(
            key=ref.key,
            sha256=ref.sha256,
            size=ref.size,
            content_type="application/zip",
            filename=f"serah-terima-siak-{case.reg_no}.zip",
            source="siak_handoff",
            at=now,
        )
        case.note(Actor.system(), "siak_handoff_ready", now, key=ref.key, sha256=ref.sha256)
        return "ready"

    saved, outcome = mutate(c, case.id, attach)
    # Personal data must not outlive its reference (retention and erasure see only what the
    # case points to): the package this one replaced, or this one if another build won.
    stale = list(replaced) if outcome == "ready" else []
    if saved.handoff is None or saved.handoff.key != ref.key:
        stale.append(ref.key)
    for key in stale:
        c.blobs.delete(key)
    return outcome


def _handoff_current(c: Container, case: Case) -> bool:
    """The case holds a hand-off package built since the files were last forwarded (the
    package embeds its build time, so two builds of the same data differ in bytes)."""
    run = case.current_run(c.sop)
    return case.handoff is not None and run is not None and case.handoff.at >= run.ready_at
