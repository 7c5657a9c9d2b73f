"""HTTP function: the public page behind the QR code of a signed document."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import flask

from _edge import http_function, json_response
from _render import page
from sapa.bootstrap import container
from sapa.domain.errors import NotFound
from sapa.ratelimit import RateLimiter
from sapa.services import signing

MAX_PDF = 20 * 1024 * 1024
_limiter: RateLimiter | None = None


def client_ip(request: flask.Request) -> str:
    """The client as the platform's front end saw it: the LAST X-Forwarded-For entry (earlier
    ones are whatever the client sent); locally the socket's peer."""
    forwarded = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
    return forwarded[-1] if forwarded[-1] else (request.remote_addr or "-")


def limiter(per_minute: int) -> RateLimiter:
    global _limiter
    if _limiter is None or _limiter.limit != per_minute:
        _limiter = RateLimiter(per_minute, 60.0)
    return _limiter


@http_function
def verify_http(request: flask.Request) -> Any:
    c = container()
    parts = [p for p in request.path.split("/") if p]
    if len(parts) != 2 or parts[0] != "d":
        return page(
            "message.html", 404, title="Tidak ditemukan", message="Dokumen tidak ditemukan."
        )
    rl = limiter(c.settings.verify_rate_per_minute)
    ip = client_ip(request)
    if not rl.allow(ip):
        resp = page(
            "message.html",
            429,
            title="Terlalu banyak permintaan",
            message="Terlalu banyak pemeriksaan dari alamat Anda. Coba lagi sebentar lagi.",
        )
        resp.headers["Retry-After"] = str(rl.retry_after(ip))
        return resp
    presented = None
    if request.method == "POST":
        upload = request.files.get("file")
        presented = upload.read(MAX_PDF + 1) if upload else b""
    try:
        view = signing.verification(c, parts[1], presented)
    except NotFound:
        if "application/json" in request.headers.get("Accept", ""):
            return json_response({"status": "not_found"}, 404)
        return page(
            "message.html",
            404,
            title="Dokumen tidak ditemukan",
            message="Dokumen dengan kode ini tidak terdaftar di SAPA.",
        )
    if "application/json" in request.headers.get("Accept", ""):
        return json_response(asdict(view))
    return page("verify.html", view=view)
