"""A fake BSrE "Esign Client Service" (API v1 and v2) for tests, served over real HTTP.

It follows the contract `sapa.adapters.bsre_signer` implements: HTTP Basic auth, v1 multipart
``POST /api/sign/pdf`` (signed PDF as the body, ``id_dokumen`` header), v2 JSON
``POST /api/v2/sign/pdf`` (``{"file": [base64], "time": ms}``), v1 ``POST /api/sign/verify``,
and JSON errors ``{"status_code": <int>, "error": "<text>"}``.

Signatures are real: PAdES made by pyHanko with a throwaway CA and signing certificate
generated in memory per instance (`ca_certificate_pem`, signer CN `FAKE_SIGNER_CN`). Like BSrE,
the fake re-saves an unsigned document before signing it, so the original bytes are NOT a
prefix of the result. The QR stamp encodes ``linkQR`` and sits at the requested page and box.

Every request is recorded in `received` (fields, uploaded files, the PDF), but never a
passphrase: only whether one was present and whether it matched (the expected passphrase
itself is kept as a sha256 digest). Failure modes are set with `mode` (see `MODES`).

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
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any, Literal, NoReturn

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from sapa.domain.errors import PermanentError
from sapa.pdf import outside_event_loop, pdf_page_count, verify_signature

FAKE_CA_CN = "BSrE Fake Root CA (UJI, BUKAN PRODUKSI)"
FAKE_SIGNER_CN = "Kepala Dinas Dukcapil Gowa (UJI BSrE)"
USERNAME = "sapa-esign"
PASSWORD = "basic-auth-rahasia-uji"
NIK = "7306012345678901"
PASSPHRASE = "Rahasia#TTE-2026"

WRONG_PASSPHRASE_CODE = 2031
UNKNOWN_NIK_CODE = 2011
CERT_EXPIRED_CODE = 2021  # assumption shared with the adapter
CERT_REVOKED_CODE = 2022  # assumption shared with the adapter
BAD_REQUEST_CODE = 1001  # the fake's own: a missing or invalid parameter
NOT_A_PDF_CODE = 1002  # the fake's own: the uploaded file is not a readable PDF

Mode = Literal[
    "wrong_passphrase_500",  # answer 2031 with HTTP 500 (as some installations do)
    "unknown_nik",  # answer 2011 whatever the NIK
    "expired",  # answer 2021 (certificate expired)
    "revoked",  # answer 2022 (certificate revoked/suspended)
    "http_500",  # HTTP 500 with a JSON error without a known code
    "http_429",  # HTTP 429 (throttled)
    "slow",  # wait `slow_seconds` before answering normally
    "not_pdf",  # HTTP 200 with an HTML page
    "broken_pdf",  # HTTP 200 with bytes that start with %PDF but do not parse
    "unsigned",  # HTTP 200 with the (re-saved) document, not signed
    "no_id",  # v1: a signed PDF without the id_dokumen header
    "echo_passphrase",  # HTTP 400 whose error text repeats the passphrase it received
    "redirect",  # HTTP 307 to another address
]
MODES: tuple[str, ...] = Mode.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Received:
    """One request as the fake saw it (no passphrase, only flags about it)."""

    method: str
    path: str
    api: str  # "v1" | "v2" | "verify" | "other"
    auth_ok: bool
    fields: dict[str, Any]  # v1: form fields; v2: "nik" + signatureProperties[0] (+ counts)
    files: dict[str, UploadedFile]
    passphrase_present: bool
    passphrase_ok: bool
    pdf: bytes | None
    status: int  # what the fake answered


@dataclass
class _Seen:
    api: str
    auth_ok: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    passphrase_present: bool = False
    passphrase_ok: bool = False
    pdf: bytes | None = None


class _Refusal(Exception):
    def __init__(self, http_status: int, code: int, error: str) -> None:
        super().__init__(error)
        self.http_status, self.code, self.error = http_status, code, error


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
    ) -> None:
        self.username = username
        self.password = password
        self.niks = niks
        self.nik = niks[0]
        self._passphrase_sha256 = hashlib.sha256(passphrase.encode("utf-8")).digest()
        self.slow_seconds = slow_seconds
        self.mode: Mode | None = None
        self.issued_ids: list[str] = []
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._generation = 0
        self._server: BaseWSGIServer | None = None
        self.base_url = ""
        self.ca_certificate_pem, self._signer = _identity()
        self.app = self._create_app()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        with self._lock:
            self._release = threading.Event()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
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
        """Forget recorded requests and clear the failure mode. Requests still in flight (a
        "slow" one the client gave up on) are answered 503 at once and not recorded."""
        with self._lock:
            self._generation += 1
            self._received.clear()
            self.issued_ids.clear()
            release, self._release = self._release, threading.Event()
        release.set()
        self.mode = None

    # --- the app --------------------------------------------------------------------------

    def _create_app(self) -> Flask:
        app = Flask("bsre_fake")

        @app.post("/api/sign/pdf")
        def sign_v1() -> Response:
            return self._handle("v1", self._sign_v1)

        @app.post("/api/v2/sign/pdf")
        def sign_v2() -> Response:
            return self._handle("v2", self._sign_v2)

        @app.post("/api/sign/verify")
        def verify_v1() -> Response:
            return self._handle("verify", self._verify)

        return app

    def _handle(self, api: str, action: Any) -> Response:
        seen = _Seen(api=api)
        with self._lock:
            generation = self._generation
        try:
            response: Response = action(seen)
        except _Refusal as refusal:
            response = jsonify({"status_code": refusal.code, "error": refusal.error})
            response.status_code = refusal.http_status
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
                    pdf=seen.pdf,
                    status=response.status_code,
                )
            )
        return response

    def _gate(self, seen: _Seen) -> Response | None:
        """Auth and the service-level failure modes, before the request is looked at."""
        auth = request.authorization
        seen.auth_ok = bool(
            auth is not None
            and auth.type == "basic"
            and hmac.compare_digest(str(auth.username), self.username)
            and hmac.compare_digest(str(auth.password), self.password)
        )
        if not seen.auth_ok:
            raise _Refusal(401, 401, "Unauthorized")
        if self.mode == "slow":
            with self._lock:
                release = self._release
            if release.wait(self.slow_seconds):  # reset or stopped meanwhile
                raise _Refusal(503, 503, "Service Unavailable")
        if self.mode == "http_500":
            raise _Refusal(500, 500, "Internal Server Error")
        if self.mode == "http_429":
            raise _Refusal(429, 429, "Too Many Requests")
        if self.mode == "redirect":
            return Response(status=307, headers={"Location": "http://127.0.0.1:9/elsewhere"})
        return None

    def _check_signer(self, seen: _Seen, nik: str, passphrase: str) -> None:
        seen.passphrase_present = bool(passphrase)
        digest = hashlib.sha256(passphrase.encode("utf-8")).digest()
        seen.passphrase_ok = hmac.compare_digest(digest, self._passphrase_sha256)
        if self.mode == "echo_passphrase":
            raise _Refusal(400, 9999, f"Gagal memproses passphrase '{passphrase}' untuk NIK {nik}")
        if not nik or not passphrase:
            raise _Refusal(400, BAD_REQUEST_CODE, "Parameter nik dan passphrase wajib diisi")
        if nik not in self.niks or self.mode == "unknown_nik":
            raise _Refusal(400, UNKNOWN_NIK_CODE, "User tidak terdaftar")
        if not seen.passphrase_ok:
            raise _Refusal(400, WRONG_PASSPHRASE_CODE, "Passphrase anda salah")
        if self.mode == "wrong_passphrase_500":
            raise _Refusal(500, WRONG_PASSPHRASE_CODE, "Passphrase anda salah")
        if self.mode == "expired":
            raise _Refusal(400, CERT_EXPIRED_CODE, "Sertifikat user telah kadaluarsa")
        if self.mode == "revoked":
            raise _Refusal(400, CERT_REVOKED_CODE, "Sertifikat user telah dicabut")

    def _sign_v1(self, seen: _Seen) -> Response:
        early = self._gate(seen)
        if early is not None:
            return early
        form = request.form
        seen.fields = {k: v for k, v in form.items() if k != "passphrase"}
        for name, upload in request.files.items():
            data = upload.read()
            seen.files[name] = UploadedFile(
                filename=upload.filename or "",
                content_type=upload.mimetype,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            if name == "file":
                seen.pdf = data
        if seen.pdf is None:
            raise _Refusal(400, BAD_REQUEST_CODE, "Parameter file wajib diisi")
        self._check_signer(seen, form.get("nik", ""), form.get("passphrase", ""))
        tampilan = form.get("tampilan", "")
        if tampilan not in ("visible", "invisible"):
            raise _Refusal(400, BAD_REQUEST_CODE, "Parameter tampilan harus visible/invisible")
        placement: tuple[int, tuple[float, float, float, float]] | None = None
        link_qr: str | None = None
        if tampilan == "visible":
            image = form.get("image", "")
            if image == "false":
                link_qr = form.get("linkQR") or _refuse("Parameter linkQR wajib diisi")
            elif image == "true":
                if "imageTTD" not in seen.files:
                    _refuse("Parameter imageTTD wajib diisi")
            else:
                _refuse("Parameter image harus true/false")
            placement = (
                _integer(form.get("page"), "page"),
                (
                    _decimal(form.get("xAxis"), "xAxis"),
                    _decimal(form.get("yAxis"), "yAxis"),
                    _decimal(form.get("width"), "width"),
                    _decimal(form.get("height"), "height"),
                ),
            )
        signed = self._sign(
            seen.pdf, placement, link_qr, form.get("reason", ""), form.get("location", "")
        )
        document_id = uuid.uuid4().hex
        if self.mode == "not_pdf":
            return Response("<html><body>Gateway</body></html>", 200, mimetype="text/html")
        headers = {} if self.mode == "no_id" else {"id_dokumen": document_id}
        if self.mode != "no_id":
            with self._lock:
                self.issued_ids.append(document_id)
        return Response(signed, 200, mimetype="application/pdf", headers=headers)

    def _sign_v2(self, seen: _Seen) -> Response:
        started = time.monotonic()
        early = self._gate(seen)
        if early is not None:
            return early
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            _refuse("Body harus berupa JSON")
        props_list = body.get("signatureProperties")
        files = body.get("file")
        if not (isinstance(props_list, list) and props_list and isinstance(props_list[0], dict)):
            _refuse("Parameter signatureProperties wajib diisi")
        props: dict[str, Any] = props_list[0]
        seen.fields = {"nik": body.get("nik"), **props}
        if "imageBase64" in props:
            seen.fields["imageBase64"] = f"<{len(str(props['imageBase64']))} karakter>"
        seen.fields["signatureProperties_count"] = len(props_list)
        seen.fields["file_count"] = len(files) if isinstance(files, list) else 0
        seen.fields["keys"] = sorted(body)
        if not (isinstance(files, list) and len(files) == 1 and isinstance(files[0], str)):
            _refuse("Parameter file harus berisi satu dokumen base64")
        try:
            seen.pdf = base64.b64decode(files[0], validate=True)
        except (binascii.Error, ValueError):
            _refuse("Parameter file bukan base64")
        self._check_signer(seen, str(body.get("nik") or ""), str(body.get("passphrase") or ""))
        tampilan = props.get("tampilan")
        placement = None
        link_qr = None
        if tampilan == "VISIBLE":
            link_qr = props.get("linkQR") or None
            if link_qr is None and not props.get("imageBase64"):
                _refuse("Tampilan VISIBLE membutuhkan imageBase64 atau linkQR")
            placement = (
                _integer(props.get("page"), "page"),
                (
                    _decimal(props.get("originX"), "originX"),
                    _decimal(props.get("originY"), "originY"),
                    _decimal(props.get("width"), "width"),
                    _decimal(props.get("height"), "height"),
                ),
            )
        elif tampilan != "INVISIBLE":
            _refuse("Parameter tampilan harus VISIBLE/INVISIBLE")
        signed = self._sign(
            seen.pdf,
            placement,
            link_qr,
            str(props.get("reason") or ""),
            str(props.get("location") or ""),
        )
        if self.mode == "not_pdf":
            return Response("<html><body>Gateway</body></html>", 200, mimetype="text/html")
        elapsed = int((time.monotonic() - started) * 1000)
        return jsonify({"file": [base64.b64encode(signed).decode("ascii")], "time": elapsed})

    def _verify(self, seen: _Seen) -> Response:
        early = self._gate(seen)
        if early is not None:
            return early
        upload = request.files.get("signed_file")
        if upload is None:
            _refuse("Parameter signed_file wajib diisi")
        data = upload.read()
        seen.pdf = data
        seen.files["signed_file"] = UploadedFile(
            upload.filename or "", upload.mimetype, len(data), hashlib.sha256(data).hexdigest()
        )
        name = upload.filename or "dokumen.pdf"
        try:
            report = verify_signature(data, [self.ca_certificate_pem])
        except PermanentError as exc:
            return jsonify(
                {
                    "nama_dokumen": name,
                    "jumlah_signature": 0,
                    "notes": exc.message,
                    "summary": "NO_SIGNATURE",
                }
            )
        valid = report.valid and report.trusted
        return jsonify(
            {
                "nama_dokumen": name,
                "jumlah_signature": 1,
                "notes": "Dokumen valid, Sertifikat yang digunakan terpercaya"
                if valid
                else "Dokumen tidak valid",
                "summary": "VALID" if valid else "INVALID",
                "details": [
                    {
                        "signature_field": report.field_name,
                        "info_signer": {
                            "signer_name": report.signer_common_name,
                            "cert_user_certified": report.trusted,
                        },
                        "signature_document": {
                            "document_integrity": report.intact,
                            "signed_in": report.signing_time.isoformat()
                            if report.signing_time
                            else None,
                        },
                    }
                ],
            }
        )

    # --- signing --------------------------------------------------------------------------

    def _sign(
        self,
        pdf: bytes,
        placement: tuple[int, tuple[float, float, float, float]] | None,
        link_qr: str | None,
        reason: str,
        location: str,
    ) -> bytes:
        """Really sign `pdf` (re-saved first unless already signed); modes may spoil it."""
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.pdf_utils.reader import PdfFileReader
        from pyhanko.pdf_utils.writer import copy_into_new_writer
        from pyhanko.sign import fields
        from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner
        from pyhanko.stamp import QRStampStyle, TextStampStyle

        try:
            pages = pdf_page_count(pdf)
            reader = PdfFileReader(BytesIO(pdf), strict=False)
            if reader.embedded_signatures:
                source = BytesIO(pdf)
            else:  # BSrE re-saves the document: the original is no prefix of the result
                source = BytesIO()
                copy_into_new_writer(reader).write(source)  # type: ignore[no-untyped-call]
                source.seek(0)
        except Exception as exc:
            raise _Refusal(400, NOT_A_PDF_CODE, "Dokumen bukan PDF yang valid") from exc
        if self.mode == "broken_pdf":
            return b"%PDF-1.7\n% rusak: bukan dokumen\n"
        if self.mode == "unsigned":
            return source.getvalue()

        writer = IncrementalPdfFileWriter(source, strict=False)
        taken = {name for name, _, _ in fields.enumerate_sig_fields(writer)}
        n = 1
        while f"BSrE_{n}" in taken:
            n += 1
        spec = fields.SigFieldSpec(sig_field_name=f"BSrE_{n}")
        style: Any = None
        if placement is not None:
            page, (x, y, w, h) = placement
            if not 1 <= page <= pages:
                raise _Refusal(400, BAD_REQUEST_CODE, f"Halaman {page} tidak ditemukan")
            box = (round(x), round(y), round(x + w), round(y + h))
            spec = fields.SigFieldSpec(sig_field_name=f"BSrE_{n}", on_page=page - 1, box=box)
            style = (
                QRStampStyle(stamp_text="Ditandatangani secara elektronik\n%(signer)s\nBSrE (UJI)")
                if link_qr
                else TextStampStyle(stamp_text="%(signer)s")
            )
        meta = PdfSignatureMetadata(
            field_name=f"BSrE_{n}",
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
            reason=reason or None,
            location=location or None,
        )
        signer = PdfSigner(meta, self._signer, stamp_style=style, new_field_spec=spec)
        params: dict[str, str] = {"signer": FAKE_SIGNER_CN}
        if link_qr:
            params["url"] = link_qr
        out = outside_event_loop(signer.sign_pdf, writer, appearance_text_params=params)
        return bytes(out.getvalue())


def _refuse(message: str) -> NoReturn:
    raise _Refusal(400, BAD_REQUEST_CODE, message)


def _integer(value: Any, name: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        _refuse(f"Parameter {name} harus bilangan bulat")


def _decimal(value: Any, name: str) -> float:
    try:
        return float(str(value))
    except ValueError:
        _refuse(f"Parameter {name} harus angka")


def _identity() -> tuple[bytes, Any]:
    """A throwaway root CA (PEM) and a pyHanko SimpleSigner with a certificate it issued."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
    from pyhanko.sign.signers import SimpleSigner
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Balai Sertifikasi Elektronik (UJI)"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    def usage(*, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
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
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name(FAKE_CA_CN))
        .issuer_name(name(FAKE_CA_CN))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(FAKE_SIGNER_CN))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(ca=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
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
