"""The inbound side of the WhatsApp Cloud API: signature check and payload parsing."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from sapa.domain.errors import PermanentError, Unauthorized
from sapa.domain.texts import text
from sapa.log import mask

log = logging.getLogger(__name__)


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
    """One message a resident sent (or, for an echo, an officer sent them from the WhatsApp
    Business app), reduced to what SAPA uses."""

    wamid: str
    phone_number_id: str
    wa_id: str  # the resident's address: their number, or their BSUID when no number came
    profile_name: str
    at: datetime
    type: str
    text: str = ""
    media_id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    filename: str | None = None
    user_id: str = ""  # the resident's business-scoped user id (BSUID), when Meta sent one
    source: str = "live"  # live | echo (smb_message_echoes: the office wrote it)
    # The message a reaction, edit or revoke is about; a system notice's new number or id.
    target: str = ""
    reply_id: str = ""  # the id of a tapped button or list row (interactive, button)
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


@dataclass(frozen=True)
class AccountNotice:
    """What Meta says about the account, a number or a template (no resident's data)."""

    field: str  # the webhook field, e.g. message_template_status_update, or "errors"
    phone_number_id: str  # "" when the notice names no number
    display_phone_number: str
    at: datetime
    event: str  # APPROVED, PAUSED, FLAGGED, YELLOW, the error codes, ...
    subject: str  # the template, the requested name, the username, the error's title
    detail: str = ""
    dated: bool = True  # False: Meta gave no time (value-level errors); `at` is when it came


@dataclass(frozen=True)
class IdentityChange:
    """A resident's business-scoped user id changed (`user_id_update`)."""

    phone_number_id: str
    wa_id: str  # their number, when Meta sent it
    previous: str
    current: str
    at: datetime


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Entry(_Loose):
    changes: list[Any] = []


class _Payload(_Loose):
    object: str
    entry: list[_Entry] = []


# Changes whose `field` SAPA acts on (the rest is logged once and acknowledged).
MESSAGE_FIELDS = ("messages", "status", "statuses")  # devlooped records field "status"
ECHO_FIELD = "smb_message_echoes"
HISTORY_FIELD = "history"
IDENTITY_FIELD = "user_id_update"
# Notices about the account, its numbers and its templates: they go to the admin.
NOTICE_FIELDS = (
    "message_template_status_update",
    "message_template_quality_update",
    "message_template_components_update",
    "template_category_update",
    "phone_number_quality_update",
    "phone_number_name_update",
    "account_update",
    "account_review_update",
    "account_alerts",
    "business_capability_update",
    "business_status_update",
    "business_username_update",
    "security",
)
# What the resident's side of a message can be (the key holding its content, where "type" is
# missing as in some fixtures: a location without "type").
_CONTENT_TYPES = (
    "text",
    "image",
    "document",
    "audio",
    "video",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "edit",
    "revoke",
    "unsupported",
)
_MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
_MEDIA_LABELS = {
    "image": "Gambar",
    "document": "Dokumen",
    "audio": "Pesan suara",
    "video": "Video",
    "sticker": "Stiker",
}


@dataclass
class Notification:
    """Everything one webhook POST carries, change by change, as SAPA reads it."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    notices: list[AccountNotice] = field(default_factory=list)
    identities: list[IdentityChange] = field(default_factory=list)
    history: int = 0  # messages of a chat-history sync (not live: not acted on)
    ignored: list[str] = field(default_factory=list)  # fields acknowledged without action


def _obj(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: a part of the payload that has the
    wrong shape is read as absent (Meta's payloads are loose; a 500 would be retried)."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of `value` if it is a list (anything else: none)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


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
        names = [
            str(_obj(c.get("name")).get("formatted_name", "")) for c in _list(m.get("contacts"))
        ]
        return "[Kontak] " + ", ".join(n for n in names if n)
    if mtype == "reaction":
        emoji = _str(_obj(m.get("reaction")).get("emoji")) or ""
        return f"[Reaksi {emoji}]" if emoji else "[Reaksi dihapus]"
    if mtype == "order":
        items = _list(_obj(m.get("order")).get("product_items"))
        return f"[Pesanan katalog, {len(items)} barang]"
    if mtype == "system":
        return f"[Pemberitahuan WhatsApp: {_str(_obj(m.get('system')).get('type')) or '-'}]"
    if mtype == "edit":
        return "[Pesan diubah]"
    if mtype == "revoke":
        return "[Pesan dihapus]"
    return f"[Pesan jenis {mtype} tidak didukung]"


def _interactive_text(inter: dict[str, Any]) -> tuple[str, str]:
    """(text shown to staff and read for keywords, the reply's id) of an interactive reply:
    a button or list choice, a Flow (nfm_reply: its answers in full), a call permission."""
    kind = _str(inter.get("type")) or ""
    for key in ("button_reply", "list_reply"):
        reply = _obj(inter.get(key))
        if reply:
            return _str(reply.get("title")) or "", _str(reply.get("id")) or ""
    flow = _obj(inter.get("nfm_reply"))
    if flow or kind == "nfm_reply":
        answers: Any = flow.get("response_json")
        if isinstance(answers, str):
            try:
                answers = json.loads(answers)
            except ValueError:
                answers = {"jawaban": answers}
        parts = [
            f"{k}: {v}"
            for k, v in _obj(answers).items()
            if k != "flow_token" and isinstance(v, str | int | float | bool)
        ]
        return "[Formulir] " + "; ".join(parts), ""
    permission = _obj(inter.get("call_permission_reply"))
    if permission or kind == "call_permission_reply":
        answer = {"accept": "diizinkan", "reject": "ditolak"}.get(
            _str(permission.get("response")) or "", "-"
        )
        return f"[Izin panggilan WhatsApp: {answer}]", ""
    return "[Balasan interaktif]", ""


def _sender(m: dict[str, Any], contacts: list[dict[str, Any]]) -> tuple[str, str]:
    """(phone, BSUID) of a message's sender. A username user may come with a business-scoped
    user id only (`from_user_id`), or, in request-contact replies, with neither: then the one
    contact of the change names them."""
    phone = _str(m.get("from")) or ""
    user_id = _str(m.get("from_user_id")) or ""
    if not phone and not user_id and len(contacts) == 1:
        phone = _str(contacts[0].get("wa_id")) or ""
        user_id = _str(contacts[0].get("user_id")) or ""
    if phone and not user_id:
        found = [c for c in contacts if _str(c.get("wa_id")) == phone]
        user_id = (_str(found[0].get("user_id")) or "") if found else ""
    return phone, user_id


def _profile_name(contacts: list[dict[str, Any]], phone: str, user_id: str) -> str:
    for c in contacts:
        if (phone and _str(c.get("wa_id")) == phone) or (
            user_id and _str(c.get("user_id")) == user_id
        ):
            return _str(_obj(c.get("profile")).get("name")) or ""
    return (_str(_obj(contacts[0].get("profile")).get("name")) or "") if contacts else ""


def _message(
    m: dict[str, Any], pnid: str, contacts: list[dict[str, Any]], source: str
) -> InboundMessage | None:
    mtype = _str(m.get("type")) or next((t for t in _CONTENT_TYPES if t in m), "unsupported")
    wamid = _str(m.get("id")) or ""
    if source == "echo":
        # Sent by an officer from the WhatsApp Business app: the resident is the addressee.
        phone = _str(m.get("to")) or ""
        user_id = _str(m.get("to_user_id")) or ""
    else:
        phone, user_id = _sender(m, contacts)
    address = phone or user_id
    if not wamid or not address:
        return None
    body_text, reply_id, target = "", "", ""
    media: dict[str, Any] = {}
    if mtype == "text":
        body_text = _str(_obj(m.get("text")).get("body")) or ""
    elif mtype in _MEDIA_TYPES:
        media = _obj(m.get(mtype))
        # the caption, or a line for the officer's view of a file without one
        body_text = _str(media.get("caption")) or _summary(mtype, m)
    elif mtype == "interactive" and not _obj(m.get("interactive")):
        # Meta could not give us what was tapped (it says so in the value's errors)
        mtype, body_text = "unsupported", _summary("unsupported", m)
    elif mtype == "interactive":
        body_text, reply_id = _interactive_text(_obj(m.get("interactive")))
    elif mtype == "button":
        button = _obj(m.get("button"))
        body_text, reply_id = _str(button.get("text")) or "", _str(button.get("payload")) or ""
    elif mtype == "reaction":
        target = _str(_obj(m.get("reaction")).get("message_id")) or ""
        body_text = _summary(mtype, m)
    elif mtype == "edit":
        edit = _obj(m.get("edit"))
        target = _str(edit.get("original_message_id")) or ""
        new = _obj(edit.get("message"))
        new_type = _str(new.get("type")) or "text"
        content = _obj(new.get(new_type))
        body_text = _str(content.get("body")) or _str(content.get("caption")) or ""
    elif mtype == "revoke":
        target = _str(_obj(m.get("revoke")).get("original_message_id")) or ""
        body_text = _summary(mtype, m)
    elif mtype == "system":
        system = _obj(m.get("system"))
        body_text = _summary(mtype, m)
        # the new number (user_changed_number) or the new user id (user_changed_user_id)
        target = _str(system.get("wa_id")) or _str(system.get("user_id")) or ""
    else:
        body_text = _summary(mtype, m)
    return InboundMessage(
        wamid=wamid,
        phone_number_id=pnid,
        wa_id=address,
        profile_name=_profile_name(contacts, phone, user_id),
        at=_when(m.get("timestamp")),
        type=mtype,
        text=body_text,
        media_id=_str(media.get("id")),
        mime_type=_str(media.get("mime_type")),
        sha256=_str(media.get("sha256")),
        filename=_str(media.get("filename")),
        user_id=user_id,
        source=source,
        target=target,
        reply_id=reply_id,
        raw=m,
    )


_CHANGED_FROM = re.compile(r"\bfrom (\S+) to (\S+)")


def _user_id_change(m: dict[str, Any], pnid: str) -> IdentityChange | None:
    """A system message saying a resident's BSUID changed (`user_changed_user_id`); Meta names
    the old id only in the text ("User X changed from US.1… to US.2…")."""
    system = _obj(m.get("system"))
    if _str(m.get("type")) != "system" or _str(system.get("type")) != "user_changed_user_id":
        return None
    current = _str(system.get("user_id")) or ""
    found = _CHANGED_FROM.search(_str(system.get("body")) or "")
    if not current or found is None:
        return None
    return IdentityChange(
        phone_number_id=pnid,
        wa_id=_str(m.get("from")) or "",
        previous=found.group(1),
        current=current,
        at=_when(m.get("timestamp")),
    )


def _status(s: dict[str, Any], pnid: str) -> StatusUpdate | None:
    wamid, state = _str(s.get("id")), _str(s.get("status"))
    if not wamid or not state:
        return None
    errors = tuple(
        f"{e.get('code', '')} {e.get('title', '')}".strip() for e in _list(s.get("errors"))
    )
    return StatusUpdate(
        wamid=wamid,
        phone_number_id=pnid,
        status=state,
        at=_when(s.get("timestamp")),
        recipient=_str(s.get("recipient_id")) or _str(s.get("recipient_user_id")) or "",
        errors=errors,
        reference=_str(s.get("biz_opaque_callback_data")) or "",
    )


def _errors_notice(
    errors: list[dict[str, Any]], pnid: str, display: str, at: datetime
) -> AccountNotice:
    """Value-level errors (a rate limit, an unreadable payload): what Meta said, no more.
    Meta gives them no time of their own."""
    first = errors[0]
    codes = ", ".join(str(e.get("code", "")) for e in errors)
    title = _str(first.get("title")) or _str(first.get("message")) or ""
    details = _str(_obj(first.get("error_data")).get("details")) or ""
    return AccountNotice(
        field="errors",
        phone_number_id=pnid,
        display_phone_number=display,
        at=at,
        dated=False,
        event=codes,
        subject=title,
        detail=details,
    )


def _first(value: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The first of `keys` that `value` holds as a scalar, as text ("" if none)."""
    return next((found for k in keys if (found := _str(value.get(k)))), "")


def _notice(fld: str, value: dict[str, Any], pnid: str, entry_time: Any) -> AccountNotice:
    """An account, number or template notice for the admin: its event and what it is about."""
    event = _first(value, ("event", "decision", "status", "new_category"))
    subject = _first(
        value,
        ("message_template_name", "requested_verified_name", "username", "display_phone_number"),
    )
    extra = []
    for key in ("reason", "rejection_reason", "current_limit", "message_template_language"):
        v = _str(value.get(key))
        if v and v.upper() != "NONE":
            extra.append(f"{key}={v}")
    for key in ("ban_info", "restriction_info", "disable_info", "violation_info"):
        if value.get(key):
            extra.append(f"{key}={json.dumps(value[key], ensure_ascii=False)[:300]}")
    display = _str(value.get("display_phone_number")) or ""
    return AccountNotice(
        field=fld,
        phone_number_id=pnid,
        display_phone_number=display,
        at=_when(value.get("timestamp") or entry_time),
        event=event,
        subject=subject,
        detail="; ".join(extra),
    )


def parse_notification(body: Any) -> Notification:
    """What a signed webhook body carries, decided change by change by its `field`.

    Raises `PermanentError` only for a body that is not a WhatsApp Business Account
    notification at all. A change SAPA cannot read (an unknown field, a missing or odd
    `value`) is logged once, by field name only, and acknowledged: Meta retries a non-200
    for days and then disables the webhook, and one such change must not refuse the good
    changes sent beside it.
    """
    try:
        payload = _Payload.model_validate(body)
    except ValidationError as exc:
        raise PermanentError("payload is not a WhatsApp webhook", errors=exc.errors()) from None
    if payload.object != "whatsapp_business_account":
        raise PermanentError("unexpected webhook object", object=payload.object)
    out = Notification()
    for entry in payload.entry:
        for change in _list(entry.changes):
            fld = _str(change.get("field")) or ""
            value = _obj(change.get("value"))
            metadata = _obj(value.get("metadata"))
            pnid = _str(metadata.get("phone_number_id")) or ""
            display = _str(metadata.get("display_phone_number")) or ""
            contacts = _list(value.get("contacts"))
            errors = _list(value.get("errors"))
            if errors:
                out.notices.append(_errors_notice(errors, pnid, display, datetime.now(UTC)))
            if fld in MESSAGE_FIELDS and pnid:
                for m in _list(value.get("messages")):
                    if m.get("group_id"):
                        # a group chat the number is in: not a resident writing to the office
                        out.ignored.append("group message")
                        continue
                    identity = _user_id_change(m, pnid)
                    if identity is not None:
                        out.identities.append(identity)
                        continue
                    msg = _message(m, pnid, contacts, "live")
                    if msg is not None:
                        out.messages.append(msg)
                for s in _list(value.get("statuses")):
                    st = _status(s, pnid)
                    if st is not None:
                        out.statuses.append(st)
            elif fld == ECHO_FIELD and pnid:
                for m in _list(value.get("message_echoes")):
                    msg = _message(m, pnid, contacts, "echo")
                    if msg is not None:
                        out.messages.append(msg)
            elif fld == HISTORY_FIELD:
                threads = [t for h in _list(value.get("history")) for t in _list(h.get("threads"))]
                out.history += len(_list(value.get("messages"))) + sum(
                    len(_list(t.get("messages"))) for t in threads
                )
            elif fld == IDENTITY_FIELD and pnid:
                for u in _list(value.get(IDENTITY_FIELD)):
                    ids = _obj(u.get("user_id"))
                    previous, current = _str(ids.get("previous")), _str(ids.get("current"))
                    if previous and current:
                        out.identities.append(
                            IdentityChange(
                                phone_number_id=pnid,
                                wa_id=_str(u.get("wa_id")) or "",
                                previous=previous,
                                current=current,
                                at=_when(u.get("timestamp")),
                            )
                        )
            elif fld in NOTICE_FIELDS:
                out.notices.append(_notice(fld, value, pnid, getattr(entry, "time", None)))
            else:
                out.ignored.append(fld or "(tanpa field)")
    for fld in dict.fromkeys(out.ignored):
        # a field name is the sender's text: masked in the record itself, not only when the
        # JSON formatter writes it (another handler would see the raw attribute)
        log.info("webhook change acknowledged, not read", extra={"kind": mask(fld[:60])})
    return out
