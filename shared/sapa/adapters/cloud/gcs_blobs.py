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

Emulator note: fake-gcs-server (used by the contract tests) ignores the generation precondition
on resumable uploads (> 8 MiB); real GCS honours it. Small objects, and the existence check
before every upload, keep the contract's semantics there.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

from sapa.adapters.blob_keys import check_key
from sapa.domain.errors import Conflict, NotFound, PermanentError, TransientError
from sapa.ports import BlobRef

_DEFAULT_TYPE = "application/octet-stream"


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

    def __init__(self, bucket: str, *, client: Any = None, project: str | None = None) -> None:
        if not bucket:
            raise PermanentError("no GCS bucket configured")
        if client is None:
            import google.cloud.storage as storage

            client = storage.Client(project=project)
        self.client = client
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
