"""BlobStore on S3 or an S3-compatible service (MinIO, Ceph RGW, ...): the counterpart of
`FsBlobStore` for deployments outside Google Cloud.

Each object is stored at its key with `ContentType` and user metadata `sha256` (hex digest of the
bytes). Objects are write-once: `put` first looks for an existing object (same bytes → its ref,
other bytes → `Conflict`), then uploads with `IfNoneMatch="*"`, S3's create-only conditional
write, so of racing writers exactly one succeeds and the others read the winner's `sha256`.
A retried upload whose first attempt landed fails the condition too and returns the same ref.

Race caveat: servers that do not implement conditional writes (AWS S3 has since 2024-08; older
MinIO/Ceph versions and some other S3-compatible services silently ignore `If-None-Match`) fall
back to check-then-put: two writers of different bytes racing between the existence check and
the upload can both succeed, the last one wins. The contract tests run against moto, which
implements the condition. `delete` (retention only) is likewise head + delete.

Keys follow the filesystem store's rule (no `..`, no absolute or backslash keys, no empty
segments): an invalid key raises `PermanentError` before any request is made.

`signed_url` gives a presigned GET URL (SigV4, short TTL, `response-content-disposition`): signing
is local, with the client's credentials.

Importing this module does not import boto3: it is loaded when the store is built. Backend
errors (5xx, throttling, connection failures, timeouts) become `TransientError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from typing import Any

from sapa.adapters.blob_keys import check_key
from sapa.adapters.cloud.gcs_blobs import attachment_disposition, check_ttl
from sapa.domain.errors import Conflict, NotFound, PermanentError, TransientError
from sapa.ports import BlobRef

_DEFAULT_TYPE = "application/octet-stream"
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_THROTTLED = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequests",
    "RequestLimitExceeded",
    "RequestTimeout",
    "ServiceUnavailable",
    "InternalError",
}
_CONDITIONAL_ATTEMPTS = 5  # AWS answers 409 to a conditional write racing another one: retry


def _error(exc: BaseException) -> tuple[str, int]:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


class S3BlobStore:
    """Objects in one S3 bucket. Thread-safe (boto3 clients may be shared between threads)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise PermanentError("no S3 bucket configured")
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url or None,
                region_name=region or None,
                # SigV4 everywhere, presigned URLs included (botocore may presign with SigV2)
                config=Config(signature_version="s3v4"),
            )
        self.client = client
        self.bucket = bucket

    @contextlib.contextmanager
    def _backend(self, operation: str, key: str) -> Iterator[None]:
        from botocore import exceptions as bx

        try:
            yield
        except (TransientError, PermanentError):
            raise
        except bx.ClientError as exc:
            code, status = _error(exc)
            if status >= 500 or status == 429 or code in _THROTTLED:
                raise TransientError(
                    "object storage is unavailable or busy",
                    operation=operation,
                    key=key,
                    error=str(exc),
                ) from exc
            raise
        except (bx.ConnectionError, bx.HTTPClientError, TimeoutError, ConnectionError) as exc:
            # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ... included
            raise TransientError(
                "object storage is unreachable", operation=operation, key=key, error=str(exc)
            ) from exc

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore import exceptions as bx

        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=key))
        except bx.ClientError as exc:
            if _error(exc)[0] in _NOT_FOUND or _error(exc)[1] == 404:
                return None
            raise

    def put(self, key: str, data: bytes, content_type: str) -> BlobRef:
        check_key(key)
        from botocore import exceptions as bx

        ref = BlobRef(key, hashlib.sha256(data).hexdigest(), len(data), content_type)
        with self._backend("put", key):
            for attempt in range(_CONDITIONAL_ATTEMPTS):
                head = self._head(key)
                if head is not None:
                    return self._same_or_conflict(key, head, ref)
                try:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=data,
                        ContentType=content_type,
                        Metadata={"sha256": ref.sha256},
                        IfNoneMatch="*",
                    )
                    return ref
                except bx.ClientError as exc:
                    code, status = _error(exc)
                    if status == 412 or code == "PreconditionFailed":
                        continue  # someone created it first: the next head decides
                    if status == 409 and code == "ConditionalRequestConflict":
                        time.sleep(0.05 * (attempt + 1))
                        continue
                    raise
        raise TransientError("blob write kept racing other writers", key=key)

    def _same_or_conflict(self, key: str, head: dict[str, Any], ref: BlobRef) -> BlobRef:
        sha = (head.get("Metadata") or {}).get("sha256")
        if not sha:
            # written by something else than this store: hash the stored bytes
            sha = hashlib.sha256(self._read(key)).hexdigest()
        if sha != ref.sha256:
            raise Conflict("blob exists with other content", key=key)
        return BlobRef(key, ref.sha256, ref.size, head.get("ContentType") or _DEFAULT_TYPE)

    def _read(self, key: str) -> bytes:
        from botocore import exceptions as bx

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except bx.ClientError as exc:
            if _error(exc)[0] in _NOT_FOUND or _error(exc)[1] == 404:
                raise NotFound("blob not found", key=key) from None
            raise
        with contextlib.closing(body):
            return bytes(body.read())

    def get(self, key: str) -> bytes:
        check_key(key)
        with self._backend("get", key):
            return self._read(key)

    def exists(self, key: str) -> bool:
        check_key(key)
        with self._backend("exists", key):
            return self._head(key) is not None

    def delete(self, key: str) -> bool:
        check_key(key)
        with self._backend("delete", key):
            if self._head(key) is None:
                return False
            self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def signed_url(
        self,
        key: str,
        *,
        ttl_seconds: int,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A presigned GET URL valid for `ttl_seconds`."""
        check_key(key)
        check_ttl(ttl_seconds)
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = attachment_disposition(filename)
        if content_type:
            params["ResponseContentType"] = content_type
        with self._backend("signed_url", key):
            url = self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=ttl_seconds, HttpMethod="GET"
            )
        return str(url)
