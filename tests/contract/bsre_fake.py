"""A fake BSrE "Esign Client Service" (API v1 and v2) for tests, served over real HTTP.

It follows BSrE's own documentation and public client code, not any adapter of this project:

- "Petunjuk Teknis API Esign Client Service" v2.0 (BSrE, January 2024): v1 ``POST
  /api/sign/pdf``, ``GET /api/sign/download/{id}``, ``POST /api/sign/verify``, ``GET
  /api/user/status/{nik}``; v2 ``POST /api/v2/sign/pdf``, ``POST /api/v2/user/check/status``,
  ``POST /api/v2/verify/pdf``; their parameters, the v2 coordinate system (top-left origin) and
  the error codes 2011 (user not registered) and 2031 (wrong passphrase).
- the sample answers in the README of pemkotbekasi/node-esign-BSrE (v1 verify, v1 user status,
  "document already downloaded");
- kiiskominfokepri/esign-ts (field names and encodings the clients send, the v2 answers: ``file``
  and ``time``, ``conclusion``, ``signatureInformations``, ``timestampInfomation``...).

Endpoints (HTTP Basic auth on all of them; a failure is a Spring Security 401
``{"timestamp", "status": 401, "error": "Unauthorized", "path"}``), with their `Received.api`:

- "v1": ``POST /api/sign/pdf`` (multipart) answers the signed PDF with an ``id_dokumen`` header,
  or JSON with ``jenis_response=BASE64`` (see `base64_answer`);
- "download": ``GET /api/sign/download/{id}`` answers the PDF once, then 404 (status_code 4044);
- "verify": ``POST /api/sign/verify`` (multipart ``signed_file``) answers ``{"nama_dokumen",
  "jumlah_signature", "notes", "details", "summary"}``;
- "status": ``GET /api/user/status/{nik}`` answers ``{"status_code", "status", "message"}``;
- "v2": ``POST /api/v2/sign/pdf`` (JSON) answers ``{"time": ms, "file": [base64, ...]}``;
- "status_v2": ``POST /api/v2/user/check/status`` (JSON ``nik`` or ``email``) answers
  ``{"status_code", "status", "message"}``;
- "verify_v2": ``POST /api/v2/verify/pdf`` (JSON ``file``) answers ``{"conclusion",
  "description", "signatureInformations", "signatureCount"}``;
- "other": anything else, a Spring 404 (405 for a known path with another method).

Errors: v1 endpoints answer ``{"status_code": <int>, "error": "<text>"}`` (HTTP 400; 404 for a
download already taken; 500 in mode "wrong_passphrase_500"); v2 endpoints answer Spring's error
body ``{"timestamp", "status", "error": <reason phrase>, "message": <the reason>, "path"}``,
HTTP 500 (400 in mode "echo_passphrase"), or the v1 shape with the same HTTP status when
`v2_error_shape` is "v1". Transport trouble (auth, modes "http_500", "http_429", "http_503",
"download_unavailable", unknown paths) is always Spring-style, without a ``message``; so are a
v2 body that is not JSON (415) or not a JSON object (400), with a ``message``.

Coordinates are PDF points. v1: the origin is the page's bottom-left corner and (xAxis, yAxis)
is the box's bottom-left corner; width/height are the box's size (`v1_box` "size") or its
upper-right corner (`v1_box` "corners"). v2: the origin is the page's top-left corner, y grows
downward and (originX, originY) is the box's top-left corner, so in PDF terms the box is
x = originX, y = MediaBox top - originY - height. The signature widget gets exactly that
rectangle; its appearance is the QR code of ``linkQR`` (v1, ``image=false``) or the given image
(v1 ``imageTTD``, v2 ``imageBase64``), scaled to fit the box and centred, nothing else. Page
rotation and v2 ``tag_koordinat`` are not supported (a VISIBLE entry needs coordinates).

Signatures are real: PAdES (``/ETSI.CAdES.detached``, PAdES-B-B) made by pyHanko with a throwaway
CA and signing certificate generated in memory per instance (`ca_certificate_pem`, signer CN
`FAKE_SIGNER_CN`). Like BSrE, the fake re-saves an unsigned document before signing it, so the
original bytes are NOT a prefix of the result; an already signed document gets an incremental
signature. Verification uses pyHanko with the fake's CA as the only trust root. Local times in
v1 answers (``signing_time``, ``signed_in``, validity ranges) are WIB (UTC+7): an assumption,
the guide gives no zone; v2 dates carry their offset.

Every request is recorded in `received` (fields, uploaded files, the PDFs, the boxes drawn),
but never a passphrase (nor a ``pdfPassword`` or ``totp``): only whether one was present and
whether it matched (the expected passphrase is kept as a sha256 digest). Failure modes are set
with `mode` (see `MODES`); `user_status`, `v1_box`, `base64_answer` and `v2_error_shape` choose
between behaviours the documentation leaves open. `reset()` restores all of them.

Usage::

    with FakeBsre() as fake:
        signer = BsreSigner(fake.base_url, fake.username, fake.password, fake.nik)
        ...
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http import HTTPStatus
from io import BytesIO
from typing import TYPE_CHECKING, Any, Literal, NoReturn, get_args

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sapa.adapters.pdf import outside_event_loop

if TYPE_CHECKING:
    from cryptography import x509
    from PIL.Image import Image

FAKE_CA_CN = "BSrE Fake Root CA (UJI, BUKAN PRODUKSI)"
FAKE_SIGNER_CN = "Kepala Dinas Dukcapil Gowa (UJI BSrE)"
USERNAME = "sapa-esign"
PASSWORD = "basic-auth-rahasia-uji"
NIK = "7306012345678901"
EMAIL = "kadis.dukcapil@gowakab.go.id"
PASSPHRASE = "Rahasia#TTE-2026"

WIB = timezone(timedelta(hours=7), "WIB")

# Codes from the guide and the client samples.
UNKNOWN_NIK_CODE = 2011
WRONG_PASSPHRASE_CODE = 2031
DOWNLOAD_GONE_CODE = 4044
# Codes of the fake's own (the guide names no code for these).
BAD_REQUEST_CODE = 1001  # a missing or invalid parameter
NOT_A_PDF_CODE = 1002  # the document is not a readable PDF
PAGE_NOT_FOUND_CODE = 1003  # the page asked for does not exist
BAD_IMAGE_CODE = 1004  # the signature image is missing or not a PNG/JPEG
CERT_INACTIVE_CODE = 2021  # signing refused: `user_status` is not ISSUE
UNRECOGNISED_CODE = 9001  # mode "unrecognised"
ECHO_CODE = 9999  # mode "echo_passphrase"

WRONG_PASSPHRASE = "Passphrase anda salah"
UNKNOWN_NIK = "User tidak terdaftar"
DOWNLOAD_GONE = "File tidak tersedia, pastikan bahwa dokumen belum di download"
UNRECOGNISED = "Terjadi kesalahan pada sistem penandatanganan"
NOT_A_PDF = "Dokumen bukan PDF yang valid"
VALID_NOTES = (
    "Tanda tangan elektronik valid dan dokumen merupakan dokumen asli sejak ditandatangani"
)
ALTERED_NOTES = "Konten Dokumen mengalami perubahan oleh pihak yang tidak berhak"
UNTRUSTED_NOTES = "Sertifikat penanda tangan tidak terpercaya"
NO_SIGNATURE_V2 = "Dokumen tidak memiliki tandatangan elektronik"
SIGNATURE_FORMAT = "PAdES-BASELINE-B"

UserStatus = Literal[
    "ISSUE",
    "EXPIRED",
    "RENEW",
    "WAITING_FOR_VERIFICATION",
    "NEW",
    "NO_CERTIFICATE",
    "NOT_REGISTERED",
    "SUSPEND",
    "REVOKE",
]
USER_STATUSES: tuple[str, ...] = get_args(UserStatus)
# status_code per status. Documented: v1 ISSUE 1111 and NOT_REGISTERED 1110; v2 ISSUE 1111,
# NOT_REGISTERED 2011 and NO_CERTIFICATE 2021. The others are the fake's own.
V1_STATUS_CODES: dict[str, int] = {
    "ISSUE": 1111,
    "NOT_REGISTERED": 1110,
    "EXPIRED": 1112,
    "RENEW": 1113,
    "WAITING_FOR_VERIFICATION": 1114,
    "NEW": 1115,
    "NO_CERTIFICATE": 1116,
    "SUSPEND": 1117,
    "REVOKE": 1118,
}
V2_STATUS_CODES: dict[str, int] = {
    "ISSUE": 1111,
    "NOT_REGISTERED": 2011,
    "NO_CERTIFICATE": 2021,
    "EXPIRED": 2022,
    "RENEW": 2023,
    "WAITING_FOR_VERIFICATION": 2024,
    "NEW": 2025,
    "SUSPEND": 2026,
    "REVOKE": 2027,
}

Mode = Literal[
    "wrong_passphrase_500",  # signing answers 2031 "Passphrase anda salah" with HTTP 500
    "unknown_nik",  # every NIK/email is unknown: signing 2011, status NOT_REGISTERED
    "unrecognised",  # signing refused with a code no client knows (v1 400/9001, v2 500)
    "http_500",  # any endpoint: HTTP 500, Spring body without a message
    "http_429",  # any endpoint: HTTP 429, Spring body
    "http_503",  # any endpoint: HTTP 503, Spring body
    "slow",  # any endpoint: wait `slow_seconds`, then answer normally
    "redirect",  # any endpoint: HTTP 307 to another address
    "not_pdf",  # what would be a 200 is an HTML page (a download is not consumed)
    "broken_pdf",  # signing "succeeds" with bytes that start with %PDF but do not parse
    "unsigned",  # signing "succeeds" with the re-saved document, not signed
    "no_id",  # v1: no id_dokumen (header or JSON key); nothing is kept for download
    "echo_passphrase",  # signing: HTTP 400 whose error repeats the passphrase and NIK
    "download_unavailable",  # downloads: HTTP 503 (Spring), the document is not consumed
]
MODES: tuple[str, ...] = get_args(Mode)

Api = Literal["v1", "v2", "verify", "verify_v2", "status", "status_v2", "download", "other"]
APIS: tuple[str, ...] = get_args(Api)
Family = Literal["v1", "v2"]  # which error shape an endpoint uses
Box = tuple[float, float, float, float]  # PDF points: (x1, y1, x2, y2), origin bottom-left

_LAST_PAGE = -1
_KNOWN_PATHS = ("/api/sign/pdf", "/api/sign/verify", "/api/v2/sign/pdf")
_KNOWN_PREFIXES = (
    "/api/sign/download/",
    "/api/user/status/",
    "/api/v2/user/check/status",
    "/api/v2/verify/pdf",
)
_HTML = "<html><head><title>Gateway</title></head><body><h1>Selamat datang</h1></body></html>"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Received:
    """One request as the fake saw it (no passphrase, only flags about it).

    `fields`: v1 sign, the form fields except ``passphrase``; v2 sign, ``nik`` (and ``email``
    if sent) plus signatureProperties[0] with ``imageBase64`` replaced by "<N karakter>" and
    ``pdfPassword`` by "***", plus ``keys`` (the body's keys, sorted),
    ``signatureProperties_count``, ``file_count`` and ``imageBase64_bytes`` (decoded length,
    None if not base64); status,
    ``nik``/``email``; download, ``id_dokumen``; verify_v2, ``keys`` and ``password_present``.
    Fields are empty when the request was stopped before it was read (auth, transport modes).
    `pdf` is the first uploaded PDF, `pdfs` all of them (v2 takes several). `boxes` holds, per
    visible signature made, the 1-based page and the rectangle drawn in PDF points (bottom-left
    origin). `image_size` is the byte length of the signature image (v1 imageTTD, v2 decoded
    imageBase64 of the first entry).
    """

    method: str
    path: str
    api: str  # one of APIS
    auth_ok: bool
    fields: dict[str, Any]
    files: dict[str, UploadedFile]
    passphrase_present: bool
    passphrase_ok: bool
    pdf: bytes | None
    status: int  # what the fake answered
    pdfs: tuple[bytes, ...] = ()
    boxes: tuple[tuple[int, Box], ...] = ()
    image_size: int | None = None


@dataclass
class _Seen:
    auth_ok: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    passphrase_present: bool = False
    passphrase_ok: bool = False
    pdfs: list[bytes] = field(default_factory=list)
    boxes: list[tuple[int, Box]] = field(default_factory=list)
    image_size: int | None = None


@dataclass(frozen=True)
class _Placement:
    """Where and what to draw: `page` is 1-based (or _LAST_PAGE); (x, y) is the box's corner
    nearest the origin, which is the page's top-left corner when `from_top`."""

    page: int
    x: float
    y: float
    width: float
    height: float
    from_top: bool
    qr: str | None = None
    image: Image | None = None


@dataclass(frozen=True)
class _SignatureInfo:
    field_name: str
    reason: str | None
    location: str | None
    signed_at: datetime | None
    intact: bool  # digest, signature and modification policy all fine
    trusted: bool  # the chain leads to the fake's CA
    certificates: list[x509.Certificate]  # the signer's first
    contents_sha256: str


class _Refusal(Exception):
    """BSrE refusing a request: v1 shape on v1 endpoints, Spring (or v1) shape on v2 ones."""

    def __init__(self, code: int, error: str, *, v1_status: int = 400, v2_status: int = 500):
        super().__init__(error)
        self.code, self.error = code, error
        self.v1_status, self.v2_status = v1_status, v2_status


class _Spring(Exception):
    """An answer from the framework rather than BSrE's code: always Spring-style."""

    def __init__(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message or str(status))
        self.status, self.message, self.headers = status, message, headers or {}


class _Released(Exception):
    """A "slow" request woken by reset() or stop()."""


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log: ``/api/user/status/{nik}`` carries a NIK in its path."""


class FakeBsre:
    """The fake service; `start()` serves it on 127.0.0.1 at a random port (`base_url`)."""

    def __init__(
        self,
        *,
        username: str = USERNAME,
        password: str = PASSWORD,
        niks: tuple[str, ...] = (NIK,),
        passphrase: str = PASSPHRASE,
        slow_seconds: float = 3.0,
        emails: tuple[str, ...] = (EMAIL,),
    ) -> None:
        self.username = username
        self.password = password
        self.niks = niks
        self.nik = niks[0]
        self.emails = emails
        self._passphrase_sha256 = hashlib.sha256(passphrase.encode("utf-8")).digest()
        self.slow_seconds = slow_seconds
        self.mode: Mode | None = None
        self._user_status: str = "ISSUE"
        self.v1_box: Literal["size", "corners"] = "size"
        self.base64_answer: Literal["inline", "download"] = "download"
        self.v2_error_shape: Literal["spring", "v1"] = "spring"
        self.issued_ids: list[str] = []
        self.downloads: dict[str, int] = {}
        self._documents: dict[str, bytes] = {}
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._generation = 0
        self._server: BaseWSGIServer | None = None
        self.base_url = ""
        self.ca_certificate_pem, self._signer = _identity()
        self.app = self._create_app()

    # --- settings -------------------------------------------------------------------------

    @property
    def user_status(self) -> str:
        """What a known NIK's certificate is (one of USER_STATUSES); anything but "ISSUE"
        makes signing fail (v1 400/2021, v2 Spring 500), "NOT_REGISTERED" as an unknown NIK."""
        return self._user_status

    @user_status.setter
    def user_status(self, value: str) -> None:
        if value not in USER_STATUSES:
            raise ValueError(f"user_status must be one of {USER_STATUSES}, not {value!r}")
        self._user_status = value

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        with self._lock:
            self._release = threading.Event()
        self._server = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler
        )
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        return self.base_url

    def stop(self) -> None:
        with self._lock:
            self._release.set()  # wake up "slow" requests
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeBsre:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- inspection -----------------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def reset(self) -> None:
        """Forget recorded requests, issued ids, downloads and kept documents; clear the mode and
        restore `user_status`, `v1_box`, `base64_answer` and `v2_error_shape` to their defaults.
        Requests still in flight (a "slow" one the client gave up on) are answered 503 at once
        and not recorded."""
        with self._lock:
            self._generation += 1
            self._received.clear()
            self.issued_ids.clear()
            self.downloads.clear()
            self._documents.clear()
            release, self._release = self._release, threading.Event()
        release.set()
        self.mode = None
        self._user_status = "ISSUE"
        self.v1_box = "size"
        self.base64_answer = "download"
        self.v2_error_shape = "spring"

    # --- the app --------------------------------------------------------------------------

    def _create_app(self) -> Flask:
        app = Flask("bsre_fake")
        app.json.sort_keys = False  # type: ignore[attr-defined]

        @app.post("/api/sign/pdf")
        def sign_v1() -> Response:
            return self._handle("v1", "v1", self._sign_v1)

        @app.get("/api/sign/download/<path:document_id>")
        def download(document_id: str) -> Response:
            return self._handle("download", "v1", lambda seen: self._download(seen, document_id))

        @app.post("/api/sign/verify")
        def verify_v1() -> Response:
            return self._handle("verify", "v1", self._verify_v1)

        @app.get("/api/user/status/<path:nik>")
        def status_v1(nik: str) -> Response:
            return self._handle("status", "v1", lambda seen: self._status_v1(seen, nik))

        @app.post("/api/v2/sign/pdf")
        def sign_v2() -> Response:
            return self._handle("v2", "v2", self._sign_v2)

        @app.post("/api/v2/user/check/status")
        def status_v2() -> Response:
            return self._handle("status_v2", "v2", self._status_v2)

        @app.post("/api/v2/verify/pdf")
        def verify_v2() -> Response:
            return self._handle("verify_v2", "v2", self._verify_v2)

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

        @app.route("/", defaults={"path": ""}, methods=methods)
        @app.route("/<path:path>", methods=methods)
        def other(path: str) -> Response:
            return self._handle("other", "v1", self._other)

        return app

    def _handle(self, api: Api, family: Family, action: Callable[[_Seen], Response]) -> Response:
        seen = _Seen()
        with self._lock:
            generation = self._generation
        try:
            early = self._gate(seen)
            response = early if early is not None else action(seen)
        except _Refusal as refusal:
            response = self._refusal_response(refusal, family)
        except _Spring as spring:
            response = _spring(spring.status, spring.message, spring.headers)
        except _Released:
            response = _spring(503)
        except Exception:
            _log.exception("BSrE palsu: kesalahan tak terduga pada %s", request.path)
            response = _spring(500)
        with self._lock:
            if generation != self._generation:
                return response
            self._received.append(
                Received(
                    method=request.method,
                    path=request.path,
                    api=api,
                    auth_ok=seen.auth_ok,
                    fields=seen.fields,
                    files=seen.files,
                    passphrase_present=seen.passphrase_present,
                    passphrase_ok=seen.passphrase_ok,
                    pdf=seen.pdfs[0] if seen.pdfs else None,
                    status=response.status_code,
                    pdfs=tuple(seen.pdfs),
                    boxes=tuple(seen.boxes),
                    image_size=seen.image_size,
                )
            )
        return response

    def _refusal_response(self, refusal: _Refusal, family: Family) -> Response:
        if family == "v1":
            return _v1_error(refusal.v1_status, refusal.code, refusal.error)
        if self.v2_error_shape == "v1":
            return _v1_error(refusal.v2_status, refusal.code, refusal.error)
        return _spring(refusal.v2_status, refusal.error)

    def _gate(self, seen: _Seen) -> Response | None:
        """Auth and the transport failure modes, before the request is looked at."""
        auth = request.authorization
        seen.auth_ok = bool(
            auth is not None
            and auth.type == "basic"
            and hmac.compare_digest(str(auth.username), self.username)
            and hmac.compare_digest(str(auth.password), self.password)
        )
        if not seen.auth_ok:
            raise _Spring(401, headers={"WWW-Authenticate": 'Basic realm="Realm"'})
        if self.mode == "slow":
            with self._lock:
                release = self._release
            if release.wait(self.slow_seconds):  # reset or stopped meanwhile
                raise _Released
        if self.mode == "http_500":
            raise _Spring(500)
        if self.mode == "http_429":
            raise _Spring(429)
        if self.mode == "http_503":
            raise _Spring(503)
        if self.mode == "redirect":
            return Response(status=307, headers={"Location": "http://127.0.0.1:9/elsewhere"})
        return None

    # --- who signs ------------------------------------------------------------------------

    def _note_passphrase(self, seen: _Seen, passphrase: str) -> None:
        seen.passphrase_present = bool(passphrase)
        digest = hashlib.sha256(passphrase.encode("utf-8")).digest()
        seen.passphrase_ok = hmac.compare_digest(digest, self._passphrase_sha256)

    def _known(self, nik: str, email: str = "") -> bool:
        if self.mode == "unknown_nik" or self._user_status == "NOT_REGISTERED":
            return False
        return (bool(nik) and nik in self.niks) or (bool(email) and email in self.emails)

    def _check_signer(self, seen: _Seen, nik: str, passphrase: str, email: str = "") -> None:
        if self.mode == "echo_passphrase":
            raise _Refusal(
                ECHO_CODE,
                f"Gagal memproses passphrase '{passphrase}' untuk NIK {nik}",
                v1_status=400,
                v2_status=400,
            )
        if not nik and not email:
            _refuse("Parameter nik wajib diisi")
        if not passphrase:
            _refuse("Parameter passphrase wajib diisi")
        if not self._known(nik, email):
            raise _Refusal(UNKNOWN_NIK_CODE, UNKNOWN_NIK)
        if self._user_status != "ISSUE":
            raise _Refusal(
                CERT_INACTIVE_CODE, f"Sertifikat user tidak aktif (status {self._user_status})"
            )
        if not seen.passphrase_ok or self.mode == "wrong_passphrase_500":
            v1_status = 500 if self.mode == "wrong_passphrase_500" else 400
            raise _Refusal(WRONG_PASSPHRASE_CODE, WRONG_PASSPHRASE, v1_status=v1_status)
        if self.mode == "unrecognised":
            raise _Refusal(UNRECOGNISED_CODE, UNRECOGNISED)

    def _status_of(self, nik: str, email: str = "") -> str:
        return self._user_status if self._known(nik, email) else "NOT_REGISTERED"

    # --- v1 -------------------------------------------------------------------------------

    def _sign_v1(self, seen: _Seen) -> Response:
        form = request.form
        seen.fields = {k: v for k, v in form.items() if k != "passphrase"}
        pdf: bytes | None = None
        image: bytes | None = None
        for name, upload in request.files.items():
            data = upload.read()
            seen.files[name] = _uploaded(upload.filename, upload.mimetype, data)
            if name == "file":
                pdf = data
            elif name == "imageTTD":
                image = data
                seen.image_size = len(data)
        passphrase = form.get("passphrase", "")
        self._note_passphrase(seen, passphrase)
        if pdf is None:
            _refuse("Parameter file wajib diisi")
        seen.pdfs.append(pdf)
        tampilan = form.get("tampilan", "").strip().lower()
        if tampilan not in ("visible", "invisible"):
            _refuse("Parameter tampilan harus visible atau invisible")
        answer = (form.get("jenis_response") or "BYTE").strip().upper()
        if answer not in ("BYTE", "BASE64"):
            _refuse("Parameter jenis_response harus BYTE atau BASE64")
        placement = self._v1_placement(form, image) if tampilan == "visible" else None
        self._check_signer(seen, form.get("nik", "").strip(), passphrase)
        signed = self._sign(
            seen, pdf, placement, form.get("reason") or "", form.get("location") or ""
        )
        if self.mode == "not_pdf":
            return _html()
        document_id = None if self.mode == "no_id" else uuid.uuid4().hex
        if document_id is not None:
            with self._lock:
                self.issued_ids.append(document_id)
        if answer == "BYTE":
            headers = {"id_dokumen": document_id} if document_id else {}
            return Response(signed, 200, mimetype="application/pdf", headers=headers)
        body: dict[str, Any] = {} if document_id is None else {"id_dokumen": document_id}
        if self.base64_answer == "inline":
            body["base64_signed_file"] = base64.b64encode(signed).decode("ascii")
        else:
            if document_id is not None:
                with self._lock:
                    self._documents[document_id] = signed
            body["message"] = "Proses berhasil"
            body["signing_time"] = f"{datetime.now(WIB):%Y-%m-%d %H:%M:%S}"
        return jsonify(body)

    def _v1_placement(self, form: Any, image: bytes | None) -> _Placement:
        flag = form.get("image", "").strip().lower()
        qr: str | None = None
        picture: Image | None = None
        if flag == "false":
            qr = form.get("linkQR", "").strip()
            if not qr:
                _refuse("Parameter linkQR wajib diisi jika image=false")
        elif flag == "true":
            if not image:
                raise _Refusal(BAD_IMAGE_CODE, "Parameter imageTTD wajib diisi jika image=true")
            picture = _picture(image)
        else:
            _refuse("Parameter image harus true atau false")
        if (form.get("page") or "").strip():
            page = _page_number(form.get("page"))
        else:
            halaman = (form.get("halaman") or "").strip().lower()
            if halaman not in ("pertama", "terakhir"):
                _refuse("Parameter page atau halaman (pertama/terakhir) wajib diisi")
            page = 1 if halaman == "pertama" else _LAST_PAGE
        x, y = _decimal(form.get("xAxis"), "xAxis"), _decimal(form.get("yAxis"), "yAxis")
        width, height = _decimal(form.get("width"), "width"), _decimal(form.get("height"), "height")
        if self.v1_box == "corners":
            width, height = width - x, height - y
        if width <= 0 or height <= 0:
            _refuse("Ukuran kotak tanda tangan tidak valid")
        return _Placement(page, x, y, width, height, from_top=False, qr=qr, image=picture)

    def _download(self, seen: _Seen, document_id: str) -> Response:
        seen.fields = {"id_dokumen": document_id}
        with self._lock:
            self.downloads[document_id] = self.downloads.get(document_id, 0) + 1
        if self.mode == "download_unavailable":
            raise _Spring(503)
        if self.mode == "not_pdf":
            return _html()
        with self._lock:
            data = self._documents.pop(document_id, None)
        if data is None:
            raise _Refusal(DOWNLOAD_GONE_CODE, DOWNLOAD_GONE, v1_status=404)
        return Response(data, 200, mimetype="application/pdf", headers={"id_dokumen": document_id})

    def _verify_v1(self, seen: _Seen) -> Response:
        seen.fields = dict(request.form.items())
        upload = request.files.get("signed_file")
        if upload is None:
            _refuse("Parameter signed_file wajib diisi")
        data = upload.read()
        seen.pdfs.append(data)
        seen.files["signed_file"] = _uploaded(upload.filename, upload.mimetype, data)
        name = upload.filename or "dokumen.pdf"
        signatures = self._inspect(data)
        if self.mode == "not_pdf":
            return _html()
        if not signatures:
            return jsonify(
                {
                    "nama_dokumen": name,
                    "jumlah_signature": 0,
                    "notes": None,
                    "details": [],
                    "summary": None,
                }
            )
        altered = any(not s.intact for s in signatures)
        untrusted = any(not s.trusted for s in signatures)
        notes = ALTERED_NOTES if altered else UNTRUSTED_NOTES if untrusted else VALID_NOTES
        return jsonify(
            {
                "nama_dokumen": name,
                "jumlah_signature": len(signatures),
                "notes": notes,
                "details": [_v1_detail(s) for s in signatures],
                "summary": "DOCUMENT NOT VALID !!!"
                if altered or untrusted
                else "DOCUMENT VALID !!!",
            }
        )

    def _status_v1(self, seen: _Seen, nik: str) -> Response:
        seen.fields = {"nik": nik}
        status = self._status_of(nik)
        if self.mode == "not_pdf":
            return _html()
        return jsonify(
            {
                "status_code": V1_STATUS_CODES[status],
                "status": status,
                "message": _status_message(status, v2=False),
            }
        )

    # --- v2 -------------------------------------------------------------------------------

    def _sign_v2(self, seen: _Seen) -> Response:
        started = time.monotonic()
        body = _json_object()
        entries = body.get("signatureProperties")
        files = body.get("file")
        first = entries[0] if isinstance(entries, list) and entries else None
        props0: dict[str, Any] = dict(first) if isinstance(first, dict) else {}
        seen.fields = {"nik": body.get("nik")}
        if "email" in body:
            seen.fields["email"] = body.get("email")
        seen.fields.update(props0)
        if "imageBase64" in props0:
            raw_image = props0["imageBase64"]
            seen.fields["imageBase64"] = f"<{len(str(raw_image or ''))} karakter>"
            decoded = _b64(raw_image) if isinstance(raw_image, str) else None
            seen.fields["imageBase64_bytes"] = None if decoded is None else len(decoded)
            seen.image_size = None if decoded is None else len(decoded)
        if "pdfPassword" in props0:
            seen.fields["pdfPassword"] = "***"
        seen.fields["keys"] = sorted(body)
        seen.fields["signatureProperties_count"] = len(entries) if isinstance(entries, list) else 0
        seen.fields["file_count"] = len(files) if isinstance(files, list) else 0
        passphrase = body.get("passphrase")
        self._note_passphrase(seen, passphrase if isinstance(passphrase, str) else "")

        if not (
            isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries)
        ):
            _refuse("Parameter signatureProperties wajib diisi")
        if not (isinstance(files, list) and files):
            _refuse("Parameter file wajib diisi")
        if len(entries) not in (1, len(files)):
            _refuse("Jumlah signatureProperties harus 1 atau sama dengan jumlah file")
        pdfs: list[bytes] = []
        for index, item in enumerate(files, start=1):
            decoded_pdf = _b64(item) if isinstance(item, str) else None
            if decoded_pdf is None:
                raise _Refusal(NOT_A_PDF_CODE, f"File ke-{index} bukan base64 yang valid")
            pdfs.append(decoded_pdf)
        seen.pdfs.extend(pdfs)
        placements = [_v2_placement(entry) for entry in entries]
        nik = body.get("nik")
        email = body.get("email")
        self._check_signer(
            seen,
            str(nik).strip() if nik is not None else "",
            passphrase if isinstance(passphrase, str) else "",
            str(email).strip() if email is not None else "",
        )
        signed: list[str] = []
        for index, pdf in enumerate(pdfs):
            entry = entries[index] if len(entries) > 1 else entries[0]
            placement = placements[index] if len(placements) > 1 else placements[0]
            result = self._sign(
                seen, pdf, placement, _text(entry.get("reason")), _text(entry.get("location"))
            )
            signed.append(base64.b64encode(result).decode("ascii"))
        if self.mode == "not_pdf":
            return _html()
        return jsonify({"time": int((time.monotonic() - started) * 1000), "file": signed})

    def _status_v2(self, seen: _Seen) -> Response:
        body = _json_object()
        seen.fields = {k: body[k] for k in ("nik", "email") if k in body}
        nik = str(body.get("nik") or "").strip()
        email = str(body.get("email") or "").strip()
        if not nik and not email:
            _refuse("Parameter nik atau email wajib diisi")
        status = self._status_of(nik, email)
        if self.mode == "not_pdf":
            return _html()
        return jsonify(
            {
                "status_code": V2_STATUS_CODES[status],
                "status": status,
                "message": _status_message(status, v2=True),
            }
        )

    def _verify_v2(self, seen: _Seen) -> Response:
        body = _json_object()
        seen.fields = {"keys": sorted(body), "password_present": bool(body.get("password"))}
        raw = body.get("file")
        if not isinstance(raw, str) or not raw:
            _refuse("Parameter file wajib diisi")
        data = _b64(raw)
        if data is None:
            raise _Refusal(NOT_A_PDF_CODE, "File bukan base64 yang valid")
        seen.pdfs.append(data)
        signatures = self._inspect(data)
        if self.mode == "not_pdf":
            return _html()
        if not signatures:
            return jsonify(
                {
                    "conclusion": "NO_SIGNATURE",
                    "description": NO_SIGNATURE_V2,
                    "signatureInformations": [],
                    "signatureCount": 0,
                }
            )
        altered = any(not s.intact for s in signatures)
        untrusted = any(not s.trusted for s in signatures)
        if altered:
            description = "Dokumen tidak valid, dokumen telah berubah setelah ditandatangani"
        elif untrusted:
            description = "Dokumen tidak valid, sertifikat yang digunakan tidak terpercaya"
        else:
            description = "Dokumen valid, Sertifikat yang digunakan terpercaya"
        last = len(signatures) - 1
        return jsonify(
            {
                "conclusion": "INVALID" if altered or untrusted else "VALID",
                "description": description,
                "signatureInformations": [
                    _v2_detail(s, last=i == last) for i, s in enumerate(signatures)
                ],
                "signatureCount": len(signatures),
            }
        )

    def _other(self, seen: _Seen) -> Response:
        path = request.path
        known = path in _KNOWN_PATHS or path.startswith(_KNOWN_PREFIXES)
        raise _Spring(405 if known else 404)

    # --- signing and verifying ------------------------------------------------------------

    def _sign(
        self,
        seen: _Seen,
        pdf: bytes,
        placement: _Placement | None,
        reason: str,
        location: str,
    ) -> bytes:
        """Really sign `pdf` (re-saved first unless already signed); modes may spoil it."""
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.pdf_utils.reader import PdfFileReader
        from pyhanko.pdf_utils.rw_common import find_inherited_value_in_tree
        from pyhanko.pdf_utils.writer import copy_into_new_writer
        from pyhanko.sign import fields
        from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner

        try:
            reader = PdfFileReader(BytesIO(pdf), strict=False)
            pages = int(reader.root["/Pages"]["/Count"])
            if pages < 1:
                raise ValueError("no pages")
            reader.find_page_for_modification(pages - 1)  # type: ignore[no-untyped-call]
            if reader.embedded_signatures:
                source = BytesIO(pdf)
            else:  # BSrE re-saves the document: the original is no prefix of the result
                source = BytesIO()
                copy_into_new_writer(reader).write(source)  # type: ignore[no-untyped-call]
                source.seek(0)
            writer = IncrementalPdfFileWriter(source, strict=False)
        except Exception as exc:
            raise _Refusal(NOT_A_PDF_CODE, NOT_A_PDF) from exc

        taken = {name for name, _, _ in fields.enumerate_sig_fields(writer)}
        n = 1
        while f"BSrE_{n}" in taken:
            n += 1
        name = f"BSrE_{n}"
        spec = fields.SigFieldSpec(sig_field_name=name)
        style: Any = None
        box: tuple[int, Box] | None = None
        if placement is not None:
            page = pages if placement.page == _LAST_PAGE else placement.page
            if not 1 <= page <= pages:
                raise _Refusal(
                    PAGE_NOT_FOUND_CODE,
                    f"Halaman {page} tidak ditemukan, dokumen hanya {pages} halaman",
                )
            page_ref, _ = writer.find_page_for_modification(page - 1)
            media = find_inherited_value_in_tree(page_ref.get_object(), "/MediaBox", "/Parent")
            llx, lly, urx, ury = (float(v) for v in media)
            left, bottom, top = min(llx, urx), min(lly, ury), max(lly, ury)
            x1 = left + placement.x
            y1 = (
                top - placement.y - placement.height if placement.from_top else bottom + placement.y
            )
            rect: Box = (
                round(x1, 4),
                round(y1, 4),
                round(x1 + placement.width, 4),
                round(y1 + placement.height, 4),
            )
            box = (page, rect)
            spec = fields.SigFieldSpec(sig_field_name=name, on_page=page - 1, box=rect)
            style = _stamp_style(placement)
        if self.mode == "broken_pdf":
            return b"%PDF-1.7\n% rusak: bukan dokumen\n"
        if self.mode == "unsigned":
            return source.getvalue()

        meta = PdfSignatureMetadata(
            field_name=name,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
            reason=reason or None,
            location=location or None,
        )
        signer = PdfSigner(meta, self._signer, stamp_style=style, new_field_spec=spec)
        out = outside_event_loop(signer.sign_pdf, writer)
        if box is not None:
            seen.boxes.append(box)
        return bytes(out.getvalue())

    def _inspect(self, pdf: bytes) -> list[_SignatureInfo]:
        """Every signature of `pdf`, validated against the fake's CA only (no network,
        revocation soft-fail). Raises a refusal when `pdf` is not a readable PDF."""
        from cryptography import x509 as cx509
        from pyhanko.keys import load_certs_from_pemder_data
        from pyhanko.pdf_utils.reader import PdfFileReader
        from pyhanko.sign.validation import validate_pdf_signature
        from pyhanko_certvalidator import ValidationContext

        try:
            reader = PdfFileReader(BytesIO(pdf), strict=False)
            int(reader.root["/Pages"]["/Count"])
            embedded = list(reader.embedded_signatures)
        except Exception as exc:
            raise _Refusal(NOT_A_PDF_CODE, NOT_A_PDF) from exc
        roots = list(load_certs_from_pemder_data(self.ca_certificate_pem))
        out: list[_SignatureInfo] = []
        for signature in embedded:
            sig = signature.sig_object
            try:
                context = ValidationContext(
                    trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail"
                )
                status = outside_event_loop(
                    validate_pdf_signature, signature, signer_validation_context=context
                )
                intact = bool(
                    status.intact
                    and status.valid
                    and (status.docmdp_ok or status.modification_level is None)
                )
                trusted = bool(status.trusted)
                signed_at = status.signer_reported_dt
            except Exception:
                intact = trusted = False
                signed_at = None
            certs = [signature.signer_cert, *signature.other_embedded_certs]
            contents = bytes(sig.get("/Contents", b""))
            out.append(
                _SignatureInfo(
                    field_name=str(signature.field_name),
                    reason=_pdf_text(sig.get("/Reason")),
                    location=_pdf_text(sig.get("/Location")),
                    signed_at=signed_at,
                    intact=intact,
                    trusted=trusted,
                    certificates=[cx509.load_der_x509_certificate(c.dump()) for c in certs],
                    contents_sha256=hashlib.sha256(contents).hexdigest(),
                )
            )
        return out


# --- answers -----------------------------------------------------------------------------


def _spring(
    status: int, message: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """Spring Boot's error body; `message` is left out when None (Spring's default)."""
    body: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "status": status,
        "error": HTTPStatus(status).phrase,
    }
    if message is not None:
        body["message"] = message
    body["path"] = request.path
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _v1_error(status: int, code: int, error: str) -> Response:
    response = jsonify({"status_code": code, "error": error})
    response.status_code = status
    return response


def _html() -> Response:
    return Response(_HTML, 200, mimetype="text/html")


def _status_message(status: str, *, v2: bool) -> str:
    if status == "NOT_REGISTERED":
        return UNKNOWN_NIK if v2 else "User belum terdaftar"
    if status in ("NEW", "WAITING_FOR_VERIFICATION", "NO_CERTIFICATE"):
        return f"User sudah terdaftar namun belum memiliki sertifikat aktif (status {status})"
    return f"User sudah terdaftar dan memiliki sertifikat dengan status {status}"


def _wib(moment: datetime) -> str:
    return f"{moment.astimezone(WIB):%Y-%m-%d %H:%M:%S}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _common_name(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID

    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def _v1_detail(info: _SignatureInfo) -> dict[str, Any]:
    cert = info.certificates[0]
    return {
        "info_tsa": {"name": None, "tsa_cert_validity": None},
        "signature_field": info.field_name,
        "info_signer": {
            "issuer_dn": cert.issuer.rfc4514_string(),
            "signer_name": _common_name(cert.subject),
            "signer_cert_validity": f"{_wib(cert.not_valid_before_utc)} to "
            f"{_wib(cert.not_valid_after_utc)}",
            "signer_dn": cert.subject.rfc4514_string(),
            "cert_user_certified": info.trusted,
        },
        "signature_document": {
            "signed_using_tsa": False,
            "reason": info.reason,
            "document_integrity": info.intact,
            "signature_value": None,
            "signed_in": f"{_wib(info.signed_at)}.00" if info.signed_at else None,
            "location": info.location,
            "hash_value": None,
        },
    }


def _v2_detail(info: _SignatureInfo, *, last: bool) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import Encoding

    details = []
    for cert in info.certificates:
        oid = cert.signature_algorithm_oid
        details.append(
            {
                "id": "C-" + hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper(),
                "commonName": _common_name(cert.subject),
                "issuerName": cert.issuer.rfc4514_string(),
                "serialNumber": str(cert.serial_number),
                "notAfterDate": _iso(cert.not_valid_after_utc),
                "notBeforeDate": _iso(cert.not_valid_before_utc),
                "signatureAlgoritm": getattr(oid, "_name", oid.dotted_string),
                "keyUsages": [],
            }
        )
    return {
        "id": "S-" + info.contents_sha256.upper(),
        "signatureFormat": SIGNATURE_FORMAT,
        "signerName": _common_name(info.certificates[0].subject),
        "signatureDate": _iso(info.signed_at) if info.signed_at else None,
        "fieldName": info.field_name,
        "reason": info.reason,
        "location": info.location,
        "certLevelCode": 0,
        "signatureAlgorithm": None,
        "digestAlgorithm": None,
        "timestampInfomation": None,
        "certificateDetails": details,
        "integrityValid": info.intact,
        "certificateTrusted": info.trusted,
        "lastSignature": last,
    }


# --- parsing -----------------------------------------------------------------------------


def _refuse(message: str) -> NoReturn:
    raise _Refusal(BAD_REQUEST_CODE, message)


def _uploaded(filename: str | None, content_type: str, data: bytes) -> UploadedFile:
    return UploadedFile(filename or "", content_type, len(data), hashlib.sha256(data).hexdigest())


def _json_object() -> dict[str, Any]:
    """The request's JSON object; Spring's own 415/400 when there is none."""
    if not request.is_json:
        raise _Spring(
            415,
            f"Content-Type '{request.content_type or 'application/octet-stream'}' is not supported",
        )
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _Spring(400, "JSON parse error: body harus berupa objek JSON")
    return body


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _pdf_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _page_number(value: Any) -> int:
    if isinstance(value, bool):
        _refuse("Parameter page harus bilangan bulat mulai 1")
    try:
        number = float(str(value).strip())
    except ValueError:
        _refuse("Parameter page harus bilangan bulat mulai 1")
    if not number.is_integer() or number < 1:
        _refuse("Parameter page harus bilangan bulat mulai 1")
    return int(number)


def _decimal(value: Any, name: str) -> float:
    if value is None or isinstance(value, bool) or str(value).strip() == "":
        _refuse(f"Parameter {name} wajib diisi")
    try:
        number = float(str(value).strip())
    except ValueError:
        _refuse(f"Parameter {name} harus angka")
    if not math.isfinite(number):
        _refuse(f"Parameter {name} harus angka")
    return number


def _picture(data: bytes) -> Image:
    """`data` as a PNG or JPEG image ready for pyHanko (RGB, or RGBA when transparent)."""
    from PIL import Image as PilImage

    try:
        image = PilImage.open(BytesIO(data))
        if image.format not in ("PNG", "JPEG"):
            raise ValueError(image.format)
        image.load()
        transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        return image.convert("RGBA" if transparent else "RGB")
    except Exception as exc:
        raise _Refusal(BAD_IMAGE_CODE, "Gambar tanda tangan harus PNG atau JPEG") from exc


def _v2_placement(entry: dict[str, Any]) -> _Placement | None:
    tampilan = str(entry.get("tampilan") or "").strip().upper()
    if tampilan == "INVISIBLE":
        return None
    if tampilan != "VISIBLE":
        _refuse("Parameter tampilan harus VISIBLE atau INVISIBLE")
    raw = entry.get("imageBase64")
    if not isinstance(raw, str) or not raw.strip():
        raise _Refusal(BAD_IMAGE_CODE, "imageBase64 wajib diisi untuk tampilan VISIBLE")
    data = _b64(raw.strip())
    if data is None:
        raise _Refusal(BAD_IMAGE_CODE, "imageBase64 bukan base64 yang valid")
    picture = _picture(data)
    if entry.get("page") is None:
        _refuse("Parameter page wajib diisi untuk tampilan VISIBLE")
    page = _page_number(entry.get("page"))
    x, y = _decimal(entry.get("originX"), "originX"), _decimal(entry.get("originY"), "originY")
    width, height = _decimal(entry.get("width"), "width"), _decimal(entry.get("height"), "height")
    if width <= 0 or height <= 0:
        _refuse("Parameter width dan height harus lebih dari 0")
    return _Placement(page, x, y, width, height, from_top=True, image=picture)


# --- appearance and identity -------------------------------------------------------------


def _stamp_style(placement: _Placement) -> Any:
    """A stamp that is only the QR code or the image, as large as the box allows, centred."""
    from pyhanko.pdf_utils import content, layout
    from pyhanko.pdf_utils.images import PdfImage
    from pyhanko.stamp import StaticStampStyle

    inner: content.PdfContent
    if placement.qr is not None:
        inner, natural_width, natural_height = _qr_drawing(placement.qr)
    else:
        assert placement.image is not None
        inner = PdfImage(placement.image)
        natural_width, natural_height = placement.image.width, placement.image.height
    scale = min(placement.width / natural_width, placement.height / natural_height)
    dx = (placement.width - natural_width * scale) / 2
    dy = (placement.height - natural_height * scale) / 2

    class Fitted(content.PdfContent):
        """`inner` scaled and centred by hand: pyHanko's own fitting would compare floats and
        warn about a box 1e-14 pt too wide. Its box stays undefined, so it is drawn at (0, 0)."""

        def render(self) -> bytes:
            inner.set_writer(self.writer)
            data = inner.render()
            self.import_resources(inner.resources)
            return b"q %.6f 0 0 %.6f %.6f %.6f cm %s Q" % (scale, scale, dx, dy, data)

    return StaticStampStyle(
        background=Fitted(),
        background_opacity=1.0,
        border_width=0,
        background_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MIN,
            y_align=layout.AxisAlignment.ALIGN_MIN,
            margins=layout.Margins.uniform(0),
            inner_content_scaling=layout.InnerScaling.NO_SCALING,
        ),
    )


def _qr_drawing(url: str) -> tuple[Any, int, int]:
    """The QR code of `url` as vector PDF content, one unit per module (a quiet zone of two
    modules, white background), with its width and height."""
    import qrcode
    from pyhanko.pdf_utils import content

    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(url)
    code.make(fit=True)
    matrix = code.get_matrix()
    n = len(matrix)
    ops = [b"1 g 0 0 %d %d re f 0 g" % (n, n)]
    for row, cells in enumerate(matrix):
        ops.extend(b"%d %d 1 1 re" % (col, n - 1 - row) for col, dark in enumerate(cells) if dark)
    ops.append(b"f")
    return content.RawContent(b"\n".join(ops)), n, n


def _identity() -> tuple[bytes, Any]:
    """A throwaway root CA (PEM) and a pyHanko SimpleSigner with a certificate it issued."""
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
    from pyhanko.sign.signers import SimpleSigner
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    def name(cn: str) -> cx509.Name:
        return cx509.Name(
            [
                cx509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
                cx509.NameAttribute(
                    NameOID.ORGANIZATION_NAME, "Balai Sertifikasi Elektronik (UJI)"
                ),
                cx509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    def usage(*, ca: bool) -> cx509.KeyUsage:
        return cx509.KeyUsage(
            digital_signature=not ca,
            content_commitment=not ca,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    start = datetime.now(UTC) - timedelta(days=1)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_ski = cx509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        cx509.CertificateBuilder()
        .subject_name(name(FAKE_CA_CN))
        .issuer_name(name(FAKE_CA_CN))
        .public_key(ca_key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(cx509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        cx509.CertificateBuilder()
        .subject_name(name(FAKE_SIGNER_CN))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(cx509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(ca=False), critical=True)
        .add_extension(
            cx509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca_cert.public_bytes(pem)
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (signing_cert,) = load_certs_from_pemder_data(cert.public_bytes(pem))
    signer = SimpleSigner(
        signing_cert=signing_cert,
        signing_key=load_private_key_from_pemder_data(key_pem, passphrase=None),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            load_certs_from_pemder_data(ca_pem)
        ),
    )
    return ca_pem, signer
