"""StaffDirectory from a TOML file (the embedded default's development staff)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from sapa.ports import StaffMember


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
            )
            for s in tomllib.loads(raw)["staff"]
        }

    def get(self, email: str) -> StaffMember | None:
        return self._staff.get(email.lower())

    def all(self) -> list[StaffMember]:
        return list(self._staff.values())
