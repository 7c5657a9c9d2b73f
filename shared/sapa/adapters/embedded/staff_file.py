"""The staff file (TOML): what seeds an empty store's officers, and a read-only StaffDirectory."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from sapa.domain.errors import ValidationFailed
from sapa.domain.staff import StaffMember
from sapa.domain.values import normalize_phone


def _wa_number(entry: dict[str, object]) -> str | None:
    """The optional `wa` of a staff entry, in WhatsApp's form (a bad one stops the start, with
    the entry named, rather than alerts going nowhere)."""
    raw = entry.get("wa")
    if raw is None or raw == "":
        return None
    try:
        return normalize_phone(str(raw), field="wa")
    except ValidationFailed as exc:
        raise ValueError(f"staff file: {entry.get('email')}: wa: {exc.message}") from None


class FileStaffDirectory:
    """The officers of a staff file (default: the development staff, staff_demo.toml). The
    store-backed directory (adapters.staff_store) reads it only to seed an empty store."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            raw = resources.files("sapa.data").joinpath("staff_demo.toml").read_text("utf-8")
        else:
            raw = Path(path).read_text("utf-8")
        self._staff = {
            s["email"].lower(): StaffMember(
                email=s["email"].lower(),
                name=s["name"],
                roles=tuple(s["roles"]),
                kecamatan=s.get("kecamatan"),
                wa_number=_wa_number(s),
            )
            for s in tomllib.loads(raw)["staff"]
        }

    def get(self, email: str) -> StaffMember | None:
        return self._staff.get(email.lower())

    def all(self, *, include_inactive: bool = False) -> list[StaffMember]:
        return list(self._staff.values())

    def refresh(self) -> None:
        """Nothing cached: the file is read once."""
