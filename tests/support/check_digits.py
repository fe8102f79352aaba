"""The ISO 6346 arithmetic written out independently of the code under test, and generators of valid numbers:
shared by the check-digit properties (tests/codes) and the hostile-input fuzz (tests/fuzz)."""

from __future__ import annotations

import string

from hypothesis import strategies as st
from stdnum import iso6346

from transit_window.codes import CORRIDOR_COUNTRIES, NEIGHBOUR_COUNTRIES, generate_mrn
from transit_window.codes.identifiers import TRANSIT_PROCEDURES

ALPHANUMERIC = string.digits + string.ascii_uppercase


def letter_value(character: str) -> int:
    """Letter values as transit.md lists them: A=10, B=12 ... K=21, L=23 ... U=32, V=34 ... Z=38."""
    if character.isdigit():
        return int(character)
    value = 10
    for letter in string.ascii_uppercase:
        if value % 11 == 0:
            value += 1
        if letter == character:
            return value
        value += 1
    raise AssertionError(character)


def remainder(text: str) -> int:
    return sum(letter_value(character) << index for index, character in enumerate(text)) % 11


def reference_digit(text: str) -> str:
    return str(remainder(text) % 10)


@st.composite
def mrns(draw: st.DrawFn) -> str:
    office_part = draw(st.text(alphabet=ALPHANUMERIC, max_size=11))
    return generate_mrn(
        year=draw(st.integers(0, 99)),
        country=draw(st.sampled_from(CORRIDOR_COUNTRIES + NEIGHBOUR_COUNTRIES)),
        office_part=office_part,
        serial=draw(st.integers(0, 10 ** (12 - len(office_part)) - 1)),
        procedure=draw(st.sampled_from(sorted(TRANSIT_PROCEDURES))),
    )


@st.composite
def containers(draw: st.DrawFn) -> str:
    owner = draw(st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=3))
    category = draw(st.sampled_from("UJZR"))
    serial = draw(st.text(alphabet=string.digits, min_size=6, max_size=6))
    first10 = owner + category + serial
    return first10 + iso6346.calc_check_digit(first10)
