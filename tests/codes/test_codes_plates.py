"""Vehicle plates: normalised for comparison, refused when unusable, warned about when unusual."""

from __future__ import annotations

import pytest

from transit_window.codes import InvalidCode, normalise_plate, plate_warnings

CYRILLIC_A = "\u0410"  # looks like the Latin A
KAZAKH_QA = "\u049a"  # Қ, a letter of the Kazakh Cyrillic alphabet


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("01 a 123-bc", "01A123BC"),
        ("123 ABC 02", "123ABC02"),
        ("10-AB-123", "10AB123"),
        ("AB\u00a01234\u2013AG", "AB1234AG"),  # no-break space and en dash, as pasted from a document
        (f"123 {CYRILLIC_A.lower()}bc 02", f"123{CYRILLIC_A}BC02"),
        (f"{KAZAKH_QA}1", f"{KAZAKH_QA}1"),
        ("AB", "AB"),
        ("ABCDEF123456", "ABCDEF123456"),
    ],
)
def test_plates_are_upper_cased_without_spaces_or_dashes(raw: str, normal: str) -> None:
    assert normalise_plate(raw) == normal


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("01/AB", "contains '/'"),
        ("12.AB.34", "contains '.'"),
        ("ÄB123", "contains 'Ä'"),
        ("A", "has 1 letters and digits, expected 2 to 12"),
        (" - ", "has 0 letters and digits"),
        ("ABCDEF1234567", "has 13 letters and digits"),
    ],
)
def test_unusable_plates_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(InvalidCode, match=reason):
        normalise_plate(raw)


@pytest.mark.parametrize(
    ("country", "plate"),
    [
        ("KZ", "123 ABC 02"),
        ("KZ", "123 AB 02"),
        ("KG", "01 123 ABC"),
        ("UZ", "01 A 123 BC"),
        ("UZ", "01 123 ABC"),
        ("TJ", "1234 AB 01"),
        ("TM", "AB 1234 AG"),
        ("AZ", "10-AB-123"),
    ],
)
def test_usual_national_plates_raise_no_warning(country: str, plate: str) -> None:
    assert plate_warnings(country, plate) == []


def test_an_unusual_plate_is_warned_about_not_refused() -> None:
    warnings = plate_warnings("TJ", "01 A 123 BC")
    assert len(warnings) == 1
    assert "does not look like a plate of Tajikistan" in warnings[0]
    assert "1234AB01" in warnings[0]


def test_cyrillic_look_alikes_on_a_corridor_plate_are_pointed_out() -> None:
    warnings = plate_warnings("KZ", f"123 {CYRILLIC_A}BC 02")
    assert any("has Cyrillic letters" in warning and "retype look-alikes" in warning for warning in warnings)


def test_countries_without_a_pattern_are_not_warned_and_bad_country_codes_are() -> None:
    assert plate_warnings("RU", f"{CYRILLIC_A}123BC77") == []
    assert plate_warnings("XX", "123ABC02") == [
        "'XX' is not an ISO 3166-1 country code: the plate's country could not be checked"
    ]


def test_plate_warnings_refuses_an_unusable_plate() -> None:
    with pytest.raises(InvalidCode):
        plate_warnings("KZ", "1")
