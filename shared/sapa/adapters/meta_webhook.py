"""The inbound side of the WhatsApp Cloud API: signature check and payload parsing."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from sapa.domain.errors import PermanentError, Unauthorized
from sapa.domain.texts import text


def verify_signature(app_secret: str, raw_body: bytes, header: str | None) -> None:
    """Check `X-Hub-Signature-256: sha256=<hex>` over the raw bytes, in constant time."""
    if not header or not header.startswith("sha256="):
        raise Unauthorized(text("bad_signature"))
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest().encode()
    # Compare bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    sent = header[len("sha256=") :].strip().lower().encode("utf-8", "replace")
    if not hmac.compare_digest(expected, sent):
        raise Unauthorized(text("bad_signature"))


def sign_body(app_secret: str, raw_body: bytes) -> str:
    """The header value Meta would send for `raw_body` (used by the simulator and tests)."""
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class InboundMessage:
    """One message a resident sent, reduced to what SAPA uses."""

    wamid: str
    phone_number_id: str
    wa_id: str
    profile_name: str
    at: datetime
    type: str
    text: str = ""
    media_id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    filename: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class StatusUpdate:
    wamid: str
    phone_number_id: str
    status: str
    at: datetime
    recipient: str = ""
    errors: tuple[str, ...] = ()  # Meta's error codes and titles, for a failed message
    reference: str = ""  # the biz_opaque_callback_data the message was sent with


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Metadata(_Loose):
    phone_number_id: str
    display_phone_number: str = ""


class _Profile(_Loose):
    name: str = ""


class _Contact(_Loose):
    wa_id: str | None = None
    user_id: str | None = None
    profile: _Profile = _Profile()


class _Value(_Loose):
    metadata: _Metadata
    contacts: list[_Contact] = []
    messages: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []


class _Change(_Loose):
    field: str = "messages"
    value: _Value


class _Entry(_Loose):
    changes: list[_Change] = []


class _Payload(_Loose):
    object: str
    entry: list[_Entry] = []


_MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
_MEDIA_LABELS = {
    "image": "Gambar",
    "document": "Dokumen",
    "audio": "Pesan suara",
    "video": "Video",
    "sticker": "Stiker",
}


def _obj(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: a part of the payload that has the
    wrong shape is read as absent (Meta's payloads are loose; a 500 would be retried)."""
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    """A scalar id or name as text; None for anything else (absent, object, list)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _when(ts: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(ts), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def _summary(mtype: str, m: dict[str, Any]) -> str:
    """A line for the officer's view of message types that carry no text of their own."""
    if mtype in _MEDIA_LABELS:
        name = _str(_obj(m.get(mtype)).get("filename")) or ""
        return f"[{_MEDIA_LABELS[mtype]} {name}]".replace(" ]", "]")
    if mtype == "location":
        loc = _obj(m.get("location"))
        place = " ".join(str(loc.get(k, "")) for k in ("name", "address") if loc.get(k))
        return f"[Lokasi {loc.get('latitude', '?')}, {loc.get('longitude', '?')}] {place}".strip()
    if mtype == "contacts":
        found = m.get("contacts")
        names = [
            str(_obj(c.get("name")).get("formatted_name", ""))
            for c in (found if isinstance(found, list) else [])
            if isinstance(c, dict)
        ]
        return "[Kontak] " + ", ".join(n for n in names if n)
    if mtype == "reaction":
        reaction = _obj(m.get("reaction"))
        return f"[Reaksi {reaction.get('emoji', '')}]".replace(" ]", "]")
    return f"[Pesan jenis {mtype} tidak didukung]"


def parse_payload(body: Any) -> tuple[list[InboundMessage], list[StatusUpdate]]:
    """Every message and status in a webhook body (several entries/changes/messages each)."""
    try:
        payload = _Payload.model_validate(body)
    except ValidationError as exc:
        raise PermanentError("payload is not a WhatsApp webhook", errors=exc.errors()) from None
    if payload.object != "whatsapp_business_account":
        raise PermanentError("unexpected webhook object", object=payload.object)
    messages: list[InboundMessage] = []
    statuses: list[StatusUpdate] = []
    for entry in payload.entry:
        for change in entry.changes:
            value = change.value
            pnid = value.metadata.phone_number_id
            names = {(c.wa_id or c.user_id or ""): c.profile.name for c in value.contacts}
            for m in value.messages:
                mtype = str(m.get("type", "unsupported"))
                sender = str(m.get("from") or m.get("from_user_id") or "")
                wamid = str(m.get("id") or "")
                if not wamid or not sender:
                    continue
                body_text = ""
                media: dict[str, Any] = {}
                if mtype == "text":
                    body_text = str(_obj(m.get("text")).get("body", ""))
                elif mtype in _MEDIA_TYPES:
                    media = _obj(m.get(mtype))
                    # the caption, or a line for the officer's view of a file without one
                    body_text = str(media.get("caption") or "") or _summary(mtype, m)
                elif mtype == "interactive":
                    inter = _obj(m.get("interactive"))
                    reply = _obj(inter.get("button_reply") or inter.get("list_reply"))
                    body_text = str(reply.get("title", ""))
                elif mtype == "button":
                    body_text = str(_obj(m.get("button")).get("text", ""))
                else:
                    body_text = _summary(mtype, m)
                messages.append(
                    InboundMessage(
                        wamid=wamid,
                        phone_number_id=pnid,
                        wa_id=sender,
                        profile_name=names.get(sender, "") or next(iter(names.values()), ""),
                        at=_when(m.get("timestamp")),
                        type=mtype,
                        text=body_text,
                        media_id=_str(media.get("id")),
                        mime_type=_str(media.get("mime_type")),
                        sha256=_str(media.get("sha256")),
                        filename=_str(media.get("filename")),
                        raw=m,
                    )
                )
            for s in value.statuses:
                if s.get("id") and s.get("status"):
                    found = s.get("errors")
                    errors = tuple(
                        f"{e.get('code', '')} {e.get('title', '')}".strip()
                        for e in (found if isinstance(found, list) else [])
                        if isinstance(e, dict)
                    )
                    statuses.append(
                        StatusUpdate(
                            wamid=str(s["id"]),
                            phone_number_id=pnid,
                            status=str(s["status"]),
                            at=_when(s.get("timestamp")),
                            recipient=str(s.get("recipient_id", "")),
                            errors=errors,
                            reference=_str(s.get("biz_opaque_callback_data")) or "",
                        )
                    )
    return messages, statuses
