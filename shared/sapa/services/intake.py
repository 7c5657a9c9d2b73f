"""WhatsApp intake: route a resident's message to the kecamatan's case and decide what follows."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sapa.adapters.meta_webhook import InboundMessage, StatusUpdate
from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case
from sapa.domain.errors import AlreadyExists, NotFound, TransientError
from sapa.domain.registration import registration_number, sequence_scope
from sapa.domain.texts import text
from sapa.ports import Message, Task
from sapa.services.names import task_name
from sapa.services.unit import mutate

log = logging.getLogger(__name__)

# Keywords a resident may send (case-insensitive). BATAL asks for confirmation; YA confirms.
KEYWORDS = {
    "STATUS": "status",
    "BATAL": "request_cancel",
    "YA": "confirm_cancel",
    "YA BATAL": "confirm_cancel",
    "BANTUAN": "help",
    "HALO": "link",
    "LINK": "link",
}
MEDIA_TYPES = {"image", "document"}  # what can be a requirement document
UNSUPPORTED_MEDIA = {"audio", "video", "sticker"}
REPLY_KINDS = {"notify", "command"}  # tasks that answer the resident (paused in a flood)


@dataclass
class IntakeResult:
    routed: int = 0
    duplicates: int = 0
    unrouted: int = 0
    statuses: int = 0


def receive(
    c: Container, messages: list[InboundMessage], statuses: list[StatusUpdate]
) -> IntakeResult:
    """Attach each message to its case (opening one for a first greeting: SOP step 1) and queue
    the work it calls for. Safe to repeat: a message already stored is skipped, and every task
    has a name derived from the message or the case state, so a retried delivery queues nothing
    new."""
    result = IntakeResult()
    for m in messages:
        kecamatan = c.phone_numbers.get(m.phone_number_id)
        if kecamatan is None:
            log.warning("message for unknown phone_number_id", extra={"wamid": m.wamid})
            result.unrouted += 1
            continue
        if c.store.message_exists(m.wamid):
            result.duplicates += 1
            continue
        case = c.store.find_open(kecamatan, m.wa_id)
        tasks: list[Task] = []
        if case is None and _keyword(m) == "DOKUMEN":
            # A resident asks for their signed document again: no new request is opened.
            case = c.store.latest_for(kecamatan, m.wa_id)
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
        c.store.record_contact(kecamatan, m.wa_id, m.at)
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
                actor_id=f"wa:{m.wa_id}",
                data={"media_id": m.media_id, "mime_type": m.mime_type, "filename": m.filename},
            )
        )
        if stored:
            result.routed += 1
        else:
            result.duplicates += 1
    for s in statuses:
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
    with (services.messaging.send_reference), with a placeholder text, so that the retry of a
    dead sender's task finds it sent and does not send it again; a live sender then puts the
    real text in the placeholder's place (services.messaging.record_outbound). Returns the
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


def _keyword(m: InboundMessage) -> str:
    if m.type not in ("text", "button", "interactive"):
        return ""
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
    case = Case.open(
        c.sop,
        case_id=uuid.uuid4().hex,
        reg_no=registration_number(kecamatan, at, tz, seq),
        kecamatan=kecamatan,
        phone_number_id=m.phone_number_id,
        wa_id=m.wa_id,
        applicant_name=m.profile_name,
        at=at,
    )
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
        if mode == "auto":
            runs = len(case.runs(link_step.key))
            tasks.append(
                Task(
                    kind="notify",
                    payload={
                        "case_id": case.id,
                        "kind": "guestbook_link",
                        "then_event": link_step.event,
                    },
                    name=task_name("notify", case.id, "link", runs),
                )
            )
    word = ""
    if m.type in ("text", "button", "interactive"):
        word = " ".join(m.text.strip().upper().rstrip("!.?").split())
    command = KEYWORDS.get(word)
    if command == "confirm_cancel" and case.cancel_requested_at is None:
        command = None  # a plain "ya" in conversation, not a confirmation
    if command in ("request_cancel", "confirm_cancel"):
        tasks.append(
            Task(
                "command",
                {"case_id": case.id, "command": command, "wa_id": m.wa_id},
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
    if m.type in UNSUPPORTED_MEDIA:
        tasks.append(
            Task(
                "notify",
                {"case_id": case.id, "kind": "media_unsupported"},
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
