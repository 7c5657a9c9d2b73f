"""The case aggregate: one resident's request, its state, its step runs and its audit events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sapa.domain.errors import Conflict, Forbidden, IllegalTransition, SapaError
from sapa.domain.sop import STEP_ROLE, Sop, Step, Transition
from sapa.domain.texts import ROLE_LABELS, text

# Who may revoke a signed document: the head of office who signed it, or an admin.
REVOKE_ROLES = ("kadis", "admin")


class Actor(BaseModel):
    """Who acts: an officer in one role, the applicant, or the system."""

    model_config = ConfigDict(frozen=True)

    id: str
    role: str
    kecamatan: str | None = None
    name: str = ""

    @classmethod
    def system(cls) -> Actor:
        return cls(id="system", role="system", name="Sistem")

    @classmethod
    def applicant(cls, wa_id: str) -> Actor:
        return cls(id=f"wa:{wa_id}", role="pemohon", name="Pemohon")

    @property
    def label(self) -> str:
        return f"{ROLE_LABELS.get(self.role, self.role)} ({self.id})"


class StepRun(BaseModel):
    """One run of one SOP step: ready → claimed → done. A step redone gets a new run."""

    step: str
    ready_at: datetime
    claimed_at: datetime | None = None
    claimed_by: str | None = None
    done_at: datetime | None = None
    done_by: str | None = None
    outcome: str | None = None  # the event that closed the run

    @property
    def open(self) -> bool:
        return self.done_at is None


class AuditEvent(BaseModel):
    """An append-only record of one change: who, in which role, what, when, from → to."""

    case_id: str
    seq: int
    at: datetime
    actor_id: str
    role: str
    event: str
    from_state: str
    to_state: str
    detail: dict[str, Any] = Field(default_factory=dict)


class DocumentRef(BaseModel):
    """A stored file attached to a case (the bytes live in the BlobStore under `key`)."""

    key: str
    sha256: str
    size: int
    content_type: str
    filename: str = ""
    requirement: str | None = None
    source: str = "guestbook"  # guestbook | whatsapp | siak_draft | signed
    at: datetime
    wamid: str | None = None  # the WhatsApp message it came in (source whatsapp)
    # The resident deleted that message on WhatsApp: hidden from staff and from the SIAK
    # hand-off, the file kept for the retention period like any other.
    withdrawn_at: datetime | None = None


class SurveyAnswer(BaseModel):
    """The resident's answer to the satisfaction survey (SKM, sapa.domain.ikm): a score of 1 to
    4 per element, the profile choices they gave and their free text (NIK and phone numbers
    masked). Anonymous to staff: never shown with the case, only added up (sapa.domain.rollup)
    and the text read without the case it came from."""

    at: datetime
    scores: dict[str, int]
    profile: dict[str, str] = Field(default_factory=dict)
    text: str = ""


# How a complaint can end (the admin's or head's decision when closing it).
COMPLAINT_OUTCOMES = ("resolved", "unfounded", "referred")
# Who handles complaints: the heads and the admin (the officers the complaint may be about
# do not answer it).
COMPLAINT_ROLES = ("kabid", "kadis", "admin")


class Complaint(BaseModel):
    """A resident's complaint about their request (UU 25/2009): filed on WhatsApp (ADUAN) or
    from the survey page, answered within the response time sla.toml sets, closed with an
    outcome. Not anonymous: it is about this case; only COMPLAINT_ROLES read its text."""

    id: str  # k1, k2, ... within the case
    at: datetime
    channel: str  # whatsapp | survey
    text: str  # long numbers masked
    due_at: datetime  # the response is due by then
    source: str = ""  # what filed it (a message's wamid): filed once per source
    replied_at: datetime | None = None
    replied_by: str | None = None
    reply: str = ""
    closed_at: datetime | None = None
    closed_by: str | None = None
    outcome: str | None = None  # one of COMPLAINT_OUTCOMES
    note: str = ""

    @property
    def state(self) -> str:
        if self.closed_at is not None:
            return "closed"
        return "answered" if self.replied_at is not None else "open"


class Case(BaseModel):
    """The aggregate. Change it only through `apply`, `claim` and `release`."""

    id: str
    reg_no: str
    kecamatan: str
    phone_number_id: str
    wa_id: str  # where replies go: the resident's number, or their BSUID when no number came
    # The resident's business-scoped user id (WhatsApp usernames), when Meta sent one.
    wa_user_id: str | None = None
    applicant_name: str = ""
    service: str | None = None
    # The service the resident's first WhatsApp message seemed to name (services.toml keywords):
    # the greeting lists its documents and the guest book preselects it. Only a hint: the
    # service is what the resident chooses in the guest book (`service`).
    service_hint: str | None = None
    state: str
    version: int = 0
    created_at: datetime
    updated_at: datetime
    returned_to: str | None = None
    steps: list[StepRun] = Field(default_factory=list)
    form: dict[str, Any] = Field(default_factory=dict)
    consent: dict[str, Any] | None = None
    documents: list[DocumentRef] = Field(default_factory=list)
    precheck: dict[str, Any] | None = None
    siak_ref: str | None = None
    draft: DocumentRef | None = None
    signed: DocumentRef | None = None
    signature_id: str | None = None
    handoff: DocumentRef | None = None  # the SIAK hand-off package (zip) for step 6
    document_status: str = "valid"  # of the signed document: valid | revoked
    # What the retention schedule has done to this case, and when (ISO times).
    retention: dict[str, str] = Field(default_factory=dict)
    closed_reason: str | None = None
    # What the resident has typed into the guest book so far (unvalidated; no state change).
    draft_form: dict[str, str] = Field(default_factory=dict)
    # What the counter officer asked to be corrected: "doc:<requirement>" or "field:<name>"
    # → the reason; the guest book then shows only these. Cleared on re-submission.
    corrections: dict[str, str] = Field(default_factory=dict)
    corrections_at: datetime | None = None
    # The resident sent BATAL and has been asked to confirm with YA (cancel needs both).
    cancel_requested_at: datetime | None = None
    closed_at: datetime | None = None  # when a terminal state was reached (lead time ends here)
    # What the SLA sweep has recorded or done for this case, so a repeat does nothing twice:
    # "breach:<run>", "escalated:<run>", "lead_time", "reminder:<state>:<since>",
    # "expiry_notice" → when (ISO time) or, for the expiry notice, its progress.
    sla_flags: dict[str, str] = Field(default_factory=dict)
    # Tasks decided together with a state change, saved atomically with it and enqueued after
    # the save (by deterministic name, so enqueueing twice is harmless): nothing is lost if the
    # process dies between the save and the enqueue.
    outbox: list[dict[str, Any]] = Field(default_factory=list)
    survey: SurveyAnswer | None = None  # the resident's satisfaction survey, once answered
    complaints: list[Complaint] = Field(default_factory=list)
    # The resident wrote ADUAN alone (or tapped it): their next message is the complaint.
    complaint_asked_at: datetime | None = None
    event_seq: int = 0
    new_events: list[AuditEvent] = Field(default_factory=list, exclude=True)

    # ---- creation -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        sop: Sop,
        *,
        case_id: str,
        reg_no: str,
        kecamatan: str,
        phone_number_id: str,
        wa_id: str,
        applicant_name: str,
        at: datetime,
        service_hint: str | None = None,
    ) -> Case:
        """SOP step 1: the resident greets the kecamatan's number and a case exists."""
        first = sop.steps[0]
        case = cls(
            id=case_id,
            reg_no=reg_no,
            kecamatan=kecamatan,
            phone_number_id=phone_number_id,
            wa_id=wa_id,
            applicant_name=applicant_name,
            service_hint=service_hint,
            state=first.to_state,
            created_at=at,
            updated_at=at,
        )
        actor = Actor.applicant(wa_id)
        case.steps.append(
            StepRun(
                step=first.key,
                ready_at=at,
                claimed_at=at,
                claimed_by=actor.id,
                done_at=at,
                done_by=actor.id,
                outcome=first.event,
            )
        )
        detail = {"reg_no": reg_no, **({"service_hint": service_hint} if service_hint else {})}
        case._record(actor, first.event, "", first.to_state, at, detail)
        case._open_run_if_waiting(sop, at)
        return case

    # ---- queries --------------------------------------------------------------------------

    def is_open(self, sop: Sop) -> bool:
        return self.state not in sop.terminal_states

    def waiting_step(self, sop: Sop) -> Step | None:
        """The SOP step that someone must do next (None while waiting on the resident)."""
        if self.state == "returned" and self.returned_to:
            return sop.step(self.returned_to)
        return sop.step_waiting_in(self.state)

    def current_run(self, sop: Sop) -> StepRun | None:
        step = self.waiting_step(sop)
        if step is None:
            return None
        for run in reversed(self.steps):
            if run.step == step.key and run.open:
                return run
        return None

    def runs(self, step_key: str) -> list[StepRun]:
        return [r for r in self.steps if r.step == step_key]

    def allowed_events(self, sop: Sop, actor: Actor, now: datetime) -> list[str]:
        out = []
        for event in dict.fromkeys(t.event for t in self._transitions_from_here(sop)):
            try:
                self._check(sop, event, actor, now)
            except (IllegalTransition, Forbidden, Conflict):
                continue
            out.append(event)
        return out

    # ---- commands -------------------------------------------------------------------------

    def apply(self, sop: Sop, event: str, actor: Actor, at: datetime, **detail: Any) -> AuditEvent:
        """Perform `event` as `actor`, or raise IllegalTransition / Forbidden / Conflict."""
        transition = self._check(sop, event, actor, at)
        before = self.state
        run = self.current_run(sop)
        if run is not None:
            if run.claimed_at is None:
                run.claimed_at, run.claimed_by = at, actor.id
            run.done_at, run.done_by, run.outcome = at, actor.id, event
        if event == "return":
            producing = sop.step_producing(before)
            self.returned_to = producing.key if producing else None
        elif transition.to_state != "returned":
            self.returned_to = None
        self.state = transition.to_state
        self.updated_at = at
        if self.state in sop.terminal_states:
            self.closed_at = at
            if event != "deliver":
                self.closed_reason = str(detail.get("reason") or event)
        audit = self._record(actor, event, before, self.state, at, detail)
        self._open_run_if_waiting(sop, at)
        return audit

    def claim(self, sop: Sop, actor: Actor, at: datetime) -> AuditEvent:
        """An officer takes the waiting step ("ambil"), so two officers never work one case."""
        step, run = self._guard_take(sop, actor, at)
        if run.claimed_by == actor.id:
            return self._record(actor, "claim", self.state, self.state, at, {"step": step.key})
        run.claimed_at, run.claimed_by = at, actor.id
        self.updated_at = at
        return self._record(actor, "claim", self.state, self.state, at, {"step": step.key})

    def may_claim(self, sop: Sop, actor: Actor, at: datetime) -> bool:
        """Whether `actor` could take the waiting step now (what `claim` checks), for offering
        the button; nothing changes."""
        try:
            self._guard_take(sop, actor, at)
        except SapaError:
            return False
        return True

    def may_be_assigned(self, sop: Sop, to: Actor) -> bool:
        """Whether an admin could hand the waiting step to `to` (what `reassign` checks of
        the officer it goes to)."""
        step = self.waiting_step(sop)
        if step is None:
            return False
        try:
            self._guard_assignee(sop, step, to)
        except SapaError:
            return False
        return True

    def _guard_assignee(self, sop: Sop, step: Step, to: Actor) -> None:
        if to.role != step.role:
            raise self._illegal("reassign", to)
        self._guard_actor(sop, step.role, to, "reassign")

    def _guard_take(self, sop: Sop, actor: Actor, at: datetime) -> tuple[Step, StepRun]:
        step = self.waiting_step(sop)
        run = self.current_run(sop)
        if step is None or run is None:
            raise self._illegal("claim", actor)
        if actor.role == "system" and not step.automatable:
            raise self._illegal("claim", actor)  # the system may only take steps it can do
        self._guard_actor(sop, step.role, actor, "claim")
        if run.claimed_by != actor.id:
            self._guard_claim(sop, run, actor, at)
        return step, run

    def release(self, sop: Sop, actor: Actor, at: datetime) -> AuditEvent:
        run = self.current_run(sop)
        if run is None or run.claimed_by != actor.id:
            raise self._illegal("release", actor)
        run.claimed_at = run.claimed_by = None
        self.updated_at = at
        return self._record(actor, "release", self.state, self.state, at, {"step": run.step})

    def return_claim(
        self, sop: Sop, holder: str, at: datetime, *, reason: str
    ) -> AuditEvent | None:
        """SAPA hands the waiting step back to the queue because `holder` may no longer act on
        it (deactivated, moved, the role taken away): a system action, on the record. None,
        and nothing changed, when `holder` does not hold it (any more)."""
        run = self.current_run(sop)
        if run is None or run.claimed_by != holder:
            return None
        run.claimed_at = run.claimed_by = None
        self.updated_at = at
        return self._record(
            Actor.system(),
            "claim_returned",
            self.state,
            self.state,
            at,
            {"step": run.step, "from": holder, "reason": reason},
        )

    def reassign(self, sop: Sop, admin: Actor, to: Actor, at: datetime) -> AuditEvent:
        """An admin hands the waiting step to another officer (who must hold its role and, for
        kecamatan roles, the case's kecamatan); the claim's clock starts again."""
        step = self.waiting_step(sop)
        run = self.current_run(sop)
        if admin.role != "admin" or step is None or run is None:
            raise self._illegal("reassign", admin)
        self._guard_assignee(sop, step, to)
        before = run.claimed_by
        run.claimed_at, run.claimed_by = at, to.id
        self.updated_at = at
        return self._record(
            admin,
            "reassign",
            self.state,
            self.state,
            at,
            {"step": step.key, "from": before, "to": to.id},
        )

    def revoke_document(self, actor: Actor, reason: str, at: datetime) -> AuditEvent:
        """The head of office (or an admin) revokes the signed document: the public
        verification page says so from then on. The signature itself cannot be undone."""
        if actor.role not in REVOKE_ROLES or self.signed is None:
            raise self._illegal("revoke_document", actor)
        if self.document_status == "revoked":
            raise self._illegal("revoke_document", actor)
        self.document_status = "revoked"
        self.updated_at = at
        return self._record(
            actor, "revoke_document", self.state, self.state, at, {"reason": reason}
        )

    def answer_survey(self, answer: SurveyAnswer) -> None:
        """Keep the resident's survey answer: once per case, and no audit event (the case's
        history is shown to the officers the answer is about)."""
        if self.survey is not None:
            raise Conflict(text("survey_already_answered"))
        self.survey = answer
        self.updated_at = answer.at

    def file_complaint(
        self,
        text_: str,
        channel: str,
        at: datetime,
        due_at: datetime,
        actor: Actor,
        *,
        source: str = "",
    ) -> Complaint:
        """The resident's complaint, recorded with its response deadline (the audit event
        names it, not its text: the trail is shown to every officer of the case)."""
        complaint = Complaint(
            id=f"k{len(self.complaints) + 1}",
            at=at,
            channel=channel,
            text=text_,
            due_at=due_at,
            source=source,
        )
        self.complaints.append(complaint)
        self.complaint_asked_at = None
        self.note(actor, "complaint_filed", at, complaint=complaint.id, channel=channel)
        return complaint

    def complaint(self, complaint_id: str) -> Complaint:
        found = next((k for k in self.complaints if k.id == complaint_id), None)
        if found is None:
            raise Conflict(text("complaint_unknown"))
        return found

    def answer_complaint(
        self, complaint_id: str, actor: Actor, reply: str, at: datetime
    ) -> AuditEvent:
        """A head or the admin answers the complaint (the reply goes to the resident)."""
        complaint = self._complaint_for(complaint_id, actor, "complaint_reply")
        complaint.replied_at = complaint.replied_at or at
        complaint.replied_by = complaint.replied_by or actor.id
        complaint.reply = reply
        late = at > complaint.due_at
        return self.note(actor, "complaint_replied", at, complaint=complaint_id, late=late)

    def close_complaint(
        self, complaint_id: str, actor: Actor, outcome: str, note: str, at: datetime
    ) -> AuditEvent:
        complaint = self._complaint_for(complaint_id, actor, "complaint_close")
        if outcome not in COMPLAINT_OUTCOMES:
            raise Conflict(text("complaint_outcome_unknown"))
        complaint.closed_at, complaint.closed_by = at, actor.id
        complaint.outcome, complaint.note = outcome, note
        return self.note(actor, "complaint_closed", at, complaint=complaint_id, outcome=outcome)

    def _complaint_for(self, complaint_id: str, actor: Actor, event: str) -> Complaint:
        if actor.role not in COMPLAINT_ROLES:
            raise self._illegal(event, actor)
        complaint = self.complaint(complaint_id)
        if complaint.closed_at is not None:
            raise Conflict(text("complaint_closed_already"))
        return complaint

    def note(self, actor: Actor, event: str, at: datetime, **detail: Any) -> AuditEvent:
        """Record something that changes no state (a document attached, a message sent)."""
        self.updated_at = at
        return self._record(actor, event, self.state, self.state, at, detail)

    # ---- internals ------------------------------------------------------------------------

    def _transitions_from_here(self, sop: Sop) -> list[Transition]:
        found = sop.events_from(self.state)
        if self.state == "returned" and self.returned_to:
            step = sop.step(self.returned_to)
            found.append(Transition(step.event, "returned", step.to_state, (step.role,), step))
        return found

    def _check(self, sop: Sop, event: str, actor: Actor, at: datetime) -> Transition:
        transition = next((t for t in self._transitions_from_here(sop) if t.event == event), None)
        if transition is None:
            raise self._illegal(event, actor)
        waiting = self.waiting_step(sop)
        roles = set(transition.roles)
        if STEP_ROLE in roles:
            roles.discard(STEP_ROLE)
            if waiting is not None:
                roles.add(waiting.role)
        if actor.role not in roles:
            raise self._illegal(event, actor)
        self._guard_actor(sop, actor.role, actor, event)
        run = self.current_run(sop)
        if run is not None and actor.role not in ("system", "admin", "pemohon"):
            self._guard_claim(sop, run, actor, at)
        return transition

    def _guard_actor(self, sop: Sop, role: str, actor: Actor, event: str) -> None:
        if actor.role != role and not (role != "pemohon" and actor.role == "system"):
            raise self._illegal(event, actor)
        if actor.role in sop.kecamatan_roles and actor.kecamatan != self.kecamatan:
            raise Forbidden(text("wrong_kecamatan", kecamatan=actor.kecamatan or "-"))
        if actor.role == "pemohon" and actor.id != Actor.applicant(self.wa_id).id:
            raise self._illegal(event, actor)

    def _guard_claim(self, sop: Sop, run: StepRun, actor: Actor, at: datetime) -> None:
        if run.claimed_by in (None, actor.id) or run.claimed_at is None:
            return
        if at - run.claimed_at >= timedelta(seconds=sop.claim_timeout_seconds):
            return  # an abandoned claim expires
        raise Conflict(text("claimed_by_other", who=run.claimed_by), holder=run.claimed_by)

    def reply_role(self, sop: Sop) -> str | None:
        """The officer role that speaks to the resident now: the waiting step's, or, while
        the case waits on the resident (the guest book, a correction), the role that sent them
        the link (the counter). None once the case is closed."""
        if not self.is_open(sop):
            return None
        step = self.waiting_step(sop) or sop.step_for_event("send_link")
        return step.role if step is not None else None

    def guard_reply(self, sop: Sop, actor: Actor, at: datetime) -> None:
        """An officer may write to the resident only as every action is checked: the role of
        the step at hand (or admin), their own kecamatan, and no one else's claim."""
        role = self.reply_role(sop)
        if role is None or actor.role not in (role, "admin"):
            raise self._illegal("reply", actor)
        self._guard_actor(sop, actor.role, actor, "reply")
        run = self.current_run(sop)
        if run is not None and actor.role != "admin":
            self._guard_claim(sop, run, actor, at)

    def refusal(self, event: str, actor: Actor) -> IllegalTransition:
        """The error for `event` by `actor` not being allowed on this case now."""
        return self._illegal(event, actor)

    def _illegal(self, event: str, actor: Actor) -> IllegalTransition:
        return IllegalTransition(
            text(
                "illegal_transition",
                event=event,
                actor=actor.label,
                case=self.reg_no,
                state=self.state,
            ),
            case_id=self.id,
            state=self.state,
            event=event,
            actor=actor.id,
        )

    def _open_run_if_waiting(self, sop: Sop, at: datetime) -> None:
        step = self.waiting_step(sop)
        if step is not None and self.current_run(sop) is None:
            self.steps.append(StepRun(step=step.key, ready_at=at))

    def _record(
        self,
        actor: Actor,
        event: str,
        before: str,
        after: str,
        at: datetime,
        detail: dict[str, Any],
    ) -> AuditEvent:
        self.event_seq += 1
        audit = AuditEvent(
            case_id=self.id,
            seq=self.event_seq,
            at=at,
            actor_id=actor.id,
            role=actor.role,
            event=event,
            from_state=before,
            to_state=after,
            detail=detail,
        )
        self.new_events.append(audit)
        return audit
