"""BlobStore on the filesystem: write-once objects with a sidecar of sha256 and content type."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from sapa.domain.errors import Conflict, NotFound, PermanentError
from sapa.ports import BlobRef

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)*$")


class FsBlobStore:
    """Objects under `root/<key>`; keys are validated so no path is built from raw user input."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key) or ".." in key.split("/"):
            raise PermanentError("invalid blob key", key=key)
        return self.root / key

    def put(self, key: str, data: bytes, content_type: str) -> BlobRef:
        path = self._path(key)
        ref = BlobRef(key, hashlib.sha256(data).hexdigest(), len(data), content_type)
        meta = path.with_name(path.name + ".meta.json")
        if path.exists():
            existing = self._ref(key, path, meta)
            if existing.sha256 != ref.sha256:
                raise Conflict("blob exists with other content", key=key)
            return existing
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(meta, json.dumps({"sha256": ref.sha256, "content_type": content_type}))
        _atomic_write(path, data, exclusive=True)
        return ref

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound("blob not found", key=key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def ref(self, key: str) -> BlobRef:
        path = self._path(key)
        if not path.exists():
            raise NotFound("blob not found", key=key)
        return self._ref(key, path, path.with_name(path.name + ".meta.json"))

    @staticmethod
    def _ref(key: str, path: Path, meta: Path) -> BlobRef:
        info = json.loads(meta.read_text("utf-8")) if meta.exists() else {}
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        return BlobRef(key, sha, len(data), info.get("content_type", "application/octet-stream"))


def _atomic_write(path: Path, data: bytes | str, *, exclusive: bool = False) -> None:
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
                if hashlib.sha256(path.read_bytes()).digest() != hashlib.sha256(raw).digest():
                    raise Conflict("blob exists with other content", key=str(path.name)) from None
        else:
            os.replace(tmp, path)
            tmp = ""
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
