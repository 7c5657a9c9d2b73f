"""Ports: what the services need from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from sapa.domain.case import AuditEvent, Case
from sapa.domain.rollup import Changes, RollupCell
from sapa.domain.staff import Roster, StaffEvent
from sapa.domain.staff import StaffMember as StaffMember  # the port's officer, re-exported

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@dataclass(frozen=True)
class Message:
    """One WhatsApp message of a case's conversation, inbound or outbound."""

    case_id: str
    id: str  # wamid (inbound: Meta's; outbound: the one the API returned) or a local key
    direction: str  # "in" | "out"
    at: datetime
    type: str  # text | image | document | ...
    body: str = ""
    actor_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    status: str = ""  # outbound: the provider's latest status (sent, delivered, read, failed)

    @property
    def provider_id(self) -> str | None:
        """The WhatsApp id statuses refer to: ours for inbound, the API's answer for outbound."""
        wamid = self.data.get("wamid")
        return str(wamid) if wamid else (self.id if self.direction == "in" else None)

    def to_json(self) -> str:
        """The stored form (the status lives beside it: it changes, the message does not)."""
        return json.dumps(
            {
                "case_id": self.case_id,
                "id": self.id,
                "direction": self.direction,
                "at": self.at.isoformat(),
                "type": self.type,
                "body": self.body,
                "actor_id": self.actor_id,
                "data": self.data,
            }
        )

    @classmethod
    def from_json(cls, doc: str, status: str = "") -> Message:
        d = json.loads(doc)
        d["at"] = datetime.fromisoformat(d["at"])
        d["status"] = status or ""
        return cls(**d)


def completed_placeholder(stored: str, provider_id: str | None, message: Message) -> str | None:
    """The stored form of `message` in place of the recovered placeholder `stored` (its time
    kept), or None if `stored` is not the placeholder of the same send."""
    old = json.loads(stored)
    if not (old.get("data") or {}).get("recovered") or provider_id != message.provider_id:
        return None
    if old.get("case_id") != message.case_id:
        return None
    new = json.loads(message.to_json())
    new["at"] = old["at"]
    return json.dumps(new)


@dataclass(frozen=True)
class AccessRecord:
    """One read of personal data by an officer: UU 27/2022's record of processing covers who
    saw a resident's data, not only who changed it. Never holds the data itself."""

    at: datetime
    actor_id: str  # the officer's e-mail (on the command line: the admin named with --by)
    role: str  # the roles the officer held, comma-separated
    case_id: str
    reg_no: str
    what: str  # case | document:<n> | handoff | subject_search | subject_export | ...
    client: str = ""  # a keyed hash of the client's address, or "" (never the address)


def subject_terms(case: Case) -> set[str]:
    """What identifies the case's resident, as index terms: the NIK they gave and their
    WhatsApp identities (the number or user id they wrote from, the number in the form, their
    business-scoped user id). Masked values (after
    anonymisation) are no terms: an anonymised case is found by nobody's NIK."""
    terms = set()
    nik = str(case.form.get("nik") or "")
    if nik.isdigit():
        terms.add(f"nik:{nik}")
    for wa in (case.wa_id, str(case.form.get("wa_number") or ""), case.wa_user_id or ""):
        # a number, or a business-scoped user id (a resident known by username); a masked
        # value (after anonymisation) is no term
        if wa and "*" not in wa:
            terms.add(f"wa:{wa}")
    return terms


def subject_hash(key: bytes, term: str) -> str:
    """The index form of a term: HMAC-SHA256 under the store's index key, so an index (or a
    copy of it) does not give NIKs or numbers away by hashing all 10^16 candidates."""
    return hmac.new(key, term.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DueCase:
    """A case found by its due time (`CaseStore.due_cases`)."""

    at: datetime
    case: Case


DUE_KINDS = ("sla", "retention", "complaint", "suggestion")


class CaseStore(Protocol):
    """Cases, their audit events and conversations. Writes to one case are atomic.

    Implementations: SQLite (embedded) and Firestore (cloud). Every method may raise
    `TransientError` when the backend is unavailable.

    Rollups (`sapa.domain.rollup`): a store given a `RollupTracker` keeps each case's ledger
    beside it and, in the same atomic write as every `create` and `save`, brings the ledger up
    to date and adds the difference between the old and the new ledger's counters to the
    rollup cells. The difference is taken against the ledger the store holds, under the
    version check of the case: a save that fails adds nothing, a save repeated after success
    fails its version check, so every step run is counted once. A store without a tracker
    keeps no rollups (its `rollups` are empty).

    Due times (`sapa.domain.agenda`): a store given an `Agenda` indexes beside each case, in
    the same write, when the SLA sweep and the retention sweep next have something to do
    with it and which officer holds its waiting step; `due_cases` and `claimed_by` read
    them. A store without an agenda indexes nothing (both find nothing).
    """

    def create(self, case: Case) -> None:
        """Insert a new case and its `new_events` atomically (with its rollups).

        Raises `AlreadyExists` if the same applicant already has an open case in that
        kecamatan (at most one open case per kecamatan number and WA id).
        """
        ...

    def get(self, case_id: str) -> Case:
        """The case as last saved (raises `NotFound`)."""
        ...

    def save(self, case: Case) -> None:
        """Write `case` and append its `new_events`, if the stored version is still
        `case.version`; then bump `case.version` and clear `new_events`. The rollup cells
        follow in the same write.

        Raises `ConcurrentUpdate` when someone else saved in between.
        """
        ...

    def latest_for(self, kecamatan: str, wa_id: str) -> Case | None:
        """The applicant's most recent case in that kecamatan, open or closed."""
        ...

    def rollups(
        self,
        part: str,
        first: date,
        last: date,
        *,
        kecamatan: str | None = None,
        service: str | None = None,
    ) -> list[RollupCell]:
        """The rollup cells of `part` (case | step | done | skm | cmp) for the local days
        `first` to `last` (both included) whose kecamatan (a code or `*`) and service (a code,
        `-` or `*`) are the ones given; None matches any. One cell per key with its non-zero
        counters; a cell without any is left out."""
        ...

    def rollup_total(
        self,
        part: str,
        first: date,
        last: date,
        *,
        kecamatan: str | None = None,
        service: str | None = None,
    ) -> dict[str, int]:
        """The counters of the cells `rollups` would return, added up as they are read (a
        year of a busy part's cells is never held at once); zeros left out."""
        ...

    def recount(self, case_id: str) -> dict[str, Any] | None:
        """Count the case again from nothing, on today's SOP and clocks: replace its ledger
        and add the difference to the cells, and compute its due times again, in one write
        under the case's version check (retried on a concurrent update). Returns the new
        ledger; None without a tracker. Raises `NotFound`."""
        ...

    def due_cases(
        self,
        kind: str,
        now: datetime,
        *,
        limit: int = 200,
        after: tuple[datetime, str] | None = None,
    ) -> list[DueCase]:
        """The cases whose `kind` (one of DUE_KINDS) due time is at or before `now`, earliest
        first (then by id), after the position `after` (a due time and a case id) in that
        order; at most `limit`."""
        ...

    def claimed_by(self, email: str, *, limit: int = 500, after: str | None = None) -> list[Case]:
        """The open cases whose waiting step `email` holds (claimed), by case id, those after
        the id `after`; at most `limit`."""
        ...

    def adjust_rollups(self, changes: Changes) -> None:
        """Add `changes` (counters may be negative) to the cells: the correction `sapa
        rollup-rebuild` makes where no ledger explains what a cell holds."""
        ...

    def find_open(self, kecamatan: str, wa_id: str) -> Case | None:
        """The applicant's open case in that kecamatan, if any."""
        ...

    def list_cases(
        self,
        *,
        states: Iterable[str] | None = None,
        kecamatan: str | None = None,
        updated_since: datetime | None = None,
        limit: int = 200,
        newest_first: bool = False,
    ) -> list[Case]:
        """Cases, oldest update first (`newest_first`: the other way), filtered by state,
        kecamatan and last update at or after `updated_since` (reports and estimates read the
        recent past with it); at most `limit`, taken from the front of that order."""
        ...

    def with_outbox(self, limit: int = 500) -> list[Case]:
        """Cases whose outbox still holds tasks (decided, perhaps not yet queued)."""
        ...

    def events(self, case_id: str) -> list[AuditEvent]:
        """The case's audit trail in order."""
        ...

    def add_message(self, message: Message) -> bool:
        """Append a message to a conversation; False (and nothing written) if its id exists."""
        ...

    def messages(self, case_id: str) -> list[Message]: ...

    def message_exists(self, message_id: str) -> bool: ...

    def complete_recovered(self, message: Message) -> bool:
        """Put `message` (what its sender recorded) in the place of the placeholder that its
        status webhook recorded first (same id and provider id, `data["recovered"]`): its
        text and data replace the placeholder's, its time and status stay. False, and
        nothing written, when the stored message is not such a placeholder."""
        ...

    def redact_messages(self, case_id: str) -> int:
        """Replace the text and media references of a case's messages with a redaction mark
        (retention); returns how many were redacted."""
        ...

    def set_message_status(self, provider_id: str, status: str, at: datetime) -> str | None:
        """Record a delivery status of an outbound message, found by the provider's id (the
        wamid). Statuses arrive out of order: a status never replaces a later one
        (sent < delivered < read; failed replaces any). Returns the case id, or None if
        no message has that provider id."""
        ...

    def claim_key(self, key: str, *, value: dict[str, Any] | None = None) -> bool:
        """Create-if-absent a dedupe record (wamid, callback id, ...). True if it was new."""
        ...

    def put_key(self, key: str, value: dict[str, Any]) -> None:
        """Create or replace a record with its value (progress that is not a dedupe)."""
        ...

    def get_key(self, key: str) -> dict[str, Any] | None:
        """The value stored with a dedupe record (None if absent or stored without value)."""
        ...

    def next_sequence(self, scope: str, *, expires_at: datetime | None = None) -> int:
        """The next number of a counter (1, 2, ...), unique even under concurrent callers.
        A counter with `expires_at` (a rate-limit window) may be deleted after that moment
        (`forget_expired_counters`; Firestore's TTL policy on `expire_at` in the cloud)."""
        ...

    def forget_expired_counters(self, now: datetime) -> int:
        """Delete the counters whose `expires_at` has passed; how many went."""
        ...

    def record_contact(self, kecamatan: str, wa_id: str, at: datetime) -> None:
        """Remember the applicant's last inbound message time (the 24-hour window)."""
        ...

    def last_inbound(self, kecamatan: str, wa_id: str) -> datetime | None: ...

    def forget_contacts(
        self, *, wa_id: str | None = None, inbound_before: datetime | None = None
    ) -> int:
        """Delete the last-inbound records of one number (every kecamatan; an erasure) or of
        every number silent since before `inbound_before` (the retention schedule); returns
        how many went. With neither, nothing is deleted."""
        ...

    def log_access(self, record: AccessRecord) -> None:
        """Append one access record. The log is append-only: nothing may change or remove a
        record. Raises `TransientError` when it cannot be written: a read whose record cannot
        be kept must not happen (callers record first, then read)."""
        ...

    def accesses(
        self,
        since: datetime,
        until: datetime,
        *,
        case_id: str | None = None,
        actor_id: str | None = None,
        limit: int = 1000,
    ) -> list[AccessRecord]:
        """Access records with `since` <= at < `until`, oldest first, optionally of one case
        or one officer."""
        ...

    def keep_notice(self, key: str, notice: dict[str, Any]) -> bool:
        """Keep one of WhatsApp's account, number or template notices for the admin, once:
        `key` identifies it (Meta delivers duplicates); `notice["at"]` is an ISO time. True if
        it was new. Notices hold no resident's data."""
        ...

    def notices(self, *, field: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The kept notices, newest (by `at`) first; only those of `field` when given."""
        ...

    def cases_of_subject(
        self, *, nik: str | None = None, wa_id: str | None = None, limit: int = 500
    ) -> list[Case]:
        """Cases whose resident has this NIK or this WhatsApp number (see `subject_terms`),
        oldest first. The store indexes keyed hashes of the terms (`subject_hash`), never the
        values themselves; the index follows every save (a corrected NIK, an anonymisation)."""
        ...

    # ---- officers (the staff directory) and their audit trail -------------------------------

    def staff_version(self) -> int:
        """The version of the officers: 0 while none was ever saved, then one more with each
        `save_staff`. One small read: a directory polls it to know when to read them again."""
        ...

    def staff_roster(self) -> Roster:
        """Every officer, active or not, ordered by e-mail, with the version they were read
        at: a `save_staff` with that version fails if anything changed since."""
        ...

    def save_staff(
        self,
        officers: Iterable[StaffMember],
        events: Iterable[StaffEvent],
        *,
        expected_version: int,
    ) -> int:
        """In one atomic write: each of `officers` replaces the stored officer of its e-mail
        (or is added), `events` are appended to the staff audit trail, and the version goes
        from `expected_version` to the next, which is returned. Raises `ConcurrentUpdate`,
        with nothing written, when the version is no longer `expected_version` (another
        change came first: read the roster again and re-check)."""
        ...

    def staff_events(self, *, limit: int = 200) -> list[StaffEvent]:
        """The staff audit trail, newest first (in the order the saves happened). It is
        append-only: nothing may change or remove an event."""
        ...


@dataclass(frozen=True)
class BlobRef:
    key: str
    sha256: str
    size: int
    content_type: str


class BlobStore(Protocol):
    """Files (documents, signed PDFs). Objects are write-once: a key never changes content."""

    def put(self, key: str, data: bytes, content_type: str) -> BlobRef:
        """Store `data` at `key`. Storing identical bytes again is a no-op returning the same
        ref (retries are safe); different bytes at an existing key raise `Conflict`."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes at `key` (raises `NotFound`)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> bool:
        """Remove the object; True if it existed. Retention, erasure and the clean-up of files
        an attempt stored but never attached (replaced drafts, orphaned signed PDFs) call it."""
        ...

    def signed_url(
        self,
        key: str,
        *,
        ttl_seconds: int,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A short-lived URL from which a browser may GET the object directly (bytes that need
        not pass through a function), answered as an attachment named `filename` (when given)
        with `content_type` (when given). None when the store has no such URLs (the
        filesystem): serve the bytes through the function instead. Does not check that the
        object exists (signing may still call a signing service, such as IAM's)."""
        ...


@dataclass(frozen=True)
class Task:
    kind: str  # the target function, e.g. "notify"
    payload: dict[str, Any]
    name: str | None = None  # deterministic name → enqueued at most once
    schedule_at: datetime | None = None


class TaskQueue(Protocol):
    """Cloud-Tasks-like queue: at-least-once HTTP delivery to the function named by `kind`."""

    def enqueue(self, task: Task) -> bool:
        """Queue `task`. Returns False when a task of that name was already queued (deduped)."""
        ...


@dataclass(frozen=True)
class MediaContent:
    data: bytes
    mime_type: str
    sha256: str


class WhatsApp(Protocol):
    """Outbound side of the WhatsApp Cloud API (Graph API compatible)."""

    def send_text(
        self, phone_number_id: str, to: str, body: str, *, reference: str | None = None
    ) -> str:
        """Send a free-form text; returns the wamid. Raises TransientError on 5xx/429/timeout,
        PermanentError on a rejected request. `reference` (every send method) travels with
        the message and comes back in its status webhooks (Meta's `biz_opaque_callback_data`,
        at most 512 characters): it finds a message whose sender died before recording it."""
        ...

    def send_document(
        self,
        phone_number_id: str,
        to: str,
        data: bytes,
        filename: str,
        caption: str,
        *,
        reference: str | None = None,
    ) -> str:
        """Upload `data` as media from that number and send it as a document; returns wamid."""
        ...

    def send_template(
        self,
        phone_number_id: str,
        to: str,
        name: str,
        language: str,
        params: list[str],
        *,
        reference: str | None = None,
    ) -> str:
        """Send an approved template (the only kind allowed outside the 24-hour window) with
        `params` as the body's {{1}}, {{2}}, ...; returns the wamid."""
        ...

    def send_buttons(
        self,
        phone_number_id: str,
        to: str,
        body: str,
        buttons: list[tuple[str, str]],
        *,
        reference: str | None = None,
    ) -> str:
        """Send `body` with one to three reply buttons, each (id, title of at most 20
        characters): a tap comes back as an interactive `button_reply` carrying the id. Free
        form, like `send_text`: only within the 24-hour window. Returns the wamid."""
        ...

    def fetch_media(self, media_id: str) -> MediaContent:
        """Resolve a media id to its URL and download it with the bearer token."""
        ...


@dataclass(frozen=True)
class SignRequest:
    pdf: bytes
    document_id: str  # stable per case and draft version: the idempotency key
    signer_name: str
    reason: str
    location: str
    verify_url: str  # what the visible QR code points to
    passphrase: str | None = field(default=None, repr=False)
    # The signer's id of a signature it already made for this document but could not hand
    # over (a failed download): fetch that, never sign again (see adapters.bsre_signer).
    pending_id: str | None = None


@dataclass(frozen=True)
class SignedPdf:
    pdf: bytes
    signature_id: str
    signed_at: datetime


class Signer(Protocol):
    """PAdES signing of a PDF (local pyHanko signer, or BSrE's Esign Client Service)."""

    def sign(self, request: SignRequest) -> SignedPdf:
        """Sign the PDF with a visible signature block carrying a QR code to `verify_url`."""
        ...


class StaffDirectory(Protocol):
    """Who the officers are, as the workspace asks per request: cheap to call (an adapter over
    a remote store caches briefly; see adapters.staff_store)."""

    def get(self, email: str) -> StaffMember | None:
        """The active officer with this e-mail (any case), or None: an unknown or inactive
        officer may not act."""
        ...

    def all(self, *, include_inactive: bool = False) -> list[StaffMember]:
        """The active officers (with `include_inactive`, also those kept for the record:
        reports name who did past work)."""
        ...

    def refresh(self) -> None:
        """Forget any cached copy: the next call reads the officers again (after a change
        made by this process)."""
        ...


Mutator = Callable[[Case], T]
