"""Complaints (pengaduan; UU 25/2009 on public services): a resident files one about their
request on WhatsApp (ADUAN and the complaint in one message, or ADUAN alone and the complaint in
the next) or from the survey page; the heads and the admin see every complaint not yet closed,
most urgent first (`worklist`), answer it from the case (the reply goes to the resident on
WhatsApp, audited) and close it with an outcome, telling the resident where to go if not
satisfied (SP4N-LAPOR!). The response time is sla.toml's [complaints]."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sapa.adapters.meta_webhook import InboundMessage
from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case, Complaint
from sapa.domain.errors import ValidationFailed
from sapa.domain.texts import COMPLAINT_OUTCOME_LABELS, text
from sapa.ports import Task
from sapa.services.names import BUTTON_PREFIX, task_name
from sapa.services.unit import mutate, outbox_task

KEYWORD = "ADUAN"
ASK_WINDOW = timedelta(minutes=30)  # after ADUAN alone, the next message is the complaint
TEXT_LIMIT = 2000
# Far enough ahead that every complaint not yet closed is "due" by it (the worklist's read).
_EVERY = datetime(9999, 1, 1, tzinfo=UTC)


def said(m: InboundMessage) -> str | None:
    """The complaint a message makes: the text after the keyword ADUAN ("" for the keyword
    alone, or a tap on its button), or None when the message is no complaint."""
    if m.reply_id == BUTTON_PREFIX + KEYWORD:
        return ""
    if m.type != "text":
        return None
    words = m.text.strip().split(maxsplit=1)
    if not words or words[0].upper().rstrip(":!.,") != KEYWORD:
        return None
    return words[1].strip() if len(words) > 1 else ""


def awaited(case: Case, now: datetime) -> bool:
    """The resident wrote ADUAN alone a moment ago: this message is their complaint."""
    asked = case.complaint_asked_at
    return asked is not None and now - asked <= ASK_WINDOW


def take(c: Container, case: Case, complaint: str, m: InboundMessage) -> Task:
    """File the complaint a message makes (or, for ADUAN alone, ask for it) on the case, open or
    closed. Returns the task of the resident's answer. Filed once per message, however often
    Meta delivers it."""
    now = c.clock.now()
    if not complaint:

        def ask(case: Case) -> None:
            case.complaint_asked_at = now

        mutate(c, case.id, ask)
        return _notify(case, "complaint_ask", {}, m.wamid)
    filed = file(c, case.id, complaint, "whatsapp", source=m.wamid, actor=Actor.applicant(m.wa_id))
    return _notify(case, "complaint_received", received(c, filed), m.wamid)


def file(
    c: Container,
    case_id: str,
    complaint: str,
    channel: str,
    *,
    source: str,
    actor: Actor,
    acknowledge: bool = False,
) -> Complaint:
    """Record a complaint on the case with its response deadline; the same `source` (a
    message, a form's submission) files it once. With `acknowledge`, the resident's
    acknowledgement is decided in the same change (a complaint from the survey page; on
    WhatsApp the intake queues it with the message)."""
    body = complaint.strip()[:TEXT_LIMIT]
    if not body:
        raise ValidationFailed(text("form_has_errors"), {"text": text("complaint_text_required")})
    now = c.clock.now()
    due = now + c.sla.complaint_response

    def record(case: Case) -> Complaint:
        for k in case.complaints:
            if source and k.source == source:
                return k
        filed = case.file_complaint(body, channel, now, due, actor, source=source)
        if acknowledge:
            outbox_task(
                case,
                "notify",
                {"case_id": case.id, "kind": "complaint_received", "params": received(c, filed)},
                name=task_name("notify", case.id, "complaint_received", filed.id),
            )
        return filed

    return mutate(c, case_id, record)[1]


def received(c: Container, complaint: Complaint) -> dict[str, str]:
    """What the acknowledgement names: the complaint's number and its deadline's day."""
    due = complaint.due_at.astimezone(ZoneInfo(c.region.timezone))
    return {"complaint": complaint.id, "due": due.strftime("%d-%m-%Y")}


def _notify(case: Case, kind: str, params: dict[str, str], wamid: str) -> Task:
    return Task(
        "notify",
        {"case_id": case.id, "kind": kind, "params": params},
        name=task_name("notify", wamid, kind),
    )


@dataclass(frozen=True)
class Entry:
    """One complaint on the worklist, with its case."""

    case: Case
    complaint: Complaint
    late: bool  # not answered, and the response time has run out


def worklist(c: Container, limit: int = 200) -> list[Entry]:
    """Every complaint not yet closed, the earliest response deadline first."""
    now = c.clock.now()
    out = [
        Entry(d.case, k, k.replied_at is None and now > k.due_at)
        for d in c.store.due_cases("complaint", _EVERY, limit=limit)
        for k in d.case.complaints
        if k.closed_at is None
    ]
    return sorted(out, key=lambda e: (e.complaint.due_at, e.case.id, e.complaint.id))


def outcome_label(outcome: str | None) -> str:
    return COMPLAINT_OUTCOME_LABELS.get(outcome or "", outcome or "")
