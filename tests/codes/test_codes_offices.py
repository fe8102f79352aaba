"""The office directory: bundled corridor offices, an operator's overrides, and files that are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from transit_window.codes import (
    CORRIDOR_COUNTRIES,
    InvalidCode,
    OfficeDirectory,
    ReferenceDataError,
    load_office_file,
)

# Every place of corridor-data.md's table, both sides of each crossing that has two names.
EXPECTED_OFFICES = {
    "KZALA001": ("Almaty", "inland", "KZ ALA"),
    "KZCIT001": ("Shymkent", "inland", "KZ CIT"),
    "KZHOR001": ("Khorgos (Nur Zholy road, Altynkol rail)", "border", "KZ HOR"),
    "KZDOS001": ("Dostyk", "border", "KZ DOS"),
    "KZZHZ001": ("Zhibek Zholy", "border", None),
    "UZGIS001": ("Gishtkuprik", "border", None),
    "KZSRY001": ("Saryagash", "border", "KZ SRY"),
    "KZQZQ001": ("Kazygurt", "border", "KZ QZQ"),
    "KZKOR001": ("Kordai", "border", "KZ KOR"),
    "KGAKZ001": ("Ak-Zhol", "border", None),
    "KZAAU001": ("Aktau port", "port", "KZ AAU"),
    "KZKUR001": ("Kuryk port", "port", "KZ KUR"),
    "KGFRU001": ("Bishkek", "inland", "KG FRU"),
    "KGOSS001": ("Osh", "inland", "KG OSS"),
    "KGDOS001": ("Dostuk", "border", None),
    "UZDUS001": ("Dustlik", "border", None),
    "KGIRK001": ("Irkeshtam", "border", None),
    "KGTOR001": ("Torugart", "border", None),
    "UZTAS001": ("Tashkent", "inland", "UZ TAS"),
    "UZTER001": ("Termez", "border", "UZ TER"),
    "UZALT001": ("Alat (Uzbek side of the Farap crossing)", "border", None),
    "TMFAR001": ("Farap", "border", "TM FAR"),
    "UZOYB001": ("Oybek", "border", None),
    "TJFOT001": ("Fotehobod", "border", None),
    "TJKHU001": ("Khujand", "inland", "TJ KHU"),
    "TJDYU001": ("Dushanbe", "inland", "TJ DYU"),
    "TMASB001": ("Ashgabat", "inland", "TM ASB"),
    "TMKRW001": ("Turkmenbashi port", "port", "TM KRW"),
    "AZALA001": ("Alat port (Baku International Sea Trade Port)", "port", "AZ ALA"),
    "AZBAK001": ("Baku", "inland", "AZ BAK"),
    "AZRED001": ("Red Bridge", "border", None),
}

CROSSINGS = [
    ("KZZHZ001", "UZGIS001"),
    ("UZALT001", "TMFAR001"),
    ("KGDOS001", "UZDUS001"),
    ("KZKOR001", "KGAKZ001"),
    ("UZOYB001", "TJFOT001"),
]


def _write(path: Path, offices: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"offices": offices}), encoding="utf-8")
    return path


def test_the_bundled_directory_has_every_place_of_the_corridor_table() -> None:
    directory = OfficeDirectory()
    assert {office.code for office in directory.all()} == set(EXPECTED_OFFICES)
    for code, (name, role, unlocode) in EXPECTED_OFFICES.items():
        office = directory.require(code)
        assert (office.name, office.role, office.unlocode) == (name, role, unlocode)
        assert office.country == code[:2]


def test_each_border_crossing_has_an_office_on_each_side_naming_the_other() -> None:
    directory = OfficeDirectory()
    for left, right in CROSSINGS:
        a, b = directory.require(left), directory.require(right)
        assert (a.partner, b.partner) == (right, left)
        assert (a.faces, b.faces) == (b.country, a.country)


def test_border_offices_face_a_neighbour_and_others_face_nothing() -> None:
    for office in OfficeDirectory():
        if office.role == "border":
            assert office.faces is not None
            assert office.faces != office.country
        else:
            assert office.faces is None
            assert office.partner is None


def test_the_uzbek_alat_is_not_the_azerbaijani_port() -> None:
    directory = OfficeDirectory()
    uzbek, port = directory.require("UZALT001"), directory.require("AZALA001")
    assert (uzbek.country, uzbek.role, uzbek.faces) == ("UZ", "border", "TM")
    assert (port.country, port.role) == ("AZ", "port")


def test_every_bundled_office_has_its_russian_name_in_cyrillic() -> None:
    """The tracking page in Russian names places as a Russian reader knows them: Алматы, not Almaty."""
    directory = OfficeDirectory()
    for office in directory:
        assert office.name_ru and not any("a" <= letter.lower() <= "z" for letter in office.name_ru), office.code
        assert office.name_in("ru") == office.name_ru and office.name_in("en") == office.name
    russian = {code: directory.require(code).name_ru for code in ("KZALA001", "KZZHZ001", "UZTAS001", "AZBAK001")}
    assert russian == {"KZALA001": "Алматы", "KZZHZ001": "Жибек Жолы", "UZTAS001": "Ташкент", "AZBAK001": "Баку"}
    assert directory.require("UZALT001").name_in("ru").startswith("Алат (")  # Olot, Uzbekistan
    assert directory.require("AZALA001").name_in("ru").startswith("порт Алят (")  # Ələt, Azerbaijan


def test_every_corridor_country_has_offices_and_by_country_filters() -> None:
    directory = OfficeDirectory()
    for country in CORRIDOR_COUNTRIES:
        offices = directory.by_country(country)
        assert offices
        assert all(office.country == country for office in offices)
    assert [office.code for office in directory.by_country("TJ")] == ["TJDYU001", "TJFOT001", "TJKHU001"]
    assert directory.by_country("CN") == []


def test_an_unknown_office_is_none_for_get_and_a_clear_error_for_require() -> None:
    directory = OfficeDirectory()
    assert directory.get("KZALA999") is None
    assert "KZALA001" in directory
    with pytest.raises(InvalidCode, match=r"no customs office with reference 'KZALA999'.*e\.g\. KZALA001"):
        directory.require("KZALA999")


def test_an_operator_file_overrides_by_code_and_adds_offices(tmp_path: Path) -> None:
    operator_file = _write(
        tmp_path / "extra.json",
        [
            {
                "code": "KZALA001",
                "name": "Almaty CTO-1",
                "role": "inland",
                "country": "KZ",
                "lat": 43.3,
                "lon": 76.9,
            },
            {
                "code": "KZNZH001",
                "name": "Nur Zholy",
                "role": "border",
                "country": "KZ",
                "lat": 44.2,
                "lon": 80.4,
                "faces": "CN",
                "modes": ["road"],
                "approx": True,
            },
        ],
    )
    directory = OfficeDirectory(operator_file=operator_file)
    assert directory.require("KZALA001").name == "Almaty CTO-1"
    assert directory.require("KZALA001").unlocode is None  # replaced whole, not merged field by field
    assert directory.require("KZNZH001").faces == "CN"
    assert directory.require("KZNZH001").name_in("ru") == "Nur Zholy"  # no name_ru: the name in both languages
    assert len(directory) == len(EXPECTED_OFFICES) + 1
    assert OfficeDirectory().require("KZALA001").name == "Almaty"  # the bundled data is untouched


def test_load_office_file_names_the_bad_entry_and_field(tmp_path: Path) -> None:
    bad = _write(
        tmp_path / "bad.json",
        [
            {"code": "KZGOOD01", "name": "Good", "role": "inland", "country": "KZ", "lat": 43.0, "lon": 76.0},
            {"code": "KZBAD001", "name": "Bad", "role": "inland", "country": "KZ", "lat": 123.0, "lon": 76.0},
        ],
    )
    with pytest.raises(ReferenceDataError) as caught:
        load_office_file(bad)
    message = str(caught.value)
    assert str(bad) in message
    assert "offices[1] (code 'KZBAD001'), field 'lat'" in message
    assert "less than or equal to 90" in message


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"role": "border"}, "must say which country it faces"),
        ({"role": "border", "faces": "KZ"}, "cannot face its own country"),
        ({"faces": "UZ"}, "only border offices have 'faces'"),
        ({"country": "UZ"}, "must start with its country UZ"),
        ({"code": "KZ-ALA-1"}, "field 'code'"),
        ({"role": "airport"}, "field 'role'"),
        ({"unlocode": "UZ TAS"}, "is not in the office's country KZ"),
        ({"colour": "blue"}, "field 'colour'"),
        ({"name_ru": "Almaty"}, "field 'name_ru'"),
    ],
)
def test_entries_that_break_the_office_rules_are_refused(tmp_path: Path, entry: dict[str, Any], reason: str) -> None:
    base = {"code": "KZTST001", "name": "Test", "role": "inland", "country": "KZ", "lat": 43.0, "lon": 76.0}
    path = _write(tmp_path / "office.json", [base | entry])
    with pytest.raises(ReferenceDataError, match="offices\\[0\\]") as caught:
        load_office_file(path)
    assert reason in str(caught.value)


def test_a_file_that_is_not_json_or_not_there_is_refused_with_where(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"offices": [\n  {"code": "KZALA001",}\n]}', encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="not valid JSON at line 2"):
        load_office_file(broken)
    with pytest.raises(ReferenceDataError, match="file not found"):
        OfficeDirectory(operator_file=tmp_path / "missing.json")


def test_a_duplicate_code_in_one_file_is_refused(tmp_path: Path) -> None:
    office = {"code": "KZTST001", "name": "Test", "role": "inland", "country": "KZ", "lat": 43.0, "lon": 76.0}
    with pytest.raises(ReferenceDataError, match="KZTST001 appears more than once"):
        load_office_file(_write(tmp_path / "dup.json", [office, office]))


def test_an_operator_partner_that_does_not_answer_back_is_refused(tmp_path: Path) -> None:
    one_sided = {
        "code": "KZTST001",
        "name": "Test",
        "role": "border",
        "country": "KZ",
        "lat": 41.4,
        "lon": 69.1,
        "faces": "UZ",
        "partner": "UZGIS001",
    }
    with pytest.raises(ReferenceDataError, match="KZTST001 names partner UZGIS001, but UZGIS001 names KZZHZ001"):
        OfficeDirectory(operator_file=_write(tmp_path / "one-sided.json", [one_sided]))
    dangling = one_sided | {"partner": "UZNOP001"}
    with pytest.raises(ReferenceDataError, match="UZNOP001, which is not in the directory"):
        OfficeDirectory(operator_file=_write(tmp_path / "dangling.json", [dangling]))
