"""Value objects: NIK, KK number, Indonesian WhatsApp numbers, and masking."""

from __future__ import annotations

from datetime import date

import pytest

from sapa.domain.errors import PermanentError, ValidationFailed
from sapa.domain.values import KkNumber, Nik, mask_name, mask_nik, mask_phone, normalize_phone

MALE = "7306081708900001"  # Somba Opu, born 17-08-(19)90, serial 0001
FULL_WIDTH_MALE = "".join(chr(ord(c) + 0xFEE0) for c in MALE)
FEMALE = "7306085708900002"  # the same birthday for a woman: day + 40

# ---- NIK ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "born", "female"),
    [
        (MALE, "170890", False),
        (FEMALE, "170890", True),
        ("7306080101000001", "010100", False),
        ("7306084101000001", "010100", True),  # 41 = 1 + 40
        ("7306083112990001", "311299", False),
        ("7306087112990001", "311299", True),  # 71 = 31 + 40
        ("7306082902000003", "290200", False),  # 29 Feb 2000, a leap year
        ("7306086902000004", "290200", True),
        ("7306082902960005", "290296", False),
        ("7306083004859999", "300485", False),
    ],
)
def test_given_a_valid_nik_when_parsed_then_accepted_with_birth_date_and_sex(
    raw: str, born: str, female: bool
) -> None:
    nik = Nik.parse(raw)
    assert nik.value == raw
    assert nik.female is female
    day = int(raw[6:8]) - (40 if female else 0)
    assert f"{day:02d}{raw[8:12]}" == born


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("7306083002000003", "30 Feb"),
        ("7306082902010003", "29 Feb in a year that is no leap year"),
        ("7306087002000003", "30 Feb for a woman"),
        ("7306080008900001", "day 00"),
        ("7306083208900001", "day 32"),
        ("7306084008900001", "day 40 (neither a man's day nor a woman's)"),
        ("7306087208900001", "day 72 = 32 + 40"),
        ("7306080000900001", "month 00"),
        ("7306081713900001", "month 13"),
        ("7306083104900001", "31 April"),
    ],
)
def test_given_an_impossible_birth_date_when_parsing_a_nik_then_rejected(
    raw: str, why: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        Nik.parse(raw)
    assert info.value.fields == {"nik": "Tanggal lahir pada NIK tidak valid."}, why


def test_given_serial_0000_when_parsing_a_nik_then_rejected() -> None:
    with pytest.raises(ValidationFailed) as info:
        Nik.parse("7306081708900000")
    assert "0000" in info.value.fields["nik"]


@pytest.mark.parametrize("raw", ["0006081708900001", "7300081708900001", "7306001708900001"])
def test_given_a_zero_region_part_when_parsing_a_nik_then_rejected(raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        Nik.parse(raw)
    assert info.value.fields == {"nik": "Kode wilayah pada NIK tidak valid."}


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "730608170890001",  # 15 digits
        "73060817089000011",  # 17 digits
        "73060817O8900001",  # letter O for a zero
        "7306O81708900001",
        "730608170890000a",
        "+306081708900001",
        FULL_WIDTH_MALE,  # full-width digits look like 16 digits but are not ASCII
        "730608170890\u0660\u0660\u0660\u0661",  # Arabic-Indic digits
    ],
)
def test_given_wrong_length_or_letters_when_parsing_a_nik_then_rejected(raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        Nik.parse(raw)
    assert info.value.fields == {"nik": "NIK harus terdiri dari 16 angka."}
    assert isinstance(info.value, PermanentError)


def test_given_no_value_when_parsing_a_nik_then_rejected_not_crashing() -> None:
    with pytest.raises(ValidationFailed):
        Nik.parse(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw",
    [
        "7306 0817 0890 0001",
        "7306.0817.0890.0001",
        "730608-170890-0001",
        " 7306081708900001 ",
        "7306\t0817089000 01",
    ],
)
def test_given_spaces_dots_or_dashes_when_parsing_a_nik_then_they_are_stripped(raw: str) -> None:
    assert Nik.parse(raw).value == MALE


def test_given_a_field_name_when_a_nik_is_invalid_then_the_error_names_that_field() -> None:
    with pytest.raises(ValidationFailed) as info:
        Nik.parse("123", field="nik_ibu")
    assert set(info.value.fields) == {"nik_ibu"}


@pytest.mark.parametrize(
    ("raw", "born", "matches"),
    [
        (MALE, date(1990, 8, 17), True),
        (MALE, date(2090, 8, 17), True),  # the century is not in the NIK
        (MALE, date(1990, 8, 18), False),
        (MALE, date(1990, 9, 17), False),
        (MALE, date(1991, 8, 17), False),
        (FEMALE, date(1990, 8, 17), True),  # 57 - 40 = 17
        (FEMALE, date(1990, 8, 16), False),
        ("7306086902000004", date(2000, 2, 29), True),
        ("7306084101000001", date(2000, 1, 1), True),
    ],
)
def test_given_a_nik_then_birth_matches_applies_the_plus_40_rule(
    raw: str, born: date, matches: bool
) -> None:
    assert Nik.parse(raw).birth_matches(born) is matches


def test_given_a_nik_then_masked_hides_the_birth_date() -> None:
    assert Nik.parse(MALE).masked == "7306********0001"


# ---- KK number ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["7306081205150003", "7306 0812 0515 0003", "7306082902000001", "7306083112990001"]
)
def test_given_a_valid_kk_number_when_parsed_then_accepted(raw: str) -> None:
    assert KkNumber.parse(raw).value == raw.replace(" ", "")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("730608120515000", "Nomor KK harus terdiri dari 16 angka."),
        ("73060812051500031", "Nomor KK harus terdiri dari 16 angka."),
        ("73060812O5150003", "Nomor KK harus terdiri dari 16 angka."),
        (FULL_WIDTH_MALE, "Nomor KK harus terdiri dari 16 angka."),
        ("7306081205150000", "Nomor urut pada Nomor KK tidak boleh 0000."),
        ("7306083205150003", "Tanggal pada Nomor KK tidak valid."),
        ("7306085205150003", "Tanggal pada Nomor KK tidak valid."),  # no +40 rule on a KK
        ("7306081213150003", "Tanggal pada Nomor KK tidak valid."),
        ("7306083002000003", "Tanggal pada Nomor KK tidak valid."),
        ("0006081205150003", "Kode wilayah pada NIK tidak valid."),
        ("7300081205150003", "Kode wilayah pada NIK tidak valid."),
    ],
)
def test_given_an_invalid_kk_number_when_parsed_then_rejected(raw: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        KkNumber.parse(raw)
    assert info.value.fields == {"kk": message}


def test_given_a_field_name_when_a_kk_number_is_invalid_then_the_error_names_that_field() -> None:
    with pytest.raises(ValidationFailed) as info:
        KkNumber.parse("x", field="no_kk")
    assert set(info.value.fields) == {"no_kk"}


# ---- phone numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("081234567890", "6281234567890"),
        ("+62 812-3456-7890", "6281234567890"),
        ("+6281234567890", "6281234567890"),
        ("6281234567890", "6281234567890"),
        ("81234567890", "6281234567890"),
        ("812 3456 7890", "6281234567890"),
        ("(0812) 3456.7890", "6281234567890"),
        ("08123456789", "628123456789"),
        ("081234567", "6281234567"),  # the shortest: 62 + 8 digits
        ("08123456789012", "628123456789012"),  # the longest: 62 + 13 digits
    ],
)
def test_given_an_indonesian_number_when_normalized_then_whatsapp_form(
    raw: str, normalized: str
) -> None:
    assert normalize_phone(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "12345",
        "0212345",  # too short
        "08123456",  # 62 + 7 digits: too short
        "6281234５６７８９０",  # full-width digits
        "081234567890123",  # 62 + 14 digits: too long
        "0812-3456-789a",
        "phone",
        "+1 415 555 0100",
        "6201234567890",  # no leading zero after the country code
        "00",
    ],
)
def test_given_a_bad_number_when_normalized_then_rejected(raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        normalize_phone(raw)
    assert info.value.fields == {"phone": "Nomor WhatsApp tidak valid. Contoh: 081234567890."}


def test_given_a_field_name_when_a_number_is_invalid_then_the_error_names_that_field() -> None:
    with pytest.raises(ValidationFailed) as info:
        normalize_phone("123", field="wa")
    assert set(info.value.fields) == {"wa"}


# ---- masking ------------------------------------------------------------------------------------


def test_mask_nik() -> None:
    assert mask_nik("7306081708900001") == "7306********0001"
    assert mask_nik("123") == "***"  # never show a malformed value either
    assert mask_nik("") == ""


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("6281234567890", "6281******890"),
        ("628123456789", "6281*****789"),
        ("12345678", "1234*678"),
        ("1234567", "*******"),
        ("", ""),
    ],
)
def test_mask_phone(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked
    assert len(mask_phone(raw)) == len(raw)


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("Andi Baso", "A*** B***"),
        ("Siti", "S***"),
        ("  Andi   Baso  Daeng ", "A*** B*** D***"),
        ("", ""),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked
