"""Read models for pages and JSON: a case's timeline against the mutu baku, worklists."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from sapa.bootstrap import Container
from sapa.domain.case import (
    COMPLAINT_ROLES,
    REVOKE_ROLES,
    Actor,
    AuditEvent,
    Case,
    DocumentRef,
)
from sapa.domain.errors import NotFound
from sapa.domain.sla import clock_parts, format_duration, format_on_clock, timeline
from sapa.domain.texts import (
    ACTION_LABELS,
    ACTOR_LABELS,
    AUDIT_EVENT_LABELS,
    COMPLAINT_OUTCOME_LABELS,
    MESSAGE_STATUS_LABELS,
    REASON_LABELS,
    ROLE_LABELS,
    STATE_LABELS,
    text,
)
from sapa.domain.values import mask_nik, mask_phone, masked_actor
from sapa.ports import Message, StaffMember
from sapa.services import access
from sapa.services.people import staff_names


def _iso(d: datetime | None) -> str | None:
    return d.isoformat() if d else None


def person(names: dict[str, str], actor_id: str | None) -> dict[str, str] | None:
    """Who did something, as staff read it: an officer by name (the e-mail as the `title`,
    shown on hover), the resident as "Pemohon" (the masked number as the title), SAPA itself
    as "Sistem SAPA". None when nobody."""
    if not actor_id:
        return None
    if actor_id in ACTOR_LABELS:
        return {"id": actor_id, "name": ACTOR_LABELS[actor_id], "title": ""}
    if actor_id.startswith("wa:"):
        return {
            "id": str(masked_actor(actor_id)),
            "name": ACTOR_LABELS["pemohon"],
            "title": mask_phone(actor_id[3:]),
        }
    name = names.get(actor_id)
    return {"id": actor_id, "name": name or actor_id, "title": actor_id if name else ""}


def case_timeline(c: Container, case: Case) -> dict[str, Any]:
    """Each step run: who did it, handling time against its mutu baku, waiting time; and the
    lead time of the whole case against the office's target. Durations are shown on the
    step's clock: on working hours "2 j 10 mnt kerja · 18 j 10 mnt total"."""
    tl = timeline(c.sop, case, c.clock.now(), c.sla_clocks)
    names = staff_names(c)
    return {
        "case_id": case.id,
        "reg_no": case.reg_no,
        "state": case.state,
        "state_label": STATE_LABELS.get(case.state, case.state),
        "steps": [
            {
                "number": s.step.number,
                "key": s.step.key,
                "kegiatan": s.step.kegiatan,
                "role": s.step.role,
                "role_label": ROLE_LABELS.get(s.step.role, s.step.role),
                "ready_at": _iso(s.run.ready_at),
                "claimed_at": _iso(s.run.claimed_at),
                "claimed_by": masked_actor(s.run.claimed_by),
                "done_at": _iso(s.run.done_at),
                "done_by": masked_actor(s.run.done_by),
                # who did it (or holds it), by name
                "by": person(names, s.run.done_by or s.run.claimed_by),
                "outcome": s.run.outcome,
                "waiting_seconds": s.waiting_seconds,
                "handling_seconds": s.handling_seconds,
                "mutu_baku_seconds": s.mutu_baku_seconds,
                "breached": s.breached,
                "clock": s.clock,
                "working_waiting_seconds": s.working_waiting_seconds,
                "working_handling_seconds": s.working_handling_seconds,
                "waiting": format_on_clock(s.waiting_seconds, s.working_waiting_seconds, s.clock),
                "handling": format_on_clock(
                    s.handling_seconds, s.working_handling_seconds, s.clock
                ),
                "mutu_baku": format_duration(s.mutu_baku_seconds),
            }
            for s in tl.steps
        ],
        "lead_time_seconds": tl.lead_time_seconds,
        "lead_time": format_duration(tl.lead_time_seconds),
        "working_lead_time_seconds": tl.working_lead_time_seconds,
        "working_lead_time": format_duration(tl.working_lead_time_seconds),
        "lead_time_clock": tl.lead_time_clock,
        "lead_time_target_seconds": tl.lead_time_target_seconds,
        "standard_total_seconds": tl.standard_total_seconds,
        "finished": tl.finished,
    }


def case_summary(c: Container, case: Case, *, show_nik: bool = False) -> dict[str, Any]:
    form = dict(case.form)
    if "nik" in form and not show_nik:
        form["nik"] = mask_nik(form["nik"])
    if "kk" in form and not show_nik:
        form["kk"] = mask_nik(form["kk"])
    if "wa_number" in form:
        form["wa_number"] = mask_phone(str(form["wa_number"]))
    if form.get("birth_date"):
        y, m, d = str(form["birth_date"]).split("-")
        form["birth_date"] = f"{d}-{m}-{y}"
    waiting = case.waiting_step(c.sop)
    # what the resident's first WhatsApp message seemed to ask for, until they choose
    hint = None if case.service else c.catalogue.find(case.service_hint)
    names: dict[str, str] = {}
    if case.service:
        names = {r.key: r.name for r in c.catalogue.get(case.service).requirements}
    return {
        "id": case.id,
        "reg_no": case.reg_no,
        "state": case.state,
        "state_label": STATE_LABELS.get(case.state, case.state),
        "kecamatan": case.kecamatan,
        "kecamatan_name": c.region.kecamatan_by_code(case.kecamatan).name,
        "wa": mask_phone(case.wa_id),
        "service": case.service,
        "service_name": c.catalogue.get(case.service).name if case.service else None,
        "service_hint_name": hint.name if hint else None,
        "form": form,
        "waiting_step": waiting.key if waiting else None,
        "waiting_role": waiting.role if waiting else None,
        "requirements": [
            {
                "key": r.key,
                "name": r.name,
                "optional": r.optional,
                "have": any(d.requirement == r.key for d in case.documents),
            }
            for r in (c.catalogue.get(case.service).requirements if case.service else ())
        ],
        "corrections": dict(case.corrections),
        "siak_ref": case.siak_ref,
        "precheck": case.precheck,
        "documents": [
            {
                "n": i,
                "requirement": d.requirement,
                "source": d.source,
                "filename": d.filename,
                "name": names.get(d.requirement or "", d.filename or "berkas"),
                "content_type": d.content_type,
                "size": d.size,
                "sha256": d.sha256,
                "withdrawn": d.withdrawn_at is not None,
            }
            for i, d in enumerate(case.documents)
        ],
        "draft": case.draft.sha256 if case.draft else None,
        "signed": case.signed.sha256 if case.signed else None,
        "closed_reason": case.closed_reason,
    }


def sla_clock(c: Container, case: Case) -> dict[str, Any]:
    """The waiting step's clock for a worklist row: green within its mutu baku, amber past it,
    red once the whole case is past the office's lead-time target; each measured on its clock
    (sla.toml [clocks]: an officer's step on working hours)."""
    now = c.clock.now()
    run = case.current_run(c.sop)
    step = case.waiting_step(c.sop)
    if run is None or step is None:
        return {"color": "none", "elapsed": "-", "elapsed_seconds": None}
    clocks = c.sla_clocks
    clock = clocks.clock_of(step, run)
    elapsed = (now - run.ready_at).total_seconds()
    working = clocks.working(run.ready_at, now)
    lead = (now - case.created_at).total_seconds()
    if clocks.measure(case.created_at, now, clocks.lead_time) > c.sop.lead_time_target_seconds:
        color = "red"
    elif clocks.measure(run.ready_at, now, clock) > step.mutu_baku_seconds:
        color = "amber"
    else:
        color = "green"
    return {
        "color": color,
        "elapsed": format_on_clock(elapsed, working, clock),
        "elapsed_main": clock_parts(elapsed, working, clock)[0],
        "elapsed_total": clock_parts(elapsed, working, clock)[1],
        "elapsed_seconds": elapsed,
        "working_elapsed_seconds": working,
        "clock": clock,
        "mutu_baku": format_duration(step.mutu_baku_seconds),
        "lead_time": format_duration(lead),
        "claimed_by": run.claimed_by,
    }


def worklist_rows(c: Container, cases: list[Case]) -> list[dict[str, Any]]:
    """A worklist's rows: each case's summary, its step's clock and who holds it (by name)."""
    names = staff_names(c)
    rows = []
    for k in cases:
        clock = sla_clock(c, k)
        rows.append(
            {
                **case_summary(c, k),
                "clock": clock,
                "holder": person(names, clock.get("claimed_by")),
            }
        )
    return rows


def worklist(
    c: Container, staff: StaffMember, *, kecamatan: str | None = None, service: str | None = None
) -> list[Case]:
    """Cases whose waiting step belongs to one of the staff member's roles, oldest first;
    kecamatan-scoped roles see only their kecamatan."""
    wanted_states: dict[str, set[str]] = {}
    for sop_step in c.sop.steps:
        if sop_step.role in staff.roles and sop_step.from_state:
            wanted_states.setdefault(sop_step.from_state, set()).add(sop_step.role)
    states = set(wanted_states) | {"returned"}
    scoped = access.kecamatan_bound(c, staff)
    cases = c.store.list_cases(
        states=states, kecamatan=staff.kecamatan if scoped else kecamatan, limit=500
    )
    out = []
    for case in cases:
        step = case.waiting_step(c.sop)
        if step is None or step.role not in staff.roles:
            continue
        if step.role in c.sop.kecamatan_roles and case.kecamatan != staff.kecamatan:
            continue
        if service and case.service != service:
            continue
        out.append(case)
    # Oldest waiting first: the order the SOP's clock runs in.
    out.sort(key=lambda k: r.ready_at if (r := k.current_run(c.sop)) else k.updated_at)
    return out


_ABOUT_OTHERS = ("reaction", "edit", "revoke")


def conversation(
    messages: list[Message],
    names: dict[str, str] | None = None,
    events: list[AuditEvent] | None = None,
) -> list[dict[str, Any]]:
    """A case's WhatsApp conversation as staff read it: a reaction shown on the message it
    reacts to (a removed one gone), an edit showing the new text beside the original, a
    revoked message marked deleted with its file hidden; echoes of the WhatsApp Business app
    shown as the office's. The stored messages stay as they came (the record).

    Who wrote: the resident, an officer by name (`names`; the e-mail as `who_title`), or SAPA
    itself ("automatic"). An officer's reply still on its way is shown as pending ("mengirim…")
    until its sent message takes its place, or as not sent when the audit trail (`events`)
    says WhatsApp would not take it; a sent message carries WhatsApp's latest status."""
    names = names or {}
    reactions: dict[str, str] = {}
    edits: dict[str, str] = {}
    revoked: set[str] = set()
    ids = {m.id for m in messages}
    not_sent = {
        str(e.detail.get("message")): str(e.detail.get("reason") or "")
        for e in events or ()
        if e.event == "message_not_sent"
    }
    delayed = {str(e.detail.get("message")) for e in events or () if e.event == "message_delayed"}
    for m in messages:
        target = str(m.data.get("target") or "")
        if m.type == "reaction" and target:
            reactions[target] = str(m.data.get("emoji") or "")
        elif m.type == "edit" and target:
            edits[target] = m.body
        elif m.type == "revoke" and target:
            revoked.add(target)
    shown = []
    for m in messages:
        if m.type in _ABOUT_OTHERS:
            continue
        pending_for = str(m.data.get("pending_for") or "")
        if pending_for and pending_for in ids:
            continue  # sent: the sent message stands in its place
        key = m.provider_id or m.id
        deleted = key in revoked
        who, title, kind = _speaker(m, names)
        status = m.status
        reason = ""
        if pending_for:
            status = "not_sent" if pending_for in not_sent else "pending"
            reason = _detail_text(not_sent.get(pending_for, ""))
        elif m.direction == "out" and not status and title:
            status = "pending"  # WhatsApp took it; it has not said it was sent yet
        shown.append(
            {
                "id": key,
                "direction": m.direction,
                "at": m.at.isoformat(),
                "type": m.type,
                "who": who,
                "who_title": title,
                "author": kind,
                "body": "(pesan dihapus oleh pemohon)" if deleted else edits.get(key, m.body),
                "edited_from": m.body if key in edits and not deleted else None,
                "deleted": deleted,
                "media_id": None if deleted else m.data.get("media_id"),
                "reactions": [reactions[key]] if reactions.get(key) else [],
                "status": status,
                "status_label": MESSAGE_STATUS_LABELS.get(status, status),
                "status_reason": reason,
                "delayed": pending_for in delayed,
            }
        )
    return shown


def _speaker(m: Message, names: dict[str, str]) -> tuple[str, str, str]:
    """Who wrote `m`, its title (an officer's e-mail) and the kind of author: "resident",
    "officer" (by name; the WhatsApp Business app's echo as the office's) or "automatic"."""
    if m.direction == "in":
        return ACTOR_LABELS["pemohon"], "", "resident"
    if m.data.get("source") == "echo":
        return ACTOR_LABELS["wa-business-app"], "", "officer"
    if m.actor_id in names:
        return names[m.actor_id], m.actor_id, "officer"
    if "@" in m.actor_id:  # an officer no longer in the directory
        return ACTOR_LABELS["former_officer"], m.actor_id, "officer"
    return ACTOR_LABELS["automatic_message"], "", "automatic"


def signing_state(c: Container, events: list[AuditEvent]) -> dict[str, Any]:
    """For the head of office's sign form, from the case's audit `events`: why the last
    signature request failed (when it is the latest word on signing) and how many
    passphrases BSrE refused today, with the warning to show before they type again."""
    from sapa.services.signing import passphrase_failures_today

    last = None
    for e in events:
        if e.event in ("sign_requested", "sign_failed"):
            last = e
    failure = str(last.detail.get("reason") or "") if last and last.event == "sign_failed" else ""
    count = passphrase_failures_today(c) if c.settings.signer == "bsre" else 0
    return {
        "failure": failure or None,
        "passphrase_failures": count,
        "warning": text("passphrase_failures", count=count) if count else None,
    }


def may_reply(c: Container, case: Case, staff: StaffMember) -> bool:
    """Whether the reply form is offered to `staff` (the same check the action makes)."""
    from sapa.domain.errors import SapaError
    from sapa.services.workflow import acting_role

    try:
        case.guard_reply(c.sop, acting_role(c, case, staff, "reply"), c.clock.now())
    except SapaError:
        return False
    return True


# A case's signing events, in order; the last says whether the signer is at work.
_SIGN_EVENTS = ("sign_requested", "sign_failed")
# The guest-book link in a message is the resident's key to their form: not for staff eyes.
_LINK = re.compile(r"(/guestbook/f/)\S+")


def case_page(c: Container, case: Case, staff: StaffMember) -> dict[str, Any]:
    """Everything the case page shows `staff` (and its JSON): the case with the NIK as their
    role may see it, the step at hand with the actions offered (each by the same rule the
    action itself is checked with; the step's own first), the documents its decision rests on,
    what SAPA is still doing for it, the timeline, the conversation and the audit trail."""
    actors = [Actor(id=staff.email, role=r, kecamatan=staff.kecamatan) for r in staff.roles]
    now = c.clock.now()
    allowed = sorted({e for a in actors for e in case.allowed_events(c.sop, a, now)})
    events = c.store.events(case.id)  # read once: sign state, signing form, audit trail
    messages = c.store.messages(case.id)
    running = _running(case, events, messages)
    if any(r["what"] == "sign" for r in running):
        # already asked: the signer is at work, and nothing else is decided meanwhile
        allowed = [a for a in allowed if a not in ("sign", "return", "reject")]
    run = case.current_run(c.sop)
    names = staff_names(c)
    step = case.waiting_step(c.sop)
    can_revoke = (
        case.signed is not None
        and case.document_status == "valid"
        and any(r in REVOKE_ROLES for r in staff.roles)
    )
    can_claim = (
        run is not None
        and run.claimed_by != staff.email
        and any(case.may_claim(c.sop, a, now) for a in actors)
    )
    others = assignees(c, case, staff)
    return {
        "signing": signing_state(c, events) if "sign" in allowed else None,
        "case": case_summary(c, case, show_nik=access.sees_full_nik(staff)),
        "step": _step_at_hand(c, case, step),
        "timeline": case_timeline(c, case),
        "allowed": allowed,
        "actions": ordered_actions(step.event if step else None, allowed),
        "has_actions": bool(allowed or can_claim or can_revoke or others),
        "can_claim": can_claim,
        "claimed_by": run.claimed_by if run else None,
        "holder": person(names, run.claimed_by) if run else None,
        "handoff": case.handoff is not None and access.may_download_handoff(staff),
        "can_reply": may_reply(c, case, staff),
        "complaints": complaint_rows(c, case, names, now),
        "can_handle_complaints": any(r in COMPLAINT_ROLES for r in staff.roles),
        "outcomes": list(COMPLAINT_OUTCOME_LABELS.items()),
        "can_revoke": can_revoke,
        "assignees": others,
        "viewer": document_viewer(case),
        "signed": _signed(c, case, events),
        "returned": _returned(case, events, names),
        "running": running,
        "stamp": _stamp(case, messages),
        "events": audit_trail(events, names),
        "messages": [
            {
                **m,
                "body": _LINK.sub(r"\1…", m["body"]),
                "edited_from": _LINK.sub(r"\1…", m["edited_from"]) if m["edited_from"] else None,
                "media_id": None,
            }
            for m in conversation(messages, names, events)
        ],
    }


def progress(c: Container, case: Case) -> dict[str, Any]:
    """What the case page watches while SAPA works on the case (a signature, the SIAK
    hand-off package, an officer's reply on its way): what is still running, and a stamp that
    changes whenever the page would show something new. No personal data: polling it is not a
    read of the case (the page itself is, when it is loaded again)."""
    events = c.store.events(case.id)
    messages = c.store.messages(case.id)
    return {
        "case_id": case.id,
        "state": case.state,
        "version": case.version,
        "running": [r["what"] for r in _running(case, events, messages)],
        "stamp": _stamp(case, messages),
    }


# The order of an officer's actions: the step's own (affirmative) first, then these, the
# destructive ones last; anything else the SOP allows in between.
_AFTER = ("request_correction", "return", "reject", "cancel")
DESTRUCTIVE = frozenset({"return", "reject", "cancel", "revoke_document"})


def ordered_actions(step_event: str | None, allowed: list[str]) -> list[dict[str, Any]]:
    """The actions offered, in the order the page shows them: the waiting step's own event
    first (the primary one), the others after it, destructive ones last."""
    first = [a for a in allowed if a == step_event]
    middle = [a for a in allowed if a != step_event and a not in _AFTER]
    last = [a for a in _AFTER if a in allowed]
    return [
        {
            "event": a,
            "label": ACTION_LABELS.get(a, a),
            "kind": "primary" if a == step_event else "danger" if a in DESTRUCTIVE else "secondary",
        }
        for a in first + middle + last
    ]


def _step_at_hand(c: Container, case: Case, step: Any) -> dict[str, Any] | None:
    """The SOP step the case waits on: its number, what it is, whose, its mutu baku and how
    long it has been waiting or in hand (on its clock)."""
    if step is None:
        return None
    clock = sla_clock(c, case)
    return {
        "number": step.number,
        "total": len(c.sop.steps),
        "kegiatan": step.kegiatan,
        "role": step.role,
        "role_label": ROLE_LABELS.get(step.role, step.role),
        "mutu_baku": format_duration(step.mutu_baku_seconds),
        "elapsed": clock.get("elapsed_main") or clock.get("elapsed"),
        "color": clock.get("color"),
    }


def document_viewer(case: Case) -> dict[str, Any]:
    """The documents of the case page's viewer, numbered as the document route serves them
    (the resident's, then the SIAK draft, then the signed document), and the one shown first:
    the document the step at hand is decided on. The signed document once there is one; the
    SIAK draft while the head of division approves it and the head of office signs it; else
    the resident's first document."""
    docs = []
    for n, d in enumerate(numbered_documents(case)):
        kind = "signed" if d is case.signed else "draft" if d is case.draft else "resident"
        docs.append(
            {
                "n": n,
                "kind": kind,
                "requirement": d.requirement,
                "filename": d.filename,
                "content_type": d.content_type,
                "size": d.size,
                "withdrawn": d.withdrawn_at is not None,
            }
        )
    shown = [d for d in docs if not d["withdrawn"]]
    by_kind = {d["kind"]: d["n"] for d in shown}
    focus = None
    if "signed" in by_kind:
        focus = by_kind["signed"]
    elif "draft" in by_kind and case.state in ("entered_in_siak", "approved"):
        focus = by_kind["draft"]
    elif shown:
        focus = shown[0]["n"]
    return {"documents": docs, "focus": focus}


def _signed(c: Container, case: Case, events: list[AuditEvent]) -> dict[str, Any] | None:
    """The signed document: its number in the viewer and its public verification page."""
    if case.signed is None:
        return None
    from sapa.services import signing  # not on the webhook's import path

    doc_id = next(
        (
            str(e.detail["document_id"])
            for e in reversed(events)
            if e.event == "sign" and e.detail.get("document_id")
        ),
        None,
    )
    if doc_id is None and case.draft is not None:
        doc_id = signing.document_id(case)
    return {
        "n": len(numbered_documents(case)) - 1,  # numbered last
        "verify_url": signing.verify_url(c, doc_id) if doc_id else None,
        "status": case.document_status,
    }


def _returned(case: Case, events: list[AuditEvent], names: dict[str, str]) -> dict[str, Any] | None:
    """Why the case is back one step: who returned it and their reason."""
    if case.state != "returned":
        return None
    last = next((e for e in reversed(events) if e.event == "return"), None)
    if last is None:
        return None
    return {"by": person(names, last.actor_id), "reason": str(last.detail.get("reason") or "")}


# What SAPA can still be doing for a case, as the page says it.
RUNNING_LABELS = {
    "sign": "Dokumen sedang ditandatangani secara elektronik (TTE).",
    "handoff": "Paket serah terima SIAK sedang disiapkan.",
    "reply": "Pesan petugas sedang dikirim ke pemohon.",
}


def _running(case: Case, events: list[AuditEvent], messages: list[Message]) -> list[dict[str, str]]:
    """What SAPA is still doing for the case, which the page shows and watches until done:
    the signature asked for and not yet back, the SIAK hand-off package being built, an
    officer's reply WhatsApp has not yet said it sent."""
    running = []
    signing = [e.event for e in events if e.event in _SIGN_EVENTS]
    if case.signed is None and signing[-1:] == ["sign_requested"] and case.state == "approved":
        running.append("sign")
    if case.state == "forwarded" and case.handoff is None:
        running.append("handoff")
    ids = {m.id for m in messages}
    refused = {str(e.detail.get("message")) for e in events if e.event == "message_not_sent"}
    for m in messages:
        target = str(m.data.get("pending_for") or "")
        if target and target not in ids and target not in refused:
            running.append("reply")
            break
        if m.direction == "out" and "@" in m.actor_id and not m.status and not target:
            running.append("reply")
            break
    return [{"what": r, "label": RUNNING_LABELS[r]} for r in running]


def _stamp(case: Case, messages: list[Message]) -> str:
    """Changes whenever the case page would show something new: the case saved again, a
    message added or its status changed."""
    seen = "|".join(f"{m.id}:{m.status}" for m in messages)
    digest = hashlib.sha256(f"{case.version}|{seen}".encode()).hexdigest()
    return digest[:16]


# What an audit event's detail says, in a phrase staff read beside its label.
_DETAIL_LABELS = {
    "reason": "Alasan",
    "note": "Catatan",
    "siak_ref": "Referensi SIAK",
}


_CODE = re.compile(r"[a-z0-9_]+")


def _detail_text(value: str) -> str:
    """A detail as people read it: a code SAPA recorded in its Indonesian words (nothing when
    it has none); anything else (what an officer wrote) as it is."""
    value = value.strip()
    if _CODE.fullmatch(value):
        return REASON_LABELS.get(value, "")
    return value


def audit_trail(events: list[AuditEvent], names: dict[str, str]) -> list[dict[str, Any]]:
    """The audit trail in Bahasa Indonesia: each event's label, who (by name, in which role),
    the state before and after, and the reason or note it carries. The codes stay in the JSON
    beside the labels (`event`, `actor_id`, `from_state`, `to_state`)."""
    out = []
    for e in events:
        shown = {
            k: _detail_text(e.detail[k]) for k in _DETAIL_LABELS if isinstance(e.detail.get(k), str)
        }
        out.append(
            {
                **e.model_dump(mode="json"),
                "actor_id": masked_actor(e.actor_id),
                "actor": person(names, e.actor_id),
                "event_label": AUDIT_EVENT_LABELS.get(e.event, e.event),
                "role_label": ROLE_LABELS.get(e.role, e.role),
                "from_label": STATE_LABELS.get(e.from_state, e.from_state or "-"),
                "to_label": STATE_LABELS.get(e.to_state, e.to_state),
                "notes": [f"{_DETAIL_LABELS[k]}: {v}" for k, v in shown.items() if v],
            }
        )
    return out


def assignees(c: Container, case: Case, staff: StaffMember) -> list[dict[str, str]]:
    """The officers an admin may hand the waiting step to (none for anyone else)."""
    step = case.waiting_step(c.sop)
    if "admin" not in staff.roles or step is None:
        return []
    return [
        {"email": s.email, "name": s.name}
        for s in c.staff.all()
        if step.role in s.roles
        and case.may_be_assigned(
            c.sop, Actor(id=s.email, role=step.role, kecamatan=s.kecamatan, name=s.name)
        )
    ]


def numbered_documents(case: Case) -> list[DocumentRef]:
    """The case's documents as the case page numbers them: the resident's, then the SIAK
    draft, then the signed document."""
    return case.documents + [d for d in (case.draft, case.signed) if d is not None]


def document(case: Case, n: int) -> DocumentRef:
    """The case page's document number `n`: the resident's documents, then the SIAK draft and
    the signed document. A withdrawn one (the resident deleted its message) is gone."""
    docs = numbered_documents(case)
    if not 0 <= n < len(docs):
        raise NotFound("Dokumen tidak ada.")
    if docs[n].withdrawn_at is not None:
        raise NotFound(text("document_withdrawn"))
    return docs[n]


COMPLAINT_STATES = {"open": "belum ditanggapi", "answered": "sudah ditanggapi", "closed": "ditutup"}
CHANNELS = {"whatsapp": "WhatsApp", "survey": "halaman survei"}


def complaint_rows(
    c: Container, case: Case, names: dict[str, str], now: datetime
) -> list[dict[str, Any]]:
    """The case's complaints as the case page shows them, people by name."""
    rows = []
    for k in case.complaints:
        row = k.model_dump()
        row.update(
            state=k.state,
            state_label=COMPLAINT_STATES[k.state],
            channel_label=CHANNELS.get(k.channel, k.channel),
            late=k.replied_at is None and k.closed_at is None and now > k.due_at,
            outcome_label=COMPLAINT_OUTCOME_LABELS.get(k.outcome or "", k.outcome or ""),
            replied_by=_name(names, k.replied_by),
            closed_by=_name(names, k.closed_by),
        )
        rows.append(row)
    return rows


def _name(names: dict[str, str], actor_id: str | None) -> str:
    who = person(names, actor_id)
    return who["name"] if who else ""
