"""The retention schedule applied: documents deleted and personal data anonymised when due."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case
from sapa.domain.values import mask_name, mask_nik, mask_phone
from sapa.services.unit import mutate


@dataclass(frozen=True)
class Schedule:
    requirement_documents: timedelta
    personal_data: timedelta
    signed_document: timedelta


@cache
def load_schedule(path: str | None = None) -> Schedule:
    if path is None:
        raw = resources.files("sapa.data").joinpath("retention.toml").read_text("utf-8")
    else:
        raw = Path(path).read_text("utf-8")
    classes = tomllib.loads(raw)["classes"]
    return Schedule(
        *(
            timedelta(days=int(classes[n]["retain_days"]))
            for n in ("requirement_documents", "personal_data", "signed_document")
        )
    )


def retain_until(schedule: Schedule, case: Case) -> dict[str, datetime] | None:
    """The retention metadata of a closed case (None while it is open)."""
    if case.closed_at is None:
        return None
    return {
        "requirement_documents": case.closed_at + schedule.requirement_documents,
        "personal_data": case.closed_at + schedule.personal_data,
        "signed_document": case.closed_at + schedule.signed_document,
    }


def sweep(c: Container, *, limit: int = 500) -> dict[str, int]:
    """Apply what is due to closed cases; each action once, each recorded in the audit trail."""
    schedule = load_schedule(str(c.settings.retention_file) if c.settings.retention_file else None)
    now = c.clock.now()
    done = {
        "documents_deleted": 0,
        "anonymised": 0,
        "signed_deleted": 0,
        "contacts_forgotten": 0,
        "counters_forgotten": 0,
    }
    terminal = list(c.sop.terminal_states)
    for case in c.store.list_cases(states=terminal, limit=limit * 20):
        due = retain_until(schedule, case)
        if due is None:
            continue
        if now >= due["requirement_documents"] and case.retention.get("documents") is None:
            done["documents_deleted"] += _delete_documents(c, case, now)
        if now >= due["personal_data"] and case.retention.get("personal_data") is None:
            _anonymise(c, case, now)
            done["anonymised"] += 1
        if now >= due["signed_document"] and case.signed and "signed" not in case.retention:
            c.blobs.delete(case.signed.key)
            _mark(c, case.id, "signed", now, {})
            done["signed_deleted"] += 1
    # A number's last-message time (kept for the 24-hour window) is personal data too: gone
    # once the number has been silent for the personal-data period.
    done["contacts_forgotten"] = c.store.forget_contacts(
        inbound_before=now - schedule.personal_data
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
        case.retention["personal_data"] = now.isoformat()
        case.note(Actor.system(), "retention_personal_data", now, messages=redacted)

    mutate(c, case.id, change)
