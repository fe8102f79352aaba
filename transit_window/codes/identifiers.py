"""Identifiers that travel on a transit record: MRN, GRN, container numbers, trader ids and vehicle plates.

Owns the check-digit arithmetic and format rules, and nothing else: whether an MRN exists, or a guarantee is
registered, is for the services that own movements and guarantees.

Conventions: `validate_*` returns None for an acceptable value or the reason it is not, worded for a customs
clerk ("check digit is 7, expected 9"); `is_valid_*` is the same answer as a bool; functions that produce or
normalise a value raise `InvalidCode` with the same kind of message. Values are checked as given: upper case,
no spaces, except plates, which `normalise_plate` cleans first because they are read off a vehicle.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from types import MappingProxyType
from typing import Final

from stdnum import iso6346
from stdnum.az import voen
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError

from transit_window.codes._errors import InvalidCode
from transit_window.codes.countries import CORRIDOR_COUNTRIES, country_name, is_country

# --- the ISO 6346 check digit of MRNs (containers use stdnum's copy; a test keeps the two equal) ------------

# Digits keep their value; letters count from A=10 upwards, skipping multiples of 11 (11, 22, 33).
_CHECK_VALUES: Final = MappingProxyType(
    {
        **{digit: int(digit) for digit in string.digits},
        **dict(zip(string.ascii_uppercase, [value for value in range(10, 39) if value % 11 != 0], strict=True)),
    }
)


def _iso6346_digit(text: str) -> int:
    """(Σ value(cᵢ)·2ⁱ mod 11) mod 10. The final mod 10 makes remainders 0 and 10 share the digit 0."""
    return sum(_CHECK_VALUES[character] << index for index, character in enumerate(text)) % 11 % 10


def _alnum(text: str) -> bool:
    return all(character in _CHECK_VALUES for character in text)


def _first_bad_character(text: str) -> str:
    return next(character for character in text if character not in _CHECK_VALUES)


# --- MRN ---------------------------------------------------------------------------------------------------

MRN_LENGTH: Final = 18

TRANSIT_PROCEDURES: Final = MappingProxyType(
    {
        "J": "transit declaration only",
        "K": "transit declaration with exit summary declaration",
        "L": "transit declaration with entry summary declaration",
    }
)


def mrn_check_digit(first17: str) -> str:
    """The 18th character of an MRN, computed from the first 17; raises `InvalidCode` on bad input."""
    if len(first17) != MRN_LENGTH - 1:
        raise InvalidCode(f"the check digit is computed over 17 characters, got {len(first17)}")
    if not _alnum(first17):
        raise InvalidCode(
            f"MRN may contain only capital letters A-Z and digits; found {_first_bad_character(first17)!r}"
        )
    return str(_iso6346_digit(first17))


def validate_mrn(mrn: str, *, transit_only: bool = False) -> str | None:
    """None for a well-formed MRN with a correct check digit, else the reason.

    The 17th character is the procedure letter in NCTS phase 5 MRNs; older MRNs (and one of the public test
    values) have a plain character there, so it is only required to be J, K or L when `transit_only` is set.
    """
    if len(mrn) != MRN_LENGTH:
        return f"an MRN has {MRN_LENGTH} characters, this one has {len(mrn)}"
    if not _alnum(mrn):
        return f"an MRN contains only capital letters A-Z and digits; found {_first_bad_character(mrn)!r}"
    if not mrn[:2].isdigit():
        return f"an MRN starts with the two digits of the year; found {mrn[:2]!r}"
    if not is_country(mrn[2:4]):
        return f"characters 3-4 are the country of the office of departure; {mrn[2:4]!r} is not a country code"
    if transit_only and mrn[16] not in TRANSIT_PROCEDURES:
        return f"character 17 is the procedure letter, J, K or L for transit; found {mrn[16]!r}"
    if not mrn[17].isdigit():
        return f"the last character of an MRN is its check digit; found {mrn[17]!r}"
    expected = mrn_check_digit(mrn[:17])
    if mrn[17] != expected:
        return f"check digit is {mrn[17]}, expected {expected}: one of the characters was probably mistyped"
    return None


def is_valid_mrn(mrn: str) -> bool:
    return validate_mrn(mrn) is None


def generate_mrn(*, year: int, country: str, serial: int, office_part: str = "", procedure: str = "J") -> str:
    """Build an MRN: year (2 digits), country, 12 unique characters, procedure letter, check digit.

    The 12 unique characters are `office_part` (0-11 capital letters or digits that name the issuing office
    or system, e.g. "55020T") followed by `serial` in decimal, zero-padded to fill the rest:
    26 KZ 55020T 000001 J 9. Decimal rather than base 36 so that a clerk can read the sequence off the number;
    the caller owns the serial and must not reuse one within the same year, country and office part.
    """
    if not 0 <= year <= 99:
        raise InvalidCode(f"the MRN year is the last two digits of the year (0-99), got {year}")
    if not is_country(country):
        raise InvalidCode(f"{country!r} is not an ISO 3166-1 country code")
    if len(office_part) > 11 or not _alnum(office_part):
        raise InvalidCode(f"office part {office_part!r} must be at most 11 capital letters or digits")
    if procedure not in TRANSIT_PROCEDURES:
        raise InvalidCode(f"procedure letter must be one of {', '.join(TRANSIT_PROCEDURES)}, got {procedure!r}")
    width = 12 - len(office_part)
    if not 0 <= serial < 10**width:
        raise InvalidCode(f"serial {serial} does not fit in {width} digits after office part {office_part!r}")
    first17 = f"{year:02d}{country}{office_part}{serial:0{width}d}{procedure}"
    return first17 + mrn_check_digit(first17)


# --- containers (ISO 6346, through stdnum) ------------------------------------------------------------------

_CONTAINER = re.compile(r"[A-Z]{3}[UJZR][0-9]{7}")


def validate_container(number: str) -> str | None:
    """None for a valid ISO 6346 container number such as CSQU3054383, else the reason."""
    if len(number) != 11:
        compact = number.replace(" ", "").upper()
        hint = f": write it as {compact}" if len(compact) == 11 else ""
        return f"a container number has 11 characters without spaces, this one has {len(number)}{hint}"
    if not _CONTAINER.fullmatch(number):
        if _CONTAINER.fullmatch(number.upper()):
            return f"a container number is written in capital letters: {number.upper()}"
        return (
            "a container number is 3 capital letters (owner), U, J, Z or R (equipment category), "
            f"6 digits (serial) and a check digit, e.g. CSQU3054383; got {number!r}"
        )
    expected = iso6346.calc_check_digit(number[:10])
    if number[10] != expected:
        return f"check digit is {number[10]}, expected {expected}: check the container number on the door"
    try:
        iso6346.validate(number)
    except ValidationError as error:  # pragma: no cover - the checks above mirror stdnum's
        return f"not a valid container number: {error}"
    return None


def is_valid_container(number: str) -> bool:
    return validate_container(number) is None


# --- GRN ---------------------------------------------------------------------------------------------------

_GRN = re.compile(r"[0-9]{2}[A-Z]{2}[A-Z0-9]{12}[0-9]([A-Z][0-9]{6})?")


def validate_grn(grn: str) -> str | None:
    """None for a guarantee reference number of the NCTS pattern, else the reason.

    Only the pattern is checked: the reference documents give no algorithm for the GRN's 17th digit.
    """
    if _GRN.fullmatch(grn):
        return None if is_country(grn[2:4]) else f"characters 3-4 of a GRN are a country; {grn[2:4]!r} is not one"
    if len(grn) not in (17, 24):
        return f"a GRN has 17 characters, or 24 with an access part; this one has {len(grn)}"
    parts = (
        (grn[:2], r"[0-9]{2}", "characters 1-2 are the year, two digits"),
        (grn[2:4], r"[A-Z]{2}", "characters 3-4 are a country code, two capital letters"),
        (grn[4:16], r"[A-Z0-9]{12}", "characters 5-16 are capital letters or digits"),
        (grn[16], r"[0-9]", "character 17 is a digit"),
        (grn[17:], r"([A-Z][0-9]{6})?", "characters 18-24 are a capital letter and six digits"),
    )
    for value, pattern, rule in parts:
        if not re.fullmatch(pattern, value):
            return f"{rule}; found {value!r}"
    return f"{grn!r} does not match the GRN pattern"  # pragma: no cover - the parts above cover the pattern


def is_valid_grn(grn: str) -> bool:
    return validate_grn(grn) is None


# --- trader identifiers -------------------------------------------------------------------------------------

_BIN_WEIGHTS: Final = (tuple(range(1, 12)), (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2))


def bin_iin_check_digit(first11: str) -> int | None:
    """The 12th digit of a Kazakh BIN/IIN, or None when both weightings give 10 (no valid number exists)."""
    digits = [int(character) for character in first11]
    for weights in _BIN_WEIGHTS:
        remainder = sum(digit * weight for digit, weight in zip(digits, weights, strict=True)) % 11
        if remainder != 10:
            return remainder
    return None


def validate_bin_iin(number: str) -> str | None:
    """None for a Kazakh BIN (business) or IIN (individual) with a correct check digit, else the reason."""
    if not (number.isascii() and number.isdigit()):
        return f"a BIN/IIN contains digits only; got {number!r}"
    if len(number) != 12:
        return f"a BIN/IIN has 12 digits, this one has {len(number)}"
    expected = bin_iin_check_digit(number[:11])
    if expected is None:
        return "no BIN/IIN can start with these 11 digits (the check gives 10 twice): one of them is mistyped"
    if int(number[11]) != expected:
        return f"check digit is {number[11]}, expected {expected}: one of the digits was probably mistyped"
    return None


def _validate_voen(number: str) -> str | None:
    if not (number.isascii() and number.isdigit()) or len(number) != 10:
        return f"a VÖEN has 10 digits; got {number!r}"
    try:
        voen.validate(number)
    except InvalidComponent:
        return f"the last digit of a VÖEN is 1 (legal person) or 2 (natural person); found {number[-1]}"
    except InvalidChecksum:
        return "the VÖEN's check digit (the 9th) does not match the other digits: one of them is mistyped"
    except ValidationError as error:  # pragma: no cover - format checked above
        return f"not a valid VÖEN: {error}"
    return None


def _digits(name: str, length: int) -> Callable[[str], str | None]:
    def check(number: str) -> str | None:
        if number.isascii() and number.isdigit() and len(number) == length:
            return None
        return f"{name} has {length} digits; got {number!r} ({len(number)} characters)"

    return check


# Uzbek, Kyrgyz and Tajik numbers have no public checksum, so only their format is checked.
_TRADER_RULES: Final[MappingProxyType[str, Callable[[str], str | None]]] = MappingProxyType(
    {
        "KZ": validate_bin_iin,
        "AZ": _validate_voen,
        "UZ": _digits("an Uzbek STIR", 9),
        "KG": _digits("a Kyrgyz INN", 14),
        "TJ": _digits("a Tajik INN", 9),
    }
)
_GENERIC_TRADER_ID = re.compile(r"[A-Z0-9]{1,35}")


def validate_trader_id(country: str, trader_id: str) -> str | None:
    """None when `trader_id` is acceptable as the tax/business number of a trader registered in `country`.

    KZ BIN/IIN and AZ VÖEN are checksummed; UZ, KG, TJ are format checks. Other countries (Turkmenistan
    included: no format is on record) accept 1-35 capital letters or digits.
    """
    if not is_country(country):
        return f"{country!r} is not an ISO 3166-1 country code"
    rule = _TRADER_RULES.get(country)
    if rule is not None:
        return rule(trader_id)
    if _GENERIC_TRADER_ID.fullmatch(trader_id):
        return None
    return f"a trader id from {country_name(country)} is 1-35 capital letters or digits; got {trader_id!r}"


# --- vehicle plates -----------------------------------------------------------------------------------------

_PLATE_SEPARATORS: Final = frozenset(" -\u00a0\u2010\u2011\u2012\u2013\u2014\u2212\t")


def _is_cyrillic_letter(character: str) -> bool:
    return "\u0400" <= character <= "\u04ff" and character.isalpha()


def _plate_character_ok(character: str) -> bool:
    return "A" <= character <= "Z" or "0" <= character <= "9" or _is_cyrillic_letter(character)


def normalise_plate(plate: str) -> str:
    """Upper case, without spaces or dashes: "01 a 123-bc" → "01A123BC".

    Raises `InvalidCode` when the result has characters other than A-Z, Cyrillic letters and digits, or is not
    2-12 characters long.
    """
    normal = "".join(character for character in plate.upper() if character not in _PLATE_SEPARATORS)
    bad = sorted({character for character in normal if not _plate_character_ok(character)})
    if bad:
        shown = ", ".join(repr(character) for character in bad)
        raise InvalidCode(
            f"plate {plate!r} contains {shown}: only letters A-Z, Cyrillic letters and digits are allowed"
        )
    if not 2 <= len(normal) <= 12:
        raise InvalidCode(f"plate {plate!r} has {len(normal)} letters and digits, expected 2 to 12")
    return normal


# National formats as read left to right on a lorry's plate, separators removed. They describe the common
# current plates, not every series (trailers, diplomatic, military, old Soviet plates differ), so a mismatch
# is a warning for the clerk to look again, never a refusal.
_PLATE_PATTERNS: Final = MappingProxyType(
    {
        "KZ": ((r"[0-9]{3}[A-Z]{2,3}[0-9]{2}", "123ABC02 or 123AB02"),),
        "KG": ((r"[0-9]{5}[A-Z]{2,3}", "01123ABC"),),
        "UZ": ((r"[0-9]{2}[A-Z][0-9]{3}[A-Z]{2}", "01A123BC"), (r"[0-9]{5}[A-Z]{3}", "01123ABC")),
        "TJ": ((r"[0-9]{4}[A-Z]{2}[0-9]{2}", "1234AB01"),),
        "TM": ((r"[A-Z]{2}[0-9]{4}[A-Z]{2}", "AB1234AG"),),
        "AZ": ((r"[0-9]{2}[A-Z]{2}[0-9]{3}", "10AB123"),),
    }
)


# Cyrillic capitals that look like Latin ones, written as escapes so the source shows which is which.
_LOOK_ALIKES: Final = ", ".join("\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425")


def plate_warnings(country: str, plate: str) -> list[str]:
    """Things a clerk should look at twice about a plate registered in `country`; empty when it looks usual.

    The plate is normalised first, so an unusable plate raises `InvalidCode` rather than warning.
    """
    normal = normalise_plate(plate)
    if not is_country(country):
        return [f"{country!r} is not an ISO 3166-1 country code: the plate's country could not be checked"]
    patterns = _PLATE_PATTERNS.get(country)
    if patterns is None:
        return []
    warnings: list[str] = []
    cyrillic = sorted({character for character in normal if _is_cyrillic_letter(character)})
    if cyrillic and country in CORRIDOR_COUNTRIES:
        warnings.append(
            f"plate {normal} has Cyrillic letters ({', '.join(cyrillic)}); plates of {country_name(country)} "
            "use Latin letters: retype look-alikes such as " + _LOOK_ALIKES + " in Latin"
        )
    if not any(re.fullmatch(pattern, normal) for pattern, _ in patterns):
        examples = " or ".join(example for _, example in patterns)
        warnings.append(
            f"plate {normal} does not look like a plate of {country_name(country)} (usually like "
            f"{examples}); check the plate and its country (trailer and special series differ)"
        )
    return warnings
