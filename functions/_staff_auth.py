"""Who the officer is: Identity-Aware Proxy's signed header in the cloud, a dev login locally."""

from __future__ import annotations

import secrets
from typing import Any

import flask
from itsdangerous import BadSignature, URLSafeTimedSerializer

from _edge import same_secret
from sapa.bootstrap import Container
from sapa.domain.errors import Forbidden, Unauthorized
from sapa.domain.texts import text
from sapa.ports import StaffMember

COOKIE = "sapa_staff"
SESSION_SECONDS = 8 * 3600
IAP_HEADER = "x-goog-iap-jwt-assertion"
IAP_ISSUER = "https://cloud.google.com/iap"


def _serializer(c: Container, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(c.settings.secret("session_secret"), salt=salt)


def uses_iap(c: Container) -> bool:
    return bool(c.settings.iap_audience)


def verify_iap(c: Container, assertion: str | None) -> str:
    """The email in IAP's JWT after checking its ES256 signature against IAP's public keys,
    its audience (this backend), issuer and expiry (google-auth does the work)."""
    if not assertion:
        raise Unauthorized(text("not_logged_in"))
    from google.auth import exceptions as gexc
    from google.auth.transport import requests as greq
    from google.oauth2 import id_token

    try:
        claims: dict[str, Any] = id_token.verify_token(
            assertion,
            greq.Request(),
            audience=c.settings.iap_audience,
            certs_url=c.settings.iap_certs_url,
        )
    except (ValueError, gexc.GoogleAuthError):
        raise Unauthorized(text("not_logged_in")) from None
    if claims.get("iss") != IAP_ISSUER or not claims.get("email"):
        raise Unauthorized(text("not_logged_in"))
    return str(claims["email"]).removeprefix("accounts.google.com:")


def identify(c: Container, request: flask.Request) -> StaffMember:
    """The officer making this request, or Unauthorized. Unknown emails are Forbidden."""
    if uses_iap(c):
        email = verify_iap(c, request.headers.get(IAP_HEADER))
    else:
        if not c.settings.dev_login:
            raise Unauthorized(text("not_logged_in"))
        try:
            data = _serializer(c, "sapa.staff").loads(
                request.cookies.get(COOKIE, ""), max_age=SESSION_SECONDS
            )
        except BadSignature:
            raise Unauthorized(text("not_logged_in")) from None
        email = str(data.get("email", "")) if isinstance(data, dict) else ""
        sid = str(data.get("sid", "")) if isinstance(data, dict) else ""
        # a session ended by logout stays ended, whoever kept its cookie
        if not sid or c.store.get_key(_revoked(sid)) is not None:
            raise Unauthorized(text("not_logged_in"))
        flask.g.staff_session = sid
    staff = c.staff.get(email)
    if staff is None:
        raise Forbidden(text("forbidden_role"))
    return staff


def _revoked(sid: str) -> str:
    return f"staff-session-revoked-{sid}"


def session_cookie(c: Container, staff: StaffMember) -> str:
    """A new session (dev login): the officer and a random session id, signed."""
    sid = secrets.token_urlsafe(18)
    return _serializer(c, "sapa.staff").dumps({"email": staff.email, "sid": sid})


def end_session(c: Container) -> None:
    """Logout: the session id is recorded as revoked in the store (shared by every instance),
    so its cookie and its CSRF tokens stop working at once, not when they expire. Behind IAP
    there is no session of ours to end (IAP's own logout applies)."""
    sid = str(flask.g.get("staff_session") or "")
    if sid:
        c.store.claim_key(_revoked(sid), value={"ended": True})


def csrf_token(c: Container, staff: StaffMember) -> str:
    """A token bound to the officer and signed, valid for a working day (forms carry it). It
    acts only with a live session: after logout the session's cookie is refused first."""
    return _serializer(c, "sapa.csrf").dumps(staff.email)


def check_csrf(c: Container, request: flask.Request, staff: StaffMember) -> None:
    sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
    try:
        email = _serializer(c, "sapa.csrf").loads(sent, max_age=SESSION_SECONDS)
    except BadSignature:
        raise Forbidden(text("csrf")) from None
    if not same_secret(str(email), staff.email):
        raise Forbidden(text("csrf"))
