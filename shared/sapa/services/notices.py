"""WhatsApp's notices about the account, its numbers and its templates, kept for the admin."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from typing import Any

from sapa.adapters.meta_webhook import AccountNotice
from sapa.bootstrap import Container

log = logging.getLogger(__name__)

TEMPLATE_STATUS_FIELD = "message_template_status_update"
# Template events after which Meta refuses (or will soon refuse) the template.
_TEMPLATE_UNUSABLE = frozenset(
    {"PAUSED", "DISABLED", "REJECTED", "FLAGGED", "PENDING_DELETION", "DELETED", "LIMIT_EXCEEDED"}
)

LABELS = {
    "message_template_status_update": "Status templat",
    "template_category_update": "Kategori templat",
    "phone_number_quality_update": "Kualitas nomor",
    "phone_number_name_update": "Nama tampilan nomor",
    "account_update": "Akun WhatsApp Business",
    "account_review_update": "Peninjauan akun",
    "account_alerts": "Peringatan akun",
    "business_capability_update": "Kapasitas akun",
    "business_status_update": "Status bisnis",
    "business_username_update": "Nama pengguna bisnis",
    "security": "Keamanan nomor",
    "errors": "Galat dari WhatsApp",
    "message_template_quality_update": "Kualitas templat",
    "message_template_components_update": "Isi templat",
}


def keep(c: Container, notice: AccountNotice) -> bool:
    """Keep `notice` once (Meta redelivers: the key is a hash of its content and time, for an
    undated one the hour it came in) and log it, without personal data (notices carry none).
    True if it was new."""
    doc: dict[str, Any] = asdict(notice)
    doc["at"] = notice.at.isoformat()
    identity = dict(doc)
    if not notice.dated:
        # no time from Meta: the same notice within the hour is a redelivery
        identity["at"] = notice.at.strftime("%Y-%m-%dT%H")
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    doc["received_at"] = c.clock.now().isoformat()
    new = c.store.keep_notice(key, doc)
    if new:
        log.warning(
            "WhatsApp account notice: %s %s %s",
            notice.field,
            notice.event,
            notice.subject,
            extra={"kind": notice.field},
        )
    return new


def recent(c: Container, limit: int = 200) -> list[dict[str, Any]]:
    """The kept notices, newest first, with a label in Bahasa Indonesia."""
    return [
        {**n, "label": LABELS.get(n.get("field", ""), n.get("field", ""))}
        for n in c.store.notices(limit=limit)
    ]


def template_unusable(c: Container, name: str) -> str | None:
    """The event that made template `name` unusable (PAUSED, DISABLED, ...), or None when its
    latest status notice says it may be used (or there is none)."""
    for n in c.store.notices(field=TEMPLATE_STATUS_FIELD, limit=200):
        if n.get("subject") == name:
            event = str(n.get("event") or "").upper()
            return event if event in _TEMPLATE_UNUSABLE else None
    return None
