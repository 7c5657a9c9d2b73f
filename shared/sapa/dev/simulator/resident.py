"""The resident writing to SAPA (`POST /dev/wa/api/send` from the chat page): a text, a photo
or PDF, or a tap on a reply button, stored and delivered as Meta's webhook would carry it."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from flask import Response, request

from sapa.dev.simulator.shapes import (
    MAX_CAPTION,
    MAX_TEXT,
    buttons_of,
    clean_filename,
    json_answer,
    new_wamid,
)
from sapa.dev.simulator.webhooks import WaSimulator
from sapa.domain.values import BSUID

MAX_DOCUMENT_BYTES = 100 * 1024 * 1024  # Meta's limit for documents
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Meta's limit for images
_MAGIC = (
    (b"\xff\xd8\xff", "image", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image", "image/png"),
    (b"%PDF-", "document", "application/pdf"),
)


def send(sim: WaSimulator) -> Response:
    """`POST /dev/wa/api/send`: store the resident's message, then deliver it as a webhook."""

    def refuse(text: str, status: int = 400) -> Response:
        return json_answer({"wamid": None, "webhook_status": None, "error": text}, status)

    upload = None
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return refuse("Permintaan tidak dapat dibaca (JSON tidak valid).")
        fields: dict[str, Any] = body
    else:
        fields = request.form.to_dict()
        upload = request.files.get("file")
    phone_number_id = fields.get("phone_number_id")
    if not isinstance(phone_number_id, str) or phone_number_id not in sim.phone_numbers:
        return refuse("Nomor layanan kecamatan tidak dikenal.")
    wa_id = re.sub(r"[\s+()-]", "", str(fields.get("from") or ""))
    # a number, or a business-scoped user id: a resident with a username whose number
    # WhatsApp does not show (e.g. ID.13491208655302741918)
    username = bool(BSUID.match(wa_id))
    if not username and not (wa_id.isdigit() and 8 <= len(wa_id) <= 15):
        return refuse(
            "Nomor WhatsApp tidak valid. Contoh: 6281234567890 (atau ID pengguna seperti "
            "ID.13491208655302741918)."
        )
    name = " ".join(str(fields.get("name") or "").split())[:60]
    now = time.time()
    wamid = new_wamid()
    sender = {"from_user_id": wa_id} if username else {"from": wa_id}
    message: dict[str, Any] = {**sender, "id": wamid, "timestamp": str(int(now))}
    columns: dict[str, Any] = {}
    if upload is not None and upload.filename:
        data = upload.read()
        if not data:
            return refuse("Berkas kosong.")
        sniffed = next((m for m in _MAGIC if data.startswith(m[0])), None)
        if sniffed is None:
            return refuse("Berkas harus berupa JPG, PNG, atau PDF.")
        _, kind, mime_type = sniffed
        limit = MAX_IMAGE_BYTES if kind == "image" else MAX_DOCUMENT_BYTES
        if len(data) > limit:
            return refuse(f"Ukuran berkas melebihi batas {limit // (1024 * 1024)} MB.", 413)
        caption = str(fields.get("caption") or fields.get("text") or "")[:MAX_CAPTION]
        filename = ""
        if kind == "document":
            filename = clean_filename(upload.filename) or "dokumen.pdf"
            if not filename.lower().endswith(".pdf"):
                filename += ".pdf"
        media = sim.store.add_media(phone_number_id, data, mime_type, filename)
        content: dict[str, Any] = {}
        if caption:
            content["caption"] = caption
        if kind == "document":
            content["filename"] = filename
        content.update({"mime_type": mime_type, "sha256": media.sha256, "id": media.id})
        message.update({"type": kind, kind: content})
        columns = {"type": kind, "text": caption, "media_id": media.id, "filename": filename}
    elif isinstance(fields.get("reply"), dict):
        # the resident tapped a reply button of one of our messages
        tap = fields["reply"]
        row = sim.store.message(str(tap.get("wamid") or ""))
        chosen = [
            (i, t) for i, t in (buttons_of(row) if row is not None else []) if i == tap.get("id")
        ]
        if row is None or row["wa_id"] != wa_id or row["phone_number_id"] != phone_number_id:
            return refuse("Pesan bertombol itu tidak ada dalam percakapan ini.")
        if not chosen:
            return refuse("Tombol itu tidak ada pada pesan tersebut.")
        bid, title = chosen[0]
        message.update(
            {
                "context": {"from": sim.display_number(phone_number_id), "id": row["wamid"]},
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": bid, "title": title},
                },
            }
        )
        columns = {"type": "interactive", "text": title}
    else:
        text = fields.get("text")
        if not isinstance(text, str) or not text.strip():
            return refuse("Pesan kosong. Tulis pesan atau lampirkan berkas.")
        if len(text) > MAX_TEXT:
            return refuse(f"Pesan terlalu panjang (maksimal {MAX_TEXT} karakter).")
        message.update({"type": "text", "text": {"body": text}})
        columns = {"type": "text", "text": text}
    payload = sim.envelope(
        phone_number_id,
        {
            "contacts": [
                {
                    "profile": {"name": name, "username": "@" + (name.lower().replace(" ", ""))},
                    "user_id": wa_id,
                }
                if username
                else {"profile": {"name": name}, "wa_id": wa_id}
            ],
            "messages": [message],
        },
    )
    sim.begin(wamid)  # redelivery waits for this first attempt's answer
    try:
        sim.store.add_message(
            wamid=wamid,
            direction="in",
            phone_number_id=phone_number_id,
            wa_id=wa_id,
            name=name,
            at=now,
            payload=json.dumps(payload),
            **columns,
        )
        webhook_status, error = sim.post_webhook(payload)
        sim.store.update_message(wamid, webhook_status=webhook_status, error=error)
    finally:
        sim.end(wamid)
    return json_answer({"wamid": wamid, "webhook_status": webhook_status, "error": error})
