"""SOP step 8 and after: the TTE, its public verification, and delivery to the resident."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case, DocumentRef
from sapa.domain.errors import NotFound, PermanentError, TransientError
from sapa.domain.registration import document_filename
from sapa.domain.texts import text
from sapa.domain.values import mask_name
from sapa.ports import SignRequest
from sapa.services import survey
from sapa.services.names import task_name
from sapa.services.notify import (
    SEND_HOLD_SECONDS,
    in_window,
    note_delayed,
    record_outbound,
    send,
    send_reference,
)
from sapa.services.unit import hold, mutate, outbox_task, release

log = logging.getLogger(__name__)


def document_id(case: Case) -> str:
    """The signed document's public id: stable per case and draft version (idempotency key)."""
    if case.draft is None:
        raise ValueError("a case without a SIAK draft has no document to sign")
    return hashlib.sha256(f"{case.id}:{case.draft.sha256}".encode()).hexdigest()[:24]


def sign_hold_seconds(c: Container) -> float:
    """How long one signing attempt may take before another may try: BSrE's calls of one
    attempt (certificate status, signature, download) and some, or half a minute for the
    local signer (after a crash, the retries wait this long)."""
    s = c.settings
    if s.signer != "bsre":
        return 30.0
    return 3 * (s.bsre_timeout_seconds + s.bsre_connect_timeout_seconds) + 30.0


def passphrase_failures_today(c: Container) -> int:
    """How many TTE passphrases BSrE refused today (the office's day): shown to the head of
    office before they type again, since repeated failures can lock the certificate."""
    day = c.clock.now().astimezone(ZoneInfo(c.region.timezone)).date().isoformat()
    for n in range(1000):
        if c.store.get_key(f"passphrase-failed-{day}#{n}") is None:
            return n
    return 1000


def _count_passphrase_failure(c: Container, doc_id: str) -> int:
    """Count one refused passphrase for today; returns today's count."""
    day = c.clock.now().astimezone(ZoneInfo(c.region.timezone)).date().isoformat()
    n = passphrase_failures_today(c)
    while not c.store.claim_key(f"passphrase-failed-{day}#{n}", value={"document_id": doc_id}):
        n += 1
    return n + 1


def verify_url(c: Container, doc_id: str) -> str:
    return f"{c.settings.verify_base}/d/{doc_id}"


def esign_request(c: Container, payload: dict[str, Any], task_name_: str = "") -> str:
    """Send the approved draft to the Signer; on success store the signed PDF and finish step 8.

    Idempotent per document id: once the case holds the signed document, a retry does nothing.
    A signature the signer made but could not hand over is fetched by its id on the retry,
    never made again. A refusal the signer could not read is retried once, then shown to the
    head of office with its raw reason; a wrong passphrase is never retried (and counted:
    `passphrase_failures_today`).
    """
    case = c.store.get(str(payload["case_id"]))
    doc_id = str(payload["document_id"])
    if case.signed is not None and case.signature_id:
        _register_document(c, case, doc_id)
        return "already_signed"
    if case.draft is None or document_id(case) != doc_id:
        raise PermanentError("draft changed since signing was requested", case_id=case.id)
    service = c.catalogue.get(case.service) if case.service else None
    actor = Actor.model_validate(payload["actor"])
    # One signer call per document at a time: two deliveries of the task at once (or a second
    # request of the head of office) would otherwise both sign it.
    held = hold(c, f"sign-{doc_id}", sign_hold_seconds(c))
    if held is None:
        raise TransientError("dokumen sedang ditandatangani", case_id=case.id)
    case = c.store.get(case.id)
    if case.signed is not None and case.signature_id:
        _register_document(c, case, doc_id)
        return "already_signed"
    if case.draft is None:
        raise PermanentError("draft changed since signing was requested", case_id=case.id)
    # Per request: the retries of one request only download what BSrE signed; a new request
    # (the head of office asks again after being told the download is gone) may sign anew.
    pending_key = f"sign-pending-{doc_id}-{task_name_ or 'task'}"
    pending = c.store.get_key(pending_key)
    try:
        passphrase = None
        if payload.get("sealed_passphrase") and pending is None:
            from sapa.services.sealed import unseal

            passphrase = unseal(c, str(payload["sealed_passphrase"]))
        signed = c.signer.sign(
            SignRequest(
                pdf=c.blobs.get(case.draft.key),
                document_id=doc_id,
                signer_name=str(payload.get("actor", {}).get("name") or "Kepala Dinas"),
                reason=f"Penerbitan {service.output if service else 'dokumen'} {case.reg_no}",
                location=c.region.name,
                verify_url=verify_url(c, doc_id),
                passphrase=passphrase,
                pending_id=str(pending["id"]) if pending else None,
            )
        )
    except PermanentError as exc:
        # Wrong passphrase, signer not registered, certificate not usable: the head of office
        # sees why on the case and may sign again. The passphrase itself is in no message.
        release(c, held)
        failures = None
        if exc.detail.get("reason") == "wrong_passphrase":
            failures = _count_passphrase_failure(c, doc_id)
        _note_sign_failed(c, case.id, actor, exc.message, failures=failures)
        raise
    except TransientError as exc:
        release(c, held)
        reason = exc.detail.get("reason")
        if reason == "pending_download" and exc.detail.get("pending_id"):
            # Signed over there: from now on only its download is fetched.
            c.store.claim_key(pending_key, value={"id": exc.detail["pending_id"]})
        elif reason == "unrecognised" and not c.store.claim_key(
            f"sign-unrecognised-{doc_id}-{task_name_ or 'task'}"
        ):
            # The second unreadable answer for this request: no blind third attempt.
            raw = str(exc.detail.get("bsre_error") or exc.message)
            message = text("sign_unrecognised", reason=raw[:200])
            _note_sign_failed(c, case.id, actor, message)
            raise PermanentError(message, **exc.detail) from None
        _note_sign_delayed(c, case.id, doc_id, exc.message)
        raise
    except Exception:
        release(c, held)
        raise
    try:
        complete_signature(
            c, case.id, doc_id, signed.pdf, signed.signature_id, signed.signed_at, actor
        )
    except Exception:
        # Not stored (the BlobStore or the case store is down): the retry signs again at once
        # rather than after the hold runs out; this signature never reached the case.
        release(c, held)
        raise
    return "signed"


def _note_sign_delayed(c: Container, case_id: str, doc_id: str, reason: str) -> None:
    """From the second transient failure on (a blip is cleared by the next attempt), once per
    document: staff see why the signature waits."""
    if c.store.claim_key(f"sign-delayed-{doc_id}", value={"first": True}):
        return
    if not c.store.claim_key(f"sign-delayed-noted-{doc_id}"):
        return
    now = c.clock.now()

    def note(case: Case) -> None:
        case.note(Actor.system(), "sign_delayed", now, reason=reason[:300])

    mutate(c, case_id, note)


def _note_sign_failed(
    c: Container, case_id: str, actor: Actor, reason: str, *, failures: int | None = None
) -> None:
    now = c.clock.now()
    detail: dict[str, Any] = {"reason": reason[:300]}
    if failures is not None:
        detail["passphrase_failures_today"] = failures

    def note(case: Case) -> None:
        case.note(actor, "sign_failed", now, **detail)

    mutate(c, case_id, note)


def complete_signature(
    c: Container,
    case_id: str,
    doc_id: str,
    pdf: bytes,
    signature_id: str,
    signed_at: datetime,
    actor: Actor,
) -> bool:
    """Store the signed PDF (a new object; the draft is kept), mark the case signed and queue
    delivery. Returns False when this document was already accepted (replays change nothing)."""
    known = c.store.get(case_id)
    if known.signed is not None:  # a replay: store nothing (retention may have deleted it)
        _register_document(c, known, doc_id)
        return False
    if known.draft is None or document_id(known) != doc_id:
        raise PermanentError("signed document does not match the case's draft")
    digest = hashlib.sha256(pdf).hexdigest()
    key = f"cases/{case_id}/signed/{doc_id}-{digest[:16]}.pdf"
    # Noted before it is written: an attempt that dies between storing the PDF and saving the
    # case leaves a file the case never points at, which the attempt that succeeds deletes.
    _note_signed_blob(c, doc_id, key)
    ref = c.blobs.put(key, pdf, "application/pdf")
    now = c.clock.now()

    def change(case: Case) -> bool:
        if case.signed is not None:
            return False
        if case.draft is None or document_id(case) != doc_id:
            raise PermanentError("signed document does not match the case's draft")
        case.signed = DocumentRef(
            key=ref.key,
            sha256=ref.sha256,
            size=ref.size,
            content_type="application/pdf",
            filename=signed_filename(c, case),
            source="signed",
            at=now,
        )
        case.signature_id = signature_id
        case.apply(
            c.sop,
            "sign",
            actor,
            now,
            document_id=doc_id,
            sha256=ref.sha256,
            signed_at=signed_at.isoformat(),
        )
        outbox_task(
            case,
            "deliver",
            {"case_id": case.id, "document_id": doc_id},
            name=task_name("deliver", doc_id),
        )
        return True

    case, accepted = mutate(c, case_id, change)
    _register_document(c, case, doc_id)
    return accepted


def _register_document(c: Container, case: Case, doc_id: str) -> None:
    """Once the case holds the signed document: point the verification page's document id at
    the case, and delete the signed PDFs of attempts that never reached the case. Also on a
    replay: if an earlier attempt failed between saving the case and these (idempotent)
    writes, the retry must still make the QR code's page work and leave one signed file."""
    if case.signed is not None and case.draft is not None and document_id(case) == doc_id:
        c.store.claim_key(f"doc-{doc_id}", value={"case_id": case.id})
        for key in _signed_blobs(c, doc_id):
            if key != case.signed.key:
                c.blobs.delete(key)


def _note_signed_blob(c: Container, doc_id: str, key: str) -> None:
    """Remember a signed PDF about to be stored for `doc_id` (generation keys, as holds)."""
    known = _signed_blobs(c, doc_id)
    if key not in known:
        for n in range(len(known), len(known) + 100):
            if c.store.claim_key(f"signed-blob-{doc_id}#{n}", value={"key": key}):
                return
        raise TransientError("too many signed files noted for one document", doc_id=doc_id)


def _signed_blobs(c: Container, doc_id: str) -> list[str]:
    keys: list[str] = []
    for n in range(10_000):
        noted = c.store.get_key(f"signed-blob-{doc_id}#{n}")
        if noted is None:
            return keys
        keys.append(str(noted["key"]))
    return keys


def signed_filename(c: Container, case: Case) -> str:
    """The signed PDF's name for the resident: the document's short name and the
    registration number, e.g. KK-730608-20261203-0001.pdf."""
    service = c.catalogue.find(case.service)
    return document_filename(service.file_code if service else "", case.reg_no)


def delivery_caption(c: Container, case: Case) -> str:
    """What the signed document says on WhatsApp: which document it is, that its electronic
    signature (the QR code) makes it valid, whether the resident may print it on plain paper
    (Permendagri 109/2019: KK and akta, not the cards), and thanks."""
    service = c.catalogue.find(case.service)
    parts = [
        text(
            "wa_delivered_caption",
            document=service.output if service else "Dokumen",
            reg_no=case.reg_no,
        )
    ]
    if service is not None and service.plain_paper:
        parts.append(text("wa_delivered_print"))
    parts.append(text("wa_delivered_thanks"))
    return "\n".join(parts)


def deliver(c: Container, payload: dict[str, Any], task_name_: str) -> str:
    """Send the signed PDF to the resident as a WhatsApp document, once per signed document
    (however many tasks ask). The case becomes delivered when WhatsApp reports the document
    delivered (or read) to the resident's phone, not when the API accepts it
    (see `document_status`).

    Outside the 24-hour window a document may not be sent: the "document ready" template goes
    out instead (once), and the resident's reply, which opens the window, queues this again.
    Returns "sent", "already_sent", "awaiting_window" or "revoked"."""
    case = c.store.get(str(payload["case_id"]))
    if case.signed is None:
        raise PermanentError("nothing signed to deliver", case_id=case.id)
    message_id = f"out:document-{case.signed.sha256[:32]}"
    again = payload.get("again")
    if again:
        # DOKUMEN: the resident asked for it again (the message opened the window).
        message_id = f"{message_id}-again-{hashlib.sha256(str(again).encode()).hexdigest()[:16]}"
        if case.document_status != "valid":
            send(c, case, "document_revoked", {}, message_id)
            return "revoked"
    if c.store.message_exists(message_id):
        return "already_sent"
    if not in_window(c, case):
        ready_id = f"out:document-ready-{case.signed.sha256[:32]}"
        if not c.store.message_exists(ready_id):
            send(c, case, "document_ready", {}, ready_id)
        return "awaiting_window"
    # One sender at a time: deliver tasks running side by side would each send the document.
    held = hold(c, message_id, SEND_HOLD_SECONDS)
    if held is None:
        raise TransientError("dokumen sedang dikirim oleh proses lain", case_id=case.id)
    if c.store.message_exists(message_id):
        return "already_sent"
    caption = delivery_caption(c, case)
    try:
        wamid = c.whatsapp.send_document(
            case.phone_number_id,
            case.wa_id,
            c.blobs.get(case.signed.key),
            signed_filename(c, case),
            caption,
            reference=send_reference(case, message_id, "document", "document"),
        )
    except Exception as exc:
        release(c, held)
        if isinstance(exc, TransientError):
            note_delayed(c, case.id, message_id, "document", exc.message)
        raise
    record_outbound(
        c, case, message_id, "document", caption, {"wamid": wamid, "key": case.signed.key}
    )
    # A status that raced ahead of the record above was parked by the webhook: apply it now.
    early = c.store.get_key(f"early-status-{wamid}")
    if early is not None:
        document_status(c, case.id, wamid, str(early.get("status", "")))
    return "sent"


def document_status(c: Container, case_id: str, wamid: str, status: str) -> bool:
    """WhatsApp's delivery status for a message of the case: when it is the signed document
    and it reached the phone (delivered or read), the case is delivered. True if it was."""
    if status not in ("delivered", "read"):
        return False
    case = c.store.get(case_id)
    if case.signed is None or "deliver" not in case.allowed_events(
        c.sop, Actor.system(), c.clock.now()
    ):
        return False
    prefix = f"out:document-{case.signed.sha256[:32]}"
    sent = [
        m
        for m in c.store.messages(case_id)
        if m.id.startswith(prefix) and m.data.get("wamid") == wamid
    ]
    if not sent:
        return False

    def done(case: Case) -> bool:
        if "deliver" not in case.allowed_events(c.sop, Actor.system(), c.clock.now()):
            return False
        case.apply(
            c.sop,
            "deliver",
            Actor.system(),
            c.clock.now(),
            message=sent[0].id,
            wamid=wamid,
            status=status,
        )
        survey.invite_task(case)  # whether to send it is decided when it runs
        return True

    return mutate(c, case_id, done)[1]


@dataclass(frozen=True)
class VerificationView:
    """What the public verification page may show: no NIK, the name masked."""

    document_id: str
    document_type: str
    reg_no: str
    office: str
    signed_at: datetime | None
    status: str  # valid | revoked | replaced
    holder: str
    hash_matches: bool | None = None


def verification(c: Container, doc_id: str, presented: bytes | None = None) -> VerificationView:
    ref = c.store.get_key(f"doc-{doc_id}")
    if ref is None:
        raise NotFound("dokumen tidak ditemukan")
    case = c.store.get(str(ref["case_id"]))
    if case.signed is None:
        raise NotFound("dokumen tidak ditemukan")
    service = c.catalogue.get(case.service) if case.service else None
    signing = c.sop.step_for_event("sign")
    run = case.runs(signing.key) if signing else []
    return VerificationView(
        document_id=doc_id,
        document_type=service.output if service else "Dokumen",
        reg_no=case.reg_no,
        office=c.region.office,
        signed_at=run[-1].done_at if run else None,
        status=case.document_status,
        holder=mask_name(str(case.form.get("name") or case.applicant_name)),
        hash_matches=(hashlib.sha256(presented).hexdigest() == case.signed.sha256)
        if presented is not None
        else None,
    )
