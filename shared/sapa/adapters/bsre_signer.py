"""BSrE's "Esign Client Service" (installed inside the agency network) as the `Signer` port.

Two generations of the service's API are supported, chosen per installation:

* ``v1``: ``POST {base}/api/sign/pdf``, HTTP Basic auth, a multipart form (``file``, ``nik``,
  ``passphrase``, ``tampilan``, ``image``, ``linkQR``, ``page``, ``xAxis``, ``yAxis``, ``width``,
  ``height``, ``reason``, ``location``). Success is HTTP 200 with the signed PDF as the body and
  the service's document id in the ``id_dokumen`` response header.
* ``v2``: ``POST {base}/api/v2/sign/pdf``, HTTP Basic auth, a JSON body ``{"nik", "passphrase",
  "signatureProperties": [{...}], "file": ["<base64 pdf>"]}``; success is
  ``{"file": ["<base64 signed pdf>"], "time": <ms>}``.

Both answer errors with JSON ``{"status_code": <int>, "error": "<text>"}`` (some installations
use ``message`` instead of ``error``) and an HTTP 4xx/5xx status. Known codes:

* 2031: wrong passphrase; 2011: the signer's NIK is not registered (documented by BSrE).
* 2021: certificate expired; 2022: certificate revoked or suspended. ASSUMPTION: these two
  codes are not confirmed against BSrE's documentation; confirm them on the installed service
  and adjust `CERT_EXPIRED_CODE` / `CERT_REVOKED_CODE` if they differ.

Coordinates (``xAxis``/``yAxis``/``originX``/``originY``) are sent in PDF points from the
bottom-left corner of the page, with the size in ``width``/``height``; ASSUMPTION: confirm the
convention of the installed version with a test signature (some BSrE documents describe
``width``/``height`` as the upper-right corner, and v2's origin as the top-left corner).

The passphrase is a secret of the signing official: it is sent to the service and nowhere else.
It is never logged, never part of an exception (message, detail, chained cause or context) and
never stored; error texts returned by the service are scrubbed of it before use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from datetime import UTC, datetime
from io import BytesIO
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, NoReturn
from urllib.parse import urlsplit

from sapa.domain.errors import PermanentError, TransientError
from sapa.log import mask
from sapa.pdf import pdf_page_count
from sapa.ports import SignedPdf, SignRequest

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sapa.ports import Clock

log = logging.getLogger(__name__)

PASSPHRASE_REQUIRED = "Passphrase TTE wajib diisi."  # noqa: S105
WRONG_PASSPHRASE = "Passphrase TTE salah. Periksa kembali lalu coba lagi."  # noqa: S105
NIK_NOT_REGISTERED = "NIK penandatangan belum terdaftar di BSrE."
CERT_EXPIRED = (
    "Sertifikat elektronik penandatangan sudah kedaluwarsa. "
    "Perpanjang sertifikat di BSrE, lalu coba lagi."
)
CERT_REVOKED = (
    "Sertifikat elektronik penandatangan telah dicabut atau dibekukan. Hubungi admin TTE atau BSrE."
)
UNAVAILABLE = (
    "Layanan TTE BSrE sedang tidak dapat dihubungi. Penandatanganan akan dicoba lagi nanti."
)
BAD_ANSWER = (
    "Jawaban layanan TTE BSrE tidak dapat dibaca sebagai dokumen bertanda tangan. "
    "Penandatanganan akan dicoba lagi nanti."
)
ACCESS_DENIED = (
    "Aplikasi SAPA ditolak oleh layanan TTE BSrE (akun atau akses tidak sah). "
    "Hubungi admin untuk memeriksa pengaturan BSrE."
)
REDIRECTED = (
    "Alamat layanan TTE BSrE mengalihkan permintaan ke alamat lain. "
    "Hubungi admin untuk memeriksa pengaturan BSRE_BASE_URL."
)
REJECTED = "Layanan TTE BSrE menolak permintaan tanda tangan: %s"
NO_SUCH_PAGE = "Halaman %d untuk tanda tangan tidak ada; dokumen hanya memiliki %d halaman."

WRONG_PASSPHRASE_CODE = 2031
NIK_NOT_REGISTERED_CODE = 2011
CERT_EXPIRED_CODE = 2021  # assumption, see the module docstring
CERT_REVOKED_CODE = 2022  # assumption, see the module docstring

_PERMANENT_CODES: dict[int, str] = {
    WRONG_PASSPHRASE_CODE: WRONG_PASSPHRASE,
    NIK_NOT_REGISTERED_CODE: NIK_NOT_REGISTERED,
    CERT_EXPIRED_CODE: CERT_EXPIRED,
    CERT_REVOKED_CODE: CERT_REVOKED,
}

# Error texts BSrE installations are known to send (sometimes with HTTP 500 or without a code).
# Retrying a wrong passphrase must never happen (repeated failures can lock the certificate),
# so these texts are recognised even when the code is missing.
_TEXT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"passphrase.*(salah|wrong|invalid|incorrect)", re.I | re.S), WRONG_PASSPHRASE),
    (
        re.compile(r"(nik|user|pengguna).*((tidak|belum)\s+terdaftar|not\s+registered)", re.I),
        NIK_NOT_REGISTERED,
    ),
    (
        re.compile(r"(sertifikat|certificate).*(kadaluarsa|kedaluwarsa|expired)", re.I),
        CERT_EXPIRED,
    ),
    (
        re.compile(r"(sertifikat|certificate).*(dicabut|revoked|suspend|dibekukan)", re.I),
        CERT_REVOKED,
    ),
)

_DOCUMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_MAX_ERROR_TEXT = 200


class QrBox(NamedTuple):
    """Where the visible QR signature goes: a page and a rectangle in PDF points.

    `page` counts from 1; negative values count from the end (-1 = the last page, computed
    from the PDF). `x`, `y` is the lower-left corner measured from the page's bottom-left.
    The default is the bottom-right corner of an A4 page, 36 pt from the edges (where
    `sapa.pdf.simple_pdf` leaves room for a stamp).
    """

    page: int = -1
    x: float = 469.0
    y: float = 36.0
    width: float = 90.0
    height: float = 90.0


DEFAULT_QR_BOX = QrBox()


class BsreSigner:
    """The `Signer` port over BSrE's Esign Client Service (API v1 or v2).

    Every signature is visible: a QR code pointing at `SignRequest.verify_url`, placed at
    `qr_box` (by default bottom right of the last page), with the request's reason and
    location. The signing official's NIK is configured here; the passphrase comes with each
    `SignRequest` and is required.

    Errors: a missing passphrase, a wrong passphrase, an unregistered NIK, an expired or
    revoked certificate, rejected service credentials and any other refusal raise
    `PermanentError` (with an Indonesian message for people); a connection error, a timeout,
    HTTP 5xx/408/429 and an answer that is not a signed PDF raise `TransientError`.

    The service re-saves the document, so the original bytes are NOT required to be a prefix
    of the result; the result must start with ``%PDF``, parse, keep the page count and carry
    one more signature than the original. `signature_id` is the ``id_dokumen`` header (v1) or
    "bsre-" + the first 20 hex digits of sha256(signed bytes) (v2, or v1 without a usable
    header). `signed_at` is the clock's time when the answer arrived (UTC, whole seconds).

    Signing is not idempotent on BSrE's side: a retry after a timeout may sign twice there; SAPA
    keeps only the result it received. One `requests.Session` is shared by all calls.
    """

    def __init__(
        self,
        base: str,
        username: str,
        password: str,
        nik: str,
        *,
        api: Literal["v1", "v2"] = "v1",
        timeout: float = 60.0,
        qr_box: QrBox | tuple[int, float, float, float, float] = DEFAULT_QR_BOX,
        clock: Clock | None = None,
        verify_tls: bool | str = True,
    ) -> None:
        """Prepare a client for the service at `base` (e.g. ``http://10.1.2.3``).

        `username`/`password` are the service's Basic-auth credentials, `nik` the signing
        official's NIK. `timeout` (seconds) applies to connecting and to each read.
        `verify_tls` is passed to requests: False, or the path of a CA bundle for an
        installation with an internal certificate. Nothing is contacted yet.
        """
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("BSrE base URL must be an http(s) URL")
        if api not in ("v1", "v2"):
            raise ValueError("BSrE api must be 'v1' or 'v2'")
        if not username or not password:
            raise ValueError("BSrE username and password are required")
        if not nik.strip():
            raise ValueError("the signer's NIK is required")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        box = QrBox(*qr_box)
        if box.page == 0 or box.width <= 0 or box.height <= 0 or box.x < 0 or box.y < 0:
            raise ValueError("qr_box needs a page (1-based or negative) and a positive size")

        import requests

        self._base = base.rstrip("/")
        self._nik = nik.strip()
        self._api: Literal["v1", "v2"] = api
        self._timeout = timeout
        self._box = box
        self._clock = clock
        self._session = requests.Session()
        self._session.auth = requests.auth.HTTPBasicAuth(username, password)  # keeps .netrc out
        self._session.verify = verify_tls
        self._session.headers["User-Agent"] = "sapa-bsre/1"

    def __repr__(self) -> str:
        return f"BsreSigner(base={self._base!r}, api={self._api!r}, nik={mask(self._nik)!r})"

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    # --- the port -------------------------------------------------------------------------

    def sign(self, request: SignRequest) -> SignedPdf:
        """Have BSrE sign `request.pdf` with a visible QR signature; see the class docstring."""
        passphrase = request.passphrase
        if not passphrase:
            raise PermanentError(PASSPHRASE_REQUIRED, document_id=request.document_id)
        pages = pdf_page_count(request.pdf)  # PermanentError when unreadable
        page = self._box.page if self._box.page > 0 else pages + 1 + self._box.page
        if not 1 <= page <= pages:
            raise PermanentError(
                NO_SUCH_PAGE % (page, pages), document_id=request.document_id, page=page
            )
        signatures_before = _signature_count(request.pdf)
        log.info(
            "bsre sign request document %s: api %s, page %d of %d, %d bytes",
            request.document_id,
            self._api,
            page,
            pages,
            len(request.pdf),
        )
        if self._api == "v1":
            signed, header_id = self._sign_v1(request, passphrase, page)
        else:
            signed, header_id = self._sign_v2(request, passphrase, page), None
        at = self._now()
        _check_signed(signed, pages, signatures_before, request.document_id)

        if header_id is not None and _DOCUMENT_ID.fullmatch(header_id):
            signature_id = header_id
        else:
            if self._api == "v1":
                log.warning(
                    "bsre answer for document %s has no usable id_dokumen header",
                    request.document_id,
                )
            signature_id = "bsre-" + hashlib.sha256(signed).hexdigest()[:20]
        log.info(
            "bsre signed document %s: %d -> %d bytes, signature %s",
            request.document_id,
            len(request.pdf),
            len(signed),
            signature_id,
        )
        return SignedPdf(pdf=signed, signature_id=signature_id, signed_at=at)

    # --- extras ---------------------------------------------------------------------------

    def verify(self, pdf: bytes) -> dict[str, Any]:
        """Best effort: BSrE's own verification report of a signed PDF (v1 endpoint
        ``POST /api/sign/verify``, multipart ``signed_file``), as the JSON object it returns
        (e.g. ``summary``, ``jumlah_signature``, ``details``). Errors map as for `sign`."""
        status, _, body = self._post(
            "/api/sign/verify",
            secret=None,
            files={"signed_file": ("dokumen.pdf", pdf, "application/pdf")},
        )
        if status != 200:
            _raise_for_answer(status, body, secret=None)
        answer = _json_object(body)
        if answer is None:
            raise TransientError(BAD_ANSWER, http_status=status)
        return answer

    # --- plumbing -------------------------------------------------------------------------

    def _sign_v1(
        self, request: SignRequest, passphrase: str, page: int
    ) -> tuple[bytes, str | None]:
        box = self._box
        fields = {
            "nik": self._nik,
            "passphrase": passphrase,
            "tampilan": "visible",
            "image": "false",
            "linkQR": request.verify_url,
            "page": str(page),
            "xAxis": _number(box.x),
            "yAxis": _number(box.y),
            "width": _number(box.width),
            "height": _number(box.height),
        }
        if request.reason:
            fields["reason"] = request.reason
        if request.location:
            fields["location"] = request.location
        filename = _filename(request.document_id)
        status, headers, body = self._post(
            "/api/sign/pdf",
            secret=passphrase,
            data=fields,
            files={"file": (filename, request.pdf, "application/pdf")},
        )
        if status != 200 or not body.startswith(b"%PDF"):
            _raise_for_answer(status, body, secret=passphrase)
        return body, headers.get("id_dokumen")

    def _sign_v2(self, request: SignRequest, passphrase: str, page: int) -> bytes:
        box = self._box
        properties: dict[str, Any] = {
            "tampilan": "VISIBLE",
            "linkQR": request.verify_url,
            "page": page,
            "originX": box.x,
            "originY": box.y,
            "width": box.width,
            "height": box.height,
        }
        if request.reason:
            properties["reason"] = request.reason
        if request.location:
            properties["location"] = request.location
        payload = {
            "nik": self._nik,
            "passphrase": passphrase,
            "signatureProperties": [properties],
            "file": [base64.b64encode(request.pdf).decode("ascii")],
        }
        status, _, body = self._post("/api/v2/sign/pdf", secret=passphrase, json=payload)
        answer = _json_object(body) if status == 200 else None
        files = answer.get("file") if answer is not None else None
        if not (isinstance(files, list) and files and isinstance(files[0], str)):
            _raise_for_answer(status, body, secret=passphrase)
        try:
            return base64.b64decode("".join(files[0].split()), validate=True)
        except (binascii.Error, ValueError):
            log.warning("bsre v2 answer for document %s is not base64", request.document_id)
            raise TransientError(BAD_ANSWER, http_status=status) from None

    def _post(
        self, path: str, *, secret: str | None, **kwargs: Any
    ) -> tuple[int, Mapping[str, str], bytes]:
        """POST to the service; (status, headers, body). Connection errors and timeouts raise
        `TransientError` WITHOUT the requests exception chained: it holds the prepared request,
        whose body carries the passphrase."""
        import requests

        failure = ""
        try:
            response = self._session.post(
                self._base + path, timeout=self._timeout, allow_redirects=False, **kwargs
            )
            with response:
                body = response.content
        except requests.Timeout:
            failure = "timeout"
        except requests.ConnectionError:
            failure = "connection error"
        except requests.RequestException as exc:
            failure = type(exc).__name__
        if failure:  # raised outside the except blocks: no __context__ either
            log.warning("bsre %s failed: %s", path, failure)
            raise TransientError(UNAVAILABLE, reason=failure)
        if 300 <= response.status_code < 400:
            log.warning("bsre %s redirected: HTTP %d", path, response.status_code)
            raise PermanentError(REDIRECTED, http_status=response.status_code)
        return response.status_code, response.headers, body

    def _now(self) -> datetime:
        now = self._clock.now() if self._clock is not None else datetime.now(UTC)
        return now.astimezone(UTC).replace(microsecond=0)


def _raise_for_answer(status: int, body: bytes, *, secret: str | None) -> NoReturn:
    """Map an error answer (or a 200 that is not what was asked for) to an error."""
    code, text = _error_fields(body)
    text = _scrub(text, secret)
    detail = {"http_status": status, "bsre_code": code, "bsre_error": text}
    message = _PERMANENT_CODES.get(code) if code is not None else None
    if message is None and text:
        message = next((m for pattern, m in _TEXT_RULES if pattern.search(text)), None)
    if message is not None:
        log.warning("bsre refused to sign: HTTP %d, code %s", status, code)
        raise PermanentError(message, **detail)
    if status in (401, 403):
        log.warning("bsre rejected the client credentials: HTTP %d", status)
        raise PermanentError(ACCESS_DENIED, **detail)
    if status >= 500 or status in (408, 429):
        log.warning("bsre unavailable: HTTP %d, code %s", status, code)
        raise TransientError(UNAVAILABLE, **detail)
    if 200 <= status < 300:
        log.warning("bsre answered HTTP %d without a signed PDF", status)
        raise TransientError(BAD_ANSWER, **detail)
    log.warning("bsre refused to sign: HTTP %d, code %s", status, code)
    raise PermanentError(REJECTED % (text or f"HTTP {status}"), **detail)


def _error_fields(body: bytes) -> tuple[int | None, str]:
    """BSrE's error code and text from a JSON error body (``status_code``/``error``, or the
    ``code``/``message`` some installations use)."""
    answer = _json_object(body)
    if answer is None:
        return None, ""
    raw_code = answer.get("status_code", answer.get("code"))
    code: int | None = None
    if isinstance(raw_code, int) and not isinstance(raw_code, bool):
        code = raw_code
    elif isinstance(raw_code, str) and raw_code.strip().isdigit():
        code = int(raw_code.strip())
    raw_text = answer.get("error") or answer.get("message") or ""
    text = raw_text if isinstance(raw_text, str) else json.dumps(raw_text, ensure_ascii=False)
    return code, " ".join(text.split())[:_MAX_ERROR_TEXT]


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return answer if isinstance(answer, dict) else None


def _scrub(text: str, secret: str | None) -> str:
    """`text` from the service without the passphrase (should it ever be echoed) or a NIK."""
    if secret and secret in text:
        text = text.replace(secret, "***")
    return mask(text)


def _check_signed(signed: bytes, pages: int, signatures_before: int, document_id: str) -> None:
    """The answer must be a readable PDF with the same pages and one more signature."""
    problem = ""
    if not signed.startswith(b"%PDF"):
        problem = "not a PDF"
    else:
        try:
            if pdf_page_count(signed) != pages:
                problem = "page count changed"
        except PermanentError:
            problem = "unreadable PDF"
    if not problem and _signature_count(signed) <= signatures_before:
        problem = "no new signature"
    if problem:
        log.warning("bsre answer for document %s rejected: %s", document_id, problem)
        raise TransientError(BAD_ANSWER, document_id=document_id, reason=problem)


def _signature_count(pdf: bytes) -> int:
    """How many signatures a PDF carries (0 when pyHanko cannot list them)."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        return len(PdfFileReader(BytesIO(pdf), strict=False).embedded_signatures)
    except Exception:
        return 0


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _filename(document_id: str) -> str:
    """A harmless upload file name derived from the document id."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", document_id).strip("-.")[:80]
    return f"{stem or 'dokumen'}.pdf"
