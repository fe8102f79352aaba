"""Countries and currencies of the corridor, as a clerk filling in a declaration meets them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from transit_window.codes import (
    CORRIDOR_COUNTRIES,
    NEIGHBOUR_COUNTRIES,
    InvalidCode,
    amount_text,
    country_name,
    currency_exponent,
    decimals_beyond,
    is_corridor_country,
    is_country,
    is_currency,
    national_currency,
)


def test_every_corridor_country_and_neighbour_is_known_to_iso_3166() -> None:
    assert set(CORRIDOR_COUNTRIES) == {"KZ", "KG", "UZ", "TJ", "TM", "AZ"}
    assert set(NEIGHBOUR_COUNTRIES) == {"CN", "GE", "TR", "RU", "AF"}
    for code in CORRIDOR_COUNTRIES + NEIGHBOUR_COUNTRIES:
        assert is_country(code), code


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("KZ", "Kazakhstan"),
        ("KG", "Kyrgyzstan"),
        ("UZ", "Uzbekistan"),
        ("TJ", "Tajikistan"),
        ("TR", "Türkiye"),
    ],
)
def test_country_names_come_from_pycountry(code: str, name: str) -> None:
    assert country_name(code) == name


@pytest.mark.parametrize("code", ["kz", "XX", "KAZ", "", "K1"])
def test_codes_that_are_not_countries_are_refused(code: str) -> None:
    assert not is_country(code)
    with pytest.raises(InvalidCode, match="ISO 3166-1"):
        country_name(code)


def test_only_the_six_members_are_corridor_countries() -> None:
    assert is_corridor_country("TM")
    assert not is_corridor_country("CN")


def test_national_currencies_are_iso_4217_with_two_decimals() -> None:
    for country in CORRIDOR_COUNTRIES:
        currency = national_currency(country)
        assert is_currency(currency)
        assert currency_exponent(currency) == 2
    assert national_currency("UZ") == "UZS"
    with pytest.raises(InvalidCode, match="not a corridor country"):
        national_currency("CN")


@pytest.mark.parametrize(("code", "exponent"), [("USD", 2), ("EUR", 2), ("CNY", 2), ("JPY", 0), ("KWD", 3)])
def test_minor_units(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "text", "refused"),
    [
        ("12000", "USD", "12000.00", None),
        ("7.5", "EUR", "7.50", None),
        ("2500000.10", "KZT", "2500000.10", None),
        ("100.125", "USD", "100.12", "100.125 has 3 decimals; USD has 2"),  # refused on input; half to even
        ("5000", "JPY", "5000", None),
        ("5000.00", "JPY", "5000", None),  # trailing zeros are no decimals
        ("5000.5", "JPY", "5000", "5000.5 has 1 decimals; JPY has 0"),
        ("1000.125", "KWD", "1000.125", None),
        ("1E+3", "TMT", "1000.00", None),
    ],
)
def test_amounts_are_written_with_their_currencys_minor_unit(
    amount: str, currency: str, text: str, refused: str | None
) -> None:
    assert amount_text(Decimal(amount), currency) == text
    assert decimals_beyond(Decimal(amount), currency) == refused


def test_an_unknown_currency_is_refused_and_a_real_one_outside_the_table_is_not_guessed() -> None:
    assert not is_currency("XYZ")
    assert not is_currency("usd")
    with pytest.raises(InvalidCode, match="not an ISO 4217 currency code"):
        currency_exponent("XYZ")
    assert is_currency("MXN")
    with pytest.raises(InvalidCode, match="minor unit is not in the corridor's table"):
        currency_exponent("MXN")


def test_each_corridor_country_keeps_its_calendar_in_the_pinned_tz_database() -> None:
    """Kazakhstan moved to UTC+5 in March 2024 (tzdata 2024a): the zones come from the `tzdata` package pinned with
    the project, so a host with an older system tz database cannot move a Kazakh permit's midnight."""
    from datetime import datetime

    from transit_window.codes import TIME_ZONES, time_zone

    offsets = {
        country: datetime(2025, 6, 1, 12, tzinfo=time_zone(country)).utcoffset() for country in CORRIDOR_COUNTRIES
    }
    assert {country: int(offset.total_seconds() // 3600) for country, offset in offsets.items() if offset} == {
        "KZ": 5,
        "KG": 6,
        "UZ": 5,
        "TJ": 5,
        "TM": 5,
        "AZ": 4,
    }
    assert all(time_zone(country).key == TIME_ZONES[country] for country in CORRIDOR_COUNTRIES)
    with pytest.raises(InvalidCode):
        time_zone("XX")
