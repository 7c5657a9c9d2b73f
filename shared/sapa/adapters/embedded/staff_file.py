"""StaffDirectory from a TOML file (the embedded default's development staff)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from sapa.domain.errors import ValidationFailed
from sapa.domain.values import normalize_phone
from sapa.ports import StaffMember


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

    def all(self) -> list[StaffMember]:
        return list(self._staff.values())
