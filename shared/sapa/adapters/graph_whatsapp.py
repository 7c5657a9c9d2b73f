"""WhatsApp Cloud API (Meta Graph API) client implementing the `WhatsApp` port."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import mimetypes
import re
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from sapa.domain.errors import PermanentError, TransientError
from sapa.log import mask
from sapa.ports import MediaContent

log = logging.getLogger(__name__)

# Meta error codes that mean "throttled or temporarily unavailable", whatever the HTTP status
# (Meta answers some rate limits with HTTP 400): API unknown/temporary, rate limits, the
# service-unavailable and pair-rate-limit codes of the Cloud API.
_TRANSIENT_META_CODES = frozenset({1, 2, 4, 17, 32, 613, 80007, 130429, 131016, 131056})
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_CHUNK = 64 * 1024


def recipient(address: str) -> dict[str, str]:
    """How the Cloud API is told who gets a message: a phone number goes in `to`; a
    business-scoped user id (a resident known by username, e.g. "US.13491208655302741918")
    goes in `recipient`, sent back exactly as Meta gave it (as pywa and Meta's BSUID guide
    do)."""
    return {"to": address} if address.lstrip("+").isdigit() else {"recipient": address}


class _BearerAuth(requests.auth.AuthBase):
    """Adds the bearer token; as a `requests` auth object it also keeps ~/.netrc out of play."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class GraphWhatsApp:
    """The `WhatsApp` port over Meta's WhatsApp Cloud API (or the local simulator).

    `base` is the versioned Graph API root, e.g. ``https://graph.facebook.com/v21.0`` or
    ``http://127.0.0.1:8080/sim/graph/v21.0``. Every call raises `TransientError` on a
    connection error, a timeout, HTTP 5xx or 429 (and on Meta's throttling error codes), and
    `PermanentError` carrying Meta's error message on any other rejection. Neither the token nor
    message contents are ever logged: only wamids, media ids and HTTP statuses.

    One `requests.Session` is shared by all calls of an instance; it is safe to use from the
    threads of one process the way SAPA does (independent requests, no shared cookies).
    """

    def __init__(
        self,
        base: str,
        token: str,
        *,
        timeout: float = 10.0,
        max_media_bytes: int = 100 * 1024 * 1024,
        media_hosts: tuple[str, ...] | None = None,
    ) -> None:
        """Prepare a client for the Graph API at `base` authenticating with `token`.

        `timeout` applies to connecting and to each read; `max_media_bytes` bounds a
        `fetch_media` download (WhatsApp's own limit for documents is 100 MB). `media_hosts`:
        the only hosts a media URL (and each redirect) may point to, a leading "." meaning any
        subdomain; None allows the API's own host only. The bearer token never goes anywhere
        else (no server-side request to an address a payload chose).
        """
        if not token:
            raise ValueError("a WhatsApp access token is required")
        self._base = base.rstrip("/")
        self._timeout = timeout
        self._max_media_bytes = max_media_bytes
        self._session = requests.Session()
        self._session.auth = _BearerAuth(token)
        self._session.max_redirects = 3
        self._session.headers["User-Agent"] = "sapa-whatsapp/1"
        api_host = urlsplit(self._base).hostname or ""
        self._media_hosts = tuple(media_hosts) if media_hosts else (api_host,)

    def __repr__(self) -> str:
        return f"GraphWhatsApp(base={self._base!r})"

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    # --- the port -------------------------------------------------------------------------

    def send_text(
        self, phone_number_id: str, to: str, body: str, *, reference: str | None = None
    ) -> str:
        """Send a free-form text from `phone_number_id` to `to`; returns the wamid."""
        return self._send(
            phone_number_id,
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                **recipient(to),
                "type": "text",
                "text": {"body": body},
            },
            reference,
        )

    def send_document(
        self,
        phone_number_id: str,
        to: str,
        data: bytes,
        filename: str,
        caption: str,
        *,
        reference: str | None = None,
    ) -> str:
        """Upload `data` as media of `phone_number_id`, then send it as a document; returns
        the wamid. A retry after a failure uploads again (media ids are cheap)."""
        mime_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        media_id = self.upload_media(phone_number_id, data, filename, mime_type)
        document: dict[str, str] = {"id": media_id, "filename": filename}
        if caption:
            document["caption"] = caption
        return self._send(
            phone_number_id,
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                **recipient(to),
                "type": "document",
                "document": document,
            },
            reference,
        )

    def send_template(
        self,
        phone_number_id: str,
        to: str,
        name: str,
        language: str,
        params: list[str],
        *,
        reference: str | None = None,
    ) -> str:
        """Send the approved template `name` in `language` with body parameters `params`."""
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if params:
            template["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
            ]
        return self._send(
            phone_number_id,
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                **recipient(to),
                "type": "template",
                "template": template,
            },
            reference,
        )

    def send_buttons(
        self,
        phone_number_id: str,
        to: str,
        body: str,
        buttons: list[tuple[str, str]],
        *,
        reference: str | None = None,
    ) -> str:
        """Send `body` with reply buttons (an interactive message of type `button`)."""
        if not 1 <= len(buttons) <= 3 or any(not t or len(t) > 20 for _, t in buttons):
            raise ValueError("WhatsApp takes one to three buttons with titles of 1-20 characters")
        return self._send(
            phone_number_id,
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                **recipient(to),
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": body},
                    "action": {
                        "buttons": [
                            {"type": "reply", "reply": {"id": i, "title": t}} for i, t in buttons
                        ]
                    },
                },
            },
            reference,
        )

    def fetch_media(self, media_id: str) -> MediaContent:
        """Resolve `media_id` to its URL and download it with the bearer token.

        The bytes are checked against the sha256 (and size) Meta reported; a mismatch is a
        corrupted download and raises `TransientError`. The returned `sha256` is hex.
        """
        meta = self._json("GET", f"{self._base}/{_segment(media_id)}")
        url = meta.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise TransientError("WhatsApp tidak memberikan alamat unduhan media.")
        data, content_type = self._download(url)
        digest = hashlib.sha256(data).digest()
        expected = meta.get("sha256")
        if isinstance(expected, str) and expected and not _sha256_matches(expected, digest):
            log.warning("whatsapp media sha256 mismatch size=%d", len(data))
            raise TransientError("Media dari WhatsApp rusak saat diunduh (sha256 tidak cocok).")
        size = meta.get("file_size")
        if isinstance(size, int) and size != len(data):
            log.warning("whatsapp media size mismatch size=%d expected=%s", len(data), size)
            raise TransientError("Media dari WhatsApp tidak lengkap saat diunduh.")
        mime_type = meta.get("mime_type")
        if not isinstance(mime_type, str) or not mime_type:
            mime_type = content_type or "application/octet-stream"
        # not the media id: 16 digits like a NIK (masked by the formatter anyway) and, with the
        # token, a key to the resident's document for days; the content's digest identifies it
        log.info("whatsapp media fetched size=%d sha256=%s", len(data), digest.hex()[:16])
        return MediaContent(data=data, mime_type=mime_type, sha256=digest.hex())

    # --- extras ---------------------------------------------------------------------------

    def upload_media(self, phone_number_id: str, data: bytes, filename: str, mime_type: str) -> str:
        """Upload `data` as media of `phone_number_id`; returns the media id."""
        answer = self._json(
            "POST",
            f"{self._base}/{_segment(phone_number_id)}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, data, mime_type)},
        )
        media_id = answer.get("id")
        if not isinstance(media_id, str | int) or not str(media_id):
            raise TransientError("Jawaban WhatsApp atas unggahan media tidak dikenali.")
        # not the media id (a key to the resident's document, 16 digits like a NIK)
        log.info("whatsapp media uploaded size=%d", len(data))
        return str(media_id)

    # --- plumbing -------------------------------------------------------------------------

    def _send(
        self, phone_number_id: str, payload: dict[str, Any], reference: str | None = None
    ) -> str:
        if reference:
            payload["biz_opaque_callback_data"] = reference[:512]  # echoed in its statuses
        answer = self._json(
            "POST", f"{self._base}/{_segment(phone_number_id)}/messages", json=payload
        )
        messages = answer.get("messages")
        wamid = None
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            wamid = messages[0].get("id")
        if not isinstance(wamid, str) or not wamid:
            raise TransientError("Jawaban WhatsApp atas pengiriman pesan tidak dikenali.")
        log.info("whatsapp message accepted wamid=%s type=%s", wamid, payload.get("type"))
        return wamid

    def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, url, allow_redirects=False, **kwargs)
        with response:
            _raise_for_status(response)
            try:
                answer = response.json()
            except ValueError:
                answer = None
        if not isinstance(answer, dict):
            raise TransientError("Jawaban WhatsApp tidak dapat dibaca.")
        return answer

    def _media_url(self, url: str) -> str | None:
        """`url` as it will be fetched, if it may carry the token: parsed with the parser
        `requests` itself uses (urllib3's), so the host checked is the host connected to; no
        backslash, user info, whitespace or control character; https (plain http only to the
        local simulator on loopback); the host one of `media_hosts`. None otherwise."""
        if not url or any(c in url for c in "\\@") or any(c.isspace() or ord(c) < 32 for c in url):
            return None
        try:
            parts = parse_url(url)
        except LocationParseError:
            return None
        host = (parts.host or "").lower().rstrip(".")
        if parts.auth or not host or parts.scheme not in ("https", "http"):
            return None
        if parts.scheme == "http" and host not in ("127.0.0.1", "localhost", "[::1]", "::1"):
            return None  # plain http only to the local simulator
        allowed = any(
            host == h.lstrip(".") or (h.startswith(".") and host.endswith(h))
            for h in (m.lower() for m in self._media_hosts)
        )
        return str(parts.url) if allowed else None

    def _download(self, url: str) -> tuple[bytes, str]:
        # Follow redirects by hand: each hop must stay on an allowed host.
        for _hop in range(4):
            checked = self._media_url(url)
            if checked is None:
                log.warning("whatsapp media url refused: host not allowed")
                raise PermanentError("Alamat media WhatsApp tidak diizinkan.")
            # the checked form is what is fetched: the token goes to no other host
            response = self._request("GET", checked, stream=True, allow_redirects=False)
            if response.is_redirect and response.headers.get("Location"):
                url = requests.compat.urljoin(url, response.headers["Location"])
                response.close()
                continue
            break
        else:
            raise PermanentError("Terlalu banyak pengalihan pada media WhatsApp.")
        with response:
            _raise_for_status(response)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.iter_content(_CHUNK):
                    size += len(chunk)
                    if size > self._max_media_bytes:
                        raise PermanentError(
                            "Media dari WhatsApp melebihi batas ukuran.",
                            limit=self._max_media_bytes,
                        )
                    chunks.append(chunk)
            except requests.RequestException as exc:
                log.warning("whatsapp media download interrupted: %s", type(exc).__name__)
                raise TransientError("Unduhan media dari WhatsApp terputus.") from exc
        return b"".join(chunks), content_type

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self._session.request(method, url, timeout=self._timeout, **kwargs)
        except requests.Timeout as exc:
            log.warning("whatsapp api timeout method=%s", method)
            raise TransientError("WhatsApp tidak menjawab tepat waktu.") from exc
        except requests.ConnectionError as exc:
            log.warning("whatsapp api unreachable method=%s", method)
            raise TransientError("WhatsApp tidak dapat dihubungi.") from exc
        except requests.RequestException as exc:
            log.warning("whatsapp api request failed: %s", type(exc).__name__)
            raise TransientError("Permintaan ke WhatsApp gagal.") from exc


def _segment(value: str) -> str:
    """`value` as one URL path segment (ids come from webhooks: never trust them as paths)."""
    if not value or value in (".", ".."):
        raise PermanentError("ID WhatsApp kosong atau tidak valid.")
    return quote(value, safe="")


def _raise_for_status(response: requests.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    error: dict[str, Any] = {}
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
    except ValueError:
        pass
    # Meta's text may echo a number or an object id (16 digits, like a NIK): masked at the
    # source, since it is logged and kept on the case as the reason a message was not sent
    meta_message = mask(str(error.get("message") or response.reason or f"HTTP {status}"))
    code = error.get("code")
    detail = {
        "http_status": status,
        "meta_code": code,
        "meta_subcode": error.get("error_subcode"),
        "meta_type": error.get("type"),
        "fbtrace_id": error.get("fbtrace_id"),
        "meta_message": meta_message,
    }
    log.warning("whatsapp api error status=%s code=%s", status, code)
    transient = (
        status >= 500
        or status in (408, 429)
        or error.get("is_transient") is True
        or (isinstance(code, int) and code in _TRANSIENT_META_CODES)
    )
    if transient:
        raise TransientError(f"WhatsApp sedang sibuk atau gangguan: {meta_message}", **detail)
    raise PermanentError(f"WhatsApp menolak permintaan: {meta_message}", **detail)


def _sha256_matches(expected: str, digest: bytes) -> bool:
    """Compare Meta's sha256 (hex from the media endpoint, base64 in some payloads)."""
    text = expected.strip()
    if _HEX_SHA256.fullmatch(text):
        return hmac.compare_digest(text.lower(), digest.hex())
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(padded)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == len(digest):
            return hmac.compare_digest(raw, digest)
    return False
