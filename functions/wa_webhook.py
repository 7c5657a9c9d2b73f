"""HTTP function: the WhatsApp Cloud API webhook (verification handshake and inbound events)."""

from __future__ import annotations

from typing import Any

import flask

from _edge import http_function, json_response, read_json, same_secret
from sapa.adapters.meta_webhook import parse_notification, verify_signature
from sapa.bootstrap import container
from sapa.services import intake


@http_function
def wa_webhook(request: flask.Request) -> Any:
    c = container()
    if request.method == "GET":
        mode = request.args.get("hub.mode", "")
        token = request.args.get("hub.verify_token", "")
        expected = c.settings.secret("wa_verify_token")
        if mode == "subscribe" and same_secret(token, expected):
            return flask.Response(request.args.get("hub.challenge", ""), 200, mimetype="text/plain")
        return flask.Response("forbidden", 403, mimetype="text/plain")
    if request.method != "POST":
        return flask.Response("method not allowed", 405)
    raw = request.get_data(cache=True)
    verify_signature(
        c.settings.secret("wa_app_secret"), raw, request.headers.get("X-Hub-Signature-256")
    )
    result = intake.receive(c, parse_notification(read_json(request)))
    return json_response({"ok": True, **result.__dict__})
