"""Check digits under hostile and clumsy input: MRNs, ISO 6346 container numbers and Kazakh BIN/IIN.

tests/codes/test_codes_properties.py proves the arithmetic (the published algorithms, one substituted character of
the alphabet caught unless the scheme cannot see it). This file adds what a clerk or a hostile client does besides:
any text at all never makes a validator raise (it would be a 500 at the API); a character from outside the scheme's
alphabet, a dropped or doubled character, is always refused; swapped neighbours are caught unless the scheme cannot
see it; and the blind spots of the schemes are stated, so nobody believes a check digit proves more than it does:

- ISO 6346 (MRN, container): remainders 0 and 10 share the digit 0, and letters eleven apart (A/K/U...) weigh the
  same;
- BIN/IIN: the first weighting gives the 11th digit the weight 11, which is 0 modulo 11, so a changed 11th digit
  goes unseen whenever that weighting decides the check digit (10 times in 11). That is the national standard, not
  this code: a BIN/IIN check digit does not protect the last digit of the serial.
"""

from __future__ import annotations

import string

from hypothesis import assume, example, given
from hypothesis import strategies as st

from tests.support.check_digits import ALPHANUMERIC, containers, letter_value, mrns, remainder
from transit_window.codes import (
    CORRIDOR_COUNTRIES,
    bin_iin_check_digit,
    validate_bin_iin,
    validate_container,
    validate_grn,
    validate_mrn,
    validate_trader_id,
)

ANY_CHARACTER = st.characters(codec="utf-8")  # lowercase, spaces, Cyrillic look-alikes, controls, emoji...


@st.composite
def bins(draw: st.DrawFn) -> str:
    first11 = draw(st.text(alphabet=string.digits, min_size=11, max_size=11))
    digit = bin_iin_check_digit(first11)
    assume(digit is not None)  # 1 in 121 prefixes has no valid number
    return f"{first11}{digit}"


def _replace(text: str, position: int, character: str) -> str:
    return text[:position] + character + text[position + 1 :]


def _first_weighting_decides(first11: str) -> bool:
    return sum(int(digit) * weight for digit, weight in zip(first11, range(1, 12), strict=True)) % 11 != 10


# --- never raise ----------------------------------------------------------------------------------------------


@given(st.text(ANY_CHARACTER, max_size=40), st.sampled_from((*CORRIDOR_COUNTRIES, "XX", "", "kz")))
@example("2" * 18, "KZ")
@example("26KZ\x00" + "0" * 13, "KZ")
@example("٢٦KZ" + "0" * 14, "KZ")  # Arabic-Indic digits: str.isdigit() says yes, int() reads them
@example("\uff11" * 12, "KZ")  # fullwidth digits
def test_no_text_makes_a_validator_raise(text: str, country: str) -> None:
    """Whatever a client sends, each validator answers None or a reason: an exception would be a 500."""
    for answer in (
        validate_mrn(text),
        validate_mrn(text, transit_only=True),
        validate_container(text),
        validate_grn(text),
        validate_bin_iin(text),
        validate_trader_id(country, text),
    ):
        assert answer is None or (isinstance(answer, str) and answer)


# --- generated numbers validate -------------------------------------------------------------------------------


@given(mrns())
def test_a_generated_mrn_validates_as_a_transit_mrn(mrn: str) -> None:
    assert validate_mrn(mrn, transit_only=True) is None


@given(containers())
def test_a_generated_container_validates(number: str) -> None:
    assert validate_container(number) is None


@given(bins())
def test_a_generated_bin_validates(number: str) -> None:
    assert validate_bin_iin(number) is None


# --- a character from outside the alphabet, a dropped or a doubled one: always refused ---------------------------


@given(mrns(), st.data())
def test_an_mrn_with_any_foreign_character_is_refused(mrn: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(mrn) - 1))
    character = data.draw(ANY_CHARACTER.filter(lambda c: c not in ALPHANUMERIC))
    changed = _replace(mrn, position, character)
    assert validate_mrn(changed) is not None


@given(containers(), st.data())
def test_a_container_with_any_foreign_character_is_refused(number: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(number) - 1))
    allowed = string.ascii_uppercase if position < 4 else string.digits
    character = data.draw(ANY_CHARACTER.filter(lambda c: c not in allowed))
    assert validate_container(_replace(number, position, character)) is not None


@given(bins(), st.data())
def test_a_bin_with_any_non_digit_is_refused(number: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(number) - 1))
    character = data.draw(ANY_CHARACTER.filter(lambda c: c not in string.digits))
    assert validate_bin_iin(_replace(number, position, character)) is not None


@given(st.one_of(mrns(), containers(), bins()), st.data())
def test_a_dropped_or_doubled_character_is_refused(number: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(number) - 1))
    dropped = number[:position] + number[position + 1 :]
    doubled = number[:position] + number[position] + number[position:]
    for changed in (dropped, doubled):
        assert validate_mrn(changed) is not None
        assert validate_container(changed) is not None
        assert validate_bin_iin(changed) is not None


# --- swapped neighbours: caught unless the scheme cannot see them -----------------------------------------------


@given(mrns(), st.integers(0, 15))
def test_swapped_neighbours_in_an_mrn_are_caught_unless_iso_6346_cannot_see_them(mrn: str, position: int) -> None:
    """Swapping cᵢ and cᵢ₊₁ moves the sum by (v(cᵢ₊₁) - v(cᵢ))·2ⁱ: never 0 mod 11 unless the values are eleven
    apart; then only the 0/10 fold can hide it."""
    a, b = mrn[position], mrn[position + 1]
    assume(a != b)
    swapped = mrn[:position] + b + a + mrn[position + 2 :]
    if validate_mrn(swapped) is None:
        assert (letter_value(a) - letter_value(b)) % 11 == 0 or {remainder(mrn[:17]), remainder(swapped[:17])} == {
            0,
            10,
        }


@given(containers(), st.integers(4, 8))
def test_swapped_serial_digits_of_a_container_are_caught_unless_remainders_fold(number: str, position: int) -> None:
    a, b = number[position], number[position + 1]
    assume(a != b)
    swapped = number[:position] + b + a + number[position + 2 :]
    if validate_container(swapped) is None:
        assert {remainder(number[:10]), remainder(swapped[:10])} == {0, 10}


# --- BIN/IIN: what the national check digit protects, and what it does not ---------------------------------------


@given(bins(), st.integers(0, 9), st.sampled_from(string.digits))
def test_a_changed_bin_digit_is_caught_when_the_first_weighting_decides_both(
    number: str, position: int, digit: str
) -> None:
    """Weights 1..10 are invertible modulo 11, so any change among the first ten digits moves the first sum."""
    assume(number[position] != digit)
    changed = _replace(number, position, digit)
    assume(_first_weighting_decides(number[:11]) and _first_weighting_decides(changed[:11]))
    assert validate_bin_iin(changed) is not None


@given(bins(), st.sampled_from(string.digits))
def test_the_eleventh_bin_digit_is_invisible_to_the_first_weighting(number: str, digit: str) -> None:
    """The blind spot of the standard: weight 11 ≡ 0, so when the first weighting decides, any 11th digit passes."""
    assume(_first_weighting_decides(number[:11]))
    changed = _replace(number, 10, digit)
    assume(_first_weighting_decides(changed[:11]))  # always true here: the first sum did not move
    assert validate_bin_iin(changed) is None


def test_the_eleventh_digit_blind_spot_on_the_example_bin() -> None:
    assert validate_bin_iin("230340000126") is None
    assert validate_bin_iin("230340000156") is None  # a different trader, the same check digit
    assert validate_bin_iin("230340000127") is not None  # the check digit itself is always protected
