"""WhatsApp intake: route a resident's message to the kecamatan's case and decide what follows."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sapa.adapters.meta_webhook import (
    IdentityChange,
    InboundMessage,
    Notification,
    StatusUpdate,
)
from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case
from sapa.domain.errors import AlreadyExists, NotFound, TransientError
from sapa.domain.registration import registration_number, sequence_scope
from sapa.domain.service_words import detect_service
from sapa.domain.texts import text
from sapa.domain.values import mask_phone
from sapa.ports import Message, Task
from sapa.services import complaints, survey
from sapa.services.names import BUTTON_PREFIX, task_name
from sapa.services.steps import link_task
from sapa.services.unit import mutate

log = logging.getLogger(__name__)

# Keywords a resident may send (case-insensitive). BATAL asks for confirmation; YA confirms.
KEYWORDS = {
    "STATUS": "status",
    "BATAL": "request_cancel",
    "YA": "confirm_cancel",
    "YA BATAL": "confirm_cancel",
    "TIDAK": "decline_cancel",
    "BANTUAN": "help",
    "HALO": "link",
    "LINK": "link",
}
MEDIA_TYPES = {"image", "document"}  # what can be a requirement document
UNSUPPORTED_MEDIA = {"audio", "video", "sticker"}
# What WhatsApp cannot show us or SAPA cannot read: the resident is told what it can read.
UNREADABLE = {"unsupported", "unknown"}
# Messages about other messages or about the resident's account, not a resident asking for
# anything: they attach to the resident's case (if any) and never open one.
ABOUT_MESSAGES = {"reaction", "edit", "revoke", "system"}
REPLY_KINDS = {"notify", "command"}  # tasks that answer the resident (paused in a flood)


@dataclass
class IntakeResult:
    routed: int = 0
    duplicates: int = 0
    unrouted: int = 0
    statuses: int = 0
    attached: int = 0  # reactions, edits, revokes, notices, echoes kept on a case
    notices: int = 0  # account, number and template notices for the admin
    ignored: int = 0  # acknowledged, nothing to do (history sync, no case to attach to, ...)


def receive(
    c: Container,
    messages: list[InboundMessage] | Notification,
    statuses: list[StatusUpdate] | None = None,
) -> IntakeResult:
    """Attach each message to its case (opening one for a resident's first message: SOP
    step 1) and queue the work it calls for; apply statuses, identity changes, and keep the
    account notices for the admin. Safe to repeat: a message already stored is skipped, and
    every task has a name derived from the message or the case state, so a retried delivery
    queues nothing new."""
    if isinstance(messages, Notification):
        found = messages
    else:
        found = Notification(messages=messages, statuses=statuses or [])
    result = IntakeResult(ignored=found.history + len(found.ignored))
    if found.notices:
        from sapa.services import notices  # rare: not on the webhook's import path

        for notice in found.notices:
            notices.keep(c, notice)
            result.notices += 1
    for change in found.identities:
        _apply_identity(c, change)
    for m in found.messages:
        kecamatan = c.phone_numbers.get(m.phone_number_id)
        if kecamatan is None:
            log.warning("message for unknown phone_number_id", extra={"wamid": m.wamid})
            result.unrouted += 1
            continue
        if c.store.message_exists(m.wamid):
            result.duplicates += 1
            continue
        if m.source == "echo" or m.type in ABOUT_MESSAGES:
            if _attach(c, kecamatan, m):
                result.attached += 1
            else:
                result.ignored += 1
            continue
        case = find_resident_case(c, kecamatan, m)
        tasks: list[Task] = []
        word = _keyword(m)
        # What a message about the resident's request says without an open one (TANPA
        # SURVEI, ADUAN, DOKUMEN) is about their latest: looked up once, for words only.
        about = case
        if about is None and m.type in ("text", "button", "interactive"):
            about = _latest(c, kecamatan, m)
        if word in survey.OPT_OUT_WORDS and about is not None:
            # no more survey invitations (a new request is not opened for it)
            case = about
            tasks.append(survey.opt_out(c, m.wa_id, m.wamid, case))
        complaint = complaints.said(m)
        if not tasks and about is not None:
            # ADUAN: a complaint about the request, open or closed; after ADUAN alone, the
            # resident's next message (not a keyword) is the complaint
            if complaint is None and m.type == "text" and word not in KEYWORDS:
                awaited = word != "DOKUMEN" and complaints.awaited(about, m.at)
                complaint = m.text if awaited else None
            if complaint is not None:
                case = about
                tasks.append(complaints.take(c, case, complaint, m))
        if case is None and word == "DOKUMEN":
            # A resident asks for their signed document again: no new request is opened.
            case = about
            if case is not None and case.signed is not None:
                tasks.append(
                    Task(
                        "deliver",
                        {"case_id": case.id, "again": m.wamid},
                        name=task_name("deliver", case.id, "again", m.wamid),
                    )
                )
        if case is None:
            case = _open_case(c, kecamatan, m)
        elif m.user_id and case.wa_user_id != m.user_id:
            case = _join_user_id(c, case.id, m.user_id)
        c.store.record_contact(kecamatan, case.wa_id, m.at)
        for task in limit_replies(c, case, m, tasks or follow_ups(c, case, m)):
            c.queue.enqueue(task)
        stored = c.store.add_message(
            Message(
                case_id=case.id,
                id=m.wamid,
                direction="in",
                at=m.at,
                type=m.type,
                body=m.text,
                actor_id=f"wa:{case.wa_id}",
                data=_message_data(m),
            )
        )
        if stored:
            result.routed += 1
        else:
            result.duplicates += 1
    for s in found.statuses:
        result.statuses += 1
        case_id = c.store.set_message_status(s.wamid, s.status, s.at)
        if case_id is None and s.reference:
            case_id = recover_outbound(c, s)
        if s.status not in ("delivered", "read"):
            pass
        elif case_id is None:
            # Meta can report a status before we recorded the message we sent: park it for
            # the sender to apply (services.signing.deliver does for the signed document).
            c.store.claim_key(f"early-status-{s.wamid}", value={"status": s.status})
        else:
            from sapa.services.signing import document_status

            document_status(c, case_id, s.wamid, s.status)
        if case_id is not None and s.status == "failed":
            # Meta delivers duplicates: one note per message. Noted before the key is kept,
            # so a failure in between repeats the note rather than losing it.
            key = f"message-failed-{s.wamid}"
            if c.store.get_key(key) is None:
                _record_failed_delivery(c, case_id, s)
                c.store.claim_key(key, value={"case_id": case_id})
    return result


def limit_replies(c: Container, case: Case, m: InboundMessage, tasks: list[Task]) -> list[Task]:
    """A flood from one number (over WA_SENDER_RATE_PER_MINUTE messages in a minute) gets one
    polite notice, then no automatic replies until the minute is over. Its messages are still
    stored (the caller does) and its media still copied; other residents are not held up, since
    the flood queues no replies. Counted per kecamatan number and sender, shared by all
    instances (see sapa.ratelimit)."""
    from sapa.ratelimit import limiter_secret, shared_limiter

    limiter = shared_limiter(
        c.store,
        f"wa:{case.kecamatan}",
        c.settings.wa_sender_rate_per_minute,
        60,
        secret=limiter_secret(c.settings.secret("session_secret")),
    )
    verdict = limiter.hit(m.wa_id, c.clock.now())
    if verdict.allowed:
        return tasks
    kept = [t for t in tasks if t.kind not in REPLY_KINDS and "again" not in t.payload]
    if verdict.first_refusal:
        log.warning("sender over the message limit, replies paused", extra={"case_id": case.id})
        kept.append(
            Task(
                "notify",
                {"case_id": case.id, "kind": "rate_limited"},
                name=task_name("notify", case.id, "rate_limited", verdict.window),
            )
        )
    return kept


def recover_outbound(c: Container, s: StatusUpdate) -> str | None:
    """A status of a message SAPA sent but has not recorded: the sender died between the send
    and the record, or has not got there yet. Record it now from the reference it was sent
    with (services.notify.send_reference), with a placeholder text, so that the retry of a
    dead sender's task finds it sent and does not send it again; a live sender then puts the
    real text in the placeholder's place (services.notify.record_outbound). Returns the
    case id once the message is recorded with this wamid."""
    parts = s.reference.split("|")
    if len(parts) != 5 or parts[0] != "sapa" or not parts[2].startswith("out:"):
        return None
    _, case_id, message_id, type_, kind = parts
    try:
        c.store.get(case_id)
    except NotFound:
        return None
    if c.store.message_exists(message_id):
        return None  # recorded under another wamid: this one was a second send
    c.store.add_message(
        Message(
            case_id=case_id,
            id=message_id,
            direction="out",
            at=s.at,
            type=type_,
            body=text("wa_recovered_body"),
            actor_id="system",
            data={"wamid": s.wamid, "kind": kind, "recovered": True},
        )
    )
    log.warning("recorded a sent message from its status", extra={"case_id": case_id})
    return c.store.set_message_status(s.wamid, s.status, s.at)


def find_resident_case(c: Container, kecamatan: str, m: InboundMessage) -> Case | None:
    """The resident's open case in the kecamatan. Found by the address they wrote from; a
    resident with a username may write with their business-scoped user id (BSUID) alone one
    day and with their number the next: the BSUID then finds the case through the subject
    index (the case keeps the BSUID it last saw, see `_join_user_id`)."""
    case = c.store.find_open(kecamatan, m.wa_id)
    if case is not None or not m.user_id:
        return case
    for found in c.store.cases_of_subject(wa_id=m.user_id):
        if found.kecamatan == kecamatan and found.is_open(c.sop):
            return found
    return None


def _latest(c: Container, kecamatan: str, m: InboundMessage) -> Case | None:
    """The resident's most recent case in the kecamatan, open or closed (by address or BSUID)."""
    case = c.store.latest_for(kecamatan, m.wa_id)
    if case is not None or not m.user_id:
        return case
    found = [k for k in c.store.cases_of_subject(wa_id=m.user_id) if k.kecamatan == kecamatan]
    return max(found, key=lambda k: k.created_at) if found else None


def _join_user_id(c: Container, case_id: str, user_id: str) -> Case:
    """Keep the resident's BSUID on their case (the identity joined to their number)."""

    def join(case: Case) -> None:
        case.wa_user_id = user_id

    case, _ = mutate(c, case_id, join)
    return case


def _message_data(m: InboundMessage) -> dict[str, object]:
    data: dict[str, object] = {
        "media_id": m.media_id,
        "mime_type": m.mime_type,
        "filename": m.filename,
    }
    if m.target:
        data["target"] = m.target
    if m.reply_id:
        data["reply_id"] = m.reply_id
    if m.type == "reaction":
        data["emoji"] = str(m.raw.get("reaction", {}).get("emoji") or "")
    if m.type == "system":
        data["system"] = str(m.raw.get("system", {}).get("type") or "")
    if m.source != "live":
        data["source"] = m.source
    return data


def _attach(c: Container, kecamatan: str, m: InboundMessage) -> bool:
    """Keep a message that asks for nothing on the resident's case: a reaction (to the message
    it names; an empty one removes it), an edit and a revoke (the staff view applies them,
    the original stays in the record), a system notice, or an echo of what an officer typed
    in the WhatsApp Business app (recorded as the office's message). Never opens a case;
    False when the resident has none here."""
    case = find_resident_case(c, kecamatan, m) or _latest(c, kecamatan, m)
    if case is None:
        log.info("message about no case acknowledged", extra={"kind": m.type, "wamid": m.wamid})
        return False
    echo = m.source == "echo"
    stored = c.store.add_message(
        Message(
            case_id=case.id,
            id=m.wamid,
            direction="out" if echo else "in",
            at=m.at,
            type=m.type,
            body=m.text,
            actor_id="wa-business-app" if echo else f"wa:{case.wa_id}",
            data=_message_data(m) | ({"wamid": m.wamid} if echo else {}),
        )
    )
    if stored and m.type == "revoke" and any(d.wamid == m.target for d in case.documents):
        _withdraw(c, case.id, m.target)
    if not stored or m.type != "system" or not case.is_open(c.sop):
        return stored
    system = str(m.raw.get("system", {}).get("type") or "")
    if system == "user_changed_number" and m.target and m.target != case.wa_id:
        _move_to_number(c, kecamatan, case.id, m)
    elif system == "customer_identity_changed":
        _note(c, case.id, "wa_identity_changed", wamid=m.wamid)
    return stored


def _withdraw(c: Container, case_id: str, wamid: str) -> None:
    """The resident deleted a WhatsApp message whose file we copied: the file is hidden from
    staff and the SIAK hand-off (kept for the retention period), and the audit says so."""

    def withdraw(case: Case) -> None:
        now = c.clock.now()
        for d in case.documents:
            if d.wamid == wamid and d.withdrawn_at is None:
                d.withdrawn_at = now
                case.note(Actor.system(), "document_withdrawn", now, key=d.key, wamid=wamid)

    mutate(c, case_id, withdraw)


def _move_to_number(c: Container, kecamatan: str, case_id: str, m: InboundMessage) -> None:
    """The resident changed their WhatsApp number: their open case follows them (replies go
    to the new number), and staff are told. If the new number already has an open case here,
    the case stays where it is and staff are told of both."""
    new = m.target
    if c.store.find_open(kecamatan, new) is not None:
        _note(c, case_id, "wa_number_changed", moved=False, wamid=m.wamid)
        return

    def move(case: Case) -> None:
        old = case.wa_id
        case.wa_id = new
        case.note(
            Actor.system(),
            "wa_number_changed",
            c.clock.now(),
            moved=True,
            old=mask_phone(old),
            new=mask_phone(new),
            wamid=m.wamid,
        )

    mutate(c, case_id, move)
    c.store.record_contact(kecamatan, new, m.at)


def _note(c: Container, case_id: str, event: str, **detail: object) -> None:
    def note(case: Case) -> None:
        case.note(Actor.system(), event, c.clock.now(), **detail)

    mutate(c, case_id, note)


def _apply_identity(c: Container, change: IdentityChange) -> None:
    """A resident's BSUID changed: their open cases keep the new one (and a case known only
    by the old BSUID is addressed by their number, when Meta sent it, else by the new id)."""
    kecamatan = c.phone_numbers.get(change.phone_number_id)
    for found in c.store.cases_of_subject(wa_id=change.previous):
        if not found.is_open(c.sop) or (kecamatan and found.kecamatan != kecamatan):
            continue

        def rekey(case: Case) -> None:
            case.wa_user_id = change.current
            if case.wa_id == change.previous:
                case.wa_id = change.wa_id or change.current

        mutate(c, found.id, rekey)


def _keyword(m: InboundMessage) -> str:
    """The keyword a message says: typed, or the id of a button SAPA sent and the resident
    tapped (`SAPA_<KEYWORD>`, see notify.BUTTONS)."""
    if m.type not in ("text", "button", "interactive"):
        return ""
    if m.reply_id.startswith(BUTTON_PREFIX):
        return m.reply_id[len(BUTTON_PREFIX) :].upper()
    return " ".join(m.text.strip().upper().rstrip("!.?").split())


def _record_failed_delivery(c: Container, case_id: str, s: StatusUpdate) -> None:
    """WhatsApp could not deliver one of our messages: staff must see it on the case."""

    def note(case: Case) -> None:
        case.note(
            Actor.system(), "message_failed", c.clock.now(), wamid=s.wamid, errors=list(s.errors)
        )

    mutate(c, case_id, note)


def _open_case(c: Container, kecamatan: str, m: InboundMessage) -> Case:
    at = c.clock.now()
    tz = c.region.timezone
    seq = c.store.next_sequence(sequence_scope(kecamatan, at, tz))
    # "mau urus KK": the greeting then names the service and its documents (a hint only)
    named = detect_service(c.catalogue, m.text) if m.type == "text" else None
    case = Case.open(
        c.sop,
        case_id=uuid.uuid4().hex,
        reg_no=registration_number(kecamatan, at, tz, seq),
        kecamatan=kecamatan,
        phone_number_id=m.phone_number_id,
        wa_id=m.wa_id,
        applicant_name=m.profile_name,
        at=at,
        service_hint=named.code if named else None,
    )
    case.wa_user_id = m.user_id or None
    try:
        c.store.create(case)
    except AlreadyExists:
        # Another delivery of this resident's messages opened the case first.
        existing = c.store.find_open(kecamatan, m.wa_id)
        if existing is None:
            raise TransientError("case creation raced, retry") from None
        return existing
    log.info("case opened", extra={"case_id": case.id, "step": c.sop.steps[0].key})
    return case


def follow_ups(c: Container, case: Case, m: InboundMessage) -> list[Task]:
    """The tasks one inbound message calls for, with deterministic names."""
    tasks: list[Task] = []
    waiting = case.waiting_step(c.sop)
    link_step = c.sop.step_for_event("send_link")
    if waiting is not None and link_step is not None and waiting.key == link_step.key:
        mode = c.region.kecamatan_by_code(case.kecamatan).link_mode
        if mode == "auto":  # step 2 without an officer (services.steps.send_link by hand)
            tasks.append(link_task(case, len(case.runs(link_step.key))))
    word = _keyword(m)
    command = KEYWORDS.get(word)
    if command in ("confirm_cancel", "decline_cancel") and case.cancel_requested_at is None:
        command = None  # a plain "ya" or "tidak" in conversation, not an answer
    if command in ("request_cancel", "confirm_cancel", "decline_cancel"):
        tasks.append(
            Task(
                "command",
                {"case_id": case.id, "command": command, "wa_id": case.wa_id},
                name=task_name("command", m.wamid),
            )
        )
    elif command in ("status", "help") or (
        command == "link" and case.state in ("link_sent", "awaiting_correction")
    ):
        kind = {"status": "status", "help": "help", "link": "guestbook_link"}[command]
        tasks.append(
            Task("notify", {"case_id": case.id, "kind": kind}, name=task_name("notify", m.wamid))
        )
    # what SAPA cannot take: the resident is told what it can
    unusable = "message_unreadable" if m.type in UNREADABLE else ""
    unusable = "media_unsupported" if m.type in UNSUPPORTED_MEDIA else unusable
    if unusable:
        tasks.append(
            Task(
                "notify",
                {"case_id": case.id, "kind": unusable},
                name=task_name("notify", m.wamid),
            )
        )
    if case.signed is not None and "deliver" in {t.event for t in c.sop.events_from(case.state)}:
        # The signed document waited for the 24-hour window to open: this message opened it.
        # One task per document, not per message: deliver tasks running side by side (the
        # resident writes three times) would each send the document before any recorded it.
        tasks.append(
            Task(
                "deliver",
                {"case_id": case.id},
                name=task_name("deliver", case.id, "window", case.signed.sha256),
            )
        )
    if m.type in MEDIA_TYPES and m.media_id:
        tasks.append(
            Task(
                "media_store",
                {
                    "case_id": case.id,
                    "media_id": m.media_id,
                    "wamid": m.wamid,
                    "sha256": m.sha256,
                    "filename": m.filename or "",
                    "caption": m.text,
                },
                name=task_name("media_store", m.wamid),
            )
        )
    return tasks
