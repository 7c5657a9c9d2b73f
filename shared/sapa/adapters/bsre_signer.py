"""BSrE's "Esign Client Service" (installed inside the agency network) as the `Signer` port.

Written from BSrE's "Petunjuk Teknis Penggunaan API Esign Client Service" v2.0 (January 2024)
and from what its public clients show (kiiskominfokepri/esign-ts, pemkotbekasi/node-esign-BSrE,
Diskominfotik-Banda-Aceh/E-Sign-BSrE-PHP, dptsi/laravel-esign-bsre, pinyink/esign-bsre). Two
generations of the API, chosen per installation; HTTP Basic auth on both:

* ``v1``: ``POST {base}/api/sign/pdf``, multipart (``file``, ``nik``, ``passphrase``,
  ``tampilan=visible``, ``image=false`` + ``linkQR``: BSrE draws the QR, ``page``, ``xAxis``,
  ``yAxis``, ``width``, ``height``, ``reason``, ``location``, ``jenis_response``). The box is
  measured from the page's bottom-left corner; whether ``width``/``height`` are the box's size
  (the guide's text, every client) or its upper-right corner (the guide's figure) is the
  setting ``v1_box`` ("size" | "corners"), settled with one test signature (README). The
  answer is the signed PDF with an ``id_dokumen`` header, or, for ``jenis_response=BASE64``,
  JSON with the PDF in ``base64_signed_file`` or only an ``id_dokumen`` whose PDF is fetched
  once from ``GET /api/sign/download/{id}`` (a second download is refused: SAPA downloads
  once and never signs again for it; see `SignRequest.pending_id`). Errors: JSON
  ``{"status_code": N, "error": "..."}`` (2031 wrong passphrase, 2011 not registered).
  User status: ``GET /api/user/status/{nik}`` (``status``: ISSUE, NOT_REGISTERED, ...).
  Verification: ``POST /api/sign/verify`` (multipart ``signed_file``).
* ``v2``: ``POST {base}/api/v2/sign/pdf``, JSON ``{"nik", "passphrase", "signatureProperties":
  [{"tampilan": "VISIBLE", "imageBase64", "page", "originX", "originY", "width", "height",
  "reason", "location"}], "file": ["<base64>"]}`` → ``{"file": ["<base64>"], "time": ms}``.
  v2 has no ``linkQR``: the QR code of the verification URL is drawn here and sent as
  ``imageBase64``. Its origin is the page's TOP-left corner, (originX, originY) the box's
  top-left corner: computed from the chosen page's real height. Errors look like Spring's
  (``timestamp``, ``status``, ``error``: "Internal Server Error", ``message``: the reason),
  often with HTTP 500. User status: ``POST /api/v2/user/check/status`` ``{"nik"}``;
  verification: ``POST /api/v2/verify/pdf`` ``{"file"}``.

Only a certificate in status ISSUE can sign: the status is asked before every signature and
after a refusal SAPA cannot read, and any other status is a permanent, plainly worded refusal.

A wrong passphrase is never retried, whatever shape it comes in (a code, the text in
``error`` or ``message``, any HTTP status): repeated attempts can lock the head of office's
certificate. Every refusal carries ``reason`` in its detail (`REASONS`) so that the signing
service can count passphrase failures and retry an unrecognised answer at most once.

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
from urllib.parse import quote, urlsplit

from sapa.adapters.pdf import pdf_page_count
from sapa.domain.errors import PermanentError, TransientError
from sapa.log import mask
from sapa.ports import SignedPdf, SignRequest

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sapa.ports import Clock

log = logging.getLogger(__name__)

PASSPHRASE_REQUIRED = "Passphrase TTE wajib diisi."  # noqa: S105
WRONG_PASSPHRASE = (
    "Passphrase TTE salah."  # noqa: S105
    " Periksa kembali sebelum mencoba lagi: salah berulang kali dapat "
    "mengunci sertifikat elektronik Anda di BSrE."
)
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
    "Penandatanganan dicoba sekali lagi."
)
UNRECOGNISED = "Layanan TTE BSrE menolak dengan alasan yang tidak dikenal SAPA: %s"
ACCESS_DENIED = (
    "Aplikasi SAPA ditolak oleh layanan TTE BSrE (akun atau akses tidak sah). "
    "Hubungi admin untuk memeriksa pengaturan BSrE."
)
REDIRECTED = (
    "Alamat layanan TTE BSrE mengalihkan permintaan ke alamat lain. "
    "Hubungi admin untuk memeriksa pengaturan BSRE_BASE_URL."
)
DOWNLOAD_PENDING = (
    "Dokumen sudah ditandatangani BSrE tetapi belum dapat diunduh. Pengunduhan dicoba lagi "
    "(tanpa menandatangani ulang)."
)
DOWNLOAD_GONE = (
    "Dokumen sudah ditandatangani BSrE tetapi tidak dapat diunduh lagi (BSrE hanya melayani satu "
    "kali unduh). Hubungi admin TTE sebelum meminta tanda tangan ulang."
)
NO_SUCH_PAGE = "Halaman %d untuk tanda tangan tidak ada; dokumen hanya memiliki %d halaman."

# What the certificate statuses of BSrE's user check mean for the head of office. Only ISSUE
# may sign (the guide: "Hanya pengguna dengan status ISSUE saja yang dapat melakukan Tanda
# Tangan").
ISSUE = "ISSUE"
STATUS_MESSAGES: dict[str, str] = {
    "EXPIRED": CERT_EXPIRED,
    "RENEW": (
        "Sertifikat elektronik penandatangan sedang dalam proses perpanjangan di BSrE. "
        "Tanda tangan dapat dilakukan setelah sertifikat terbit kembali."
    ),
    "WAITING_FOR_VERIFICATION": (
        "Pendaftaran sertifikat elektronik penandatangan masih menunggu verifikasi BSrE."
    ),
    "NEW": "Sertifikat elektronik penandatangan belum diterbitkan BSrE (status NEW).",
    "NO_CERTIFICATE": "Penandatangan belum memiliki sertifikat elektronik di BSrE.",
    "NOT_REGISTERED": NIK_NOT_REGISTERED,
    "SUSPEND": CERT_REVOKED,
    "REVOKE": CERT_REVOKED,
}
UNKNOWN_STATUS = "Status sertifikat elektronik penandatangan di BSrE tidak dapat dipakai: %s"

# `detail["reason"]` of every refusal, for the signing service.
REASONS = (
    "passphrase_required",
    "wrong_passphrase",
    "not_registered",
    "certificate_status",
    "access_denied",
    "redirected",
    "unavailable",
    "unrecognised",
    "pending_download",
    "download_gone",
    "no_such_page",
)

WRONG_PASSPHRASE_CODE = 2031
NIK_NOT_REGISTERED_CODE = 2011

# Texts BSrE installations send (sometimes with HTTP 500 or without a code), read from every
# text field of an error body. A wrong passphrase must be recognised in any shape.
_TEXT_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(
            r"passphrase.*(salah|wrong|invalid|incorrect|tidak (valid|sesuai))", re.I | re.S
        ),
        WRONG_PASSPHRASE,
        "wrong_passphrase",
    ),
    (
        re.compile(
            r"(nik|user|pengguna|penandatangan).*((tidak|belum)\s+terdaftar|not\s+registered)", re.I
        ),
        NIK_NOT_REGISTERED,
        "not_registered",
    ),
    (
        re.compile(r"(sertifikat|certificate).*(kadaluarsa|kedaluwarsa|expired)", re.I),
        CERT_EXPIRED,
        "certificate_status",
    ),
    (
        re.compile(r"(sertifikat|certificate).*(dicabut|revoked?|suspend|dibekukan)", re.I),
        CERT_REVOKED,
        "certificate_status",
    ),
)
_CODES: dict[int, tuple[str, str]] = {
    WRONG_PASSPHRASE_CODE: (WRONG_PASSPHRASE, "wrong_passphrase"),
    NIK_NOT_REGISTERED_CODE: (NIK_NOT_REGISTERED, "not_registered"),
}
# Answers that say "busy or down", not "no": retried as the queue retries.
_UNAVAILABLE_STATUSES = frozenset({408, 429, 502, 503, 504})
_GENERIC_TEXTS = frozenset({"", "internal server error", "service unavailable", "bad gateway"})
_DOCUMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_MAX_ERROR_TEXT = 200


class QrBox(NamedTuple):
    """Where the visible QR signature goes: a page and a rectangle in PDF points.

    `page` counts from 1; negative values count from the end (-1 = the last page, computed
    from the PDF). `x`, `y` is the lower-left corner measured from the page's bottom-left (the
    adapter converts for v2's top-left origin). The default is the bottom-right corner of an
    A4 page, 36 pt from the edges (where `sapa.adapters.pdf.simple_pdf` leaves room for a stamp).
    """

    page: int = -1
    x: float = 469.0
    y: float = 36.0
    width: float = 90.0
    height: float = 90.0


DEFAULT_QR_BOX = QrBox()


class BsreSigner:
    """The `Signer` port over BSrE's Esign Client Service (API v1 or v2); see the module.

    Every signature is visible: a QR code pointing at `SignRequest.verify_url`, placed at
    `qr_box` (by default bottom right of the last page), with the request's reason and
    location. The signing official's NIK is configured here; the passphrase comes with each
    `SignRequest` and is required.

    Errors carry ``reason`` (see `REASONS`): `PermanentError` for a missing or wrong
    passphrase, an unregistered NIK, a certificate not in status ISSUE, rejected service
    credentials, a redirect and a document BSrE signed but will not hand out again;
    `TransientError` for a connection error, a timeout, HTTP 408/429/502/503/504 or a bare
    500 (``unavailable``), a download that failed after BSrE signed (``pending_download``,
    with ``pending_id``: pass it back as `SignRequest.pending_id`, nothing is signed again),
    and a refusal or answer SAPA cannot read (``unrecognised``, with the scrubbed
    ``bsre_error``: the signing service retries it once at most).

    The service re-saves the document, so the original bytes are NOT required to be a prefix
    of the result; the result must start with ``%PDF``, parse, keep the page count and carry
    one more signature than the original. `signature_id` is BSrE's ``id_dokumen`` when it gave
    one, else "bsre-" + the first 20 hex digits of sha256(signed bytes). `signed_at` is the
    clock's time when the answer arrived (UTC, whole seconds).
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
        connect_timeout: float = 10.0,
        qr_box: QrBox | tuple[int, float, float, float, float] = DEFAULT_QR_BOX,
        v1_box: Literal["size", "corners"] = "size",
        v1_response: Literal["BASE64", "BYTE"] = "BASE64",
        clock: Clock | None = None,
        verify_tls: bool | str = True,
    ) -> None:
        """Prepare a client for the service at `base` (e.g. ``http://10.1.2.3``).

        `username`/`password` are the service's Basic-auth credentials, `nik` the signing
        official's NIK. `connect_timeout` bounds connecting, `timeout` each read (signing a
        long document or verifying one with many signatures takes tens of seconds).
        `v1_box`: how v1 reads ``width``/``height`` (see the module). `v1_response`: the
        ``jenis_response`` sent on v1. `verify_tls` is passed to requests: False, or the path
        of a CA bundle for an installation with an internal certificate. Nothing is
        contacted yet.
        """
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("BSrE base URL must be an http(s) URL")
        if api not in ("v1", "v2"):
            raise ValueError("BSrE api must be 'v1' or 'v2'")
        if v1_box not in ("size", "corners"):
            raise ValueError("BSrE v1_box must be 'size' or 'corners'")
        if v1_response not in ("BASE64", "BYTE"):
            raise ValueError("BSrE v1_response must be 'BASE64' or 'BYTE'")
        if not username or not password:
            raise ValueError("BSrE username and password are required")
        if not nik.strip():
            raise ValueError("the signer's NIK is required")
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        box = QrBox(*qr_box)
        if box.page == 0 or box.width <= 0 or box.height <= 0 or box.x < 0 or box.y < 0:
            raise ValueError("qr_box needs a page (1-based or negative) and a positive size")

        import requests

        self._base = base.rstrip("/")
        self._nik = nik.strip()
        self._api: Literal["v1", "v2"] = api
        self._timeout = (connect_timeout, timeout)
        self._box = box
        self._v1_box = v1_box
        self._v1_response = v1_response
        self._clock = clock
        self._session = requests.Session()
        self._session.auth = requests.auth.HTTPBasicAuth(username, password)  # keeps .netrc out
        self._session.verify = verify_tls
        self._session.headers["User-Agent"] = "sapa-bsre/2"

    def __repr__(self) -> str:
        return f"BsreSigner(base={self._base!r}, api={self._api!r}, nik={mask(self._nik)!r})"

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    # --- the port -------------------------------------------------------------------------

    def sign(self, request: SignRequest) -> SignedPdf:
        """Have BSrE sign `request.pdf` with a visible QR signature; see the class docstring.
        With `request.pending_id`, BSrE already signed it: only its download is fetched."""
        passphrase = request.passphrase
        if not passphrase and not request.pending_id:
            raise PermanentError(
                PASSPHRASE_REQUIRED, document_id=request.document_id, reason="passphrase_required"
            )
        pages = pdf_page_count(request.pdf)  # PermanentError when unreadable
        page = self._box.page if self._box.page > 0 else pages + 1 + self._box.page
        if not 1 <= page <= pages:
            raise PermanentError(
                NO_SUCH_PAGE % (page, pages),
                document_id=request.document_id,
                page=page,
                reason="no_such_page",
            )
        signatures_before = _signature_count(request.pdf)
        header_id: str | None
        if request.pending_id:
            signed, header_id = self._download(request.pending_id), request.pending_id
        else:
            assert passphrase is not None
            self._require_issue()
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

    def user_status(self) -> str:
        """The certificate status of the configured NIK as BSrE reports it (ISSUE, EXPIRED,
        RENEW, WAITING_FOR_VERIFICATION, NEW, NO_CERTIFICATE, NOT_REGISTERED, SUSPEND,
        REVOKE), or "" when this installation has no such endpoint."""
        if self._api == "v1":
            status, _, body = self._call(
                "GET", f"/api/user/status/{quote(self._nik, safe='')}", secret=None
            )
        else:
            status, _, body = self._call(
                "POST", "/api/v2/user/check/status", secret=None, json={"nik": self._nik}
            )
        if status in (404, 405):
            log.warning("bsre has no user status endpoint (HTTP %d)", status)
            return ""
        answer = _json_object(body) if status == 200 else None
        found = answer.get("status") if answer is not None else None
        if not isinstance(found, str) or not found.strip():
            _raise_for_answer(status, body, secret=None)
        return found.strip().upper()

    def verify(self, pdf: bytes) -> dict[str, Any]:
        """BSrE's own verification report of a signed PDF as the JSON object it returns (v1:
        ``jumlah_signature``, ``details``, ``summary``; v2: ``conclusion``,
        ``signatureInformations``, ``signatureCount``), plus ``signature_count`` read from
        either shape. Errors map as for `sign`."""
        if self._api == "v1":
            status, _, body = self._call(
                "POST",
                "/api/sign/verify",
                secret=None,
                files={"signed_file": ("dokumen.pdf", pdf, "application/pdf")},
            )
        else:
            status, _, body = self._call(
                "POST",
                "/api/v2/verify/pdf",
                secret=None,
                json={"file": base64.b64encode(pdf).decode("ascii")},
            )
        answer = _json_object(body) if status == 200 else None
        if answer is None:
            _raise_for_answer(status, body, secret=None)
        count = answer.get("jumlah_signature", answer.get("signatureCount"))
        if not isinstance(count, int) or isinstance(count, bool):
            found = answer.get("details", answer.get("signatureInformations"))
            count = len(found) if isinstance(found, list) else 0
        return {**answer, "signature_count": count}

    # --- plumbing -------------------------------------------------------------------------

    def _require_issue(self) -> None:
        """Only a certificate in status ISSUE signs: anything else is refused before the
        passphrase is ever sent."""
        status = self.user_status()
        if status and status != ISSUE:
            log.warning("bsre certificate status %s: not signing", status)
            raise PermanentError(
                STATUS_MESSAGES.get(status, UNKNOWN_STATUS % status[:40]),
                bsre_status=status,
                reason="not_registered" if status == "NOT_REGISTERED" else "certificate_status",
            )

    def _sign_v1(
        self, request: SignRequest, passphrase: str, page: int
    ) -> tuple[bytes, str | None]:
        box = self._box
        right, top = box.width, box.height
        if self._v1_box == "corners":
            right, top = box.x + box.width, box.y + box.height
        fields = {
            "nik": self._nik,
            "passphrase": passphrase,
            "tampilan": "visible",
            "image": "false",
            "linkQR": request.verify_url,
            "page": str(page),
            "xAxis": _number(box.x),
            "yAxis": _number(box.y),
            "width": _number(right),
            "height": _number(top),
            "jenis_response": self._v1_response,
        }
        if request.reason:
            fields["reason"] = request.reason
        if request.location:
            fields["location"] = request.location
        status, headers, body = self._call(
            "POST",
            "/api/sign/pdf",
            secret=passphrase,
            data=fields,
            files={"file": (_filename(request.document_id), request.pdf, "application/pdf")},
        )
        if status == 200 and body.startswith(b"%PDF"):
            return body, _header(headers, "id_dokumen")
        answer = _json_object(body) if status == 200 else None
        if answer is None:
            self._refused(status, body, passphrase)
        document_id = answer.get("id_dokumen")
        document_id = str(document_id) if isinstance(document_id, str | int) else None
        inline = answer.get("base64_signed_file") or answer.get("file")
        if isinstance(inline, list) and inline:
            inline = inline[0]
        if isinstance(inline, str) and inline:
            return _b64(inline, request.document_id), document_id
        if document_id and _DOCUMENT_ID.fullmatch(document_id):
            # BSrE signed; the PDF waits for one download. From here on nothing may sign
            # again: a failed download is retried as a download (`pending_id`).
            log.info("bsre signed document %s as %s: downloading", request.document_id, document_id)
            return self._download(document_id), document_id
        self._refused(status, body, passphrase)

    def _sign_v2(self, request: SignRequest, passphrase: str, page: int) -> bytes:
        box = self._box
        height = _page_height(request.pdf, page)
        properties: dict[str, Any] = {
            "tampilan": "VISIBLE",
            "imageBase64": base64.b64encode(qr_png(request.verify_url)).decode("ascii"),
            "page": page,
            # v2 measures from the page's top-left corner, to the box's top-left corner
            "originX": box.x,
            "originY": round(height - box.y - box.height, 2),
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
        status, _, body = self._call("POST", "/api/v2/sign/pdf", secret=passphrase, json=payload)
        answer = _json_object(body) if status == 200 else None
        files = answer.get("file") if answer is not None else None
        if not (isinstance(files, list) and files and isinstance(files[0], str)):
            self._refused(status, body, passphrase)
        return _b64(files[0], request.document_id)

    def _download(self, document_id: str) -> bytes:
        """The signed PDF BSrE keeps for one download (v1, ``jenis_response=BASE64``)."""
        try:
            status, _, body = self._call(
                "GET", f"/api/sign/download/{quote(document_id, safe='')}", secret=None
            )
        except TransientError:
            raise TransientError(
                DOWNLOAD_PENDING, pending_id=document_id, reason="pending_download"
            ) from None
        if status == 200 and body.startswith(b"%PDF"):
            return body
        answer = _json_object(body) if status == 200 else None
        inline = answer.get("base64_signed_file") if answer is not None else None
        if isinstance(inline, str) and inline:
            return _b64(inline, document_id)
        if status in (404, 410):
            log.warning("bsre download of %s refused: HTTP %d", document_id, status)
            raise PermanentError(DOWNLOAD_GONE, pending_id=document_id, reason="download_gone")
        code, text = _error_fields(body)
        log.warning("bsre download of %s failed: HTTP %d", document_id, status)
        raise TransientError(
            DOWNLOAD_PENDING,
            pending_id=document_id,
            reason="pending_download",
            http_status=status,
            bsre_code=code,
            bsre_error=_scrub(text, None),
        )

    def _refused(self, status: int, body: bytes, passphrase: str) -> NoReturn:
        """A sign call that did not give a signed document: a known refusal is raised as such;
        for one SAPA cannot read, the certificate status may say why (asked again)."""
        try:
            _raise_for_answer(status, body, secret=passphrase)
        except TransientError as exc:
            if exc.detail.get("reason") == "unrecognised":
                self._require_issue()
            raise

    def _call(
        self, method: str, path: str, *, secret: str | None, **kwargs: Any
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One request to the service; (status, headers, body). Connection errors and timeouts
        raise `TransientError` WITHOUT the requests exception chained: it holds the prepared
        request, whose body carries the passphrase."""
        import requests

        failure = ""
        try:
            response = self._session.request(
                method, self._base + path, timeout=self._timeout, allow_redirects=False, **kwargs
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
            log.warning("bsre %s failed: %s", path.split("/status/")[0], failure)
            raise TransientError(UNAVAILABLE, reason="unavailable", failure=failure)
        if 300 <= response.status_code < 400:
            log.warning(
                "bsre %s redirected: HTTP %d", path.split("/status/")[0], response.status_code
            )
            raise PermanentError(REDIRECTED, http_status=response.status_code, reason="redirected")
        return response.status_code, response.headers, body

    def _now(self) -> datetime:
        now = self._clock.now() if self._clock is not None else datetime.now(UTC)
        return now.astimezone(UTC).replace(microsecond=0)


def qr_png(url: str) -> bytes:
    """The QR code of `url` as a PNG (what v2 is sent as ``imageBase64``): black on white
    with the standard quiet zone, medium error correction, large enough to print."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(url)
    code.make(fit=True)
    out = BytesIO()
    code.make_image().save(out)
    return out.getvalue()


def _raise_for_answer(status: int, body: bytes, *, secret: str | None) -> NoReturn:
    """Map an error answer (or a 200 that is not what was asked for) to an error."""
    code, text = _error_fields(body)
    text = _scrub(text, secret)
    detail: dict[str, Any] = {"http_status": status, "bsre_code": code, "bsre_error": text}
    known = _CODES.get(code) if code is not None else None
    if known is None and text:
        known = next(((m, r) for pattern, m, r in _TEXT_RULES if pattern.search(text)), None)
    if known is not None:
        message, reason = known
        log.warning("bsre refused to sign: HTTP %d, code %s, %s", status, code, reason)
        raise PermanentError(message, **detail, reason=reason)
    if status in (401, 403):
        log.warning("bsre rejected the client credentials: HTTP %d", status)
        raise PermanentError(ACCESS_DENIED, **detail, reason="access_denied")
    if status in _UNAVAILABLE_STATUSES or (status >= 500 and text.lower() in _GENERIC_TEXTS):
        log.warning("bsre unavailable: HTTP %d, code %s", status, code)
        raise TransientError(UNAVAILABLE, **detail, reason="unavailable")
    log.warning("bsre answer not recognised: HTTP %d, code %s", status, code)
    shown = text or (f"HTTP {status}" if status != 200 else "jawaban tanpa dokumen")
    message = BAD_ANSWER if status == 200 and not text else UNRECOGNISED % shown
    raise TransientError(message, **detail, reason="unrecognised")


def _error_fields(body: bytes) -> tuple[int | None, str]:
    """BSrE's error code and text from a JSON error body: v1's ``status_code``/``error``, the
    ``code``/``message`` some installations use, or a Spring error body (``status`` is then
    the HTTP status, ``error`` its reason phrase and ``message`` the real reason): every text
    is kept, so that a wrong passphrase is found wherever it is."""
    answer = _json_object(body)
    if answer is None:
        return None, ""
    raw_code = answer.get("status_code", answer.get("code"))
    code: int | None = None
    if isinstance(raw_code, int) and not isinstance(raw_code, bool):
        code = raw_code
    elif isinstance(raw_code, str) and raw_code.strip().isdigit():
        code = int(raw_code.strip())
    texts: list[str] = []
    for key in ("message", "error", "status", "detail"):
        value = answer.get(key)
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        if isinstance(value, str) and value.strip() and value.strip() not in texts:
            texts.append(value.strip())
    generic = [t for t in texts if t.lower() in _GENERIC_TEXTS]
    specific = [t for t in texts if t.lower() not in _GENERIC_TEXTS]
    text = " — ".join(specific) or (generic[0] if generic else "")
    return code, " ".join(text.split())[:_MAX_ERROR_TEXT]


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return answer if isinstance(answer, dict) else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A response header by name, whatever its case or separator (``id_dokumen``,
    ``id-dokumen``, ``ID_DOKUMEN`` are all seen in clients)."""
    wanted = name.lower().replace("-", "_")
    for key, value in headers.items():
        if key.lower().replace("-", "_") == wanted:
            return value
    return None


def _b64(text: str, document_id: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        log.warning("bsre answer for document %s is not base64", document_id)
        raise TransientError(BAD_ANSWER, reason="unrecognised") from None


def _scrub(text: str, secret: str | None) -> str:
    """`text` from the service without the passphrase (should it ever be echoed) or a NIK."""
    if secret and secret in text:
        text = text.replace(secret, "***")
    return mask(text)


def _page_height(pdf: bytes, page: int) -> float:
    """The height in points of page `page` (1-based): its MediaBox, inherited if need be."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        node: Any = reader.find_page_for_modification(page - 1)[0].get_object()  # type: ignore[no-untyped-call]
        while node is not None and "/MediaBox" not in node:
            node = node.get("/Parent")
            node = node.get_object() if node is not None else None
        box = [float(v) for v in node["/MediaBox"]] if node is not None else []
    except Exception as exc:
        raise PermanentError(NO_SUCH_PAGE % (page, 0), reason="no_such_page") from exc
    if len(box) != 4:
        return 842.0  # A4, the PDF default when a page names no box
    return abs(box[3] - box[1])


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
        raise TransientError(
            BAD_ANSWER, document_id=document_id, problem=problem, reason="unrecognised"
        )


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
