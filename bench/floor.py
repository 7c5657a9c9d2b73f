"""The FLOOR of the webhook benchmark: a bare HTTP function that only checks Meta's signature.

`X-Hub-Signature-256: sha256=<hex>` is an HMAC-SHA256 over the raw body with the app secret;
every WhatsApp webhook must at least read the body and check it. Nothing else happens here: no
JSON parsing, no storage. It is served exactly like the real function (functions-framework's
Flask wrapping, waitress, the same thread count), so SUT/floor is what SAPA adds on top.

Also deployable on its own: `functions-framework --source bench/floor.py --target floor` with
WA_APP_SECRET in the environment.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import flask

_secret: bytes | None = None


def configure(app_secret: str) -> None:
    """Use `app_secret` (the SUT's `wa_app_secret`) instead of WA_APP_SECRET."""
    global _secret
    _secret = app_secret.encode()


def floor(request: flask.Request) -> flask.Response:
    secret = _secret if _secret is not None else os.environ.get("WA_APP_SECRET", "").encode()
    raw = request.get_data(cache=True)
    header = request.headers.get("X-Hub-Signature-256", "")
    expected = hmac.new(secret, raw, hashlib.sha256).hexdigest().encode()
    sent = header.removeprefix("sha256=").strip().lower().encode("utf-8", "replace")
    if not secret or not header.startswith("sha256=") or not hmac.compare_digest(expected, sent):
        return flask.Response("bad signature", 401, mimetype="text/plain")
    return flask.Response('{"ok": true}', 200, mimetype="application/json")
