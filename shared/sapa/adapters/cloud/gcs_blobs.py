"""BlobStore on Google Cloud Storage: the cloud counterpart of `FsBlobStore`.

Each object is stored at its key with `content_type` and custom metadata `sha256` (hex digest of
the bytes). Objects are write-once: `put` uploads with `if_generation_match=0`, a precondition
that only creates, so of racing writers exactly one succeeds and the others read the winner's
`sha256` (same bytes → the winner's ref, other bytes → `Conflict`). A retried upload whose first
attempt landed fails the precondition too and returns the same ref. Before uploading, `put` also
looks for an existing object so a retry does not re-send the bytes.

Keys follow the filesystem store's rule (no `..`, no absolute or backslash keys, no empty
segments): an invalid key raises `PermanentError` before any request is made.

Importing this module does not import google.cloud: the client library is loaded when the store
is built. Backend errors (unavailable, throttled, internal, timeouts, lost connections) become
`TransientError`.

`signed_url` gives a V4 signed GET URL (short TTL, `response-content-disposition`). It signs
with the credentials' own key where they have one (a service-account key), otherwise, as on
Cloud Run and Cloud Functions, through IAM's signBlob with the runtime service account's email
and access token (the account needs roles/iam.serviceAccountTokenCreator on itself).
Credentials that can do neither (anonymous), or a signing that IAM refuses, give None (the
latter logged as an error): the function serves the bytes.

Emulator note: fake-gcs-server (used by the contract tests) ignores the generation precondition
on resumable uploads (> 8 MiB); real GCS honours it. Small objects, and the existence check
before every upload, keep the contract's semantics there.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from sapa.adapters.blob_keys import check_key
from sapa.domain.errors import Conflict, NotFound, PermanentError, TransientError
from sapa.ports import BlobRef

_DEFAULT_TYPE = "application/octet-stream"
MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600  # V4's limit
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9._-]+")

log = logging.getLogger(__name__)


def attachment_disposition(filename: str) -> str:
    """`Content-Disposition: attachment` naming `filename`: a plain ASCII name for every
    browser, and the exact name (RFC 6266 / 5987) for those that read it."""
    plain = _NOT_PLAIN.sub("_", filename).strip("._") or "unduhan"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def check_ttl(ttl_seconds: int) -> None:
    if not 1 <= ttl_seconds <= MAX_SIGNED_URL_SECONDS:
        raise PermanentError("a signed URL lives between 1 second and 7 days", ttl=ttl_seconds)


def _transient_types() -> tuple[type[BaseException], ...]:
    import requests
    from google.api_core import exceptions as gx
    from google.auth import exceptions as auth_exceptions

    return (
        gx.ServiceUnavailable,
        gx.TooManyRequests,
        gx.InternalServerError,
        gx.BadGateway,
        gx.GatewayTimeout,
        gx.DeadlineExceeded,
        gx.RetryError,
        requests.ConnectionError,
        requests.Timeout,
        auth_exceptions.TransportError,
        TimeoutError,
        ConnectionError,
    )


class GcsBlobStore:
    """Objects in one GCS bucket. Thread-safe (one client shared by all threads)."""

    def __init__(
        self,
        bucket: str,
        *,
        client: Any = None,
        project: str | None = None,
        signing_credentials: Any = None,
    ) -> None:
        if not bucket:
            raise PermanentError("no GCS bucket configured")
        if client is None:
            import google.cloud.storage as storage

            client = storage.Client(project=project)
        self.client = client
        # what signs URLs: given (tests: a throwaway key), else the client's own credentials
        self.signing_credentials = signing_credentials or getattr(client, "_credentials", None)
        self._refresh_lock = threading.Lock()
        self.bucket_name = bucket
        self._bucket = client.bucket(bucket)

    @contextlib.contextmanager
    def _backend(self, operation: str, key: str) -> Iterator[None]:
        try:
            yield
        except (TransientError, PermanentError):
            raise
        except Exception as exc:
            if isinstance(exc, _transient_types()):
                raise TransientError(
                    "Cloud Storage is unavailable or busy",
                    operation=operation,
                    key=key,
                    error=str(exc),
                ) from exc
            raise

    def put(self, key: str, data: bytes, content_type: str) -> BlobRef:
        check_key(key)
        from google.api_core import exceptions as gx

        ref = BlobRef(key, hashlib.sha256(data).hexdigest(), len(data), content_type)
        with self._backend("put", key):
            existing = self._bucket.get_blob(key)
            if existing is not None:
                return self._same_or_conflict(key, existing, ref)
            blob = self._bucket.blob(key)
            blob.metadata = {"sha256": ref.sha256}
            try:
                blob.upload_from_string(data, content_type=content_type, if_generation_match=0)
            except gx.PreconditionFailed:
                # another writer (or an earlier attempt of this one) created it first
                existing = self._bucket.get_blob(key)
                if existing is None:
                    raise TransientError(
                        "blob vanished while it was being written", key=key
                    ) from None
                return self._same_or_conflict(key, existing, ref)
        return ref

    def _same_or_conflict(self, key: str, blob: Any, ref: BlobRef) -> BlobRef:
        sha = (blob.metadata or {}).get("sha256")
        if not sha:
            # written by something else than this store: hash the stored bytes
            sha = hashlib.sha256(blob.download_as_bytes()).hexdigest()
        if sha != ref.sha256:
            raise Conflict("blob exists with other content", key=key)
        return BlobRef(key, ref.sha256, ref.size, blob.content_type or _DEFAULT_TYPE)

    def get(self, key: str) -> bytes:
        check_key(key)
        from google.api_core import exceptions as gx

        with self._backend("get", key):
            try:
                return bytes(self._bucket.blob(key).download_as_bytes())
            except gx.NotFound:
                raise NotFound("blob not found", key=key) from None

    def exists(self, key: str) -> bool:
        check_key(key)
        with self._backend("exists", key):
            return bool(self._bucket.blob(key).exists())

    def delete(self, key: str) -> bool:
        check_key(key)
        from google.api_core import exceptions as gx

        with self._backend("delete", key):
            try:
                self._bucket.blob(key).delete()
            except gx.NotFound:
                return False
        return True

    def signed_url(
        self,
        key: str,
        *,
        ttl_seconds: int,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A V4 signed GET URL valid for `ttl_seconds` (None if these credentials cannot sign)."""
        check_key(key)
        check_ttl(ttl_seconds)
        from google.auth import exceptions as auth_exceptions

        try:
            how = self.signing_args()
            if how is None:
                return None
            url = self._bucket.blob(key).generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=ttl_seconds),
                method="GET",
                response_disposition=attachment_disposition(filename) if filename else None,
                response_type=content_type,
                **how,
            )
        except (auth_exceptions.TransportError, auth_exceptions.RefreshError) as exc:
            # IAM's signBlob refused (no serviceAccountTokenCreator) or is unreachable: the
            # download still works through the function, and the log says what to fix.
            log.error("cannot sign a Cloud Storage URL (%s); serving through the function", exc)
            return None
        return str(url)

    def signing_args(self) -> dict[str, Any] | None:
        """How `generate_signed_url` signs: with the credentials' private key, or through IAM
        (the service account's email and a current access token) when they have none."""
        from google.auth import credentials as gcred

        creds = self.signing_credentials
        if isinstance(creds, gcred.Signing) and getattr(creds, "signer", None) is not None:
            return {"credentials": creds}
        if creds is None or not hasattr(creds, "service_account_email"):
            log.warning("Cloud Storage credentials cannot sign URLs; serving through the function")
            return None
        with self._refresh_lock:
            # Compute Engine credentials name the account "default" until first refreshed
            if not creds.valid or creds.service_account_email == "default":
                from google.auth.transport import requests as greq

                creds.refresh(greq.Request())
            return {
                "service_account_email": creds.service_account_email,
                "access_token": creds.token,
            }
