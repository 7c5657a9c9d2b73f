"""The one rule for BlobStore keys, shared by every adapter: no path is built from raw input."""

from __future__ import annotations

import re

from sapa.domain.errors import PermanentError

# Segments of letters, digits, '.', '_' or '-', not starting with a dot or dash.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)*")


def check_key(key: str) -> str:
    """The key, if every store may use it; `PermanentError` otherwise ('..', absolute paths,
    backslashes, empty segments, a trailing newline are all refused)."""
    if not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise PermanentError("invalid blob key", key=key)
    return key
