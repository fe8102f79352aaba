"""Properties of the check-digit schemes, stated only as strongly as the mathematics allows.

ISO 6346 (used by containers and MRNs) sums value(cᵢ)·2ⁱ mod 11, then maps the remainder 10 to 0. Two facts
follow, and the assertions below respect them:
- a single substitution changes the remainder unless the two values differ by a multiple of 11 (letters A=10,
  K=21, U=32 share a remainder, as do B/L/V and so on; digits never collide with each other);
- even when the remainder changes, the check digit stays the same if the remainders are 0 and 10.
"""

from __future__ import annotations

import string

from hypothesis import assume, given
from hypothesis import strategies as st

from tests.support.check_digits import ALPHANUMERIC, containers, letter_value, mrns, reference_digit, remainder
from transit_window.codes import (
    bin_iin_check_digit,
    is_country,
    is_valid_container,
    is_valid_mrn,
    mrn_check_digit,
    validate_bin_iin,
)


def test_letter_values_match_the_published_table() -> None:
    assert [letter_value(letter) for letter in "ABCKLUVZ"] == [10, 12, 13, 21, 23, 32, 34, 38]


@given(mrns())
def test_a_generated_mrn_always_validates(mrn: str) -> None:
    assert len(mrn) == 18
    assert is_valid_mrn(mrn)
    assert mrn[17] == reference_digit(mrn[:17])


@given(st.text(alphabet=ALPHANUMERIC, min_size=17, max_size=17))
def test_the_mrn_check_digit_is_the_published_algorithm(first17: str) -> None:
    assert mrn_check_digit(first17) == reference_digit(first17)


@given(mrns(), st.integers(0, 16), st.sampled_from(ALPHANUMERIC))
def test_one_changed_mrn_character_is_caught_unless_the_check_digit_happens_to_match(
    mrn: str, position: int, replacement: str
) -> None:
    assume(mrn[position] != replacement)
    changed = mrn[:position] + replacement + mrn[position + 1 :]
    still_well_formed = changed[:2].isdigit() and is_country(changed[2:4])
    same_digit = reference_digit(changed[:17]) == mrn[17]
    assert is_valid_mrn(changed) == (still_well_formed and same_digit)
    if (letter_value(replacement) - letter_value(mrn[position])) % 11 != 0:
        # the remainder moved; only the 0/10 collision can hide it
        assert not same_digit or {remainder(mrn[:17]), remainder(changed[:17])} == {0, 10}


@given(mrns(), st.sampled_from(string.digits))
def test_a_changed_mrn_check_digit_is_always_caught(mrn: str, digit: str) -> None:
    assume(digit != mrn[17])
    assert not is_valid_mrn(mrn[:17] + digit)


@given(containers())
def test_a_container_with_its_computed_check_digit_validates(number: str) -> None:
    assert is_valid_container(number)
    assert number[10] == reference_digit(number[:10])


@given(containers(), st.integers(4, 9), st.sampled_from(string.digits))
def test_one_changed_serial_digit_is_caught_unless_remainders_are_0_and_10(
    number: str, position: int, digit: str
) -> None:
    assume(number[position] != digit)
    changed = number[:position] + digit + number[position + 1 :]
    if is_valid_container(changed):
        # Digits differ by 1..9, never a multiple of 11, so the remainder did change: the only way to pass is
        # the mod-10 step folding 10 onto 0.
        assert {remainder(number[:10]), remainder(changed[:10])} == {0, 10}


@given(containers(), st.integers(0, 2), st.sampled_from(string.ascii_uppercase))
def test_one_changed_owner_letter_is_caught_unless_the_check_digit_happens_to_match(
    number: str, position: int, letter: str
) -> None:
    assume(number[position] != letter)
    changed = number[:position] + letter + number[position + 1 :]
    assert is_valid_container(changed) == (reference_digit(changed[:10]) == number[10])


@given(containers(), st.sampled_from(string.digits))
def test_a_changed_container_check_digit_is_always_caught(number: str, digit: str) -> None:
    assume(digit != number[10])
    assert not is_valid_container(number[:10] + digit)


@given(st.text(alphabet=string.digits, min_size=11, max_size=11))
def test_a_bin_with_its_check_digit_validates_and_any_other_last_digit_does_not(first11: str) -> None:
    expected = bin_iin_check_digit(first11)
    for last in string.digits:
        accepted = validate_bin_iin(first11 + last) is None
        assert accepted == (expected is not None and int(last) == expected)
