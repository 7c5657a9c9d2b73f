"""BlobStore on the filesystem: write-once objects with a sidecar of sha256 and content type."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from sapa.adapters.blob_keys import check_key
from sapa.domain.errors import Conflict, NotFound
from sapa.ports import BlobRef


class FsBlobStore:
    """Objects under `root/<key>`; keys are validated so no path is built from raw user input."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> BlobRef:
        path = self._path(key)
        ref = BlobRef(key, hashlib.sha256(data).hexdigest(), len(data), content_type)
        if path.is_file():
            existing = self._ref(key, path)
            if existing.sha256 != ref.sha256:
                raise Conflict("blob exists with other content", key=key)
            return existing
        path.parent.mkdir(parents=True, exist_ok=True)
        # The sidecar is written before the object (so a visible object always has one) and
        # write-once too: the first writer of these bytes names the content type, and a racing
        # writer of other bytes can never replace it.
        meta = _meta(path, ref.sha256)
        own_meta = _atomic_write(
            meta, json.dumps({"sha256": ref.sha256, "content_type": content_type}), exclusive=True
        )
        try:
            if not _atomic_write(path, data, exclusive=True) and (
                hashlib.sha256(path.read_bytes()).hexdigest() != ref.sha256
            ):
                raise Conflict("blob exists with other content", key=key)
        except Conflict:
            if own_meta:
                meta.unlink(missing_ok=True)
            raise
        return BlobRef(key, ref.sha256, ref.size, _content_type(path, ref.sha256))

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            # a directory is only a prefix of other keys, not an object
            raise NotFound("blob not found", key=key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        path = self._path(key)
        if not path.is_file():
            return False
        for meta in path.parent.glob(f".{path.name}.*.meta.json"):
            meta.unlink(missing_ok=True)
        path.with_name(path.name + ".meta.json").unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        return True

    def signed_url(
        self,
        key: str,
        *,
        ttl_seconds: int,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """None: files on this machine have no URL of their own; the function serves them."""
        check_key(key)
        return None

    def ref(self, key: str) -> BlobRef:
        path = self._path(key)
        if not path.is_file():
            raise NotFound("blob not found", key=key)
        return self._ref(key, path)

    @staticmethod
    def _ref(key: str, path: Path) -> BlobRef:
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        return BlobRef(key, sha, len(data), _content_type(path, sha))


def _meta(path: Path, sha256: str) -> Path:
    """The sidecar of `path` with that content. Its name starts with a dot, which no key segment
    may, so no key can address or overwrite it (a `<key>.meta.json` sidecar could be a key)."""
    return path.with_name(f".{path.name}.{sha256}.meta.json")


def _content_type(path: Path, sha256: str) -> str:
    # the second candidate is the sidecar layout of earlier versions, trusted only if it matches
    for meta in (_meta(path, sha256), path.with_name(path.name + ".meta.json")):
        try:
            info = json.loads(meta.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("sha256") == sha256:
            return str(info.get("content_type") or "application/octet-stream")
    return "application/octet-stream"


def _atomic_write(path: Path, data: bytes | str, *, exclusive: bool = False) -> bool:
    """Write `path` whole or not at all. With `exclusive`, never replace an existing file:
    returns False (and writes nothing) if `path` already exists."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            # link() fails if another writer got there first: write-once even under races.
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
            tmp = ""
        return True
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
