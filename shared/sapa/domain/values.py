"""Value objects: NIK and KK numbers, Indonesian phone numbers, and how to mask them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sapa.domain.errors import ValidationFailed
from sapa.domain.texts import text

# A business-scoped user id (BSUID): how WhatsApp names a user to a business, e.g. a resident
# who hides their number behind a username: a country code, ".", an alphanumeric id; a parent
# BSUID has "ENT." after the country code. Meta: store and send it back exactly as received.
BSUID = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
_DIGITS16 = re.compile(r"^[0-9]{16}$")  # ASCII only: \d would also accept e.g. full-width digits


@dataclass(frozen=True)
class Nik:
    """Nomor Induk Kependudukan: region(6) + DDMMYY of birth (women DD+40) + serial(4)."""

    value: str

    @classmethod
    def parse(cls, raw: str, *, field: str = "nik") -> Nik:
        v = re.sub(r"[\s.\-]", "", raw or "")
        if not _DIGITS16.match(v):
            raise ValidationFailed(text("nik_length"), {field: text("nik_length")})
        if v[:2] == "00" or v[2:4] == "00" or v[4:6] == "00":
            raise ValidationFailed(text("nik_region"), {field: text("nik_region")})
        if v[12:] == "0000":
            raise ValidationFailed(text("nik_serial"), {field: text("nik_serial")})
        day = int(v[6:8])
        female = day > 40
        if female:
            day -= 40
        try:
            # The century is not encoded; 2000 is a leap year so 29 Feb stays checkable.
            date(2000 + int(v[10:12]), int(v[8:10]), day)
        except ValueError:
            raise ValidationFailed(text("nik_birthdate"), {field: text("nik_birthdate")}) from None
        return cls(v)

    @property
    def female(self) -> bool:
        return int(self.value[6:8]) > 40

    def birth_matches(self, born: date) -> bool:
        day = int(self.value[6:8]) - (40 if self.female else 0)
        return (day, int(self.value[8:10]), int(self.value[10:12])) == (
            born.day,
            born.month,
            born.year % 100,
        )

    @property
    def masked(self) -> str:
        return mask_nik(self.value)


@dataclass(frozen=True)
class KkNumber:
    """Nomor Kartu Keluarga: region(6) + DDMMYY of issue + serial(4)."""

    value: str

    @classmethod
    def parse(cls, raw: str, *, field: str = "kk") -> KkNumber:
        v = re.sub(r"[\s.\-]", "", raw or "")
        if not _DIGITS16.match(v):
            raise ValidationFailed(text("kk_length"), {field: text("kk_length")})
        if v[:2] == "00" or v[2:4] == "00":
            raise ValidationFailed(text("nik_region"), {field: text("nik_region")})
        if v[12:] == "0000":
            raise ValidationFailed(text("kk_serial"), {field: text("kk_serial")})
        try:
            date(2000 + int(v[10:12]), int(v[8:10]), int(v[6:8]))
        except ValueError:
            raise ValidationFailed(text("kk_date"), {field: text("kk_date")}) from None
        return cls(v)


def normalize_phone(raw: str, *, field: str = "phone") -> str:
    """An Indonesian mobile number in WhatsApp's form: 62 followed by 8–13 digits."""
    v = re.sub(r"[\s().\-]", "", raw or "")
    if v.startswith("+"):
        v = v[1:]
    if v.startswith("0"):
        v = "62" + v[1:]
    elif v.startswith("8"):
        v = "62" + v
    if not re.fullmatch(r"62[1-9][0-9]{7,12}", v):
        raise ValidationFailed(text("phone_invalid"), {field: text("phone_invalid")})
    return v


def mask_nik(v: str) -> str:
    return v[:4] + "*" * 8 + v[12:] if len(v) == 16 else "*" * len(v)


def mask_phone(v: str) -> str:
    return v[:4] + "*" * max(len(v) - 7, 0) + v[-3:] if len(v) > 7 else "*" * len(v)


def mask_name(name: str) -> str:
    """'Andi Baso' → 'A*** B***': enough to recognise, not enough to identify."""
    return " ".join(w[:1] + "***" for w in name.split())


def masked_actor(actor_id: str | None) -> str | None:
    """An actor id for staff eyes: a resident's (their WA number, "wa:…") masked."""
    if actor_id and actor_id.startswith("wa:"):
        return "pemohon " + mask_phone(actor_id[3:])
    return actor_id
