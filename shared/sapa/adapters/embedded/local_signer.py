"""The local PAdES signer: pyHanko with a self-made development CA, for laptops and tests."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import textwrap
import threading
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sapa.adapters.pdf import outside_event_loop
from sapa.domain.errors import PermanentError
from sapa.ports import SignedPdf, SignRequest

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyhanko.pdf_utils.generic import DictionaryObject
    from pyhanko.pdf_utils.writer import BasePdfFileWriter
    from pyhanko.sign.signers import PdfSigner, SimpleSigner
    from pyhanko.sign.signers.pdf_signer import PdfSigningSession

    from sapa.ports import Clock

log = logging.getLogger(__name__)

CA_COMMON_NAME = "SAPA Development CA — NOT FOR PRODUCTION"
"""Subject CN of the development root CA (the trust anchor of locally signed PDFs)."""

SIGNER_COMMON_NAME = "Kepala Dinas (PENGEMBANGAN)"
"""Subject CN of the development signing certificate of the head of office."""

UNREADABLE_PDF = "Dokumen PDF tidak dapat dibaca untuk ditandatangani."
ENCRYPTED_PDF = "Dokumen PDF terkunci (terenkripsi) sehingga tidak dapat ditandatangani."
NO_PAGES = "Dokumen PDF tidak memiliki halaman untuk ditandatangani."
NOT_SIGNABLE = "Dokumen PDF tidak dapat ditandatangani."

STAMP_TEXT = "Ditandatangani secara elektronik oleh\n%(signer)s\n%(waktu)s\n%(office)s"
"""Template of the visible stamp's text (next to the QR code)."""

FIELD_PREFIX = "SAPA_TTE_"
"""Signature fields are named SAPA_TTE_1, SAPA_TTE_2, ... (the first unused one)."""

_IDENTITY_DIR = "dev-identity"
_CA_CERT, _CA_KEY = "ca-cert.pem", "ca-key.pem"
_SIGNER_CERT, _SIGNER_KEY = "signer-cert.pem", "signer-key.pem"

# Visible stamp geometry, in PDF points (1/72 inch): bottom-right corner of the last page.
_STAMP_WIDTH, _STAMP_HEIGHT, _STAMP_MARGIN = 310, 96, 36
_A4 = (0.0, 0.0, 595.0, 842.0)


@dataclass(frozen=True)
class _Identity:
    """The PEM material of the development PKI as stored on disk."""

    ca_cert: bytes
    ca_key: bytes
    signer_cert: bytes
    signer_key: bytes


class LocalPadesSigner:
    """Signs PDFs with PAdES baseline-B signatures made by pyHanko, without any external service.

    On first use it creates, under `directory/dev-identity/`, a development root CA
    (`CA_COMMON_NAME`) and a signing certificate for the head of office (`SIGNER_COMMON_NAME`,
    O = `office`, key usage digitalSignature + nonRepudiation), as PEM files (private keys
    0600). Creation is first-writer-wins: the files are written to a temporary directory that is
    then renamed into place, so processes or threads starting together end with one pair and
    later runs reuse it. An existing identity is reused even if `office` has changed since.

    Each signature is an incremental update (the input bytes stay a prefix of the output) with a
    visible field on the last page, bottom right: a QR code to `request.verify_url` and the text
    "Ditandatangani secara elektronik oleh <signer>, <time>, <office>". The signing time (CMS
    signing-time, /M and the stamp) is `clock.now()`. The passphrase is ignored (and never
    logged). Validators trust the result only if `ca_certificate_pem` is one of their roots.
    """

    def __init__(
        self,
        directory: Path,
        *,
        office: str,
        clock: Clock | None = None,
        timezone: str = "Asia/Makassar",
    ) -> None:
        """Remember where the key material lives; nothing is read or generated yet.

        `timezone` is only used to print the signing time on the stamp (default WITA).
        """
        self._directory = Path(directory)
        self._office = office
        self._clock = clock
        self._zone = ZoneInfo(timezone)
        self._lock = threading.Lock()
        self._identity: _Identity | None = None
        self._signer: SimpleSigner | None = None

    @property
    def ca_certificate_pem(self) -> bytes:
        """The development root CA certificate (PEM): the trust anchor for verification."""
        return self._load_identity().ca_cert

    @property
    def signer_certificate_pem(self) -> bytes:
        """The head-of-office signing certificate (PEM) embedded in every signature."""
        return self._load_identity().signer_cert

    def sign(self, request: SignRequest) -> SignedPdf:
        """Sign `request.pdf` with a visible QR stamp on its last page.

        `signature_id` is "local-" + the first 20 hex digits of
        sha256(document_id + NUL + signed bytes): stable for a given output, but signing the same
        request twice yields two different outputs (the signing time differs), hence two ids.

        Raises `PermanentError` when the PDF cannot be read, is encrypted, has no pages, or
        forbids further signatures.
        """
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.pdf_utils.misc import PdfError
        from pyhanko.pdf_utils.text import TextBoxStyle
        from pyhanko.sign import fields
        from pyhanko.sign.general import SigningError
        from pyhanko.sign.signers import PdfSignatureMetadata
        from pyhanko.stamp import QRStampStyle

        simple_signer = self._simple_signer()
        at = self._now().replace(microsecond=0)  # CMS signing-time has whole seconds

        try:
            writer = IncrementalPdfFileWriter(BytesIO(request.pdf))
            if writer.prev.encrypted:
                raise PermanentError(ENCRYPTED_PDF, document_id=request.document_id)
            page_count = int(writer.root["/Pages"]["/Count"])
            if page_count < 1:
                raise PermanentError(NO_PAGES, document_id=request.document_id)
            last_page_ref, _ = writer.find_page_for_modification(-1)  # type: ignore[no-untyped-call]
            box = _stamp_box(_visible_box(last_page_ref.get_object()))
            taken = {name for name, _, _ in fields.enumerate_sig_fields(writer)}
        except PermanentError:
            raise
        except Exception as exc:
            raise PermanentError(UNREADABLE_PDF, document_id=request.document_id) from exc

        field_name = _free_field_name(taken)
        meta = PdfSignatureMetadata(
            field_name=field_name,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
            reason=request.reason,
            location=request.location,
            name=request.signer_name,
        )
        style = QRStampStyle(
            stamp_text=STAMP_TEXT,
            text_box_style=TextBoxStyle(font_size=8, leading=10),
            border_width=1,
            innsep=3,
        )
        pdf_signer = _clocked_pdf_signer_class()(
            meta,
            simple_signer,
            system_time=at,
            stamp_style=style,
            new_field_spec=fields.SigFieldSpec(sig_field_name=field_name, on_page=-1, box=box),
        )
        text_params = {
            "url": request.verify_url,
            "signer": _stamp_line(request.signer_name),
            "waktu": at.astimezone(self._zone).strftime("%d-%m-%Y %H:%M:%S %Z"),
            "office": _stamp_line(self._office),
        }
        try:
            out = outside_event_loop(
                pdf_signer.sign_pdf, writer, appearance_text_params=text_params
            )
        except PdfError as exc:
            raise PermanentError(UNREADABLE_PDF, document_id=request.document_id) from exc
        except SigningError as exc:
            raise PermanentError(
                NOT_SIGNABLE, document_id=request.document_id, reason=str(exc)
            ) from exc
        signed = out.getvalue()
        if not signed.startswith(request.pdf):  # pyHanko's incremental writer guarantees this
            raise RuntimeError("the signed PDF does not start with the original bytes")

        digest = hashlib.sha256(request.document_id.encode("utf-8") + b"\0" + signed)
        signature_id = "local-" + digest.hexdigest()[:20]
        log.info(
            "signed document %s: %d page(s), %d -> %d bytes, field %s, signature %s",
            request.document_id,
            page_count,
            len(request.pdf),
            len(signed),
            field_name,
            signature_id,
        )
        return SignedPdf(pdf=signed, signature_id=signature_id, signed_at=at)

    def _now(self) -> datetime:
        if self._clock is None:
            from sapa.adapters.clock import SystemClock

            self._clock = SystemClock()
        return self._clock.now()

    def _load_identity(self) -> _Identity:
        with self._lock:
            if self._identity is None:
                self._identity = _load_or_create_identity(
                    self._directory, office=self._office, now=self._now()
                )
            return self._identity

    def _simple_signer(self) -> SimpleSigner:
        identity = self._load_identity()
        with self._lock:
            if self._signer is None:
                from pyhanko.keys import (
                    load_certs_from_pemder_data,
                    load_private_key_from_pemder_data,
                )
                from pyhanko.sign.signers import SimpleSigner
                from pyhanko_certvalidator.registry import SimpleCertificateStore

                (signer_cert,) = load_certs_from_pemder_data(identity.signer_cert)
                ca_certs = load_certs_from_pemder_data(identity.ca_cert)
                registry = SimpleCertificateStore.from_certs(ca_certs)  # type: ignore[no-untyped-call]
                self._signer = SimpleSigner(
                    signing_cert=signer_cert,
                    signing_key=load_private_key_from_pemder_data(
                        identity.signer_key, passphrase=None
                    ),
                    cert_registry=registry,
                )
            return self._signer


@cache
def _clocked_pdf_signer_class() -> Callable[..., PdfSigner]:
    """A PdfSigner whose signing sessions use a given time instead of the system clock."""
    from pyhanko.sign.signers import PdfSigner

    class ClockedPdfSigner(PdfSigner):
        def __init__(self, *args: Any, system_time: datetime, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.system_time = system_time

        def init_signing_session(
            self, pdf_out: BasePdfFileWriter, existing_fields_only: bool = False
        ) -> PdfSigningSession:
            session = super().init_signing_session(pdf_out, existing_fields_only)
            session.system_time = self.system_time
            return session

    return ClockedPdfSigner


def _free_field_name(taken: set[str]) -> str:
    n = 1
    while f"{FIELD_PREFIX}{n}" in taken:
        n += 1
    return f"{FIELD_PREFIX}{n}"


def _visible_box(page: DictionaryObject) -> tuple[float, float, float, float]:
    """The page's CropBox (else MediaBox, else A4), following inheritance, normalised."""
    node: Any = page
    seen = 0
    while node is not None and seen < 64:
        for key in ("/CropBox", "/MediaBox"):
            if key in node:
                x1, y1, x2, y2 = (float(v) for v in node[key])
                return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)
        node = node.get("/Parent")
        node = node.get_object() if node is not None else None
        seen += 1
    return _A4


def _stamp_box(page_box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The stamp's rectangle: bottom right of the page, shrunk to fit small pages."""
    llx, lly, urx, ury = page_box
    width = max(1, min(_STAMP_WIDTH, int(urx - llx) - 2 * _STAMP_MARGIN))
    height = max(1, min(_STAMP_HEIGHT, int(ury - lly) - 2 * _STAMP_MARGIN))
    right = int(urx) - _STAMP_MARGIN
    bottom = int(lly) + _STAMP_MARGIN
    return right - width, bottom, right, bottom + height


def _stamp_line(text: str, width: int = 44) -> str:
    """Text for the stamp's standard (Courier) font: ASCII only, wrapped to `width`."""
    ascii_text = (
        unicodedata.normalize("NFKD", text.replace("—", "-").replace("–", "-"))
        .encode("ascii", "ignore")
        .decode("ascii")
    )
    return "\n".join(textwrap.wrap(" ".join(ascii_text.split()), width)) or "-"


def _load_or_create_identity(directory: Path, *, office: str, now: datetime) -> _Identity:
    """Read the stored PKI, creating it first (first writer wins) if there is none."""
    final = directory / _IDENTITY_DIR
    if not final.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{_IDENTITY_DIR}-", dir=directory))
        try:
            _write_identity(tmp, _generate_identity(office, now))
            try:
                os.rename(tmp, final)  # atomic; fails if another process got there first
                log.info("created a development signing identity in %s", final)
            except OSError:
                if not (final / _SIGNER_KEY).is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _read_identity(final)


def _read_identity(path: Path) -> _Identity:
    try:
        identity = _Identity(
            ca_cert=(path / _CA_CERT).read_bytes(),
            ca_key=(path / _CA_KEY).read_bytes(),
            signer_cert=(path / _SIGNER_CERT).read_bytes(),
            signer_key=(path / _SIGNER_KEY).read_bytes(),
        )
    except OSError as exc:
        raise PermanentError(
            "Sertifikat penanda tangan lokal tidak lengkap; hapus folder ini agar dibuat ulang.",
            path=str(path),
        ) from exc

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(identity.signer_cert)
    key = serialization.load_pem_private_key(identity.signer_key, password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise PermanentError(
            "Kunci penanda tangan lokal tidak cocok dengan sertifikatnya.", path=str(path)
        )
    return identity


def _write_identity(path: Path, identity: _Identity) -> None:
    for name, data, mode in (
        (_CA_CERT, identity.ca_cert, 0o644),
        (_CA_KEY, identity.ca_key, 0o600),
        (_SIGNER_CERT, identity.signer_cert, 0o644),
        (_SIGNER_KEY, identity.signer_key, 0o600),
    ):
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(path / name, flags, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    with contextlib.suppress(OSError):  # directory fsync is POSIX-only
        dir_fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _generate_identity(office: str, now: datetime) -> _Identity:
    """A fresh development root CA and a head-of-office signing certificate it issued."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def name(common_name: str) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "ID")]
        if office.strip():
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, office.strip()[:64]))
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        return x509.Name(attrs)

    def key_usage(*, signing: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=signing,
            content_commitment=signing,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=not signing,
            crl_sign=not signing,
            encipher_only=False,
            decipher_only=False,
        )

    # Valid from a little before both the injected clock and the real clock: verifiers check
    # validity at their own (real) time, tests may run with a fixed clock.
    not_before = min(now, datetime.now(UTC)) - timedelta(days=1)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name(CA_COMMON_NAME))
        .issuer_name(name(CA_COMMON_NAME))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=20 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(signing=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer_cert = (
        x509.CertificateBuilder()
        .subject_name(name(SIGNER_COMMON_NAME))
        .issuer_name(ca_cert.subject)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=5 * 365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(signing=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def key_pem(key: rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    pem = serialization.Encoding.PEM
    return _Identity(
        ca_cert=ca_cert.public_bytes(pem),
        ca_key=key_pem(ca_key),
        signer_cert=signer_cert.public_bytes(pem),
        signer_key=key_pem(signer_key),
    )
