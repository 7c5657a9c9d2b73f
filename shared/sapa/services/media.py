"""The media a resident sends on WhatsApp: the `media_store` task copies it into the BlobStore,
cleaned as a guest-book upload, and attaches it to the case."""

from __future__ import annotations

import hashlib
from typing import Any

from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case, DocumentRef
from sapa.domain.documents import extension
from sapa.domain.errors import PermanentError, TransientError, ValidationFailed
from sapa.services.names import task_name
from sapa.services.unit import mutate, outbox_task


def media_failed(c: Container, payload: dict[str, Any], reason: str) -> None:
    """The media could not be fetched after every retry (expired id, provider down): tell the
    officer on the case and ask the resident to send it again. Safe to repeat."""
    case_id = str(payload["case_id"])
    now = c.clock.now()

    def note(case: Case) -> None:
        case.note(
            Actor.system(), "media_failed", now, wamid=payload.get("wamid"), reason=reason[:300]
        )
        outbox_task(
            case,
            "notify",
            {"case_id": case.id, "kind": "media_failed"},
            name=task_name("notify", str(payload.get("wamid")), "media_failed"),
        )

    mutate(c, case_id, note)


def media_store(c: Container, payload: dict[str, Any]) -> str:
    """Copy a resident's WhatsApp media into the BlobStore and attach it to the case as a
    candidate requirement document. Media ids expire, so this runs promptly and retries."""
    case_id = str(payload["case_id"])
    # The adapter checks the bytes against the sha256 of Meta's media endpoint and raises
    # TransientError on a mismatch, so a truncated download is retried.
    try:
        media = c.whatsapp.fetch_media(str(payload["media_id"]))
    except PermanentError as exc:
        # An expired or unknown media id never heals: tell staff and the resident now (the
        # task is dropped, so the give-up of the last retry would never run).
        media_failed(c, payload, exc.message)
        raise
    expected = payload.get("sha256")
    if isinstance(expected, str) and expected:
        from sapa.adapters.graph_whatsapp import _sha256_matches

        # ... and against the sha256 the webhook announced (hex or base64), the same way.
        if not _sha256_matches(expected, hashlib.sha256(media.data).digest()):
            raise TransientError("Media dari WhatsApp rusak saat diunduh (sha256 tidak cocok).")
    now = c.clock.now()
    # The same cleaning as a guest-book upload: type by content, images re-encoded without
    # EXIF/GPS, PDFs parsed within the decompression budgets. What fails stays out of staff
    # view: only a note says what came and why it was refused.
    from sapa.adapters.uploads import clean as clean_file

    try:
        safe = clean_file(
            media.data, limit_bytes=c.settings.max_upload_mb * 1024 * 1024, field="media"
        )
    except ValidationFailed as exc:
        refusal = exc.message

        def reject(case: Case) -> None:
            case.note(
                Actor.system(),
                "media_rejected",
                now,
                wamid=payload.get("wamid"),
                mime_type=media.mime_type,
                reason=refusal,
            )

        mutate(c, case_id, reject)
        return "rejected"
    ctype = safe.content_type
    digest = hashlib.sha256(safe.data).hexdigest()
    key = f"cases/{case_id}/wa/{digest[:32]}.{extension(ctype)}"
    ref = c.blobs.put(key, safe.data, ctype)

    wamid = str(payload.get("wamid") or "") or None
    # the resident may have deleted the message before its copy was made
    revoked = wamid is not None and any(
        m.type == "revoke" and m.data.get("target") == wamid for m in c.store.messages(case_id)
    )

    def attach(case: Case) -> None:
        if any(d.key == key for d in case.documents):
            return
        case.documents.append(
            DocumentRef(
                key=ref.key,
                sha256=ref.sha256,
                size=ref.size,
                content_type=ctype,
                filename=str(payload.get("filename") or ""),
                source="whatsapp",
                at=now,
                wamid=wamid,
                withdrawn_at=now if revoked else None,
            )
        )
        case.note(Actor.system(), "media_stored", now, key=key, sha256=ref.sha256)

    mutate(c, case_id, attach)
    return "stored"
