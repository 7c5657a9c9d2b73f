"""HTTP function: an asynchronous signer hands back the signed document (HMAC-authenticated)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Any

import flask

from _edge import http_function, json_response, read_json, same_secret
from sapa.bootstrap import container
from sapa.domain.case import Actor
from sapa.domain.errors import PermanentError, Unauthorized
from sapa.domain.texts import text
from sapa.services import signing


@http_function
def esign_callback(request: flask.Request) -> Any:
    """Body: {"case_id", "document_id", "signature_id", "signed_at", "pdf_base64", "actor"};
    header X-Sapa-Signature: sha256=<hex HMAC-SHA256(ESIGN_CALLBACK_SECRET, raw body)>."""
    c = container()
    raw = request.get_data(cache=True)
    sent = request.headers.get("X-Sapa-Signature", "")
    expected = (
        "sha256="
        + hmac.new(
            c.settings.secret("esign_callback_secret").encode(), raw, hashlib.sha256
        ).hexdigest()
    )
    if not same_secret(sent, expected):
        raise Unauthorized(text("bad_signature"))
    body = read_json(request)
    try:
        pdf = base64.b64decode(body["pdf_base64"], validate=True)
        accepted = signing.complete_signature(
            c,
            str(body["case_id"]),
            str(body["document_id"]),
            pdf,
            str(body["signature_id"]),
            datetime.fromisoformat(str(body["signed_at"])),
            Actor.model_validate(body["actor"]),
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise PermanentError("callback body incomplete", error=type(exc).__name__) from None
    return json_response({"accepted": accepted})
