"""The SOP's steps, one function each, named by the event that completes it (data/sop_gowa.toml).

Look a step up here by its name in the SOP. An officer's step runs inside the case's unit of work
(`services.workflow.perform` → `services.unit.mutate`): the handler changes the case and puts
what the step sets in motion in the case's outbox, saved with the change.

  # key          event       who            here          and then
  1 sapa         greet       pemohon        —             services.intake opens the case
  2 kirim_tautan send_link   loket          send_link     notify: the guest-book link (automatic
                                                          mode: intake.follow_ups → link_task);
                                                          the resident's form: guestbook.submit
  3 periksa      check       loket          check         (guestbook.precheck ran before)
  4 hubungi      contact     loket          contact       notify: contacted (not when the
                                                          officer has just written himself)
  5 teruskan     forward     verifikator    forward       handoff.siak_handoff
  6 input_siak   enter_siak  operator_siak  enter_siak    (store_draft runs first)
  7 persetujuan  approve     kabid          approve       (by link too: functions/approval.py)
  8 tte          sign        kadis          sign          signing.esign_request, then
                                                          complete_signature and deliver

The moves around the steps (claim, release, corrections, returns, rejection, cancellation,
reassignment, replies) are in services.workflow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case, DocumentRef
from sapa.domain.documents import sniff
from sapa.domain.errors import PermanentError, ValidationFailed
from sapa.domain.texts import text
from sapa.ports import Task
from sapa.services.names import task_name
from sapa.services.unit import outbox_task


@dataclass
class ActionInput:
    """What an officer sent with an action (the form's fields)."""

    reason: str = ""
    siak_ref: str = ""
    draft_pdf: bytes | None = None
    note: str = ""
    # request_correction: "doc:<requirement>" / "field:<name>" → what is wrong with it
    corrections: dict[str, str] = field(default_factory=dict)
    assignee: str = ""  # reassign: the officer's email
    passphrase: str = field(default="", repr=False)  # sign with BSrE: never stored or logged
    message: str = ""  # reply: the text for the resident
    complaint: str = ""  # complaint_reply / complaint_close: which complaint (k1, k2, ...)
    outcome: str = ""  # complaint_close: one of domain.case.COMPLAINT_OUTCOMES


@dataclass
class Act:
    """One officer action being performed on a case: who, when, with what input. `draft` is the
    SIAK draft stored before the change (`store_draft`); `replaced` collects the blobs the change
    leaves unreferenced, deleted once it is saved; `after` what is written elsewhere once the
    change is saved (nothing of it is written when the change is refused)."""

    c: Container
    actor: Actor
    now: datetime
    data: ActionInput
    draft: DocumentRef | None = None
    replaced: list[str] = field(default_factory=list)
    after: list[Callable[[], object]] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        """The audit detail every action records: its reason and note, trimmed."""
        detail: dict[str, Any] = {}
        if self.data.reason:
            detail["reason"] = self.data.reason.strip()[:500]
        if self.data.note.strip():
            detail["note"] = self.data.note.strip()[:1000]
        return detail

    def apply(self, case: Case, event: str, **extra: Any) -> dict[str, Any]:
        """Apply `event` as this act's actor (the domain checks role, kecamatan, claim and
        state); returns the detail recorded."""
        detail = {**self.detail(), **extra}
        case.apply(self.c.sop, event, self.actor, self.now, **detail)
        return detail


Handler = Callable[[Act, Case], None]


# --- step 2 -------------------------------------------------------------------------------


def link_task(case: Case, run: int, actor: Actor | None = None) -> Task:
    """The task that sends the guest-book link and then completes step 2 (`then_event`: the step
    is done when the link has gone out). `run` numbers the step's runs, so a link sent again
    after a return is a new task."""
    payload: dict[str, Any] = {
        "case_id": case.id,
        "kind": "guestbook_link",
        "then_event": "send_link",
    }
    if actor is not None:
        payload["actor"] = actor.model_dump()
    return Task(kind="notify", payload=payload, name=task_name("notify", case.id, "link", run))


def send_link(act: Act, case: Case) -> None:
    """Step 2 by hand (a kecamatan in manual link mode): the officer sends the link; the step is
    done when it has gone out. In automatic mode the resident's greeting sends it
    (services.intake.follow_ups)."""
    c = act.c
    if "send_link" not in case.allowed_events(c.sop, act.actor, act.now):
        case.apply(c.sop, "send_link", act.actor, act.now)  # raises the precise error
    case.claim(c.sop, act.actor, act.now)
    run_key = case.waiting_step(c.sop).key  # type: ignore[union-attr]
    task = link_task(case, len(case.runs(run_key)), act.actor)
    outbox_task(case, task.kind, task.payload, name=str(task.name))


# --- steps 3–5 ----------------------------------------------------------------------------


def check(act: Act, case: Case) -> None:
    """Step 3: the counter officer has checked the data and documents against the service's
    requirements (the automatic pre-check's findings are on the case: services.guestbook)."""
    act.apply(case, "check")


def contact(act: Act, case: Case) -> None:
    """Step 4: the counter officer has contacted the resident; the resident is told too,
    unless the officer's own message just did (services.notify.contact_already_said)."""
    act.apply(case, "contact")
    outbox_task(
        case,
        "notify",
        {"case_id": case.id, "kind": "contacted", "contacted_at": act.now.isoformat()},
        name=task_name("notify", case.id, "contacted", case.event_seq),
    )


def forward(act: Act, case: Case) -> None:
    """Step 5: the file verifier forwards data and files; the SIAK operator's hand-off package
    is built in a task (services.handoff.siak_handoff)."""
    act.apply(case, "forward")
    outbox_task(
        case,
        "siak_handoff",
        {"case_id": case.id},
        name=task_name("siak_handoff", case.id, case.event_seq),
    )


# --- step 6 -------------------------------------------------------------------------------


def store_draft(c: Container, case_id: str, data: ActionInput) -> DocumentRef:
    """Step 6's upload, checked and stored before the change is made (a refused change deletes
    it again: services.workflow.perform)."""
    errors = {}
    if not data.siak_ref.strip():
        errors["siak_ref"] = text("siak_ref_required")
    pdf = data.draft_pdf or b""
    if not pdf or sniff(pdf) != "application/pdf":
        errors["draft"] = text("draft_required")
    elif len(pdf) > c.settings.max_upload_mb * 1024 * 1024:
        errors["draft"] = text("file_too_large", limit_mb=c.settings.max_upload_mb)
    else:
        from sapa.adapters.pdf import pdf_page_count

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


def enter_siak(act: Act, case: Case) -> None:
    """Step 6: the SIAK operator has entered the data in SIAK and uploads SIAK's draft with its
    reference; a draft uploaded again replaces the earlier one."""
    draft = act.draft
    if draft is None:  # perform() stores it first; a caller that did not is refused
        raise ValidationFailed(text("draft_required"), {"draft": text("draft_required")})
    case.siak_ref = act.data.siak_ref.strip()
    if case.draft is not None and case.draft.key != draft.key:
        act.replaced.append(case.draft.key)
    case.draft = draft
    act.apply(case, "enter_siak", siak_ref=case.siak_ref, draft_sha256=draft.sha256)


# --- steps 7–8 ----------------------------------------------------------------------------


def approve(act: Act, case: Case) -> None:
    """Step 7: the head of division approves the SIAK draft."""
    act.apply(case, "approve")


def sign(act: Act, case: Case) -> None:
    """Step 8 starts: the head of office asks for the TTE; the signer works in a task
    (services.signing.esign_request), which applies `sign` when the signed PDF is back
    (complete_signature). A signer that needs the passphrase gets it sealed in the task (see
    services.sealed)."""
    from sapa.services.signing import document_id  # not on the webhook's import path

    c, actor, now = act.c, act.actor, act.now
    if "sign" not in case.allowed_events(c.sop, actor, now):
        case.apply(c.sop, "sign", actor, now)  # raises the precise IllegalTransition
    if case.draft is None:
        raise ValidationFailed(text("draft_required"), {"draft": text("draft_required")})
    passphrase = act.data.passphrase
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


# An officer's SOP step by its event. Step 1 (greet) is the resident's: services.intake.
STEPS: dict[str, Handler] = {
    "send_link": send_link,
    "check": check,
    "contact": contact,
    "forward": forward,
    "enter_siak": enter_siak,
    "approve": approve,
    "sign": sign,
}

# What a step needs done before its change (outside the transaction): step 6's upload.
PREPARE: dict[str, Callable[[Container, str, ActionInput], DocumentRef]] = {
    "enter_siak": store_draft,
}
