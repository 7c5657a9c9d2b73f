"""Messages to residents and officers: what they say (render), sending them once inside or
outside the 24-hour window (send), and the `notify` task. A resident's commands are in
services.commands, the media they send in services.media."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import URLSafeTimedSerializer

from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case
from sapa.domain.errors import (
    PermanentError,
    TransientError,
)
from sapa.domain.reference import Service
from sapa.domain.texts import STATE_LABELS, text
from sapa.ports import Message
from sapa.services import estimate, survey
from sapa.services.names import BUTTON_PREFIX, reply_message_id
from sapa.services.unit import hold, mutate, release

log = logging.getLogger(__name__)

_LINK_SALT = "sapa.guestbook"
CANCEL_CONFIRM_MINUTES = 15
WINDOW = timedelta(hours=24)
# How long one attempt may take to send a message and record it (the Graph API's timeout is
# 10 s, a document two calls) before another attempt may try: after a crash, the retries wait
# this long, so it must stay well inside the queue's retry horizon.
SEND_HOLD_SECONDS = 30.0


def link_serializer(c: Container) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(c.settings.secret("link_secret"), salt=_LINK_SALT)


def guestbook_link(c: Container, case: Case) -> str:
    """A signed, expiring link bound to one case: no guessable id, no personal data."""
    token = link_serializer(c).dumps(case.id)
    return f"{c.settings.guestbook_base}/f/{token}"


def render(c: Container, case: Case, kind: str, params: dict[str, Any]) -> str:
    if kind == "guestbook_link":
        return greeting(c, case)
    if kind == "status":
        return estimate.status_reply(c, case)  # the step and the expected completion time
    if kind == "help":
        return text("wa_help")
    if kind == "text":
        return str(params.get("body", ""))
    if kind == "cancel_confirm":
        return text("wa_cancel_confirm", reg_no=case.reg_no, minutes=CANCEL_CONFIRM_MINUTES)
    if kind == survey.INVITE:
        return text(
            "wa_survey_invite",
            reg_no=case.reg_no,
            days=c.settings.survey_link_days,
            link=survey.link(c, case),
        )
    if kind in COMPLAINT_KINDS:
        return text(
            COMPLAINT_KINDS[kind],
            reg_no=case.reg_no,
            complaint=params.get("complaint", ""),
            due=params.get("due", ""),
            reply=params.get("body", ""),
            outcome=params.get("outcome", ""),
        )
    if kind == "cancel_not_possible":
        return text(
            "wa_cancel_not_possible",
            reg_no=case.reg_no,
            state=STATE_LABELS.get(case.state, case.state).lower(),
        )
    keys = {
        "media_unsupported": "wa_media_unsupported",
        "message_unreadable": "wa_message_unreadable",
        "cancel_declined": "wa_cancel_declined",
        "document_revoked": "wa_document_revoked",
        "media_failed": "wa_media_failed",
        "form_received": "wa_form_received",
        "contacted": "wa_contacted",
        "correction": "wa_correction",
        "cancelled": "wa_cancelled",
        "rejected": "wa_rejected",
        "reminder_guestbook": "wa_reminder_guestbook",
        "reminder_correction": "wa_reminder_correction",
        "expired": "wa_expired",
        "rate_limited": "wa_rate_limited",
        survey.DECLINED: "wa_survey_declined",
    }
    if kind not in keys:
        raise PermanentError(f"unknown notification kind {kind!r}")
    link = guestbook_link(c, case) if kind == "correction" else ""
    return text(keys[kind], reg_no=case.reg_no, reason=params.get("reason", ""), link=link)


def named_service(c: Container, case: Case) -> Service | None:
    """The service the resident is asking for, as far as SAPA knows: the one they chose in
    the guest book (submitted, else in the draft), else the one their first WhatsApp message
    named (the hint)."""
    return c.catalogue.find(case.service or case.draft_form.get("service", case.service_hint or ""))


def greeting(c: Container, case: Case) -> str:
    """SOP step 2's message: welcome, the registration number, the service the resident named
    with the documents to prepare (or how to choose a service), the guest-book link and the
    keywords to ask for the status, help or to cancel."""
    parts = [
        text(
            "wa_greeting",
            kecamatan=c.region.kecamatan_by_code(case.kecamatan).name,
            reg_no=case.reg_no,
        )
    ]
    service = named_service(c, case)
    if service is None:
        parts.append(text("wa_greeting_no_service"))
    else:
        documents = "\n".join(
            text(
                "wa_greeting_document_optional" if r.optional else "wa_greeting_document",
                name=r.name,
            )
            for r in service.requirements
        )
        parts.append(text("wa_greeting_service", service=service.name, documents=documents))
    parts.append(
        text(
            "wa_greeting_link",
            days=c.settings.guestbook_link_days,
            link=guestbook_link(c, case),
        )
    )
    parts.append(text("wa_greeting_keywords"))
    return "\n\n".join(parts)


def notify(c: Container, payload: dict[str, Any], task_name_: str) -> str:
    """Send one message to the resident, once per task name.

    With `then_event` (SOP step 2: the guest-book link), the event is applied first and the
    message sent after: a resident who taps the link at once must find the form open. If the
    send fails, the task is retried and the message sent then (the step's done time is the
    moment the link was issued).

    Returns "sent", "sent_template", "not_sent", "already_sent" or "skipped"."""
    case = c.store.get(payload["case_id"])
    kind = str(payload["kind"])
    if "staff" in payload:
        return notify_staff(c, case, kind, payload, task_name_)
    message_id = f"out:{task_name_}"
    event = payload.get("then_event")
    if event:
        actor = Actor.model_validate(payload.get("actor") or Actor.system().model_dump())

        def advance(case: Case) -> None:
            if event in case.allowed_events(c.sop, actor, c.clock.now()):
                case.apply(c.sop, event, actor, c.clock.now(), message=message_id)

        case, _ = mutate(c, case.id, advance)
    if c.store.message_exists(message_id):
        return "already_sent"
    if not case.is_open(c.sop) and kind not in AFTER_CLOSE:
        log.info("case closed, notification dropped", extra={"case_id": case.id})
        return "skipped"
    if kind == survey.INVITE:
        why = survey.not_invited(c, case)
        if why is not None:
            log.info("survey invitation not sent", extra={"case_id": case.id, "status": why})
            return "skipped"
    if kind == "contacted" and payload.get("contacted_at"):
        contacted_at = datetime.fromisoformat(str(payload["contacted_at"]))
        if contact_already_said(c, case, message_id, contacted_at):
            return "skipped"
    params = payload.get("params", {})
    actor_id = str(payload.get("actor", {}).get("id", "system"))
    return send(c, case, kind, params, message_id, actor_id=actor_id)


COMPLAINT_KINDS = {
    "complaint_ask": "wa_complaint_ask",
    "complaint_received": "wa_complaint_received",
    "complaint_reply": "wa_complaint_reply",
    "complaint_closed": "wa_complaint_closed",
}
# Officer alerts that still matter once the case is closed (a step's breach no longer does).
STAFF_AFTER_CLOSE = frozenset({"officer_complaint_late"})
# What a resident is still told once their case is closed: how it ended, the survey, their
# complaints.
AFTER_CLOSE = frozenset({"cancelled", "rejected", survey.INVITE, survey.DECLINED, *COMPLAINT_KINDS})


def contact_window(c: Container) -> timedelta:
    """How long before step 4 is marked done an officer's own message to the resident counts
    as the contact: the step's mutu baku (10 minutes in Gowa's SOP). Within the time the SOP
    gives the officer to contact the resident, what they wrote is that contact; a message from
    longer ago was about something else, and the automatic one tells the resident that the
    request has moved on."""
    step = c.sop.step_for_event("contact")
    return timedelta(seconds=step.mutu_baku_seconds if step else 600)


def contact_already_said(c: Container, case: Case, message_id: str, contacted_at: datetime) -> bool:
    """Whether the automatic step-4 message (`contacted`) is left out because an officer wrote
    to the resident on this case within `contact_window` before marking the step done (in
    the case file, or from the WhatsApp Business app): the resident would otherwise get two
    near-identical messages within a second. Only a message that went out counts: a reply
    refused outside the 24-hour window or failed on the way leaves the resident uninformed.

    Decided once per message id and kept (a retried or replayed task decides the same way).
    An officer's reply still on its way (queued before the contact, not yet sent or refused)
    is waited for, a minute at most, by failing transiently so the queue retries."""
    key = f"contact-said-{message_id}"
    decided = c.store.get_key(key)
    if decided is None:
        since = contacted_at - contact_window(c)
        said = _officer_wrote(c, case, since)
        if (
            not said
            and c.clock.now() - contacted_at < REPLY_WAIT
            and _reply_on_its_way(c, case, since, contacted_at)
        ):
            raise TransientError("balasan petugas belum terkirim; pesan otomatis menunggu")
        if c.store.claim_key(key, value={"said": said}):
            decided = {"said": said}
            if said:  # staff see on the case why the resident got no automatic message
                _system_note(
                    c,
                    case.id,
                    "message_skipped",
                    message=message_id,
                    kind="contacted",
                    reason="officer_wrote_to_resident",
                )
        else:
            decided = c.store.get_key(key) or {"said": said}  # another attempt decided first
    return bool(decided.get("said"))


# How long the automatic step-4 message waits for an officer's reply queued just before it:
# two send holds (a reply whose sender died is retried after one).
REPLY_WAIT = timedelta(seconds=2 * SEND_HOLD_SECONDS)


def _officer_wrote(c: Container, case: Case, since: datetime) -> bool:
    """An officer's message went out to the resident since `since`: a reply from the case
    file (kind "text", sent as the officer) or an echo of the WhatsApp Business app."""
    for m in c.store.messages(case.id):
        if m.direction != "out" or m.at < since or m.status == "failed":
            continue
        if m.data.get("kind") == "text" or m.actor_id == "wa-business-app":
            return True
    return False


def _reply_on_its_way(c: Container, case: Case, since: datetime, until: datetime) -> bool:
    """An officer's reply recorded on the case in [since, until] whose message has neither
    gone out nor been refused yet (its task is queued or running)."""
    events = c.store.events(case.id)
    refused = {e.detail.get("message") for e in events if e.event == "message_not_sent"}
    for e in events:
        if e.event != "reply" or not since <= e.at <= until:
            continue
        reply_id = reply_message_id(case.id, e.seq)
        if reply_id not in refused and not c.store.message_exists(reply_id):
            return True
    return False


def notify_staff(
    c: Container, case: Case, kind: str, payload: dict[str, Any], task_name_: str
) -> str:
    """An SLA alert to officers' own WhatsApp numbers: the approved template `kind`, from the
    case's kecamatan number, once per officer and task (a hold while sending, a key once
    sent); each alert sent is noted on the case. Officers are not part of the resident's
    conversation, so nothing goes into the case's messages. Returns "sent" or "skipped"."""
    template = c.templates.get(kind)
    if (not case.is_open(c.sop) and kind not in STAFF_AFTER_CLOSE) or template is None:
        log.info("officer alert not sent", extra={"case_id": case.id, "kind": kind})
        return "skipped"
    params = payload.get("params", {})
    values = template_params(c, case, template.params, params)
    sent = 0
    for email in payload.get("staff", []):
        member = c.staff.get(str(email))
        if member is None or not member.wa_number:
            continue
        key = f"staff-alert:{task_name_}:{email}"
        if c.store.get_key(f"{key}/sent") is not None:
            continue
        held = hold(c, key, SEND_HOLD_SECONDS)
        if held is None:
            raise TransientError("peringatan ini sedang dikirim oleh proses lain", key=key)
        if c.store.get_key(f"{key}/sent") is not None:
            continue
        try:
            wamid = c.whatsapp.send_template(
                case.phone_number_id,
                member.wa_number,
                template.name,
                template.language,
                values,
            )
        except PermanentError as exc:
            c.store.claim_key(f"{key}/sent", value={"refused": exc.message[:300]})
            _note_officer_alert(c, case.id, kind, member.email, refused=exc.message)
            continue
        except Exception:
            release(c, held)
            raise
        c.store.claim_key(f"{key}/sent", value={"wamid": wamid})
        _note_officer_alert(c, case.id, kind, member.email)
        sent += 1
    return "sent" if sent else "skipped"


def _note_officer_alert(
    c: Container, case_id: str, kind: str, email: str, refused: str | None = None
) -> None:
    detail: dict[str, Any] = {"kind": kind, "to": email}
    if refused is not None:
        detail["refused"] = refused[:300]
    _system_note(c, case_id, "officer_alerted", **detail)


# Questions a resident answers by tapping: reply buttons (id, title of at most 20 characters).
# A tap comes back with the id; intake reads BUTTON_PREFIX + keyword as the typed keyword.
BUTTONS: dict[str, tuple[tuple[str, str], ...]] = {
    "cancel_confirm": ((BUTTON_PREFIX + "YA", "YA, batalkan"), (BUTTON_PREFIX + "TIDAK", "TIDAK")),
    "help": tuple((BUTTON_PREFIX + k, k) for k in ("STATUS", "DOKUMEN", "BATAL")),
    # the survey's invitation: a complaint instead, or no more surveys (typing works too)
    survey.INVITE: (
        (BUTTON_PREFIX + "ADUAN", "Ajukan aduan"),
        (BUTTON_PREFIX + "TANPA SURVEI", "Jangan tanya lagi"),
    ),
}


def in_window(c: Container, case: Case) -> bool:
    """Free-form messages may go out within 24 hours of the resident's last message."""
    last = c.store.last_inbound(case.kecamatan, case.wa_id)
    return last is not None and c.clock.now() - last < WINDOW


def template_params(
    c: Container, case: Case, names: tuple[str, ...], params: dict[str, Any]
) -> list[str]:
    values = {
        "reg_no": case.reg_no,
        "link": guestbook_link(c, case) if "link" in names else "",
        "survey_link": survey.link(c, case) if "survey_link" in names else "",
        "reason": str(params.get("reason", "")),
        "kecamatan": c.region.kecamatan_by_code(case.kecamatan).name,
    }
    return [values.get(n, str(params.get(n, ""))) for n in names]


def send(
    c: Container,
    case: Case,
    kind: str,
    params: dict[str, Any],
    message_id: str,
    *,
    actor_id: str = "system",
) -> str:
    """Send `kind` to the resident from the kecamatan's number and record it under
    `message_id`: free text inside the 24-hour window, the approved template outside it, and
    nothing (recorded on the case for staff) when no template exists for that kind. A
    provider's permanent refusal is recorded on the case too; transient errors propagate so
    the task is retried. A template Meta has paused or disabled (see services.notices) is not
    used until approved again: not sent, and said on the case.

    Returns "sent", "sent_template", "not_sent" or "already_sent"."""
    template = None
    if not in_window(c, case):
        template = c.templates.get(kind)
        if template is None:
            _note_not_sent(c, case, message_id, kind, "outside_24h_window_no_template")
            return "not_sent"
        from sapa.services.notices import template_unusable

        refused = template_unusable(c, template.name)
        if refused is not None:
            # Meta paused or disabled it: sending would fail (and count against the number's
            # quality); staff see why the resident got nothing and can call them instead.
            _note_not_sent(c, case, message_id, kind, f"template_{refused.lower()}")
            return "not_sent"
    # One sender per message at a time: a task delivered twice at once would send it twice.
    held = hold(c, message_id, SEND_HOLD_SECONDS)
    if held is None:
        raise TransientError("pesan ini sedang dikirim oleh proses lain", message_id=message_id)
    if c.store.message_exists(message_id):
        return "already_sent"  # the previous holder sent and recorded it
    try:
        # Between a successful send and recording it is the only place a message can repeat
        # (the WhatsApp API has no idempotency key); that window is kept this short.
        buttons = BUTTONS.get(kind)
        if template is None and buttons:
            # a question the resident answers by tapping (typing the word still works)
            body = render(c, case, kind, params)
            wamid = c.whatsapp.send_buttons(
                case.phone_number_id,
                case.wa_id,
                body,
                list(buttons),
                reference=send_reference(case, message_id, "interactive", kind),
            )
            body += "\n[" + " | ".join(title for _, title in buttons) + "]"
        elif template is None:
            body = render(c, case, kind, params)
            wamid = c.whatsapp.send_text(
                case.phone_number_id,
                case.wa_id,
                body,
                reference=send_reference(case, message_id, "text", kind),
            )
        else:
            values = template_params(c, case, template.params, params)
            wamid = c.whatsapp.send_template(
                case.phone_number_id,
                case.wa_id,
                template.name,
                template.language,
                values,
                reference=send_reference(case, message_id, "template", kind),
            )
            body = f"[Templat {template.name}] " + " | ".join(values)
    except PermanentError as exc:
        _note_not_sent(c, case, message_id, kind, exc.message)
        raise
    except Exception as exc:
        release(c, held)  # not sent: the retry may send at once
        if isinstance(exc, TransientError):
            note_delayed(c, case.id, message_id, kind, exc.message)
        raise
    record_outbound(
        c,
        case,
        message_id,
        "template" if template is not None else ("interactive" if buttons else "text"),
        body,
        {"wamid": wamid, "kind": kind},
        actor_id=actor_id,
    )
    return "sent" if template is None else "sent_template"


def _note_not_sent(c: Container, case: Case, message_id: str, kind: str, reason: str) -> None:
    if not c.store.claim_key(f"not-sent-{message_id}"):
        return  # a retry of the same task: already on the case
    _system_note(c, case.id, "message_not_sent", message=message_id, kind=kind, reason=reason[:300])


def send_reference(case: Case, message_id: str, type_: str, kind: str) -> str:
    """What a sent message carries to its status webhooks: enough to record it if the sender
    died between the send and the record (see intake.recover_outbound)."""
    return "|".join(("sapa", case.id, message_id, type_, kind))


def note_delayed(c: Container, case_id: str, message_id: str, kind: str, reason: str) -> None:
    """The provider could not take a message now and the queue will retry it: from the second
    failure on (a single blip is cleared by the next attempt), say so on the case, once per
    message, so staff see why the resident has not got it yet."""
    if c.store.claim_key(f"delayed-{message_id}", value={"kind": kind}):
        return
    if not c.store.claim_key(f"delayed-noted-{message_id}"):
        return
    _system_note(c, case_id, "message_delayed", message=message_id, kind=kind, reason=reason[:300])


def _system_note(c: Container, case_id: str, event: str, **detail: Any) -> None:
    """SAPA's own note on the case's audit trail about its messages (one skipped, not sent,
    delayed; an officer alerted), stamped now."""
    now = c.clock.now()

    def note(case: Case) -> None:
        case.note(Actor.system(), event, now, **detail)

    mutate(c, case_id, note)


def record_outbound(
    c: Container,
    case: Case,
    message_id: str,
    type_: str,
    body: str,
    data: dict[str, Any],
    *,
    actor_id: str = "system",
) -> None:
    """Add a message SAPA sent to the case's conversation (its id is the dedupe key). When its
    status webhook was quicker and recorded it with a placeholder text (intake.
    recover_outbound), the real text takes the placeholder's place."""
    message = Message(
        case_id=case.id,
        id=message_id,
        direction="out",
        at=c.clock.now(),
        type=type_,
        body=body,
        actor_id=actor_id,
        data=data,
    )
    if not c.store.add_message(message) and c.store.complete_recovered(message):
        log.info("a status came before its message was recorded", extra={"case_id": case.id})
