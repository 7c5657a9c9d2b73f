"""The retention schedule applied: documents deleted and personal data anonymised when due."""

from __future__ import annotations

from datetime import datetime

from sapa.bootstrap import Container
from sapa.domain.agenda import retention_pending
from sapa.domain.case import Actor, Case
from sapa.domain.values import mask_name, mask_nik, mask_phone
from sapa.services import due
from sapa.services.unit import mutate

PAGE = 200


def sweep(c: Container, *, page: int = PAGE) -> dict[str, int]:
    """Apply what is due to closed cases; each action once, each recorded in the audit trail.
    Reads only the cases with something due (`sapa.domain.agenda`), however many are kept."""
    now = c.clock.now()
    done = {
        "documents_deleted": 0,
        "anonymised": 0,
        "signed_deleted": 0,
        "contacts_forgotten": 0,
        "counters_forgotten": 0,
    }
    agenda = c.agenda()
    due.refresh(c, "retention", agenda.retention_fingerprint, c.sop.terminal_states)
    for listed in due.each_due(c.store, "retention", now, page):
        case = listed.case
        pending = retention_pending(agenda.schedule, case)
        if not any(at <= now for at in pending.values()):
            c.store.recount(case.id)  # due by an older schedule: its due time moves on
            continue
        if "documents" in pending and now >= pending["documents"]:
            done["documents_deleted"] += _delete_documents(c, case, now)
        if "personal_data" in pending and now >= pending["personal_data"]:
            _anonymise(c, case, now)
            done["anonymised"] += 1
        if "signed" in pending and now >= pending["signed"] and case.signed is not None:
            c.blobs.delete(case.signed.key)
            _mark(c, case.id, "signed", now, {})
            done["signed_deleted"] += 1
    # A number's last-message time (kept for the 24-hour window) is personal data too: gone
    # once the number has been silent for the personal-data period.
    done["contacts_forgotten"] = c.store.forget_contacts(
        inbound_before=now - agenda.schedule.personal_data
    )
    # Rate-limit windows that have ended (keyed hashes of numbers and addresses, but dead rows).
    done["counters_forgotten"] = c.store.forget_expired_counters(now)
    return done


def _mark(c: Container, case_id: str, what: str, now: datetime, detail: dict[str, object]) -> None:
    def change(case: Case) -> None:
        case.retention[what] = now.isoformat()
        case.note(Actor.system(), f"retention_{what}", now, **detail)

    mutate(c, case_id, change)


def _delete_documents(c: Container, case: Case, now: datetime) -> int:
    keys = [d.key for d in case.documents]
    keys += [d.key for d in (case.draft, case.handoff) if d is not None]
    deleted = sum(1 for k in keys if c.blobs.delete(k))

    def change(case: Case) -> None:
        case.documents = []
        case.handoff = None
        case.retention["documents"] = now.isoformat()
        case.note(Actor.system(), "retention_documents", now, deleted=deleted)

    mutate(c, case.id, change)
    return deleted


def _anonymise(c: Container, case: Case, now: datetime) -> None:
    redacted = c.store.redact_messages(case.id)

    def change(case: Case) -> None:
        form = case.form
        case.form = {
            "name": mask_name(str(form.get("name", ""))),
            "nik": mask_nik(str(form.get("nik", ""))) if form.get("nik") else "",
            "kk": mask_nik(str(form.get("kk", ""))) if form.get("kk") else "",
        }
        case.draft_form = {}
        case.applicant_name = mask_name(case.applicant_name)
        resident = f"wa:{case.wa_id}"
        masked = f"wa:{mask_phone(case.wa_id)}"
        for run in case.steps:  # the resident's own steps name them by number
            run.claimed_by = masked if run.claimed_by == resident else run.claimed_by
            run.done_by = masked if run.done_by == resident else run.done_by
        case.wa_id = mask_phone(case.wa_id)
        case.wa_user_id = None  # the business-scoped user id names the resident too
        case.corrections = {}
        # what the resident and the office wrote in their own words may name people: gone;
        # the survey's scores and the complaints' dates and outcomes stay (the reports' counts)
        if case.survey is not None:
            case.survey.text = ""
        for complaint in case.complaints:
            complaint.text = complaint.reply = complaint.note = ""
        case.complaint_asked_at = None
        case.retention["personal_data"] = now.isoformat()
        case.note(Actor.system(), "retention_personal_data", now, messages=redacted)

    mutate(c, case.id, change)
