"""Officers on the admin pages: who may act in which role and kecamatan, changed without a
redeploy. Identity-Aware Proxy still decides who may sign in; this decides what they may do.

Every function here is an admin action, checked here (not only by the page), and each change
is one atomic save of the officer with its staff audit event (who, when, each field before and
after; a WhatsApp number masked), guarded by the officers' version: two admins' changes are
applied one after the other, each checked against what the other did.

- `add` — a new officer (the e-mail, lower-case, is the key; a duplicate is refused).
- `change` — name, roles, kecamatan, WhatsApp number. The form carries the record's revision:
  a change filled in before someone else changed the officer is refused, not applied over it.
- `set_active` — deactivate (the officer can no longer act: `identify` → Forbidden) or
  reactivate. Officers are never deleted: the audit trail and the reports name them.
- The office always keeps an active admin: a change that would leave none (the last admin
  deactivating themselves or giving up the role) is refused.
- `return_claims` — after a change, the claims the officer holds but may no longer hold
  (deactivated, moved, the role taken away) go back to the queue, each as a system action on
  its case, and the staff trail says which. A repeat finds nothing left to return; what an
  interruption leaves behind, the SLA sweep returns (`sla_sweep`, `domain.staff.stale_claim`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.domain.errors import (
    ConcurrentUpdate,
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from sapa.domain.staff import (
    ADDED,
    CHANGED,
    CLAIMS_RETURNED,
    DEACTIVATED,
    EMAIL_TAKEN,
    EMAIL_TAKEN_INACTIVE,
    LAST_ADMIN,
    REACTIVATED,
    Roster,
    StaffEvent,
    StaffMember,
    changes,
    claim_return_reason,
    keeps_an_admin,
    normalize_email,
    officer_from_form,
    officer_roles,
    stale_claim,
)
from sapa.domain.texts import ROLE_LABELS, STAFF_EVENT_LABELS, STAFF_FIELD_LABELS, text
from sapa.domain.values import mask_phone
from sapa.services import due
from sapa.services.unit import mutate

ADMIN_ONLY = "Hanya admin yang dapat mengelola petugas."
UNKNOWN_OFFICER = "Petugas tidak ditemukan."
STALE_FORM = (
    "Data petugas ini baru saja diubah oleh admin lain. Muat ulang halaman, lalu ulangi "
    "perubahan Anda."
)
BUSY = "Data petugas sedang diubah bersamaan oleh admin lain. Silakan coba lagi."
# How many registration numbers one staff event lists (the count is always there).
LISTED_CASES = 50
HISTORY_LIMIT = 200
_RETRIES = 5


@dataclass(frozen=True)
class OfficerForm:
    """What an admin typed for one officer."""

    email: str = ""
    name: str = ""
    roles: tuple[str, ...] = ()
    kecamatan: str = ""
    wa: str = ""
    # The record's revision the form was filled from (StaffMember.revision); "" = unchecked.
    revision: str = ""


@dataclass(frozen=True)
class Outcome:
    """What an admin action did: the officer as saved, the audit event (None when nothing
    changed) and the registration numbers of the cases whose claim went back to the queue."""

    officer: StaffMember
    event: str | None
    returned: list[str] = field(default_factory=list)


def admin_only(staff: StaffMember) -> None:
    """Forbidden unless `staff` is an admin: managing officers is the admin's alone."""
    if "admin" not in staff.roles:
        raise Forbidden(ADMIN_ONLY)


def roster(c: Container, staff: StaffMember) -> Roster:
    """Every officer, active or not, fresh from the store."""
    admin_only(staff)
    return c.store.staff_roster()


def _member(c: Container, form: OfficerForm, *, active: bool = True) -> StaffMember:
    return officer_from_form(
        email=form.email,
        name=form.name,
        roles=form.roles,
        kecamatan=form.kecamatan,
        wa=form.wa,
        sop=c.sop,
        kecamatan_codes=[k.code for k in c.region.kecamatan],
        active=active,
    )


def add(c: Container, staff: StaffMember, form: OfficerForm) -> Outcome:
    """A new officer, active at once; ValidationFailed per field, a duplicate e-mail too."""
    admin_only(staff)
    member = _member(c, form)

    def build(current: Roster) -> tuple[StaffMember, str] | None:
        existing = current.get(member.email)
        if existing is not None:
            taken = EMAIL_TAKEN if existing.active else EMAIL_TAKEN_INACTIVE
            raise ValidationFailed(text("form_has_errors"), {"email": taken})
        return member, ADDED

    return _save(c, staff, member.email, build)


def change(c: Container, staff: StaffMember, form: OfficerForm) -> Outcome:
    """New name, roles, kecamatan and WhatsApp number of an officer (not the e-mail: that is
    who they are; a new address is a new officer). Nothing changed is no event."""
    admin_only(staff)
    email = normalize_email(form.email)

    def build(current: Roster) -> tuple[StaffMember, str] | None:
        before = _existing(current, email, form.revision)
        after = _member(c, replace(form, email=email), active=before.active)
        if not keeps_an_admin(current, after):
            raise ValidationFailed(text("form_has_errors"), {"roles": LAST_ADMIN})
        return (after, CHANGED) if after != before else None

    return _save(c, staff, email, build)


def set_active(c: Container, staff: StaffMember, email: str, active: bool) -> Outcome:
    """Deactivate (`active=False`) or reactivate an officer. The request names the state it
    wants, so a page shown before another admin's change cannot undo it: asking for the state
    the officer is already in changes nothing (but still returns any claim left behind)."""
    admin_only(staff)
    email = normalize_email(email)

    def build(current: Roster) -> tuple[StaffMember, str] | None:
        before = _existing(current, email)
        if before.active == active:
            return None
        after = replace(before, active=active)
        if not keeps_an_admin(current, after):
            raise Conflict(LAST_ADMIN)
        return after, (REACTIVATED if active else DEACTIVATED)

    return _save(c, staff, email, build)


def _existing(current: Roster, email: str, revision: str = "") -> StaffMember:
    """The officer a form is about, as filled in at `revision` (when given)."""
    before = current.get(email)
    if before is None:
        raise NotFound(UNKNOWN_OFFICER)
    if revision and revision != before.revision:
        raise Conflict(STALE_FORM)
    return before


Build = Callable[[Roster], "tuple[StaffMember, str] | None"]


def _save(c: Container, staff: StaffMember, email: str, build: Build) -> Outcome:
    """Check `build`'s change against the roster as it is, save it with its audit event on
    that roster's version (again on a fresh one if another change came first), then return
    the claims the officer may no longer hold."""
    for _ in range(_RETRIES):
        current = c.store.staff_roster()
        built = build(current)
        if built is None:
            officer = current.get(email)
            if officer is None:  # (build refuses an unknown officer)
                raise NotFound(UNKNOWN_OFFICER)
            return Outcome(officer, None, return_claims(c, email))
        after, event = built
        before = current.get(email)
        audit = StaffEvent(
            at=c.clock.now(),
            actor_id=staff.email,
            event=event,
            officer=after.email,
            changes=changes(None if event == ADDED else before, after),
        )
        try:
            c.store.save_staff([after], [audit], expected_version=current.version)
        except ConcurrentUpdate:
            continue
        c.staff.refresh()  # this process sees it at once; others within their cache time
        return Outcome(after, event, return_claims(c, after.email))
    raise ConcurrentUpdate(BUSY)


def return_claims(c: Container, email: str) -> list[str]:
    """Return to the queue every claim `email` holds on an open case's waiting step but may
    no longer hold (see `domain.staff.stale_claim`), each as a system action on the case; the
    registration numbers, also recorded on the staff audit trail. Idempotent: a claim already
    returned (or taken over meanwhile) is left as it is."""
    now = c.clock.now()  # before the roster: claims made after its read are not judged by it
    current = c.store.staff_roster()
    member = current.get(email)
    if member is None:
        return []
    reason = claim_return_reason(member)
    returned: list[str] = []
    for listed in due.claims_of(c.store, email):
        if stale_claim(listed, c.sop, current, as_of=now) != email:
            continue

        def give_back(case: Case) -> bool:
            if stale_claim(case, c.sop, current, as_of=now) != email:
                return False
            return case.return_claim(c.sop, email, now, reason=reason) is not None

        case, done = mutate(c, listed.id, give_back)
        if done:
            returned.append(case.reg_no)
    if returned:
        _record_returned(c, email, returned)
    return returned


def _record_returned(c: Container, email: str, reg_nos: list[str]) -> None:
    event = StaffEvent(
        at=c.clock.now(),
        actor_id="system",
        event=CLAIMS_RETURNED,
        officer=email,
        detail={"count": len(reg_nos), "cases": reg_nos[:LISTED_CASES]},
    )
    for _ in range(_RETRIES):
        version = c.store.staff_version()
        try:
            c.store.save_staff([], [event], expected_version=version)
        except ConcurrentUpdate:
            continue
        return
    raise ConcurrentUpdate(BUSY)


# ---- what the page shows --------------------------------------------------------------------


def officer_rows(c: Container, current: Roster) -> list[dict[str, Any]]:
    """The officers' table: active first, then by name."""
    names = {k.code: k.name for k in c.region.kecamatan}
    rows = [
        {
            "email": m.email,
            "name": m.name,
            "roles": list(m.roles),
            "role_labels": [ROLE_LABELS.get(r, r) for r in m.roles],
            "kecamatan": m.kecamatan or "",
            "kecamatan_name": names.get(m.kecamatan or "", m.kecamatan or ""),
            "wa": m.wa_number or "",
            "wa_masked": mask_phone(m.wa_number) if m.wa_number else "",
            "active": m.active,
            "revision": m.revision,
        }
        for m in current.officers
    ]
    return sorted(rows, key=lambda r: (not r["active"], r["name"].lower(), r["email"]))


def choices(c: Container) -> dict[str, Any]:
    """What the forms offer: the SOP's officer roles, which of them are bound to a
    kecamatan, and the kecamatan."""
    return {
        "role_choices": [(r, ROLE_LABELS.get(r, r)) for r in officer_roles(c.sop)],
        "kecamatan_role_labels": [ROLE_LABELS.get(r, r) for r in sorted(c.sop.kecamatan_roles)],
        "kecamatan_choices": [(k.code, k.name) for k in c.region.kecamatan],
    }


def history(c: Container, *, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The staff audit trail for the page, newest first, in words."""
    names = {k.code: k.name for k in c.region.kecamatan}

    def shown(name: str, value: Any) -> str:
        if value is None or value == [] or value == "":
            return "-"
        if name == "roles":
            return ", ".join(ROLE_LABELS.get(r, r) for r in value)
        if name == "kecamatan":
            return str(names.get(value, value))
        if name == "active":
            return "aktif" if value else "nonaktif"
        return str(value)

    rows = []
    for e in c.store.staff_events(limit=limit):
        rows.append(
            {
                "at": e.at.isoformat(),
                "actor": "Sistem" if e.actor_id == "system" else e.actor_id,
                "event": e.event,
                "label": STAFF_EVENT_LABELS.get(e.event, e.event),
                "officer": e.officer,
                "changes": [
                    {
                        "field": STAFF_FIELD_LABELS.get(k, k),
                        "before": shown(k, v[0]),
                        "after": shown(k, v[1]),
                    }
                    for k, v in e.changes.items()
                ],
                "detail": dict(e.detail),
            }
        )
    return rows
