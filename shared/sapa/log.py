"""Logging as one JSON object per line in Cloud Logging's shape, with NIK and phones masked."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# A 16-digit NIK/KK; an Indonesian phone in 62… or 08… form (8–13 more digits after 62, the
# range values.normalize_phone accepts: 0812345678 is a phone too).
_NIK = re.compile(r"(?<!\d)(\d{4})\d{8}(\d{4})(?!\d)")
_PHONE = re.compile(r"(?<!\d)(62|0)(8\d)\d{3,10}(\d{3})(?!\d)")
# A business-scoped user id (a resident known by username): "US.13491208655302741918".
_BSUID = re.compile(r"\b([A-Z]{2}\.(?:ENT\.)?)[A-Za-z0-9]{5,124}([A-Za-z0-9]{3})\b")
_SECRET_KEYS = re.compile(r"(passphrase|token|secret|password|authorization)", re.I)
_EXTRA_FIELDS = ("case_id", "step", "wamid", "task", "kind", "status", "attempt")


def mask(value: str) -> str:
    """Mask every NIK-like and phone-like number and every BSUID in `value`."""
    value = _BSUID.sub(lambda m: m.group(1) + "*****" + m.group(2), value)
    value = _NIK.sub(lambda m: m.group(1) + "*" * 8 + m.group(2), value)
    return _PHONE.sub(lambda m: m.group(1) + m.group(2) + "*****" + m.group(3), value)


class JsonFormatter(logging.Formatter):
    """severity, message, time, logger and the known context fields; masked."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": mask(record.getMessage()),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        for name in _EXTRA_FIELDS:
            if hasattr(record, name):
                entry[name] = mask(str(getattr(record, name)))
        trace = getattr(record, "trace", None)
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        if record.exc_info:
            entry["exception"] = mask(self.formatException(record.exc_info))
        for key in list(entry):
            if _SECRET_KEYS.search(key):
                entry[key] = "***"
        return json.dumps(entry, ensure_ascii=False)


def setup(level: str = "INFO", stream: Any = None) -> None:
    """Install the JSON formatter on the root logger (idempotent)."""
    root = logging.getLogger()
    for h in root.handlers:
        if isinstance(h.formatter, JsonFormatter):
            return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
