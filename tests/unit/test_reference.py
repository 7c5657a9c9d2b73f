"""Reference data: the 18 kecamatan of Kabupaten Gowa and the service catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from sapa.domain.reference import (
    Catalogue,
    Region,
    default_catalogue,
    default_region,
    load_catalogue,
    load_region,
)

GOWA_KECAMATAN = {
    "730601": "Bontonompo",
    "730602": "Bajeng",
    "730603": "Tompobulu",
    "730604": "Tinggimoncong",
    "730605": "Parangloe",
    "730606": "Bontomarannu",
    "730607": "Pallangga",
    "730608": "Somba Opu",
    "730609": "Bungaya",
    "730610": "Tombolopao",
    "730611": "Biringbulu",
    "730612": "Barombong",
    "730613": "Pattallassang",
    "730614": "Manuju",
    "730615": "Bontolempangan",
    "730616": "Bontonompo Selatan",
    "730617": "Parigi",
    "730618": "Bajeng Barat",
}
SERVICES = ["kk", "ktp_el", "kia", "akta_kelahiran", "akta_kematian", "surat_pindah"]


@pytest.fixture
def region() -> Region:
    return default_region()


@pytest.fixture
def catalogue() -> Catalogue:
    return default_catalogue()


def test_given_gowa_then_there_are_18_kecamatan_coded_730601_to_730618(region: Region) -> None:
    assert [k.code for k in region.kecamatan] == [f"7306{n:02d}" for n in range(1, 19)]
    assert {k.code: k.name for k in region.kecamatan} == GOWA_KECAMATAN


def test_given_gowa_then_the_regency_header_is_right(region: Region) -> None:
    assert region.code == "7306"
    assert region.name == "Kabupaten Gowa"
    assert "Kependudukan" in region.office
    assert region.timezone == "Asia/Makassar"


@pytest.mark.parametrize(("code", "name"), [("730608", "Somba Opu"), ("730618", "Bajeng Barat")])
def test_given_a_code_then_the_kecamatan_is_found(region: Region, code: str, name: str) -> None:
    assert region.kecamatan_by_code(code).name == name


def test_given_an_unknown_code_then_key_error(region: Region) -> None:
    with pytest.raises(KeyError):
        region.kecamatan_by_code("730619")


def test_given_every_kecamatan_then_its_link_mode_is_auto_or_manual(region: Region) -> None:
    assert {k.link_mode for k in region.kecamatan} <= {"auto", "manual"}


def test_given_the_catalogue_then_it_has_the_six_services(catalogue: Catalogue) -> None:
    assert [s.code for s in catalogue.services] == SERVICES


@pytest.mark.parametrize("code", SERVICES)
def test_given_a_service_then_it_requires_at_least_one_document(
    catalogue: Catalogue, code: str
) -> None:
    service = catalogue.get(code)
    assert service.name and service.output
    assert len(service.required) >= 1
    assert all(not r.optional for r in service.required)
    keys = [r.key for r in service.requirements]
    assert len(keys) == len(set(keys))
    assert all(r.name for r in service.requirements)


def test_given_optional_requirements_then_they_are_not_required(catalogue: Catalogue) -> None:
    kk = catalogue.get("kk")
    assert [r.key for r in kk.required] == ["kk_lama", "buku_nikah"]
    assert [r.key for r in kk.requirements if r.optional] == ["surat_pindah"]


def test_given_an_unknown_service_then_key_error(catalogue: Catalogue) -> None:
    with pytest.raises(KeyError):
        catalogue.get("paspor")


def test_given_other_files_then_they_are_loaded_instead(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text(
        '[regency]\ncode = "7371"\nname = "Kota Makassar"\noffice = "Disdukcapil"\n'
        '[[kecamatan]]\ncode = "737101"\nname = "Mariso"\nlink_mode = "manual"\n',
        encoding="utf-8",
    )
    (tmp_path / "s.toml").write_text(
        '[[services]]\ncode = "x"\nname = "X"\noutput = "Y"\n'
        'requirements = [{ key = "a", name = "A" }, { key = "b", name = "B", optional = true }]\n',
        encoding="utf-8",
    )
    region = load_region(tmp_path / "r.toml")
    assert (region.code, region.timezone, region.kecamatan[0].link_mode) == (
        "7371",
        "Asia/Makassar",
        "manual",
    )
    assert [r.key for r in load_catalogue(tmp_path / "s.toml").get("x").required] == ["a"]
