"""CaseStore on Firestore (native mode): the cloud counterpart of `SqliteCaseStore`.

Layout (every collection name takes the optional `prefix`):

- `cases/{id}`: the case as one JSON string `doc` (exactly what SQLite stores: Firestore's data
  model refuses nested arrays and drops timezone offsets, a JSON string round-trips any form)
  plus the queried fields `version`, `state`, `kecamatan`, `wa_id`, `reg_no`, `is_open`,
  `has_outbox` and `updated_at` (a Firestore timestamp, so ordering is by instant).
- `cases/{id}/events/{seq:08d}`: the audit trail, append-only: each event is written with
  `create()` in the same atomic commit as the case, so a reused seq aborts the whole write.
- `open_cases/{kecamatan}:{wa_id}`: a lock document `{case_id}` created in the same commit as
  an open case and deleted in the commit that makes it terminal: at most one open case per
  kecamatan number and applicant.
- `reg_nos/{reg_no}`: create-if-absent, registration numbers are unique (as in SQLite).
- `messages/{id}`: the conversation, top-level so a message is found by its id (document id)
  and by `provider_id` (the wamid, for delivery statuses); `case_id`, `at`, `status`, `doc`.
- `dedupe/{key}`: create-if-absent records with an optional JSON `value`.
- `contacts/{kecamatan}:{wa_id}`: the last inbound time, kept with an atomic `Maximum`
  transform on integer microseconds (no transaction, late deliveries never win).
- `sequences/{scope}`: one counter document per scope, bumped with an atomic `Increment`
  whose result the commit returns. Firestore sustains about one write per second per document;
  the scopes are per kecamatan per day (registration numbers), far below that, so a sharded
  counter is not needed. A commit retried after an unknown outcome can leave a gap, never a
  duplicate.
- `access_log/{auto id}`: who read which case's personal data (`AccessRecord`), each record
  written with `create()` and never touched again by SAPA. Firestore cannot refuse an update or
  a delete the way SQLite's triggers do: security rules bind only the client SDKs, never the
  server libraries, and IAM grants per database, not per collection (the functions need
  update and delete on cases). What stands in for the triggers is IAM around it: no person
  holds a write role on the database (only the functions' service account, `datastore.user`),
  and Cloud Audit Logs' Data Access logs (`infra/audit.tf`) record every write and delete of a
  document with the caller's identity, so a changed or removed record is itself on record. A
  stricter deployment moves the log to a database of its own where that account holds a custom
  role with only `datastore.entities.create`/`get`/`list` (this adapter would then take a second
  client for the log).
- `cases.rollup`: the case's rollup ledger (`sapa.domain.rollup`) as a JSON string, and
  `rollups/{part}|{day}|{kecamatan}|{service}|{shard}`: the cells, fields `part`, `day`,
  `kecamatan`, `service`, `shard` and the counters in the map `f`. A save adds the change of
  the ledger to the cells with `Increment` transforms in the same atomic commit as the case
  (under its precondition: a lost race adds nothing), so no cell is read to be written. The
  one cell per day that every case of the day touches (all kecamatan and all services) is
  spread over `rollup_shards` documents by case id; reads add the shards up and drop the
  zeros that increments leave. Writes per cell document: Gowa's busiest opening day, 240
  cases of ~12 counted saves each over the next days, is ~0.1 write/s on its all-kecamatan
  cell in office hours before sharding (Kabupaten Bogor, 1,700 cases a day: ~0.7/s, 0.18/s
  over four shards), well under Firestore's one sustained write per second per document.
  The map `f` is exempt from single-field indexing (`infra/firestore.tf`): counters are
  never queried.
- `cases.sla_due`, `cases.retention_due`, `cases.complaint_due`, `cases.suggestion_due`
  (timestamps, null when nothing is due) and
  `cases.claimant` (the e-mail holding the open case's waiting step): the due times of
  `sapa.domain.agenda`, written in the same commit as the case; the sweeps query
  `sla_due <= now` ordered by it and the document id (the field's single-field index is
  enough), the claims `claimant == e-mail`.
- `cases.subjects`: keyed hashes (HMAC-SHA256, `subject_hash`) of the case's NIK and WhatsApp
  numbers, queried with `array_contains`; the key is `meta/subject_index.key`, created once
  (create-if-absent) and kept beside the data (whoever reads it reads the case documents too;
  it keeps an index copied alone, or left behind by anonymisation, from naming anyone). Cases
  saved before this field existed get it on their next save (`sapa subject-reindex`).
- `staff/{email}`: the officers (the staff directory), one JSON `doc` each; `meta/staff` holds
  their `version`. `save_staff` commits the officers, their audit events and the new version
  as one batch preconditioned on the version document's update time (created, for the first
  save), so two admins' changes can never both pass the rules checked on the same roster.
  `staff_roster` reads the version first and the officers after: a roster that mixes in a
  later change carries the older version, and a save based on it fails instead of passing.
- `staff_events/{version:010d}-{n:04d}`: the staff audit trail, each event written with
  `create()` in that batch (a reused id aborts it), listed newest first by `seq` (version ×
  10,000 + n: a single-field index; the emulator cannot scan document ids backwards).

Writes to one case are optimistic: `save` reads the case, checks `version`, then commits the
case, its new events and any lock change as one batch preconditioned on the case document's
update time (a write in between fails the precondition → `ConcurrentUpdate`). Unlike a
read-write transaction this holds no lock between read and commit, so contended writers fail
fast instead of waiting for lock timeouts (the emulator's locks are pessimistic).

Document ids are percent-encoded (`/` is not allowed in an id). Composite indexes the queries
need in production (the emulator needs none): cases (kecamatan, wa_id, updated_at DESC),
cases (state, kecamatan, updated_at), cases (state, updated_at), cases (kecamatan, updated_at),
cases (kecamatan, updated_at DESC), cases (has_outbox, updated_at),
messages (case_id, at, added), access_log (case_id, at),
access_log (actor_id, at), access_log (case_id, actor_id, at), wa_notices (field, at DESC),
rollups (part, day), rollups (part, kecamatan, day), rollups (part, service, day),
rollups (part, kecamatan, service, day).

Importing this module does not import google.cloud: the client library is loaded on first use.
Backend errors (aborted, deadline exceeded, unavailable, resource exhausted) become
`TransientError` (`ConcurrentUpdate`, itself transient, for a case write that lost a race).
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import threading
import zlib
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, cast
from urllib.parse import quote

from sapa.domain.agenda import Agenda
from sapa.domain.case import AuditEvent, Case
from sapa.domain.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    NotFound,
    SapaError,
    TransientError,
)
from sapa.domain.rollup import (
    ALL,
    CellKey,
    Changes,
    RollupCell,
    RollupTracker,
    counters,
    difference,
    merged,
    total,
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

REDACTED = "[dihapus sesuai jadwal retensi]"

_STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
_TERMINAL = {"delivered", "rejected", "cancelled", "expired"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IN_LIMIT = 30  # Firestore's limit on the values of one `in` filter
_TX_ATTEMPTS = 10  # the emulator aborts contended transactions ("lock timeout"); retry them
_BATCH = 400  # writes per commit, below Firestore's 500
ROLLUP_SHARDS = 4

F = TypeVar("F", bound=Callable[..., Any])


def _transient_types() -> tuple[type[BaseException], ...]:
    from google.api_core import exceptions as gx

    return (
        gx.Aborted,
        gx.DeadlineExceeded,
        gx.ServiceUnavailable,
        gx.ResourceExhausted,
        gx.RetryError,
    )


def _backend_errors(func: F) -> F:
    """Translate google.api_core errors into SAPA's error hierarchy."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SapaError:
            raise
        except Exception as exc:
            transient = _transient_types()
            if isinstance(exc, transient) or (
                isinstance(exc, ValueError) and isinstance(exc.__cause__, transient)
            ):
                raise TransientError(
                    "Firestore is unavailable or busy", operation=func.__name__, error=str(exc)
                ) from exc
            raise

    return cast(F, wrapper)


class FirestoreCaseStore:
    """The cloud CaseStore. Thread-safe (one gRPC client shared by all threads)."""

    def __init__(
        self,
        project: str,
        *,
        database: str = "(default)",
        client: Any = None,
        prefix: str = "",
        terminal_states: Iterable[str] | None = None,
        tracker: Callable[[], RollupTracker] | None = None,
        agenda: Callable[[], Agenda] | None = None,
        rollup_shards: int = ROLLUP_SHARDS,
    ) -> None:
        self.project = project
        self.database = database
        self.prefix = prefix
        self.terminal = frozenset(terminal_states or _TERMINAL)
        self.tracker = tracker
        self.agenda = agenda
        self.rollup_shards = max(int(rollup_shards), 1)
        self._client = client
        self._lock = threading.Lock()
        self._subject_key: bytes | None = None

    # ---- plumbing ---------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The Firestore client, created on first use (honours FIRESTORE_EMULATOR_HOST)."""
        with self._lock:
            if self._client is None:
                from google.cloud import firestore

                self._client = firestore.Client(project=self.project, database=self.database)
            return self._client

    def _col(self, name: str) -> Any:
        return self.client.collection(self.prefix + name)

    def _case_ref(self, case_id: str) -> Any:
        return self._col("cases").document(_doc_id(case_id))

    def _open_ref(self, kecamatan: str, wa_id: str) -> Any:
        return self._col("open_cases").document(_doc_id(f"{kecamatan}:{wa_id}"))

    def _transaction(self) -> Any:
        return self.client.transaction(max_attempts=_TX_ATTEMPTS)

    # ---- cases ------------------------------------------------------------------------------

    @_backend_errors
    def create(self, case: Case) -> None:
        from google.api_core import exceptions as gx

        ref = self._case_ref(case.id)
        batch = self.client.batch()  # atomic: all creates succeed or none
        fields = self._fields(case, version=1)
        self._count(batch, case, None, fields)
        batch.create(ref, fields)
        batch.create(self._col("reg_nos").document(_doc_id(case.reg_no)), {"case_id": case.id})
        if self._is_open(case):
            batch.create(self._open_ref(case.kecamatan, case.wa_id), {"case_id": case.id})
        for event in case.new_events:
            batch.create(_event_ref(ref, event.seq), _event_fields(event))
        try:
            batch.commit()
        except gx.AlreadyExists as exc:
            raise AlreadyExists("case exists", case_id=case.id, error=str(exc)) from exc
        case.version = 1
        case.new_events.clear()

    @_backend_errors
    def get(self, case_id: str) -> Case:
        snap = self._case_ref(case_id).get()
        if not snap.exists:
            raise NotFound(text("case_not_found"), case_id=case_id)
        return _load(snap)

    @_backend_errors
    def save(self, case: Case) -> None:
        from google.api_core import exceptions as gx

        ref = self._case_ref(case.id)
        snap = ref.get()
        if not snap.exists or snap.get("version") != case.version:
            raise ConcurrentUpdate("case changed meanwhile", case_id=case.id)
        old = snap.to_dict()
        old_lock = self._open_ref(old["kecamatan"], old["wa_id"]) if old.get("is_open") else None
        new_lock = self._open_ref(case.kecamatan, case.wa_id) if self._is_open(case) else None
        moved = _path(old_lock) != _path(new_lock)

        # One atomic commit, guarded by the case document's update time: it applies only if
        # nobody wrote the case since the read above (optimistic: no lock is held meanwhile).
        batch = self.client.batch()
        unchanged = self.client.write_option(last_update_time=snap.update_time)
        fields = self._fields(case, version=case.version + 1)
        self._count(batch, case, _held(old), fields)
        batch.update(ref, fields, option=unchanged)
        if moved:
            if old_lock is not None:
                batch.delete(old_lock)
            if new_lock is not None:
                batch.create(new_lock, {"case_id": case.id})
        for event in case.new_events:
            batch.create(_event_ref(ref, event.seq), _event_fields(event))
        try:
            batch.commit()
        except (gx.FailedPrecondition, gx.Aborted) as exc:
            raise ConcurrentUpdate("case changed meanwhile", case_id=case.id) from exc
        except gx.AlreadyExists as exc:
            if new_lock is not None and moved:
                held = new_lock.get()
                if held.exists and held.get("case_id") != case.id:
                    raise AlreadyExists(
                        "open case exists", case_id=held.get("case_id"), error=str(exc)
                    ) from exc
            # an event seq exists: history is never rewritten
            raise ConcurrentUpdate(
                "case changed meanwhile", case_id=case.id, error=str(exc)
            ) from exc
        case.version += 1
        case.new_events.clear()

    # ---- rollups ----------------------------------------------------------------------------

    def _count(
        self,
        batch: Any,
        case: Case,
        held: dict[str, Any] | None,
        fields: dict[str, Any],
        *,
        fresh: bool = False,
    ) -> dict[str, Any] | None:
        """Bring the case's ledger up to date (from nothing when `fresh`): the new ledger goes
        into the case's `fields`, the change of the cells into the same `batch`."""
        if self.tracker is None:
            return None
        ledger = self.tracker().ledger(case, None if fresh else held)
        if ledger != held:
            fields["rollup"] = json.dumps(ledger)
            changes = difference(counters(held), counters(ledger))
            self._add_to_cells(batch, changes, shard=self._shard(case.id))
        return ledger

    def _shard(self, case_id: str) -> int:
        return zlib.crc32(case_id.encode()) % self.rollup_shards

    def _add_to_cells(self, batch: Any, changes: Changes, *, shard: int = 0) -> None:
        from google.cloud import firestore

        for key, change in changes.items():
            n = shard if key.kecamatan == ALL and key.service == ALL else 0
            ref = self._col("rollups").document(_doc_id("|".join((*key, str(n)))))
            increments = {name: firestore.Increment(add) for name, add in change.items()}
            batch.set(ref, {**key._asdict(), "shard": n, "f": increments}, merge=True)

    @_backend_errors
    def rollup_total(
        self,
        part: str,
        first: date,
        last: date,
        *,
        kecamatan: str | None = None,
        service: str | None = None,
    ) -> dict[str, int]:
        snaps = self._rollup_query(part, first, last, kecamatan, service).stream()
        out = merged(_cell_counters(snap.get("f")) for snap in snaps)
        return {name: value for name, value in out.items() if value}

    def _rollup_query(
        self, part: str, first: date, last: date, kecamatan: str | None, service: str | None
    ) -> Any:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._col("rollups").where(filter=_eq("part", part))
        if kecamatan is not None:
            query = query.where(filter=_eq("kecamatan", kecamatan))
        if service is not None:
            query = query.where(filter=_eq("service", service))
        query = query.where(filter=FieldFilter("day", ">=", first.isoformat()))
        return query.where(filter=FieldFilter("day", "<=", last.isoformat()))

    @_backend_errors
    def rollups(
        self,
        part: str,
        first: date,
        last: date,
        *,
        kecamatan: str | None = None,
        service: str | None = None,
    ) -> list[RollupCell]:
        snaps = self._rollup_query(part, first, last, kecamatan, service).stream()
        # the shards of a cell added up, and the zeros that increments leave dropped
        cells = total(
            {CellKey(d["part"], d["day"], d["kecamatan"], d["service"]): _cell_counters(d.get("f"))}
            for d in (snap.to_dict() for snap in snaps)
        )
        return [RollupCell(key, values) for key, values in cells.items()]

    @_backend_errors
    def recount(self, case_id: str) -> dict[str, Any] | None:
        from google.api_core import exceptions as gx

        ref = self._case_ref(case_id)
        for _ in range(_TX_ATTEMPTS):
            snap = ref.get()
            if not snap.exists:
                raise NotFound(text("case_not_found"), case_id=case_id)
            stored = snap.to_dict()
            held = _held(stored)
            batch = self.client.batch()
            fields: dict[str, Any] = {}
            case = _load(snap)
            ledger = self._count(batch, case, held, fields, fresh=True)
            if self.agenda is not None:
                due = self._due(case)
                if any(_instant(stored.get(k)) != _instant(v) for k, v in due.items()):
                    fields.update(due)
            if not fields:
                return ledger  # counted as it would be now
            unchanged = self.client.write_option(last_update_time=snap.update_time)
            batch.update(ref, fields, option=unchanged)
            try:
                batch.commit()
            except (gx.FailedPrecondition, gx.Aborted):
                continue  # saved meanwhile: count that version
            return ledger
        raise ConcurrentUpdate("case too busy to recount", case_id=case_id)

    @_backend_errors
    def due_cases(
        self,
        kind: str,
        now: datetime,
        *,
        limit: int = 200,
        after: tuple[datetime, str] | None = None,
    ) -> list[DueCase]:
        from google.cloud.firestore_v1.base_query import FieldFilter
        from google.cloud.firestore_v1.field_path import FieldPath

        if kind not in DUE_KINDS:
            raise ValueError(f"unknown due time {kind!r}")
        field = f"{kind}_due"
        query = (
            self._col("cases")
            .where(filter=FieldFilter(field, "<=", now.astimezone(UTC)))
            .order_by(field)
            .order_by(FieldPath.document_id())
        )
        if after is not None:
            at, case_id = after
            query = query.start_after(
                {field: at.astimezone(UTC), FieldPath.document_id(): self._case_ref(case_id)}
            )
        return [
            DueCase(_instant(snap.get(field)), _load(snap)) for snap in query.limit(limit).stream()
        ]

    @_backend_errors
    def claimed_by(self, email: str, *, limit: int = 500, after: str | None = None) -> list[Case]:
        from google.cloud.firestore_v1.field_path import FieldPath

        query = (
            self._col("cases")
            .where(filter=_eq("claimant", email))
            .order_by(FieldPath.document_id())
        )
        if after is not None:
            query = query.start_after({FieldPath.document_id(): self._case_ref(after)})
        return [_load(s) for s in query.limit(limit).stream()]

    @_backend_errors
    def adjust_rollups(self, changes: Changes) -> None:
        items = list(changes.items())
        for i in range(0, len(items), _BATCH):
            batch = self.client.batch()
            self._add_to_cells(batch, dict(items[i : i + _BATCH]))
            batch.commit()

    @_backend_errors
    def latest_for(self, kecamatan: str, wa_id: str) -> Case | None:
        from google.cloud import firestore

        query = (
            self._col("cases")
            .where(filter=_eq("kecamatan", kecamatan))
            .where(filter=_eq("wa_id", wa_id))
            .order_by("updated_at", direction=firestore.Query.DESCENDING)
            .limit(1)
        )
        found = list(query.stream())
        return _load(found[0]) if found else None

    @_backend_errors
    def find_open(self, kecamatan: str, wa_id: str) -> Case | None:
        lock = self._open_ref(kecamatan, wa_id).get()
        if not lock.exists:
            return None
        snap = self._case_ref(lock.get("case_id")).get()
        if not snap.exists or not snap.get("is_open"):
            return None
        return _load(snap)

    @_backend_errors
    def list_cases(
        self,
        *,
        states: Iterable[str] | None = None,
        kecamatan: str | None = None,
        updated_since: datetime | None = None,
        limit: int = 200,
        newest_first: bool = False,
    ) -> list[Case]:
        from google.cloud import firestore

        order = firestore.Query.DESCENDING if newest_first else firestore.Query.ASCENDING
        base = self._col("cases")
        if kecamatan:
            base = base.where(filter=_eq("kecamatan", kecamatan))
        if updated_since is not None:
            from google.cloud.firestore_v1.base_query import FieldFilter

            since = updated_since.astimezone(UTC)
            base = base.where(filter=FieldFilter("updated_at", ">=", since))
        if states is None:
            query = base.order_by("updated_at", direction=order).limit(limit)
            return [_load(s) for s in query.stream()]
        wanted = sorted(set(states))
        if not wanted:
            return []
        from google.cloud.firestore_v1.base_query import FieldFilter

        snaps: list[Any] = []
        for i in range(0, len(wanted), _IN_LIMIT):
            chunk = wanted[i : i + _IN_LIMIT]
            query = base.where(filter=FieldFilter("state", "in", chunk))
            snaps += query.order_by("updated_at", direction=order).limit(limit).stream()
        snaps.sort(key=lambda s: (s.get("updated_at"), s.id), reverse=newest_first)
        return [_load(s) for s in snaps[:limit]]

    @_backend_errors
    def with_outbox(self, limit: int = 500) -> list[Case]:
        query = (
            self._col("cases")
            .where(filter=_eq("has_outbox", True))
            .order_by("updated_at")
            .limit(limit)
        )
        return [_load(s) for s in query.stream()]

    @_backend_errors
    def events(self, case_id: str) -> list[AuditEvent]:
        query = self._case_ref(case_id).collection("events").order_by("seq")
        return [AuditEvent.model_validate_json(s.get("doc")) for s in query.stream()]

    # ---- conversation, dedupe, counters -----------------------------------------------------

    @_backend_errors
    def add_message(self, message: Message) -> bool:
        from google.api_core import exceptions as gx
        from google.cloud import firestore

        doc = message.to_json()
        provider_id = message.provider_id
        try:
            self._col("messages").document(_doc_id(message.id)).create(
                {
                    "case_id": message.case_id,
                    "at": message.at,
                    "added": firestore.SERVER_TIMESTAMP,  # ties in `at`: insertion order
                    "provider_id": provider_id,
                    "status": message.status,
                    "doc": doc,
                }
            )
        except gx.AlreadyExists:
            return False
        return True

    def _message_query(self, case_id: str) -> Any:
        return self._col("messages").where(filter=_eq("case_id", case_id))

    @_backend_errors
    def messages(self, case_id: str) -> list[Message]:
        query = self._message_query(case_id).order_by("at").order_by("added")
        out = []
        for snap in query.stream():
            out.append(Message.from_json(snap.get("doc"), snap.get("status") or ""))
        return out

    @_backend_errors
    def redact_messages(self, case_id: str) -> int:
        count, batch, pending = 0, self.client.batch(), 0
        for snap in self._message_query(case_id).stream():
            d = json.loads(snap.get("doc"))
            if d.get("body") == REDACTED and not d.get("data"):
                continue
            d["body"], d["data"] = REDACTED, {}
            batch.update(snap.reference, {"doc": json.dumps(d)})
            count += 1
            pending += 1
            if pending == 400:  # below Firestore's 500 writes per commit
                batch.commit()
                batch, pending = self.client.batch(), 0
        if pending:
            batch.commit()
        return count

    @_backend_errors
    def set_message_status(self, provider_id: str, status: str, at: datetime) -> str | None:
        from google.cloud import firestore

        rank = _STATUS_RANK.get(status)
        if rank is None:
            return None
        refs = [
            s.reference
            for s in self._col("messages").where(filter=_eq("provider_id", provider_id)).stream()
        ]
        if not refs:
            return None

        @firestore.transactional  # type: ignore[untyped-decorator,unused-ignore]
        def write(tx: Any) -> str:
            snaps = [r.get(transaction=tx) for r in refs]
            for snap in snaps:
                if snap.exists and rank > _STATUS_RANK.get(snap.get("status") or "", 0):
                    tx.update(snap.reference, {"status": status})
            return str(snaps[0].get("case_id"))

        return cast(str, write(self._transaction()))

    @_backend_errors
    def message_exists(self, message_id: str) -> bool:
        return bool(self._col("messages").document(_doc_id(message_id)).get().exists)

    @_backend_errors
    def complete_recovered(self, message: Message) -> bool:
        from google.api_core import exceptions as gx

        ref = self._col("messages").document(_doc_id(message.id))
        for _ in range(5):  # a status written in between: read again
            snap = ref.get()
            if not snap.exists:
                return False
            doc = completed_placeholder(snap.get("doc"), snap.get("provider_id"), message)
            if doc is None:
                return False
            try:
                ref.update(
                    {"doc": doc},
                    option=self.client.write_option(last_update_time=snap.update_time),
                )
            except gx.FailedPrecondition:
                continue
            return True
        raise TransientError("message changed while its text was being completed")

    @_backend_errors
    def put_key(self, key: str, value: dict[str, Any]) -> None:
        from google.cloud import firestore

        self._col("dedupe").document(_doc_id(key)).set(
            {"at": firestore.SERVER_TIMESTAMP, "value": json.dumps(value)}
        )

    @_backend_errors
    def get_key(self, key: str) -> dict[str, Any] | None:
        snap = self._col("dedupe").document(_doc_id(key)).get()
        if not snap.exists or snap.get("value") is None:
            return None
        value: dict[str, Any] = json.loads(snap.get("value"))
        return value

    @_backend_errors
    def claim_key(self, key: str, *, value: dict[str, Any] | None = None) -> bool:
        from google.api_core import exceptions as gx
        from google.cloud import firestore

        try:
            self._col("dedupe").document(_doc_id(key)).create(
                {
                    "at": firestore.SERVER_TIMESTAMP,
                    "value": json.dumps(value) if value is not None else None,
                }
            )
        except gx.AlreadyExists:
            return False
        return True

    @_backend_errors
    def next_sequence(self, scope: str, *, expires_at: datetime | None = None) -> int:
        from google.cloud import firestore

        fields: dict[str, Any] = {"value": firestore.Increment(1)}
        if expires_at is not None:  # the TTL policy on sequences.expire_at deletes it later
            fields["expire_at"] = expires_at.astimezone(UTC)
        result = self._col("sequences").document(_doc_id(scope)).set(fields, merge=True)
        return int(result.transform_results[0].integer_value)

    @_backend_errors
    def forget_expired_counters(self, now: datetime) -> int:
        """What the TTL policy does in the cloud (within a day or so), done now: for the
        emulator, and for a deployment without the policy."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._col("sequences").where(
            filter=FieldFilter("expire_at", "<", now.astimezone(UTC))
        )
        gone = 0
        for snap in query.stream():
            snap.reference.delete()
            gone += 1
        return gone

    @_backend_errors
    def record_contact(self, kecamatan: str, wa_id: str, at: datetime) -> None:
        from google.cloud import firestore

        self._col("contacts").document(_doc_id(f"{kecamatan}:{wa_id}")).set(
            {
                "kecamatan": kecamatan,
                "wa_id": wa_id,
                "last_inbound_us": firestore.Maximum(_micros(at)),
            },
            merge=True,
        )

    @_backend_errors
    def last_inbound(self, kecamatan: str, wa_id: str) -> datetime | None:
        snap = self._col("contacts").document(_doc_id(f"{kecamatan}:{wa_id}")).get()
        if not snap.exists:
            return None
        return _EPOCH + timedelta(microseconds=int(snap.get("last_inbound_us")))

    @_backend_errors
    def forget_contacts(
        self, *, wa_id: str | None = None, inbound_before: datetime | None = None
    ) -> int:
        from google.cloud.firestore_v1.base_query import FieldFilter

        if wa_id is None and inbound_before is None:
            return 0
        query = self._col("contacts")
        if wa_id is not None:
            query = query.where(filter=_eq("wa_id", wa_id))
        if inbound_before is not None:
            cutoff = _micros(inbound_before)
            query = query.where(filter=FieldFilter("last_inbound_us", "<", cutoff))
        gone = 0
        for snap in query.stream():
            snap.reference.delete()
            gone += 1
        return gone

    # ---- personal data: access log, data subjects -------------------------------------------

    @_backend_errors
    def log_access(self, record: AccessRecord) -> None:
        self._col("access_log").document().create(
            {
                "at": record.at.astimezone(UTC),
                "actor_id": record.actor_id,
                "role": record.role,
                "case_id": record.case_id,
                "reg_no": record.reg_no,
                "what": record.what,
                "client": record.client,
            }
        )

    @_backend_errors
    def keep_notice(self, key: str, notice: dict[str, Any]) -> bool:
        from google.api_core import exceptions as gx

        try:
            self._col("wa_notices").document(_doc_id(key)).create(
                {
                    "at": datetime.fromisoformat(notice["at"]).astimezone(UTC),
                    "field": str(notice.get("field", "")),
                    "doc": json.dumps(notice),
                }
            )
        except gx.AlreadyExists:
            return False
        return True

    @_backend_errors
    def notices(self, *, field: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        from google.cloud import firestore

        query = self._col("wa_notices")
        if field is not None:
            query = query.where(filter=_eq("field", field))
        query = query.order_by("at", direction=firestore.Query.DESCENDING)
        return [json.loads(s.get("doc")) for s in query.limit(limit).stream()]

    @_backend_errors
    def accesses(
        self,
        since: datetime,
        until: datetime,
        *,
        case_id: str | None = None,
        actor_id: str | None = None,
        limit: int = 1000,
    ) -> list[AccessRecord]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._col("access_log")
        if case_id is not None:
            query = query.where(filter=_eq("case_id", case_id))
        if actor_id is not None:
            query = query.where(filter=_eq("actor_id", actor_id))
        query = query.where(filter=FieldFilter("at", ">=", since.astimezone(UTC)))
        query = query.where(filter=FieldFilter("at", "<", until.astimezone(UTC)))
        return [
            AccessRecord(
                at=s.get("at"),
                actor_id=s.get("actor_id"),
                role=s.get("role"),
                case_id=s.get("case_id"),
                reg_no=s.get("reg_no"),
                what=s.get("what"),
                client=s.get("client"),
            )
            for s in query.order_by("at").limit(limit).stream()
        ]

    @_backend_errors
    def cases_of_subject(
        self, *, nik: str | None = None, wa_id: str | None = None, limit: int = 500
    ) -> list[Case]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        terms = ([f"nik:{nik}"] if nik else []) + ([f"wa:{wa_id}"] if wa_id else [])
        found: dict[str, Case] = {}
        for term in terms:
            wanted = subject_hash(self._index_key(), term)
            query = self._col("cases").where(
                filter=FieldFilter("subjects", "array_contains", wanted)
            )
            # every match, then oldest first: one person's cases are few, and Firestore would
            # cut an unordered query at an arbitrary case (ordering needs another index)
            for snap in query.stream():
                found[snap.id] = _load(snap)
        return sorted(found.values(), key=lambda k: (k.created_at, k.id))[:limit]

    def _index_key(self) -> bytes:
        """The subject-index key, created by the first store that needs it."""
        from google.api_core import exceptions as gx

        if self._subject_key is None:
            ref = self._col("meta").document("subject_index")
            with contextlib.suppress(gx.AlreadyExists):  # another instance was first
                ref.create({"key": secrets.token_hex(32)})
            self._subject_key = bytes.fromhex(ref.get().get("key"))
        return self._subject_key

    # ---- officers ---------------------------------------------------------------------------

    def _staff_meta(self) -> Any:
        return self._col("meta").document("staff")

    @_backend_errors
    def staff_version(self) -> int:
        snap = self._staff_meta().get()
        return int(snap.get("version")) if snap.exists else 0

    @_backend_errors
    def staff_roster(self) -> Roster:
        version = self.staff_version()  # first: see the docstring at the top
        officers = [StaffMember.from_json(s.get("doc")) for s in self._col("staff").stream()]
        return Roster(version, tuple(sorted(officers, key=lambda m: m.email)))

    @_backend_errors
    def save_staff(
        self,
        officers: Iterable[StaffMember],
        events: Iterable[StaffEvent],
        *,
        expected_version: int,
    ) -> int:
        from google.api_core import exceptions as gx

        meta = self._staff_meta()
        snap = meta.get()
        if (int(snap.get("version")) if snap.exists else 0) != expected_version:
            raise ConcurrentUpdate("officers changed meanwhile")
        version = expected_version + 1
        batch = self.client.batch()
        if snap.exists:
            unchanged = self.client.write_option(last_update_time=snap.update_time)
            batch.update(meta, {"version": version}, option=unchanged)
        else:
            batch.create(meta, {"version": version})
        for member in officers:
            batch.set(
                self._col("staff").document(_doc_id(member.email)),
                {"email": member.email, "doc": member.to_json()},
            )
        for n, event in enumerate(events):
            batch.create(
                self._col("staff_events").document(f"{version:010d}-{n:04d}"),
                {
                    "seq": version * 10_000 + n,
                    "at": event.at.astimezone(UTC),
                    "doc": event.to_json(),
                },
            )
        try:
            batch.commit()
        except (gx.FailedPrecondition, gx.Aborted, gx.AlreadyExists) as exc:
            raise ConcurrentUpdate("officers changed meanwhile", error=str(exc)) from exc
        return version

    @_backend_errors
    def staff_events(self, *, limit: int = 200) -> list[StaffEvent]:
        from google.cloud import firestore

        query = self._col("staff_events").order_by("seq", direction=firestore.Query.DESCENDING)
        return [StaffEvent.from_json(s.get("doc")) for s in query.limit(limit).stream()]

    # ---- internals --------------------------------------------------------------------------

    def _is_open(self, case: Case) -> bool:
        return case.state not in self.terminal

    def _fields(self, case: Case, *, version: int) -> dict[str, Any]:
        return {
            "doc": case.model_dump_json(exclude={"version"}),
            "version": version,
            "state": case.state,
            "kecamatan": case.kecamatan,
            "wa_id": case.wa_id,
            "reg_no": case.reg_no,
            "is_open": self._is_open(case),
            "has_outbox": bool(case.outbox),
            "updated_at": case.updated_at.astimezone(UTC),
            "subjects": sorted(subject_hash(self._index_key(), t) for t in subject_terms(case)),
            **self._due(case),
        }

    def _due(self, case: Case) -> dict[str, Any]:
        """The case's due-time fields (None: nothing due; all None without an agenda)."""
        if self.agenda is None:
            return dict.fromkeys(
                ("sla_due", "retention_due", "claimant", "complaint_due", "suggestion_due")
            )
        due = self.agenda().due(case)
        return {
            "sla_due": due.sla.astimezone(UTC) if due.sla is not None else None,
            "retention_due": due.retention.astimezone(UTC) if due.retention else None,
            "claimant": due.claimant,
            "complaint_due": due.complaint.astimezone(UTC) if due.complaint else None,
            "suggestion_due": due.suggestion.astimezone(UTC) if due.suggestion else None,
        }


def _instant(value: Any) -> Any:
    """A stored timestamp as a plain UTC datetime (Firestore returns its own subclass)."""
    if isinstance(value, datetime):
        at = value.astimezone(UTC)
        return datetime(*at.timetuple()[:6], at.microsecond, tzinfo=UTC)
    return value


def _cell_counters(f: dict[str, Any] | None) -> dict[str, int]:
    """A rollup cell document's counters (its map `f`)."""
    return {name: int(value) for name, value in (f or {}).items()}


def _held(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    """The rollup ledger a stored case document holds (None: counted nowhere yet)."""
    raw = (fields or {}).get("rollup")
    return json.loads(raw) if raw else None


def _load(snap: Any) -> Case:
    case = Case.model_validate_json(snap.get("doc"))
    case.version = int(snap.get("version"))
    return case


def _event_ref(case_ref: Any, seq: int) -> Any:
    return case_ref.collection("events").document(f"{seq:08d}")


def _event_fields(event: AuditEvent) -> dict[str, Any]:
    return {"seq": event.seq, "at": event.at.astimezone(UTC), "doc": event.model_dump_json()}


def _eq(field: str, value: Any) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return FieldFilter(field, "==", value)


def _path(ref: Any) -> str | None:
    return None if ref is None else str(ref.path)


def _micros(at: datetime) -> int:
    delta = at.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _doc_id(key: str) -> str:
    """A valid, injective Firestore document id for any string (no '/', not '.'/'..'/__x__):
    `quote` never emits %2E or %5F, so the escapes below cannot collide with a quoted key."""
    out = quote(key, safe="")
    if not out:
        return "%"  # a lone % is never in quote's output
    if out in (".", ".."):
        return out.replace(".", "%2E")
    if out.startswith("__"):
        return "%5F" + out[1:]
    return out
