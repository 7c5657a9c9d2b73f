"""HTTP function: the public pages: behind the QR code of a signed document (/d/<id>), and the
published satisfaction index (/ikm)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import flask

from _edge import client_of, http_function, json_response, wants_json
from _render import page
from sapa.bootstrap import Container, container
from sapa.domain.errors import NotFound
from sapa.domain.texts import text
from sapa.ratelimit import limiter_secret, shared_limiter
from sapa.services import signing, skm

MAX_PDF = 20 * 1024 * 1024
_limiter = None  # the limit is counted in the CaseStore (shared by every instance)


def client_ip(request: flask.Request) -> str:
    """The client as the platform's front end saw it (see sapa.ratelimit.client_address)."""
    return client_of(container(), request)


@http_function
def verify_http(request: flask.Request) -> Any:
    c = container()
    parts = [p for p in request.path.split("/") if p]
    if parts == ["ikm"]:
        return _ikm(c, request)
    if len(parts) != 2 or parts[0] != "d":
        return page(
            "message.html", 404, title="Tidak ditemukan", message="Dokumen tidak ditemukan."
        )
    secret = limiter_secret(c.settings.secret("session_secret"))
    verdict = shared_limiter(
        c.store, "verify", c.settings.verify_rate_per_minute, secret=secret
    ).hit(client_ip(request), c.clock.now())
    if not verdict.allowed:
        message = text("rate_limited", seconds=verdict.retry_after)
        if wants_json(request):
            resp = json_response({"error": "rate_limited", "message": message}, 429)
        else:
            resp = page("message.html", 429, title="Terlalu banyak permintaan", message=message)
        resp.headers["Retry-After"] = str(verdict.retry_after)
        return resp
    presented = None
    if request.method == "POST":
        upload = request.files.get("file")
        presented = upload.read(MAX_PDF + 1) if upload else b""
    try:
        view = signing.verification(c, parts[1], presented)
    except NotFound:
        if wants_json(request):
            return json_response({"status": "not_found"}, 404)
        return page(
            "message.html",
            404,
            title="Dokumen tidak ditemukan",
            message="Dokumen dengan kode ini tidak terdaftar di SAPA.",
        )
    if wants_json(request):
        return json_response(asdict(view))
    return page("verify.html", view=view)


def _ikm(c: Container, request: flask.Request) -> flask.Response:
    """The public page of the satisfaction index: the newest period the head of office
    published, per service (PermenPANRB 14/2017 asks for the result to be made public)."""
    shown = skm.latest_published(c)
    if wants_json(request):
        return json_response(shown or {"period": None})
    resp = page("public_ikm.html", shown=shown, office=c.region.office)
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp
