"""MRN, GRN, container numbers and trader ids, checked against public and corridor example values."""

from __future__ import annotations

from typing import Any

import pytest
from stdnum import iso6346

from transit_window.codes import (
    InvalidCode,
    bin_iin_check_digit,
    generate_mrn,
    is_valid_container,
    is_valid_grn,
    is_valid_mrn,
    mrn_check_digit,
    validate_bin_iin,
    validate_container,
    validate_grn,
    validate_mrn,
    validate_trader_id,
)

# --- MRN ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mrn",
    ["22ITZXBZYUTJFLJXK6", "21DE27364916384836", "26KZ55020T000001J9", "26UZ0001TR000428J0"],
)
def test_public_and_corridor_mrns_are_valid(mrn: str) -> None:
    assert validate_mrn(mrn) is None
    assert is_valid_mrn(mrn)
    assert mrn_check_digit(mrn[:17]) == mrn[17]


def test_the_public_invalid_mrn_is_refused_with_the_expected_digit() -> None:
    assert validate_mrn("21DE12345678901235") == (
        "check digit is 5, expected 4: one of the characters was probably mistyped"
    )
    assert not is_valid_mrn("21DE12345678901235")


def test_transit_only_requires_a_procedure_letter() -> None:
    assert validate_mrn("26KZ55020T000001J9", transit_only=True) is None
    assert validate_mrn("22ITZXBZYUTJFLJXK6", transit_only=True) is None  # K: transit + exit summary
    refusal = validate_mrn("21DE27364916384836", transit_only=True)
    assert refusal is not None
    assert "procedure letter, J, K or L" in refusal


@pytest.mark.parametrize(
    ("mrn", "reason"),
    [
        ("26KZ55020T000001J", "18 characters, this one has 17"),
        ("26kz55020T000001J9", "found 'k'"),
        ("26-Z55020T000001J9", "found '-'"),
        ("AAKZ55020T000001J9", "two digits of the year"),
        ("26QQ55020T000001J9", "'QQ' is not a country code"),
        ("26KZ55020T000001JX", "check digit; found 'X'"),
        ("26KZ55020T000002J9", "check digit is 9, expected 8"),
    ],
)
def test_malformed_mrns_say_what_is_wrong(mrn: str, reason: str) -> None:
    refusal = validate_mrn(mrn)
    assert refusal is not None
    assert reason in refusal


def test_any_two_digits_are_a_year_unlike_the_official_schema() -> None:
    first17 = "99KZ55020T000001J"
    assert is_valid_mrn(first17 + mrn_check_digit(first17))


def test_generate_mrn_reproduces_the_corridor_examples() -> None:
    assert generate_mrn(year=26, country="KZ", office_part="55020T", serial=1) == "26KZ55020T000001J9"
    assert generate_mrn(year=26, country="UZ", office_part="0001TR", serial=428) == "26UZ0001TR000428J0"
    assert generate_mrn(year=5, country="TJ", serial=7) == "05TJ000000000007J" + mrn_check_digit("05TJ000000000007J")


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"year": 100}, "0-99"),
        ({"country": "XX"}, "not an ISO 3166-1"),
        ({"office_part": "kz"}, "capital letters or digits"),
        ({"office_part": "ABCDEFGHIJKL"}, "at most 11"),
        ({"procedure": "A"}, "J, K, L"),
        ({"serial": 1_000_000, "office_part": "ABCDEF"}, "does not fit in 6 digits"),
        ({"serial": -1}, "does not fit"),
    ],
)
def test_generate_mrn_refuses_what_would_not_be_an_mrn(arguments: dict[str, Any], reason: str) -> None:
    values: dict[str, Any] = {"year": 26, "country": "KZ", "serial": 1} | arguments
    with pytest.raises(InvalidCode, match=reason):
        generate_mrn(**values)


def test_mrn_check_digit_refuses_a_wrong_length() -> None:
    with pytest.raises(InvalidCode, match="17 characters, got 18"):
        mrn_check_digit("26KZ55020T000001J9")


# --- containers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["CSQU3054383", "DTCU1000010", "KZDU4512007"])
def test_example_containers_are_valid(number: str) -> None:
    assert validate_container(number) is None
    assert is_valid_container(number)
    assert iso6346.is_valid(number)


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("CSQU3054384", "check digit is 4, expected 3"),
        ("CSQU 305438 3", "write it as CSQU3054383"),
        ("csqu3054383", "capital letters: CSQU3054383"),
        ("CSQX3054383", "U, J, Z or R"),
        ("CS1U3054383", "3 capital letters"),
    ],
)
def test_bad_containers_say_what_is_wrong(number: str, reason: str) -> None:
    refusal = validate_container(number)
    assert refusal is not None
    assert reason in refusal


def test_the_mrn_and_container_check_digits_are_one_algorithm() -> None:
    # Trailing zeros add nothing to the sum, so ten container characters and seven zeros give the same digit.
    first17 = "CSQU305438" + "0000000"
    assert mrn_check_digit(first17) == iso6346.calc_check_digit("CSQU305438")


def test_iso_6346_cannot_see_a_letter_swapped_for_one_eleven_higher() -> None:
    # C=13 and M=24 differ by 11: the sum mod 11 is unchanged, so both numbers "check". Documented weakness.
    assert is_valid_container("CSQU3054383")
    assert is_valid_container("MSQU3054383")


# --- GRN ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grn", ["26KZ0000000000010", "26KZ5502GT0000428A123456", "24UZ1234567890AB5"])
def test_grns_of_the_ncts_pattern_are_accepted(grn: str) -> None:
    assert validate_grn(grn) is None
    assert is_valid_grn(grn)


@pytest.mark.parametrize(
    ("grn", "reason"),
    [
        ("26KZ000000000001", "17 characters, or 24"),
        ("2XKZ0000000000010", "characters 1-2 are the year"),
        ("26K10000000000010", "characters 3-4 are a country code"),
        ("26KZ00000000000a0", "characters 5-16"),
        ("26KZ000000000000X", "character 17 is a digit"),
        ("26KZ00000000000001234567", "characters 18-24"),
        ("26QQ0000000000010", "'QQ' is not one"),
    ],
)
def test_bad_grns_say_which_part_is_wrong(grn: str, reason: str) -> None:
    refusal = validate_grn(grn)
    assert refusal is not None
    assert reason in refusal


# --- trader ids ---------------------------------------------------------------------------------------------


def _bin_reference(first11: str) -> int | None:
    """The rule as corridor-data.md states it, written independently of the module."""
    digits = [int(character) for character in first11]
    first = sum(digit * weight for digit, weight in zip(digits, range(1, 12), strict=True)) % 11
    if first != 10:
        return first
    second_weights = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]
    second = sum(digit * weight for digit, weight in zip(digits, second_weights, strict=True)) % 11
    return None if second == 10 else second


def test_the_example_bin_is_valid() -> None:
    assert validate_bin_iin("230340000126") is None
    assert validate_trader_id("KZ", "230340000126") is None


def test_a_bin_whose_first_weighting_gives_ten_uses_the_second() -> None:
    first = sum(int(digit) * weight for digit, weight in zip("37783533740", range(1, 12), strict=True)) % 11
    assert first == 10
    assert bin_iin_check_digit("37783533740") == _bin_reference("37783533740") == 0
    assert validate_bin_iin("377835337400") is None


def test_a_bin_whose_both_weightings_give_ten_cannot_exist() -> None:
    assert _bin_reference("06870986119") is None
    assert bin_iin_check_digit("06870986119") is None
    for last in "0123456789":
        refusal = validate_bin_iin("06870986119" + last)
        assert refusal is not None
        assert "gives 10 twice" in refusal


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("230340000127", "check digit is 7, expected 6"),
        ("23034000012", "12 digits, this one has 11"),
        ("23034000012A", "digits only"),
        ("", "digits only"),
    ],
)
def test_bad_bins_say_what_is_wrong(number: str, reason: str) -> None:
    refusal = validate_bin_iin(number)
    assert refusal is not None
    assert reason in refusal


@pytest.mark.parametrize(
    ("country", "trader_id", "reason"),
    [
        ("AZ", "1401555071", None),
        ("AZ", "1401555081", "check digit (the 9th)"),
        ("AZ", "1400057424", "1 (legal person) or 2 (natural person)"),
        ("AZ", "401555071", "10 digits"),
        ("UZ", "123456789", None),
        ("UZ", "12345678", "an Uzbek STIR has 9 digits"),
        ("KG", "12345678901234", None),
        ("KG", "1234567890123", "a Kyrgyz INN has 14 digits"),
        ("TJ", "123456789", None),
        ("TJ", "12345678A", "a Tajik INN has 9 digits"),
        ("KZ", "230340000127", "check digit is 7, expected 6"),
        ("TM", "102030405060", None),
        ("CN", "91110000600037341L", None),
        ("TM", "12 34", "1-35 capital letters or digits"),
        ("XX", "123", "not an ISO 3166-1 country code"),
    ],
)
def test_trader_ids_by_country(country: str, trader_id: str, reason: str | None) -> None:
    refusal = validate_trader_id(country, trader_id)
    if reason is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert reason in refusal
