"""Which service a resident's first WhatsApp message names (sapa.domain.service_words), read
against the shipped catalogue's keywords (services.toml)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sapa.domain.reference import Catalogue, Requirement, Service, default_catalogue
from sapa.domain.service_words import detect_service, words

CATALOGUE = default_catalogue()


def named(text: str) -> str | None:
    service = detect_service(CATALOGUE, text)
    return service.code if service else None


# What residents of Gowa write, as they write it.
MESSAGES = {
    "mau urus KK": "kk",
    "Selamat pagi, saya mau buat kartu keluarga baru": "kk",
    "Kartu kluarga saya rusak": "kk",  # one letter missing
    "kartukeluarga hilang": "kk",  # written as one word
    "Assalamualaikum, mau urus KTP": "ktp_el",
    "ktp-el saya hilang pak": "ktp_el",
    "E-KTP rusak": "ktp_el",
    "ektp": "ktp_el",
    "KTPel sy patah": "ktp_el",
    "bikin KIA utk anak": "kia",
    "kartu identitas anak": "kia",
    "akta lahir anak saya": "akta_kelahiran",
    "AKTE KELAHIRAN": "akta_kelahiran",
    "mau urus akte lahir, KK sudah ada": "akta_kelahiran",  # the first named wins
    "akta klahiran": "akta_kelahiran",  # one letter missing
    "aktalahir": "akta_kelahiran",
    "bapak saya meninggal, mau urus aktanya": "akta_kematian",
    "akta kematian almarhum": "akta_kematian",
    "akte kematain": "akta_kematian",  # two letters swapped
    "mau pindah ke Makassar": "surat_pindah",
    "Surat Pindah": "surat_pindah",
    "pindah KK ke Maros": "surat_pindah",  # "pindah" comes first
    "KK baru karena pindah rumah": "kk",  # "KK" comes first
    "skpwni": "surat_pindah",
    "halo kk, mau urus KTP": "ktp_el",  # "kk" after a greeting is "kakak"
    "tabe kk, KK saya hilang": "kk",  # the second "kk" is the card
}

NEUTRAL = [
    "",
    "Halo",
    "Assalamualaikum",
    "Selamat siang, mau tanya",
    "halo kk",  # "kakak", not Kartu Keluarga
    "Permisi kk, bisa dibantu?",
    "STATUS",
    "BANTUAN",
    "akta",  # which one?
    "kakak",  # not "kk"
    "kiat",  # not "kia": short words must be exact
    "pindai kode QR",  # not "pindah"
    "ktpp",  # not "ktp"
    "12345 !!! ???",
]


@pytest.mark.parametrize(("message", "code"), MESSAGES.items(), ids=MESSAGES.keys())
def test_a_message_naming_a_service_is_read_as_that_service(message: str, code: str) -> None:
    assert named(message) == code


@pytest.mark.parametrize("message", NEUTRAL)
def test_a_message_naming_no_service_is_read_as_none(message: str) -> None:
    assert named(message) is None


def test_every_shipped_service_has_keywords_and_a_file_code() -> None:
    for service in CATALOGUE.services:
        assert service.keywords, service.code
        assert service.file_code and service.file_code == service.file_code.upper()
        assert all(ch.isalnum() or ch == "-" for ch in service.file_code)
        # each of its own keywords names it, alone in a message
        for keyword in service.keywords:
            assert named(keyword) == service.code, (service.code, keyword)


def test_only_kk_and_the_akta_are_printed_on_plain_paper() -> None:
    # Permendagri 109/2019: KK and the akta on HVS; KTP-el and KIA are cards
    assert {s.code for s in CATALOGUE.services if s.plain_paper} == {
        "kk",
        "akta_kelahiran",
        "akta_kematian",
    }


# ---- properties -------------------------------------------------------------------------------

# Words residents put around what they ask for; none of them names a service.
FILLER = [
    "saya",
    "mau",
    "urus",
    "bikin",
    "tolong",
    "bapak",
    "ibu",
    "bagaimana",
    "caranya",
    "sudah",
    "rusak",
    "hilang",
    "baru",
    "dong",
    "ya",
    "min",
    "terima",
]
SEPARATORS = [" ", "  ", ", ", ". ", "! ", "? ", " - ", "\n"]
KEYWORDS = [(s.code, k) for s in CATALOGUE.services for k in s.keywords]


def _join(parts: list[str], seps: list[str]) -> str:
    out = ""
    for i, part in enumerate(parts):
        out += part + (seps[i % len(seps)] if i < len(parts) - 1 else "")
    return out


def _recase(text: str, flags: list[bool]) -> str:
    return "".join(ch.upper() if flags[i % len(flags)] else ch.lower() for i, ch in enumerate(text))


@settings(max_examples=300, deadline=None)
@given(
    keyword=st.sampled_from(KEYWORDS),
    before=st.lists(st.sampled_from(FILLER), max_size=6),
    after=st.lists(st.sampled_from(FILLER + [k for _, k in KEYWORDS]), max_size=6),
    seps=st.lists(st.sampled_from(SEPARATORS), min_size=1, max_size=4),
    flags=st.lists(st.booleans(), min_size=1, max_size=7),
)
def test_a_keyword_among_other_words_names_its_service_in_any_case(
    keyword: tuple[str, str],
    before: list[str],
    after: list[str],
    seps: list[str],
    flags: list[bool],
) -> None:
    # GIVEN a keyword with filler words before it (and anything, other keywords too, after)
    code, word = keyword
    message = _recase(_join([*before, word, *after], seps), flags)
    # THEN the message names the keyword's service: the first named wins, case does not matter
    assert named(message) == code, message


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from(FILLER), max_size=12),
    seps=st.lists(st.sampled_from(SEPARATORS), min_size=1, max_size=4),
    flags=st.lists(st.booleans(), min_size=1, max_size=7),
)
def test_filler_alone_names_no_service(
    parts: list[str], seps: list[str], flags: list[bool]
) -> None:
    assert named(_recase(_join(parts, seps), flags)) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_read_without_error_and_the_same_in_upper_or_lower_case(text: str) -> None:
    found = named(text)
    assert found is None or found in {s.code for s in CATALOGUE.services}
    ascii_text = text.encode("ascii", "ignore").decode()
    assert named(ascii_text.upper()) == named(ascii_text.lower()) == named(ascii_text)


def test_only_the_start_of_a_long_message_is_read() -> None:
    assert named("halo " * 200 + "KK") is None
    assert named("KK " + "halo " * 200) == "kk"


def test_words_drop_case_accents_and_punctuation() -> None:
    assert words("KTP-el, Akté  LAHIR!") == ["ktp", "el", "akte", "lahir"]


def test_an_office_catalogue_with_its_own_keywords_is_read_the_same_way() -> None:
    # GIVEN another office's catalogue: a passport-like service keyed on a phrase
    other = Catalogue(
        (
            Service(
                "ubah_data",
                "Perubahan Data",
                "Biodata",
                (Requirement("kk", "Kartu Keluarga"),),
                keywords=("ubah data", "perubahan biodata"),
            ),
        )
    )
    # THEN its phrases, spelled together or with a typo in a long word, name it
    assert detect_service(other, "mau ubah data") is not None
    assert detect_service(other, "ubahdata dong") is not None
    assert detect_service(other, "perubahan biodatta") is not None
    assert detect_service(other, "mau urus KK") is None  # not a keyword there
