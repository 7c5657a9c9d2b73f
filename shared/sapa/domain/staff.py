"""Officers: who may act in which SOP role (and kecamatan), the rules a change of them must
keep, and the audit trail of those changes."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sapa.domain.case import Case
from sapa.domain.errors import ValidationFailed
from sapa.domain.sop import Sop
from sapa.domain.texts import ROLE_LABELS, text
from sapa.domain.values import mask_phone, normalize_phone

# Roles in the SOP that are not officers: the resident, and SAPA itself.
NOT_OFFICER_ROLES = frozenset({"pemohon", "system"})
ADMIN_ROLE = "admin"
NAME_LIMIT = 120
EMAIL_LIMIT = 254
# Deliberately loose: IAP decides which accounts exist; this only catches typing mistakes.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")

# The staff audit trail's events.
ADDED = "officer_added"
CHANGED = "officer_changed"
DEACTIVATED = "officer_deactivated"
REACTIVATED = "officer_reactivated"
CLAIMS_RETURNED = "claims_returned"

# The fields of an officer a change may touch, in the order the audit trail lists them.
FIELDS = ("name", "roles", "kecamatan", "wa_number", "active")

# Errors beside the fields of the admin's form (Bahasa Indonesia).
EMAIL_INVALID = "Alamat e-mail tidak valid. Contoh: nama@gowakab.go.id."
EMAIL_TAKEN = "Alamat e-mail ini sudah terdaftar sebagai petugas."
EMAIL_TAKEN_INACTIVE = (
    "Alamat e-mail ini sudah terdaftar sebagai petugas nonaktif: aktifkan kembali petugas itu."
)
NAME_REQUIRED = "Nama wajib diisi."
NAME_TOO_LONG = f"Nama paling banyak {NAME_LIMIT} karakter."
ROLES_REQUIRED = "Pilih sedikitnya satu peran."
ROLE_UNKNOWN = "Peran tidak dikenal: {roles}."
KECAMATAN_REQUIRED = "Kecamatan wajib dipilih untuk {role}."
KECAMATAN_UNKNOWN = "Kecamatan tidak dikenal."
LAST_ADMIN = (
    "Anda admin aktif terakhir: tidak dapat menonaktifkan diri sendiri atau melepas peran Admin. "
    "Tambahkan atau aktifkan admin lain terlebih dahulu."
)


@dataclass(frozen=True)
class StaffMember:
    """An officer: known by their (lower-case) e-mail, the identity IAP vouches for. Only an
    active officer may act; an inactive one is kept for the audit trail and the reports."""

    email: str
    name: str
    roles: tuple[str, ...]
    kecamatan: str | None = None
    # The officer's own WhatsApp number (62...), for SLA alerts by template; None = none sent.
    wa_number: str | None = None
    active: bool = True

    def to_json(self) -> str:
        return json.dumps(
            {
                "email": self.email,
                "name": self.name,
                "roles": list(self.roles),
                "kecamatan": self.kecamatan,
                "wa_number": self.wa_number,
                "active": self.active,
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, doc: str) -> StaffMember:
        d = json.loads(doc)
        return cls(
            email=d["email"],
            name=d["name"],
            roles=tuple(d["roles"]),
            kecamatan=d.get("kecamatan"),
            wa_number=d.get("wa_number"),
            active=bool(d.get("active", True)),
        )

    @property
    def revision(self) -> str:
        """A fingerprint of the record: a form sent with an older one was filled in before
        someone else changed the officer (its save is refused instead of undoing theirs)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StaffEvent:
    """One change to the officers, append-only: who (an admin's e-mail, or "system"), when,
    what, and each changed field's value before and after. A WhatsApp number appears masked:
    the admin audit needs to see that it changed, not the number."""

    at: datetime
    actor_id: str
    event: str
    officer: str  # the e-mail of the officer concerned
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "at": self.at.isoformat(),
                "actor_id": self.actor_id,
                "event": self.event,
                "officer": self.officer,
                "changes": {k: list(v) for k, v in self.changes.items()},
                "detail": dict(self.detail),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, doc: str) -> StaffEvent:
        d = json.loads(doc)
        return cls(
            at=datetime.fromisoformat(d["at"]),
            actor_id=d["actor_id"],
            event=d["event"],
            officer=d["officer"],
            changes={k: (v[0], v[1]) for k, v in d.get("changes", {}).items()},
            detail=d.get("detail", {}),
        )


@dataclass(frozen=True)
class Roster:
    """Every officer, active or not, as read at `version` (0: none was ever saved; each save
    of the officers makes it one more)."""

    version: int
    officers: tuple[StaffMember, ...]

    def get(self, email: str) -> StaffMember | None:
        """The officer with this e-mail, active or not."""
        wanted = email.strip().lower()
        return next((m for m in self.officers if m.email == wanted), None)

    def active(self) -> list[StaffMember]:
        return [m for m in self.officers if m.active]

    def with_member(self, member: StaffMember) -> Roster:
        """The roster as it would be with `member` saved (not stored: for checking rules)."""
        others = tuple(m for m in self.officers if m.email != member.email)
        return Roster(self.version, (*others, member))

    def active_admins(self) -> list[str]:
        return sorted(m.email for m in self.officers if m.active and ADMIN_ROLE in m.roles)


def officer_roles(sop: Sop) -> list[str]:
    """The SOP's roles an officer may hold, in the SOP's order of work."""
    order = [s.role for s in sop.steps] + sorted(sop.roles)
    return [r for r in dict.fromkeys(order) if r in sop.roles and r not in NOT_OFFICER_ROLES]


def normalize_email(raw: str) -> str:
    """The e-mail as the key of an officer: trimmed, lower-case, checked loosely."""
    email = (raw or "").strip().lower()
    if len(email) > EMAIL_LIMIT or not _EMAIL.fullmatch(email):
        raise ValidationFailed(text("form_has_errors"), {"email": EMAIL_INVALID})
    return email


def officer_from_form(
    *,
    email: str,
    name: str,
    roles: Iterable[str],
    kecamatan: str,
    wa: str,
    sop: Sop,
    kecamatan_codes: Iterable[str],
    active: bool = True,
) -> StaffMember:
    """An officer from what an admin typed, or ValidationFailed with a message per field: the
    e-mail, a name, known roles (at least one), the kecamatan for a kecamatan role (the
    counter), and an optional WhatsApp number (stored as the staff file stores it, 62...).
    A kecamatan given without a kecamatan role is dropped: it binds no one to anything."""
    errors: dict[str, str] = {}
    try:
        email = normalize_email(email)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    name = " ".join((name or "").split())
    if not name:
        errors["name"] = NAME_REQUIRED
    elif len(name) > NAME_LIMIT:
        errors["name"] = NAME_TOO_LONG
    allowed = officer_roles(sop)
    wanted = list(dict.fromkeys(r.strip() for r in roles if r.strip()))
    unknown = [r for r in wanted if r not in allowed]
    if unknown:
        errors["roles"] = ROLE_UNKNOWN.format(roles=", ".join(r[:40] for r in unknown[:5]))
    elif not wanted:
        errors["roles"] = ROLES_REQUIRED
    ordered = tuple(r for r in allowed if r in wanted)
    bound = [r for r in ordered if r in sop.kecamatan_roles]
    code = (kecamatan or "").strip()
    if bound:
        if not code:
            role = ROLE_LABELS.get(bound[0], bound[0])
            errors["kecamatan"] = KECAMATAN_REQUIRED.format(role=role)
        elif code not in set(kecamatan_codes):
            errors["kecamatan"] = KECAMATAN_UNKNOWN
    number: str | None = None
    if (wa or "").strip():
        try:
            number = normalize_phone(wa, field="wa")
        except ValidationFailed as exc:
            errors["wa"] = exc.message
    if errors:
        raise ValidationFailed(text("form_has_errors"), errors)
    return StaffMember(
        email=email,
        name=name,
        roles=ordered,
        kecamatan=code if bound else None,
        wa_number=number,
        active=active,
    )


def audit_value(name: str, value: Any) -> Any:
    """How a field's value appears in the staff audit trail."""
    if name == "wa_number":
        return mask_phone(value) if value else None
    if name == "roles":
        return list(value) if value is not None else None
    return value


def changes(before: StaffMember | None, after: StaffMember) -> dict[str, tuple[Any, Any]]:
    """Each field that differs, as (before, after) in the audit trail's form; for a new
    officer every field that has a value."""
    out: dict[str, tuple[Any, Any]] = {}
    for name in FIELDS:
        old = getattr(before, name) if before is not None else None
        new = getattr(after, name)
        if before is None and name == "active":
            continue  # a new officer is active: nothing to say
        if old != new and not (before is None and new in (None, ())):
            out[name] = (audit_value(name, old), audit_value(name, new))
    return out


def keeps_an_admin(roster: Roster, member: StaffMember) -> bool:
    """Whether saving `member` leaves at least one active admin (the office must always be
    able to manage its officers without a redeploy)."""
    return bool(roster.with_member(member).active_admins())


def may_hold(member: StaffMember | None, role: str, kecamatan: str, sop: Sop) -> bool:
    """Whether `member` may hold a claim on a step of `role` of a case of `kecamatan`: active,
    holding the role, and for a kecamatan role in that kecamatan."""
    if member is None or not member.active or role not in member.roles:
        return False
    return role not in sop.kecamatan_roles or member.kecamatan == kecamatan


def stale_claim(case: Case, sop: Sop, roster: Roster, *, as_of: datetime) -> str | None:
    """The officer whose claim on the case's waiting step must go back to the queue: one the
    roster knows who may no longer hold it (deactivated, moved to another kecamatan, the role
    taken away). Claims made after `as_of` (when the roster was read) are left alone: the
    roster may not show that officer's latest change yet. None when nothing is to return."""
    step = case.waiting_step(sop)
    run = case.current_run(sop)
    if step is None or run is None or not run.claimed_by or run.claimed_at is None:
        return None
    if run.claimed_at > as_of:
        return None
    member = roster.get(run.claimed_by)
    if member is None or may_hold(member, step.role, case.kecamatan, sop):
        return None
    return member.email


def claim_return_reason(member: StaffMember) -> str:
    """Why an officer's claim went back to the queue, as the case's audit event says it."""
    return "officer_inactive" if not member.active else "officer_moved"
