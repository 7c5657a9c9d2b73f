"""Reference data: the regency's kecamatan and the service catalogue with its requirements."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Kecamatan:
    code: str
    name: str
    link_mode: str = "auto"


@dataclass(frozen=True)
class Requirement:
    key: str
    name: str
    optional: bool = False


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    output: str
    requirements: tuple[Requirement, ...]
    # Words and phrases a resident uses for this service in a WhatsApp message
    # (sapa.domain.service_words reads them).
    keywords: tuple[str, ...] = ()
    # The short name of the signed document's file: KK-730608-20261203-0001.pdf
    file_code: str = ""
    # The signed document is printed on plain white paper (HVS) under Permendagri 109/2019.
    plain_paper: bool = False

    @property
    def required(self) -> tuple[Requirement, ...]:
        return tuple(r for r in self.requirements if not r.optional)


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    office: str
    timezone: str
    kecamatan: tuple[Kecamatan, ...]

    def kecamatan_by_code(self, code: str) -> Kecamatan:
        for k in self.kecamatan:
            if k.code == code:
                return k
        raise KeyError(code)


@dataclass(frozen=True)
class Catalogue:
    services: tuple[Service, ...]
    # Keywords that right after a greeting address the reader ("halo kk" = "halo kakak")
    # rather than name a service (sapa.domain.service_words).
    address_words: tuple[str, ...] = ()
    greetings: tuple[str, ...] = ()

    def get(self, code: str) -> Service:
        found = self.find(code)
        if found is None:
            raise KeyError(code)
        return found

    def find(self, code: str | None) -> Service | None:
        """The service of `code`; None for no code, or one the catalogue does not hold (any
        more: an office may take a service out of its catalogue)."""
        return next((s for s in self.services if s.code == code), None) if code else None


@dataclass(frozen=True)
class Desa:
    code: str
    name: str
    kelurahan: bool = False


def load_desa(path: str | Path | None = None) -> dict[str, tuple[Desa, ...]]:
    """Kecamatan code → its desa/kelurahan, for the guest book's address list."""
    data = _read("gowa_desa.toml", path)
    return {
        k["code"]: tuple(
            Desa(d["code"], d["name"], bool(d.get("kelurahan", False))) for d in k["desa"]
        )
        for k in data.get("kecamatan", [])
    }


@dataclass(frozen=True)
class WaTemplate:
    """An approved WhatsApp template: what may be sent outside the 24-hour window."""

    kind: str
    name: str
    language: str
    params: tuple[str, ...]


def load_templates(path: str | Path | None = None) -> dict[str, WaTemplate]:
    data = _read("wa_templates.toml", path)
    return {
        kind: WaTemplate(kind, t["name"], t.get("language", "id"), tuple(t.get("params", [])))
        for kind, t in data.get("templates", {}).items()
    }


def _read(name: str, path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return tomllib.loads(resources.files("sapa.data").joinpath(name).read_text("utf-8"))
    return tomllib.loads(Path(path).read_text("utf-8"))


def load_region(path: str | Path | None = None) -> Region:
    data = _read("gowa.toml", path)
    head = data["regency"]
    return Region(
        code=head["code"],
        name=head["name"],
        office=head["office"],
        timezone=head.get("timezone", "Asia/Makassar"),
        kecamatan=tuple(
            Kecamatan(k["code"], k["name"], k.get("link_mode", "auto")) for k in data["kecamatan"]
        ),
    )


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    data = _read("services.toml", path)
    return Catalogue(
        tuple(
            Service(
                code=s["code"],
                name=s["name"],
                output=s["output"],
                requirements=tuple(
                    Requirement(r["key"], r["name"], bool(r.get("optional", False)))
                    for r in s["requirements"]
                ),
                keywords=tuple(str(k) for k in s.get("keywords", ())),
                file_code=_file_code(str(s.get("file_code") or s["code"])),
                plain_paper=bool(s.get("plain_paper", False)),
            )
            for s in data["services"]
        ),
        address_words=tuple(str(w) for w in data.get("matching", {}).get("address_words", ())),
        greetings=tuple(str(w) for w in data.get("matching", {}).get("greetings", ())),
    )


def _file_code(code: str) -> str:
    """A file name part of letters, digits and hyphens only, upper case (KK, AKTA-LAHIR)."""
    kept = "".join(ch if ch.isascii() and ch.isalnum() else " " for ch in code)
    return "-".join(kept.split()).upper()


@cache
def default_region() -> Region:
    return load_region()


@cache
def default_catalogue() -> Catalogue:
    return load_catalogue()
