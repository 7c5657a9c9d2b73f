"""CaseStore on SQLite: cases as JSON documents with a version column, audit events appended,
and the rollups (`sapa.domain.rollup`): each case's ledger in its `rollup` column, the cells in
`rollups` as one JSON object of counters per cell, both written in the case's own transaction."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sapa.adapters.embedded.sqlite_db import SqliteDb
from sapa.domain.agenda import Agenda
from sapa.domain.case import AuditEvent, Case
from sapa.domain.errors import AlreadyExists, ConcurrentUpdate, NotFound
from sapa.domain.rollup import (
    CellKey,
    Changes,
    RollupCell,
    RollupTracker,
    counters,
    difference,
    merged,
)
from sapa.domain.staff import Roster, StaffEvent, StaffMember
from sapa.domain.texts import text
from sapa.ports import (
    DUE_KINDS,
    AccessRecord,
    DueCase,
    Message,
    completed_placeholder,
    subject_hash,
    subject_terms,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY,
    reg_no TEXT NOT NULL UNIQUE,
    kecamatan TEXT NOT NULL,
    wa_id TEXT NOT NULL,
    state TEXT NOT NULL,
    is_open INTEGER NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
-- at most one open case per kecamatan number and applicant
CREATE UNIQUE INDEX IF NOT EXISTS cases_open_applicant
    ON cases (kecamatan, wa_id) WHERE is_open = 1;
CREATE INDEX IF NOT EXISTS cases_state ON cases (state, kecamatan, updated_at);
CREATE TABLE IF NOT EXISTS events (
    case_id TEXT NOT NULL REFERENCES cases(id),
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (case_id, seq)
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL,
    at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_case ON messages (case_id, at);
CREATE TABLE IF NOT EXISTS dedupe (
    key TEXT PRIMARY KEY,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    value TEXT
);
CREATE TABLE IF NOT EXISTS sequences (scope TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
    kecamatan TEXT NOT NULL,
    wa_id TEXT NOT NULL,
    last_inbound TEXT NOT NULL,
    PRIMARY KEY (kecamatan, wa_id)
);
CREATE TABLE IF NOT EXISTS wa_notices (
    key TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS wa_notices_at ON wa_notices (at);
-- audit events may never change
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
-- who read personal data (UU 27/2022): append-only like the audit events
CREATE TABLE IF NOT EXISTS accesses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    role TEXT NOT NULL,
    case_id TEXT NOT NULL,
    reg_no TEXT NOT NULL,
    what TEXT NOT NULL,
    client TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accesses_at ON accesses (at);
CREATE INDEX IF NOT EXISTS accesses_case ON accesses (case_id, at);
CREATE INDEX IF NOT EXISTS accesses_actor ON accesses (actor_id, at);
CREATE TRIGGER IF NOT EXISTS accesses_no_update BEFORE UPDATE ON accesses
    BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS accesses_no_delete BEFORE DELETE ON accesses
    BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
-- keyed hashes (HMAC-SHA256) of each case's NIK and WhatsApp numbers: finds a resident's
-- cases (data-subject requests) without an index of NIKs in clear
CREATE TABLE IF NOT EXISTS subjects (
    hash TEXT NOT NULL,
    case_id TEXT NOT NULL,
    PRIMARY KEY (hash, case_id)
);
CREATE INDEX IF NOT EXISTS subjects_case ON subjects (case_id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
-- the officers (the staff directory), one JSON document per e-mail; their version is the
-- meta row 'staff_version'
CREATE TABLE IF NOT EXISTS staff (email TEXT PRIMARY KEY, doc TEXT NOT NULL);
-- every change to the officers, append-only like the audit events: (version, n) orders them
CREATE TABLE IF NOT EXISTS staff_events (
    version INTEGER NOT NULL,
    n INTEGER NOT NULL,
    at TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (version, n)
);
CREATE TRIGGER IF NOT EXISTS staff_events_no_update BEFORE UPDATE ON staff_events
    BEGIN SELECT RAISE(ABORT, 'the staff audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS staff_events_no_delete BEFORE DELETE ON staff_events
    BEGIN SELECT RAISE(ABORT, 'the staff audit trail is append-only'); END;
-- the rollups: one JSON object of counters per cell (sapa.domain.rollup.CellKey)
CREATE TABLE IF NOT EXISTS rollups (
    part TEXT NOT NULL,
    day TEXT NOT NULL,
    kecamatan TEXT NOT NULL,
    service TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (part, kecamatan, service, day)
);
CREATE INDEX IF NOT EXISTS rollups_service ON rollups (part, service, day);
"""

REDACTED = "[dihapus sesuai jadwal retensi]"

# Delivery statuses arrive out of order; a later one in this order is never overwritten.
_STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}

# Terminal states are the SOP's business, but the open-case index needs a column: the store is
# told which states are terminal by the case itself (closed_reason / state) via this set.
_TERMINAL = {"delivered", "rejected", "cancelled", "expired"}


Tracker = Callable[[], RollupTracker]
_DUE_COLUMNS = ("sla_due", "retention_due", "claimant", "complaint_due", "suggestion_due")
# the statements that write those columns, built once from the tuple (our own names)
_DUE_SET = ", ".join(f"{column} = ?" for column in _DUE_COLUMNS)
_DUE_LIST, _DUE_MARKS = ", ".join(_DUE_COLUMNS), ", ".join("?" * len(_DUE_COLUMNS))
_INSERT_CASE = (
    "INSERT INTO cases (id, reg_no, kecamatan, wa_id, state,"  # noqa: S608
    " is_open, version, updated_at, doc,"
    f" {_DUE_LIST}, has_outbox) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, {_DUE_MARKS}, ?)"
)
_SAVE_CASE = (
    "UPDATE cases SET state = ?, is_open = ?,"  # noqa: S608
    " version = version + 1, updated_at = ?, doc = ?,"
    f" wa_id = ?, {_DUE_SET}, has_outbox = ? WHERE id = ? AND version = ?"
)
_DUE_ORDER = {kind: f"{kind}_due" for kind in DUE_KINDS}


class SqliteCaseStore:
    """The embedded CaseStore. Thread-safe; several processes may share the file (WAL).

    `tracker` gives the rollups' SOP, clocks and time zone at each write (None: no rollups),
    `agenda` the due times' configuration (None: no due times)."""

    def __init__(
        self,
        path: Path,
        *,
        terminal_states: Iterable[str] | None = None,
        tracker: Tracker | None = None,
        agenda: Callable[[], Agenda] | None = None,
    ) -> None:
        self.db = SqliteDb(path, _SCHEMA)
        self.terminal = frozenset(terminal_states or _TERMINAL)
        self.tracker = tracker
        self.agenda = agenda
        self._migrate()

    def _migrate(self) -> None:
        """Bring an older database file up to this schema (columns added since)."""
        with self.db.write() as c:
            have = {r["name"] for r in c.execute("PRAGMA table_info(messages)")}
            if "provider_id" not in have:
                c.execute("ALTER TABLE messages ADD COLUMN provider_id TEXT")
            if "status" not in have:
                c.execute("ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT ''")
            have = {r["name"] for r in c.execute("PRAGMA table_info(cases)")}
            if "rollup" not in have:  # the case's rollup ledger (NULL: counted nowhere yet)
                c.execute("ALTER TABLE cases ADD COLUMN rollup TEXT")
            # whether the case's outbox holds tasks: recovery looks for those every minute
            if "has_outbox" not in have:
                c.execute("ALTER TABLE cases ADD COLUMN has_outbox INTEGER NOT NULL DEFAULT 0")
                c.execute(
                    "UPDATE cases SET has_outbox = 1 WHERE json_array_length(doc, '$.outbox') > 0"
                )
            c.execute(
                "CREATE INDEX IF NOT EXISTS cases_has_outbox ON cases (updated_at)"
                " WHERE has_outbox = 1"
            )
            # due times (`sapa.domain.agenda`; NULL: nothing due) and the waiting step's holder
            for column in _DUE_COLUMNS:
                if column not in have:
                    c.execute(f"ALTER TABLE cases ADD COLUMN {column} TEXT")
            for column in _DUE_COLUMNS:
                c.execute(
                    f"CREATE INDEX IF NOT EXISTS cases_{column} ON cases ({column}, id)"
                    f" WHERE {column} IS NOT NULL"
                )
            have = {r["name"] for r in c.execute("PRAGMA table_info(sequences)")}
            if "expires_at" not in have:  # rate-limit windows expire; numbering never does
                c.execute("ALTER TABLE sequences ADD COLUMN expires_at TEXT")
            c.execute(
                "CREATE INDEX IF NOT EXISTS messages_provider ON messages (provider_id)"
                " WHERE provider_id IS NOT NULL"
            )
            # The subject-index key: made once per database, kept beside the data it indexes
            # (whoever reads this file reads the NIKs in the case documents anyway; the key
            # keeps a copied index, or one left behind by anonymisation, from naming anyone).
            c.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('subject_key', ?)",
                (secrets.token_hex(32),),
            )
            key = c.execute("SELECT value FROM meta WHERE name = 'subject_key'").fetchone()
            self._subject_key = bytes.fromhex(key["value"])
            indexed = c.execute("SELECT 1 FROM meta WHERE name = 'subjects_indexed'").fetchone()
            if indexed is None:  # cases saved before the index existed
                for row in c.execute("SELECT doc, version FROM cases").fetchall():
                    self._index_subjects(c, self._load(row))
                c.execute("INSERT INTO meta (name, value) VALUES ('subjects_indexed', '1')")

    # ---- cases ------------------------------------------------------------------------------

    def create(self, case: Case) -> None:
        try:
            with self.db.write() as c:
                c.execute(
                    _INSERT_CASE, (*self._row(case), *self._due(case), int(bool(case.outbox)))
                )
                self._append_events(c, case.new_events)
                self._index_subjects(c, case)
                self._count(c, case, None)
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists("case exists", case_id=case.id, error=str(exc)) from exc
        case.version = 1
        case.new_events.clear()

    def get(self, case_id: str) -> Case:
        row = (
            self.db.conn()
            .execute("SELECT doc, version FROM cases WHERE id = ?", (case_id,))
            .fetchone()
        )
        if row is None:
            raise NotFound(text("case_not_found"), case_id=case_id)
        return self._load(row)

    def save(self, case: Case) -> None:
        held: dict[str, Any] | None = None
        with self.db.write() as c:
            if self.tracker is not None:
                # the ledger this very version holds: what the rollups have of the case
                row = c.execute(
                    "SELECT rollup FROM cases WHERE id = ? AND version = ?",
                    (case.id, case.version),
                ).fetchone()
                if row is None:
                    raise ConcurrentUpdate("case changed meanwhile", case_id=case.id)
                held = json.loads(row["rollup"]) if row["rollup"] else None
            cur = c.execute(
                _SAVE_CASE,
                (
                    case.state,
                    int(case.state not in self.terminal),
                    _ts(case.updated_at),
                    _dump(case),
                    case.wa_id,  # anonymised by retention: the column must follow
                    *self._due(case),
                    int(bool(case.outbox)),
                    case.id,
                    case.version,
                ),
            )
            if cur.rowcount != 1:
                raise ConcurrentUpdate("case changed meanwhile", case_id=case.id)
            self._append_events(c, case.new_events)
            self._index_subjects(c, case)
            if self.tracker is not None:
                self._count(c, case, held)
        case.version += 1
        case.new_events.clear()

    # ---- rollups ----------------------------------------------------------------------------

    def _count(
        self,
        c: sqlite3.Connection,
        case: Case,
        held: dict[str, Any] | None,
        *,
        fresh: bool = False,
    ) -> dict[str, Any] | None:
        """Bring the case's ledger up to date (from nothing when `fresh`) and add the change
        to the cells: inside the case's own write, so both commit or neither."""
        if self.tracker is None:
            return None
        ledger = self.tracker().ledger(case, None if fresh else held)
        if ledger != held:
            c.execute("UPDATE cases SET rollup = ? WHERE id = ?", (json.dumps(ledger), case.id))
            self._add_to_cells(c, difference(counters(held), counters(ledger)))
        return ledger

    @staticmethod
    def _add_to_cells(c: sqlite3.Connection, changes: Changes) -> None:
        for key, change in changes.items():
            row = c.execute(
                "SELECT doc FROM rollups WHERE part = ? AND kecamatan = ? AND service = ?"
                " AND day = ?",
                (key.part, key.kecamatan, key.service, key.day),
            ).fetchone()
            values: dict[str, int] = json.loads(row["doc"]) if row else {}
            for name, add in change.items():
                now = values.get(name, 0) + add
                if now:
                    values[name] = now
                else:
                    values.pop(name, None)
            if values:
                c.execute(
                    "INSERT INTO rollups (part, day, kecamatan, service, doc)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (part, kecamatan, service, day)"
                    " DO UPDATE SET doc = excluded.doc",
                    (key.part, key.day, key.kecamatan, key.service, json.dumps(values)),
                )
            elif row is not None:
                c.execute(
                    "DELETE FROM rollups WHERE part = ? AND kecamatan = ? AND service = ?"
                    " AND day = ?",
                    (key.part, key.kecamatan, key.service, key.day),
                )

    def rollup_total(
        self,
        part: str,
        first: date,
        last: date,
        *,
        kecamatan: str | None = None,
        service: str | None = None,
    ) -> dict[str, int]:
        sql, args = _rollup_query("doc", part, first, last, kecamatan, service)
        out = merged(json.loads(row["doc"]) for row in self.db.conn().execute(sql, args))
        return {name: value for name, value in out.items() if value}

    def rollups(
        self,
        part: str,
        first: date,
        last: date,
        *,
        kecamatan: str | None = None,
        service: str | None = None,
    ) -> list[RollupCell]:
        columns = "part, day, kecamatan, service, doc"
        sql, args = _rollup_query(columns, part, first, last, kecamatan, service)
        return [
            RollupCell(
                CellKey(r["part"], r["day"], r["kecamatan"], r["service"]), json.loads(r["doc"])
            )
            for r in self.db.conn().execute(sql, args).fetchall()
        ]

    def recount(self, case_id: str) -> dict[str, Any] | None:
        with self.db.write() as c:
            row = c.execute(
                f"SELECT doc, version, rollup, {', '.join(_DUE_COLUMNS)} FROM cases"  # noqa: S608
                " WHERE id = ?",
                (case_id,),
            )
            found = row.fetchone()
            if found is None:
                raise NotFound(text("case_not_found"), case_id=case_id)
            case = self._load(found)
            due = self._due(case)
            if self.agenda is not None and due != tuple(found[k] for k in _DUE_COLUMNS):
                c.execute(f"UPDATE cases SET {_DUE_SET} WHERE id = ?", (*due, case_id))  # noqa: S608
            held = json.loads(found["rollup"]) if found["rollup"] else None
            return self._count(c, case, held, fresh=True)

    def _due(self, case: Case) -> tuple[str | None, ...]:
        """The case's due-time columns, as _DUE_COLUMNS (all NULL without an agenda)."""
        if self.agenda is None:
            return (None,) * len(_DUE_COLUMNS)
        due = self.agenda().due(case)
        return (
            _due_ts(due.sla),
            _due_ts(due.retention),
            due.claimant,
            _due_ts(due.complaint),
            _due_ts(due.suggestion),
        )

    def due_cases(
        self,
        kind: str,
        now: datetime,
        *,
        limit: int = 200,
        after: tuple[datetime, str] | None = None,
    ) -> list[DueCase]:
        column = _DUE_ORDER.get(kind)
        if column is None:
            raise ValueError(f"unknown due time {kind!r}")
        # (the column comes from the fixed table above, never from the caller)
        sql = "SELECT doc, version, {c} AS due FROM cases WHERE {c} <= ?"
        args: list[Any] = [_due_ts(now)]
        if after is not None:
            sql += " AND ({c}, id) > (?, ?)"
            args += [_due_ts(after[0]), after[1]]
        sql = (sql + " ORDER BY {c}, id LIMIT ?").format(c=column)
        args.append(limit)
        rows = self.db.conn().execute(sql, args).fetchall()
        return [DueCase(datetime.fromisoformat(r["due"]), self._load(r)) for r in rows]

    def claimed_by(self, email: str, *, limit: int = 500, after: str | None = None) -> list[Case]:
        rows = (
            self.db.conn()
            .execute(
                "SELECT doc, version FROM cases WHERE claimant = ? AND id > ? ORDER BY id LIMIT ?",
                (email, after or "", limit),
            )
            .fetchall()
        )
        return [self._load(r) for r in rows]

    def adjust_rollups(self, changes: Changes) -> None:
        with self.db.write() as c:
            self._add_to_cells(c, changes)

    def latest_for(self, kecamatan: str, wa_id: str) -> Case | None:
        row = (
            self.db.conn()
            .execute(
                "SELECT doc, version FROM cases WHERE kecamatan = ? AND wa_id = ?"
                " ORDER BY updated_at DESC LIMIT 1",
                (kecamatan, wa_id),
            )
            .fetchone()
        )
        return self._load(row) if row else None

    def find_open(self, kecamatan: str, wa_id: str) -> Case | None:
        row = (
            self.db.conn()
            .execute(
                "SELECT doc, version FROM cases WHERE kecamatan = ? AND wa_id = ? AND is_open = 1",
                (kecamatan, wa_id),
            )
            .fetchone()
        )
        return self._load(row) if row else None

    def list_cases(
        self,
        *,
        states: Iterable[str] | None = None,
        kecamatan: str | None = None,
        updated_since: datetime | None = None,
        limit: int = 200,
        newest_first: bool = False,
    ) -> list[Case]:
        sql = "SELECT doc, version FROM cases WHERE 1 = 1"
        args: list[Any] = []
        if states is not None:
            wanted = list(states)
            sql += f" AND state IN ({','.join('?' * len(wanted))})"
            args += wanted
        if kecamatan:
            sql += " AND kecamatan = ?"
            args.append(kecamatan)
        if updated_since is not None:
            sql += " AND updated_at >= ?"
            args.append(_ts(updated_since))
        sql += (
            " ORDER BY updated_at DESC, id DESC LIMIT ?"
            if newest_first
            else " ORDER BY updated_at LIMIT ?"
        )
        args.append(limit)
        return [self._load(r) for r in self.db.conn().execute(sql, args).fetchall()]

    def with_outbox(self, limit: int = 500) -> list[Case]:
        rows = (
            self.db.conn()
            .execute(
                "SELECT doc, version FROM cases WHERE has_outbox = 1 ORDER BY updated_at LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [self._load(r) for r in rows]

    def events(self, case_id: str) -> list[AuditEvent]:
        rows = (
            self.db.conn()
            .execute("SELECT doc FROM events WHERE case_id = ? ORDER BY seq", (case_id,))
            .fetchall()
        )
        return [AuditEvent.model_validate_json(r["doc"]) for r in rows]

    # ---- conversation, dedupe, counters -----------------------------------------------------

    def add_message(self, message: Message) -> bool:
        doc = message.to_json()
        with self.db.write() as c:
            provider_id = message.provider_id
            cur = c.execute(
                "INSERT OR IGNORE INTO messages (id, case_id, at, doc, provider_id, status)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (message.id, message.case_id, _ts(message.at), doc, provider_id, message.status),
            )
            return cur.rowcount == 1

    def messages(self, case_id: str) -> list[Message]:
        rows = (
            self.db.conn()
            .execute(
                "SELECT doc, status FROM messages WHERE case_id = ? ORDER BY at, rowid", (case_id,)
            )
            .fetchall()
        )
        out = []
        for r in rows:
            out.append(Message.from_json(r["doc"], r["status"] or ""))
        return out

    def redact_messages(self, case_id: str) -> int:
        with self.db.write() as c:
            rows = c.execute(
                "SELECT id, doc FROM messages WHERE case_id = ?", (case_id,)
            ).fetchall()
            count = 0
            for r in rows:
                d = json.loads(r["doc"])
                if d.get("body") == REDACTED and not d.get("data"):
                    continue
                d["body"], d["data"] = REDACTED, {}
                c.execute("UPDATE messages SET doc = ? WHERE id = ?", (json.dumps(d), r["id"]))
                count += 1
            return count

    def set_message_status(self, provider_id: str, status: str, at: datetime) -> str | None:
        rank = _STATUS_RANK.get(status)
        if rank is None:
            return None
        with self.db.write() as c:
            row = c.execute(
                "SELECT case_id, status FROM messages WHERE provider_id = ?", (provider_id,)
            ).fetchone()
            if row is None:
                return None
            if rank > _STATUS_RANK.get(row["status"] or "", 0):
                c.execute(
                    "UPDATE messages SET status = ? WHERE provider_id = ?", (status, provider_id)
                )
            return str(row["case_id"])

    def message_exists(self, message_id: str) -> bool:
        row = self.db.conn().execute("SELECT 1 FROM messages WHERE id = ?", (message_id,))
        return row.fetchone() is not None

    def complete_recovered(self, message: Message) -> bool:
        with self.db.write() as c:
            row = c.execute(
                "SELECT doc, provider_id FROM messages WHERE id = ?", (message.id,)
            ).fetchone()
            doc = completed_placeholder(row["doc"], row["provider_id"], message) if row else None
            if doc is None:
                return False
            c.execute("UPDATE messages SET doc = ? WHERE id = ?", (doc, message.id))
            return True

    def put_key(self, key: str, value: dict[str, Any]) -> None:
        with self.db.write() as c:
            c.execute(
                "INSERT INTO dedupe (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    def get_key(self, key: str) -> dict[str, Any] | None:
        row = self.db.conn().execute("SELECT value FROM dedupe WHERE key = ?", (key,)).fetchone()
        if row is None or row["value"] is None:
            return None
        value: dict[str, Any] = json.loads(row["value"])
        return value

    def claim_key(self, key: str, *, value: dict[str, Any] | None = None) -> bool:
        with self.db.write() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO dedupe (key, value) VALUES (?, ?)",
                (key, json.dumps(value) if value is not None else None),
            )
            return cur.rowcount == 1

    def next_sequence(self, scope: str, *, expires_at: datetime | None = None) -> int:
        expires = _ts(expires_at) if expires_at is not None else None
        with self.db.write() as c:
            row = c.execute(
                "INSERT INTO sequences (scope, value, expires_at) VALUES (?, 1, ?)"
                " ON CONFLICT(scope) DO UPDATE SET value = value + 1 RETURNING value",
                (scope, expires),
            ).fetchone()
            return int(row[0])

    def forget_expired_counters(self, now: datetime) -> int:
        with self.db.write() as c:
            return c.execute(
                "DELETE FROM sequences WHERE expires_at IS NOT NULL AND expires_at < ?",
                (_ts(now),),
            ).rowcount

    def record_contact(self, kecamatan: str, wa_id: str, at: datetime) -> None:
        with self.db.write() as c:
            c.execute(
                "INSERT INTO contacts (kecamatan, wa_id, last_inbound) VALUES (?, ?, ?)"
                " ON CONFLICT(kecamatan, wa_id) DO UPDATE SET last_inbound ="
                " max(last_inbound, excluded.last_inbound)",
                (kecamatan, wa_id, _ts(at)),
            )

    def last_inbound(self, kecamatan: str, wa_id: str) -> datetime | None:
        row = (
            self.db.conn()
            .execute(
                "SELECT last_inbound FROM contacts WHERE kecamatan = ? AND wa_id = ?",
                (kecamatan, wa_id),
            )
            .fetchone()
        )
        return datetime.fromisoformat(row[0]) if row else None

    def forget_contacts(
        self, *, wa_id: str | None = None, inbound_before: datetime | None = None
    ) -> int:
        if wa_id is None and inbound_before is None:
            return 0
        sql, args = "DELETE FROM contacts WHERE 1 = 1", []
        if wa_id is not None:
            sql += " AND wa_id = ?"
            args.append(wa_id)
        if inbound_before is not None:
            sql += " AND last_inbound < ?"
            args.append(_ts(inbound_before))
        with self.db.write() as c:
            return c.execute(sql, args).rowcount

    # ---- personal data: access log, data subjects -------------------------------------------

    def keep_notice(self, key: str, notice: dict[str, Any]) -> bool:
        with self.db.write() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO wa_notices (key, at, doc) VALUES (?, ?, ?)",
                (key, _ts(datetime.fromisoformat(notice["at"])), json.dumps(notice)),
            )
            return cur.rowcount == 1

    def notices(self, *, field: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        sql, args = "SELECT doc FROM wa_notices", []
        if field is not None:
            sql += " WHERE json_extract(doc, '$.field') = ?"
            args.append(field)
        sql += " ORDER BY at DESC, key LIMIT ?"
        rows = self.db.conn().execute(sql, (*args, limit)).fetchall()
        return [json.loads(r["doc"]) for r in rows]

    def log_access(self, record: AccessRecord) -> None:
        with self.db.write() as c:
            c.execute(
                "INSERT INTO accesses (at, actor_id, role, case_id, reg_no, what, client)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    _ts(record.at),
                    record.actor_id,
                    record.role,
                    record.case_id,
                    record.reg_no,
                    record.what,
                    record.client,
                ),
            )

    def accesses(
        self,
        since: datetime,
        until: datetime,
        *,
        case_id: str | None = None,
        actor_id: str | None = None,
        limit: int = 1000,
    ) -> list[AccessRecord]:
        sql = "SELECT * FROM accesses WHERE at >= ? AND at < ?"
        args: list[Any] = [_ts(since), _ts(until)]
        if case_id is not None:
            sql += " AND case_id = ?"
            args.append(case_id)
        if actor_id is not None:
            sql += " AND actor_id = ?"
            args.append(actor_id)
        sql += " ORDER BY at, seq LIMIT ?"
        args.append(limit)
        return [
            AccessRecord(
                at=datetime.fromisoformat(r["at"]),
                actor_id=r["actor_id"],
                role=r["role"],
                case_id=r["case_id"],
                reg_no=r["reg_no"],
                what=r["what"],
                client=r["client"],
            )
            for r in self.db.conn().execute(sql, args).fetchall()
        ]

    def cases_of_subject(
        self, *, nik: str | None = None, wa_id: str | None = None, limit: int = 500
    ) -> list[Case]:
        terms = ([f"nik:{nik}"] if nik else []) + ([f"wa:{wa_id}"] if wa_id else [])
        if not terms:
            return []
        hashes = [subject_hash(self._subject_key, t) for t in terms]
        rows = (
            self.db.conn()
            .execute(
                "SELECT doc, version FROM cases WHERE id IN"
                " (SELECT case_id FROM subjects WHERE hash IN (?, ?))",
                (hashes[0], hashes[-1]),  # one term or two
            )
            .fetchall()
        )
        found = sorted((self._load(r) for r in rows), key=lambda k: (k.created_at, k.id))
        return found[:limit]

    def _index_subjects(self, c: sqlite3.Connection, case: Case) -> None:
        c.execute("DELETE FROM subjects WHERE case_id = ?", (case.id,))
        c.executemany(
            "INSERT OR IGNORE INTO subjects (hash, case_id) VALUES (?, ?)",
            [(subject_hash(self._subject_key, t), case.id) for t in subject_terms(case)],
        )

    # ---- officers ---------------------------------------------------------------------------

    def staff_version(self) -> int:
        row = (
            self.db.conn().execute("SELECT value FROM meta WHERE name = 'staff_version'").fetchone()
        )
        return int(row["value"]) if row else 0

    def staff_roster(self) -> Roster:
        # one statement, so the version and the officers come from one snapshot
        rows = (
            self.db.conn()
            .execute(
                "SELECT v.version, s.doc FROM (SELECT COALESCE((SELECT value FROM meta"
                " WHERE name = 'staff_version'), '0') AS version) AS v"
                " LEFT JOIN staff AS s ORDER BY s.email"
            )
            .fetchall()
        )
        officers = tuple(StaffMember.from_json(r["doc"]) for r in rows if r["doc"] is not None)
        return Roster(int(rows[0]["version"]), officers)

    def save_staff(
        self,
        officers: Iterable[StaffMember],
        events: Iterable[StaffEvent],
        *,
        expected_version: int,
    ) -> int:
        with self.db.write() as c:
            row = c.execute("SELECT value FROM meta WHERE name = 'staff_version'").fetchone()
            if (int(row["value"]) if row else 0) != expected_version:
                raise ConcurrentUpdate("officers changed meanwhile")
            version = expected_version + 1
            c.executemany(
                "INSERT INTO staff (email, doc) VALUES (?, ?)"
                " ON CONFLICT(email) DO UPDATE SET doc = excluded.doc",
                [(m.email, m.to_json()) for m in officers],
            )
            c.executemany(
                "INSERT INTO staff_events (version, n, at, doc) VALUES (?, ?, ?, ?)",
                [(version, n, _ts(e.at), e.to_json()) for n, e in enumerate(events)],
            )
            c.execute(
                "INSERT INTO meta (name, value) VALUES ('staff_version', ?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (str(version),),
            )
        return version

    def staff_events(self, *, limit: int = 200) -> list[StaffEvent]:
        rows = (
            self.db.conn()
            .execute("SELECT doc FROM staff_events ORDER BY version DESC, n DESC LIMIT ?", (limit,))
            .fetchall()
        )
        return [StaffEvent.from_json(r["doc"]) for r in rows]

    # ---- internals --------------------------------------------------------------------------

    def _row(self, case: Case) -> tuple[Any, ...]:
        return (
            case.id,
            case.reg_no,
            case.kecamatan,
            case.wa_id,
            case.state,
            int(case.state not in self.terminal),
            _ts(case.updated_at),
            _dump(case),
        )

    @staticmethod
    def _load(row: sqlite3.Row) -> Case:
        case = Case.model_validate_json(row["doc"])
        case.version = int(row["version"])
        return case

    @staticmethod
    def _append_events(c: sqlite3.Connection, events: list[AuditEvent]) -> None:
        c.executemany(
            "INSERT INTO events (case_id, seq, at, doc) VALUES (?, ?, ?, ?)",
            [(e.case_id, e.seq, e.at.isoformat(), e.model_dump_json()) for e in events],
        )


def _dump(case: Case) -> str:
    return case.model_dump_json(exclude={"version"})


def _rollup_query(
    columns: str,
    part: str,
    first: date,
    last: date,
    kecamatan: str | None,
    service: str | None,
) -> tuple[str, list[Any]]:
    """The rollup cells of `part` for the days `first`..`last` of a kecamatan and service
    (None: any), as SQL and its arguments (`columns` is one of this module's constants)."""
    sql = f"SELECT {columns} FROM rollups WHERE part = ?"  # noqa: S608 (our own columns)
    args: list[Any] = [part]
    if kecamatan is not None:
        sql += " AND kecamatan = ?"
        args.append(kecamatan)
    if service is not None:
        sql += " AND service = ?"
        args.append(service)
    sql += " AND day >= ? AND day <= ?"
    args += [first.isoformat(), last.isoformat()]
    return sql, args


def _due_ts(at: datetime | None) -> str | None:
    """A due-time column: UTC with a fixed width, so text order is time order (read back
    with `datetime.fromisoformat`, like every other timestamp column)."""
    if at is None:
        return None
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ts(at: datetime) -> str:
    """A sortable timestamp column: always UTC, so text order is time order (the columns are
    compared with ORDER BY and max(), which see text, not instants)."""
    return at.astimezone(UTC).isoformat()
