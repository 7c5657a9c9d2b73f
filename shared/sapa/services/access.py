"""Who may see a resident's data, who saw it and who changed it: the staff's scope, the access
log, and the breach report built on it.

UU 27/2022 asks a controller to keep a record of processing and to be able to tell, within
3×24 hours of a breach, whose data was involved. The audit trail records every change; this
module records every read of a case's personal data by an officer (the case page, a document,
the SIAK hand-off package, a data-subject search or export) and reports both for a window.

A read is recorded *before* the data is served, and a read whose record cannot be written does
not happen (fail closed): the law weighs the record of processing above one officer's
convenience, and an outage of the store that keeps the log is an outage of the data anyway.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.domain.errors import Forbidden, PermanentError, SapaError, TransientError
from sapa.domain.texts import text
from sapa.domain.values import masked_actor
from sapa.ports import AccessRecord, StaffMember
from sapa.services.export import plain_text

log = logging.getLogger(__name__)

LOG_UNAVAILABLE = (
    "Catatan akses data pribadi tidak dapat disimpan saat ini, sehingga data tidak ditampilkan. "
    "Silakan coba beberapa saat lagi."
)
WINDOW_INVALID = "Rentang waktu tidak valid: waktu mulai harus sebelum waktu selesai."
WINDOW_TOO_LONG = "Rentang waktu laporan paling lama {days} hari."
TIME_INVALID = "Waktu tidak valid. Gunakan format TTTT-BB-HH atau TTTT-BB-HH JJ:MM."
TOO_MANY_ROWS = (
    "Terlalu banyak catatan dalam rentang ini (lebih dari {limit}); persempit rentang waktunya."
)
REPORT_MAX_DAYS = 366
# The breach report opens on the last 3×24 hours: the time UU 27/2022 gives to notify.
REPORT_DEFAULT_DAYS = 3
REPORT_LIMIT = 100_000

# What the breach report's CSV calls each kind of row and each column (read by the office).
CSV_HEADER = ("waktu_utc", "jenis", "case_id", "nomor_registrasi", "apa", "oleh", "peran")
KIND_ACCESS = "akses"
KIND_CHANGE = "perubahan"


# Roles whose step needs the full NIK (entering it, checking it against the documents and SIAK);
# every other officer sees it masked.
NIK_ROLES = frozenset({"loket", "verifikator", "operator_siak"})
# Who may download the SIAK hand-off package (it carries every document of the case).
HANDOFF_ROLES = frozenset({"operator_siak", "admin"})
# Who reads the SOP-compliance dashboard, its downloads and the monthly report.
REPORT_ROLES = frozenset({"admin", "kabid", "kadis"})
REPORTS_FORBIDDEN = (
    "Dasbor dan laporan kepatuhan SOP hanya untuk Kepala Bidang, Kepala Dinas, dan Admin."
)


def kecamatan_bound(c: Container, staff: StaffMember) -> bool:
    """An officer whose every role is a kecamatan role (the counter) sees only their own
    kecamatan's cases; the domain checks the same for each action (Case._guard_actor)."""
    return all(r in c.sop.kecamatan_roles for r in staff.roles)


def may_see(c: Container, staff: StaffMember, kecamatan: str) -> None:
    """Refuse (Forbidden) a case of another kecamatan to a kecamatan-bound officer: who may not
    see a case may not act on it either."""
    if kecamatan_bound(c, staff) and staff.kecamatan != kecamatan:
        raise Forbidden(text("wrong_kecamatan", kecamatan=staff.kecamatan or "-"))


def sees_full_nik(staff: StaffMember) -> bool:
    return bool(NIK_ROLES & set(staff.roles))


def may_download_handoff(staff: StaffMember) -> bool:
    return bool(HANDOFF_ROLES & set(staff.roles))


def may_see_reports(staff: StaffMember) -> None:
    """Refuse (Forbidden) the dashboard and reports to anyone but the heads and admins."""
    if not REPORT_ROLES & set(staff.roles):
        raise Forbidden(REPORTS_FORBIDDEN)


def client_hash(c: Container, address: str | None) -> str:
    """A keyed, truncated hash of the client's address: the same address gives the same value
    (so a breach can be traced to one machine), the value gives no address away."""
    if not address:
        return ""
    key = hashlib.sha256(b"sapa.access-client:" + c.settings.secret("session_secret").encode())
    return hmac.new(key.digest(), address.encode(), hashlib.sha256).hexdigest()[:16]


def record(
    c: Container, staff: StaffMember, case: Case, what: str, *, client: str | None = None
) -> None:
    """Record that `staff` is about to read `what` of `case`. Call it before the read; it raises
    `TransientError` (the read must not happen) when the record cannot be written."""
    entry = AccessRecord(
        at=c.clock.now(),
        actor_id=staff.email,
        role=",".join(staff.roles),
        case_id=case.id,
        reg_no=case.reg_no,
        what=what,
        client=client_hash(c, client),
    )
    try:
        c.store.log_access(entry)
    except SapaError as exc:
        log.error("access log unavailable: read refused", extra={"case_id": case.id})
        raise TransientError(LOG_UNAVAILABLE, case_id=case.id) from exc
    except Exception as exc:  # any failure to keep the record refuses the read
        log.exception("access log write failed: read refused", extra={"case_id": case.id})
        raise TransientError(LOG_UNAVAILABLE, case_id=case.id) from exc


@dataclass(frozen=True)
class ReportRow:
    """One line of the breach report: a read or a change of one case, by whom. No names, no
    NIK: residents who acted themselves appear with their number masked."""

    at: datetime
    kind: str  # KIND_ACCESS | KIND_CHANGE
    case_id: str
    reg_no: str
    what: str
    actor: str
    role: str

    def csv_row(self) -> tuple[str, ...]:
        cells = (self.case_id, self.reg_no, self.what, self.actor, self.role)
        return (self.at.astimezone(UTC).isoformat(), self.kind, *(plain_text(v) for v in cells))


def parse_time(raw: str, zone: tzinfo) -> datetime:
    """A time an officer typed: an ISO date or date-time; without an offset it is local time."""
    try:
        when = datetime.fromisoformat((raw or "").strip())
    except ValueError:
        raise PermanentError(TIME_INVALID) from None
    if not 2000 <= when.year <= 2100:  # (year 1 in WITA is before year 1 in UTC: no such time)
        raise PermanentError(TIME_INVALID)
    return when if when.tzinfo else when.replace(tzinfo=zone)


def until_now(c: Container) -> datetime:
    """The end of a window that reaches the present: records made this very second count."""
    return c.clock.now() + timedelta(seconds=1)


def default_since(c: Container) -> datetime:
    """Where the breach report's window starts when none is asked for."""
    return c.clock.now() - timedelta(days=REPORT_DEFAULT_DAYS)


def check_window(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None or since >= until:
        raise PermanentError(WINDOW_INVALID)
    if (until - since).days > REPORT_MAX_DAYS:
        raise PermanentError(WINDOW_TOO_LONG.format(days=REPORT_MAX_DAYS))


def breach_report(c: Container, since: datetime, until: datetime) -> list[ReportRow]:
    """Every recorded read (access log) and change (audit events) of any case with
    `since` <= time < `until`, in time order: which records were touched, and by whom."""
    check_window(since, until)
    reads = c.store.accesses(since, until, limit=REPORT_LIMIT)
    # Every change moves the case's updated_at forward, so a case changed in the window was
    # updated at or after `since`.
    changed = c.store.list_cases(updated_since=since, limit=REPORT_LIMIT)
    if len(reads) >= REPORT_LIMIT or len(changed) >= REPORT_LIMIT:
        # a report cut short would say "nobody else" where it does not know: refuse instead
        raise PermanentError(TOO_MANY_ROWS.format(limit=REPORT_LIMIT))
    rows = [
        ReportRow(r.at, KIND_ACCESS, r.case_id, r.reg_no, r.what, r.actor_id, r.role) for r in reads
    ]
    for case in changed:
        for e in c.store.events(case.id):
            if since <= e.at < until:
                actor = masked_actor(e.actor_id) or ""
                rows.append(
                    ReportRow(e.at, KIND_CHANGE, case.id, case.reg_no, e.event, actor, e.role)
                )
    rows.sort(key=lambda r: (r.at, r.kind, r.case_id))
    return rows


def report_csv(rows: list[ReportRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(r.csv_row() for r in rows)
    return out.getvalue()
