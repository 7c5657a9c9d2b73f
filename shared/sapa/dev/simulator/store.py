"""The simulator's memory: messages (both directions) and media in one SQLite file."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONVERSATION_LIMIT = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    wamid TEXT NOT NULL UNIQUE,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    phone_number_id TEXT NOT NULL,
    wa_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    media_id TEXT,
    filename TEXT,
    link TEXT,
    status TEXT,
    webhook_status INTEGER,
    error TEXT,
    at REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_chat ON messages (phone_number_id, wa_id, seq);
CREATE TABLE IF NOT EXISTS media (
    id TEXT PRIMARY KEY,
    phone_number_id TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    filename TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    data BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Media:
    id: str
    phone_number_id: str
    mime_type: str
    sha256: str
    size: int
    filename: str


class Store:
    """Messages and media in one SQLite file (WAL); a connection per call, so any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            columns = {r["name"] for r in db.execute("PRAGMA table_info(messages)")}
            if "status_acked" not in columns:
                # The last status the webhook acknowledged (redelivery posts the ones after
                # it); messages stored before this column existed count as reported.
                db.execute("ALTER TABLE messages ADD COLUMN status_acked TEXT")
                db.execute("UPDATE messages SET status_acked = status WHERE direction = 'out'")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10.0)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def add_message(self, **fields: Any) -> None:
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with self._connect() as db:
            db.execute(
                f"INSERT INTO messages ({columns}) VALUES ({marks})",  # noqa: S608 - our names
                tuple(fields.values()),
            )

    def update_message(self, wamid: str, **fields: Any) -> bool:
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self._connect() as db:
            cur = db.execute(
                f"UPDATE messages SET {sets} WHERE wamid = ?",  # noqa: S608 - our names
                (*fields.values(), wamid),
            )
            return cur.rowcount > 0

    def message(self, wamid: str) -> sqlite3.Row | None:
        with self._connect() as db:
            row: sqlite3.Row | None = db.execute(
                "SELECT * FROM messages WHERE wamid = ?", (wamid,)
            ).fetchone()
            return row

    def conversation(self, phone_number_id: str, wa_id: str) -> list[sqlite3.Row]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM messages WHERE phone_number_id = ? AND wa_id = ? "
                "ORDER BY seq DESC LIMIT ?",
                (phone_number_id, wa_id, CONVERSATION_LIMIT),
            ).fetchall()
        return list(reversed(rows))

    def add_media(self, phone_number_id: str, data: bytes, mime_type: str, filename: str) -> Media:
        digest = hashlib.sha256(data).hexdigest()
        with self._connect() as db:
            while True:
                # numeric like Meta's, but 17 digits: a 16-digit id can pass as a NIK and set
                # off the checks that no NIK reaches a log
                media_id = str(10**16 + secrets.randbelow(9 * 10**16))
                try:
                    db.execute(
                        "INSERT INTO media (id, phone_number_id, mime_type, sha256, size, "
                        "filename, created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            media_id,
                            phone_number_id,
                            mime_type,
                            digest,
                            len(data),
                            filename,
                            time.time(),
                            sqlite3.Binary(data),
                        ),
                    )
                except sqlite3.IntegrityError:  # pragma: no cover - 1 in 10^15
                    continue
                break
        return Media(media_id, phone_number_id, mime_type, digest, len(data), filename)

    def media(self, media_id: str) -> Media | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT id, phone_number_id, mime_type, sha256, size, filename FROM media "
                "WHERE id = ? AND deleted = 0",
                (media_id,),
            ).fetchone()
        return Media(*row) if row else None

    def media_bytes(self, media_id: str) -> bytes | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT data FROM media WHERE id = ? AND deleted = 0", (media_id,)
            ).fetchone()
        return bytes(row[0]) if row else None

    def undelivered(self, since: float) -> list[sqlite3.Row]:
        """Messages whose webhook is owed: inbound ones the webhook did not acknowledge with
        a 2xx, outbound ones whose sent/delivered statuses were not all reported."""
        with self._connect() as db:
            return list(
                db.execute(
                    "SELECT * FROM messages WHERE at >= ? AND ("
                    "(direction = 'in' AND (webhook_status IS NULL"
                    " OR webhook_status NOT BETWEEN 200 AND 299))"
                    " OR (direction = 'out' AND status NOT IN ('read', 'failed')"
                    " AND COALESCE(status_acked, '') != 'delivered')) ORDER BY seq",
                    (since,),
                ).fetchall()
            )

    def delete_media(self, media_id: str) -> bool:
        with self._connect() as db:
            cur = db.execute(
                "UPDATE media SET deleted = 1, data = x'' WHERE id = ? AND deleted = 0",
                (media_id,),
            )
            return cur.rowcount > 0
