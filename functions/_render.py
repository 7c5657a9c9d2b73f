"""Server-rendered pages: one Jinja environment (autoescaped), security headers on every page."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import flask
import jinja2

# No 'unsafe-inline': the one inline <style> and <script> of a page carry a nonce made for that
# response (`page`), and no element has a style attribute. Anything injected runs nowhere.
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'{nonce}; "
    "script-src 'self'{nonce}; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env


def secure(resp: flask.Response, nonce: str = "") -> flask.Response:
    resp.headers["Content-Security-Policy"] = _CSP.format(
        nonce=f" 'nonce-{nonce}'" if nonce else ""
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def page(template: str, status: int = 200, **context: Any) -> flask.Response:
    nonce = secrets.token_urlsafe(16)
    html = _env().get_template(template).render(csp_nonce=nonce, **context)
    return secure(flask.Response(html, status=status, mimetype="text/html"), nonce)


def local_time(timezone: str) -> Callable[[Any], str]:
    """The pages' `local_time`: a stored time (ISO text or datetime) in the office's time
    zone, "-" when there is none."""
    zone = ZoneInfo(timezone)

    def fmt(value: Any) -> str:
        if not value:
            return "-"
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        return str(when.astimezone(zone).strftime("%d-%m-%Y %H:%M:%S"))

    return fmt
