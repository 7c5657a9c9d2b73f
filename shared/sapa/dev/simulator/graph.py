"""The Graph API subset SAPA uses, as Meta answers it: send messages (text, media, templates,
reply buttons), mark as read, upload, resolve, download and delete media. Bearer token
required; a fault set through `/sim/control/faults` answers first."""

from __future__ import annotations

import hmac
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request

from sapa.dev.simulator.faults import injected
from sapa.dev.simulator.shapes import (
    MAX_CAPTION,
    MAX_TEXT,
    clean_filename,
    media_response,
    meta_error,
    new_wamid,
    reply_buttons,
    unknown_object,
)
from sapa.dev.simulator.webhooks import WaSimulator
from sapa.domain.values import BSUID

GRAPH_TYPES = ("text", "image", "document", "template", "interactive")
_MIME = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+")


def add_graph_api(app: Flask, sim: WaSimulator) -> None:
    """`/sim/graph/<version>/...` and `GET /sim/media/<id>` (the media bytes)."""

    def base_url() -> str:
        return sim.public_base or request.url_root.rstrip("/")

    @app.before_request
    def _graph_guard() -> Response | None:
        if not request.path.startswith(("/sim/graph/", "/sim/media/")):
            return None
        failing = injected(sim.faults)
        if failing is not None:
            return failing
        given = request.headers.get("Authorization", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credential.strip().encode("utf-8"), sim.token.encode("utf-8")
        ):
            return meta_error(
                401,
                "Invalid OAuth access token - Cannot parse access token",
                code=190,
            )
        return None

    @app.post("/sim/graph/<version>/<phone_number_id>/messages")
    def graph_messages(version: str, phone_number_id: str) -> Response:
        if phone_number_id not in sim.phone_numbers:
            return unknown_object(phone_number_id, "post")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return meta_error(400, "(#100) The request body must be a JSON object.")
        if body.get("messaging_product") != "whatsapp":
            return meta_error(400, "(#100) The parameter messaging_product is required.")
        if body.get("status") == "read":
            return _mark_read(body)
        to, user_id = body.get("to"), body.get("recipient")
        if isinstance(user_id, str) and user_id and not to:
            # a resident known by username: their business-scoped user id, as Meta takes it
            if not BSUID.match(user_id):
                return meta_error(
                    400,
                    "(#131030) Recipient not valid",
                    code=131030,
                    details="'recipient' must be a business-scoped user id.",
                )
            to = wa_id = user_id
        elif not isinstance(to, str) or not to.strip():
            return meta_error(400, "(#100) The parameter to is required.")
        else:
            wa_id = re.sub(r"\D", "", to)
            if not 7 <= len(wa_id) <= 15:
                return meta_error(
                    400,
                    "(#131030) Recipient phone number not valid",
                    code=131030,
                    details="'to' must be a phone number in international format.",
                )
        kind = body.get("type", "text")
        if kind not in GRAPH_TYPES:
            shown = str(kind)[:40]
            return meta_error(
                400,
                f"(#100) Param type must be one of {{{', '.join(GRAPH_TYPES).upper()}}} "
                f'- got "{shown}".',
            )
        parsed = _parse_outbound(sim, kind, body.get(kind))
        if isinstance(parsed, Response):
            return parsed
        wamid = new_wamid()
        sim.store.add_message(
            wamid=wamid,
            direction="out",
            phone_number_id=phone_number_id,
            wa_id=wa_id,
            type=kind,
            status="accepted",
            at=time.time(),
            payload=json.dumps(body),
            **parsed,
        )
        sim.queue_statuses(wamid, phone_number_id, wa_id)
        message: dict[str, str] = {"id": wamid}
        if kind == "template":
            message["message_status"] = "accepted"
        return jsonify(
            {
                "messaging_product": "whatsapp",
                "contacts": [
                    {"input": to, "user_id": wa_id}
                    if BSUID.match(wa_id)
                    else {"input": to, "wa_id": wa_id}
                ],
                "messages": [message],
            }
        )

    def _mark_read(body: dict[str, Any]) -> Response:
        wamid = body.get("message_id")
        row = sim.store.message(wamid) if isinstance(wamid, str) else None
        if row is None or row["direction"] != "in":
            return meta_error(400, "(#100) Invalid parameter", details="Unknown message_id.")
        sim.store.update_message(row["wamid"], status="read")
        return jsonify({"success": True})

    @app.post("/sim/graph/<version>/<phone_number_id>/media")
    def graph_upload(version: str, phone_number_id: str) -> Response:
        if phone_number_id not in sim.phone_numbers:
            return unknown_object(phone_number_id, "post")
        if request.form.get("messaging_product") != "whatsapp":
            return meta_error(400, "(#100) The parameter messaging_product is required.")
        upload = request.files.get("file")
        if upload is None:
            return meta_error(400, "(#100) The parameter file is required.")
        mime_type = (request.form.get("type") or upload.mimetype or "").strip().lower()
        if not _MIME.fullmatch(mime_type):
            return meta_error(400, "(#100) Param type must be a MIME type.")
        data = upload.read()
        if not data:
            return meta_error(400, "(#100) Param file must not be empty.")
        media = sim.store.add_media(
            phone_number_id, data, mime_type, clean_filename(upload.filename or "")
        )
        return jsonify({"id": media.id})

    @app.get("/sim/graph/<version>/<media_id>")
    def graph_media(version: str, media_id: str) -> Response:
        media = sim.store.media(media_id)
        if media is None:
            return unknown_object(media_id, "get")
        return jsonify(
            {
                "messaging_product": "whatsapp",
                "url": f"{base_url()}/sim/media/{media.id}",
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "file_size": media.size,
                "id": media.id,
            }
        )

    @app.delete("/sim/graph/<version>/<media_id>")
    def graph_media_delete(version: str, media_id: str) -> Response:
        if not sim.store.delete_media(media_id):
            return unknown_object(media_id, "delete")
        return jsonify({"success": True})

    @app.route("/sim/graph/<path:rest>", methods=["GET", "POST", "DELETE", "PUT", "PATCH"])
    def graph_unknown(rest: str) -> Response:
        return meta_error(400, "Unknown path components: /" + rest[:100], code=2500)

    @app.get("/sim/media/<media_id>")
    def media_download(media_id: str) -> Response:
        return media_response(sim.store, media_id, attachment=True)


def _parse_outbound(sim: WaSimulator, kind: str, obj: Any) -> dict[str, Any] | Response:
    """The stored columns of an outbound message of type `kind`, or a Meta-like 400."""
    if not isinstance(obj, dict):
        return meta_error(400, f"(#100) The parameter {kind} is required.")
    if kind == "text":
        body = obj.get("body")
        if not isinstance(body, str) or not body.strip():
            return meta_error(400, "(#100) The parameter text['body'] is required.")
        if len(body) > MAX_TEXT:
            return meta_error(400, f"(#100) Param text['body'] must be at most {MAX_TEXT} chars.")
        return {"text": body}
    if kind == "interactive":
        buttons = reply_buttons(obj)
        if isinstance(buttons, Response):
            return buttons
        return {"text": obj["body"]["text"]}
    if kind == "template":
        name = obj.get("name")
        language = obj.get("language")
        if not isinstance(name, str) or not name:
            return meta_error(400, "(#100) The parameter template['name'] is required.")
        if not isinstance(language, dict) or not isinstance(language.get("code"), str):
            return meta_error(400, "(#100) The parameter template['language'] is required.")
        return {"text": _template_text(name, obj.get("components"))}
    caption = obj.get("caption", "")
    if not isinstance(caption, str) or len(caption) > MAX_CAPTION:
        return meta_error(400, f"(#100) Param {kind}['caption'] must be a short string.")
    media_id, link = obj.get("id"), obj.get("link")
    filename = obj.get("filename", "")
    if not isinstance(filename, str):
        return meta_error(400, f"(#100) Param {kind}['filename'] must be a string.")
    if media_id is not None:
        media = sim.store.media(str(media_id))
        if media is None:
            return meta_error(
                400,
                f"(#100) Invalid parameter: media id {str(media_id)[:40]} does not exist.",
                details="Unknown media id.",
            )
        return {
            "text": caption,
            "media_id": media.id,
            "filename": clean_filename(filename or media.filename) if kind == "document" else None,
        }
    if isinstance(link, str) and urlsplit(link).scheme in ("http", "https") and len(link) < 2048:
        return {
            "text": caption,
            "link": link,
            "filename": clean_filename(filename or link.rsplit("/", 1)[-1])
            if kind == "document"
            else None,
        }
    return meta_error(400, f"(#100) Param {kind} must have an 'id' or an http(s) 'link'.")


def _template_text(name: str, components: Any) -> str:
    params: list[str] = []
    if isinstance(components, list):
        for component in components:
            if isinstance(component, dict) and isinstance(component.get("parameters"), list):
                for p in component["parameters"]:
                    if isinstance(p, dict) and isinstance(p.get("text"), str):
                        params.append(p["text"])
    return f"[Templat {name}]" + (" " + " | ".join(params) if params else "")
