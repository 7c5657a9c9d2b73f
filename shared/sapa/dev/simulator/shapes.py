"""What the simulator's answers and messages look like, shared by its Graph API and its chat
page: JSON and Meta-style error answers, message ids, file names, reply buttons, media."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from typing import Any

from flask import Response, jsonify, request

from sapa.dev.simulator.store import Store

MAX_TEXT = 4096
MAX_CAPTION = 1024


def json_answer(payload: Any, status: int = 200) -> Response:
    response = jsonify(payload)
    response.status_code = status
    return response


def meta_error(
    status: int,
    message: str,
    *,
    code: int = 100,
    error_type: str = "OAuthException",
    subcode: int | None = None,
    details: str | None = None,
) -> Response:
    error: dict[str, Any] = {
        "message": message,
        "type": error_type,
        "code": code,
        "fbtrace_id": "Sim" + secrets.token_urlsafe(12),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return json_answer({"error": error}, status)


def unknown_object(object_id: str, method: str) -> Response:
    return meta_error(
        400,
        f"Unsupported {method} request. Object with ID '{object_id[:80]}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
        code=100,
        error_type="GraphMethodException",
        subcode=33,
    )


def new_wamid() -> str:
    return "wamid.SIM" + secrets.token_hex(16).upper()


def clean_filename(name: str) -> str:
    """A display file name: no directories, no control characters, at most 120 characters."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    return base[:120]


def reply_buttons(obj: dict[str, Any]) -> list[tuple[str, str]] | Response:
    """The (id, title) reply buttons of an interactive `button` message, checked as the Cloud
    API checks them (1-3 buttons, unique ids and titles, titles of 1-20 characters, a body of
    at most 1024), or a Meta-like 400. The simulator shows only reply buttons."""
    if obj.get("type") != "button":
        return meta_error(400, "(#100) The simulator shows interactive messages of type button.")
    body = obj.get("body")
    body_text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(body_text, str) or not body_text.strip() or len(body_text) > 1024:
        return meta_error(400, "(#100) Param interactive['body']['text'] is required (max 1024).")
    action = obj.get("action")
    raw = action.get("buttons") if isinstance(action, dict) else None
    if not isinstance(raw, list) or not 1 <= len(raw) <= 3:
        return meta_error(400, "(#131009) Parameter value is not valid: 1-3 buttons.", code=131009)
    out: list[tuple[str, str]] = []
    for b in raw:
        reply = b.get("reply") if isinstance(b, dict) and b.get("type") == "reply" else None
        bid = reply.get("id") if isinstance(reply, dict) else None
        title = reply.get("title") if isinstance(reply, dict) else None
        if not (isinstance(bid, str) and 0 < len(bid) <= 256):
            return meta_error(400, "(#131009) Button id is required (max 256).", code=131009)
        if not (isinstance(title, str) and 0 < len(title.strip()) <= 20):
            return meta_error(400, "(#131009) Button title must be 1-20 characters.", code=131009)
        out.append((bid, title))
    if len({i for i, _ in out}) < len(out) or len({t for _, t in out}) < len(out):
        return meta_error(400, "(#131009) Button ids and titles must be unique.", code=131009)
    return out


def buttons_of(row: sqlite3.Row) -> list[tuple[str, str]]:
    """The reply buttons of a stored outbound interactive message (none for anything else)."""
    if row["direction"] != "out" or row["type"] != "interactive":
        return []
    try:
        found = reply_buttons(json.loads(row["payload"]).get("interactive") or {})
    except (TypeError, ValueError, AttributeError):
        return []
    return [] if isinstance(found, Response) else found


def media_response(store: Store, media_id: str, *, attachment: bool) -> Response:
    """Media bytes, never rendered as active content on our origin (nosniff, sandbox CSP)."""
    media = store.media(media_id)
    data = store.media_bytes(media_id) if media else None
    if media is None or data is None:
        if request.path.startswith("/sim/"):
            return unknown_object(media_id, "get")
        return json_answer({"error": "Media tidak ditemukan."}, 404)
    inline = not attachment and media.mime_type in ("image/jpeg", "image/png")
    mime_type = media.mime_type if attachment or inline else "application/octet-stream"
    response = Response(data, mimetype=mime_type)
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", media.filename)[:100] or media.id
    response.headers.set(
        "Content-Disposition", "inline" if inline else "attachment", filename=ascii_name
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
