"""Countries and currencies of the Digital Transit Corridor.

Owns the list of corridor countries and the neighbours that appear on its routes, lookups of ISO 3166-1
alpha-2 country codes and ISO 4217 currency codes (both through pycountry), and the minor units of currencies.
Codes are accepted only in their canonical upper-case form: normalising what a clerk typed is for the caller.
"""

from __future__ import annotations

import functools
from decimal import ROUND_DOWN, Decimal
from importlib import resources
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo

import pycountry

from transit_window.codes._errors import InvalidCode

CORRIDOR_COUNTRIES: Final[tuple[str, ...]] = ("KZ", "KG", "UZ", "TJ", "TM", "AZ")
"""Members of the corridor, in route order from east to west."""

NEIGHBOUR_COUNTRIES: Final[tuple[str, ...]] = ("CN", "GE", "TR", "RU", "AF")
"""Countries outside the corridor that its routes start in, end in or cross into."""

NATIONAL_CURRENCIES: Final = MappingProxyType(
    {"KZ": "KZT", "KG": "KGS", "UZ": "UZS", "TJ": "TJS", "TM": "TMT", "AZ": "AZN"}
)

TIME_ZONES: Final = MappingProxyType(
    {
        "KZ": "Asia/Almaty",  # all of Kazakhstan on UTC+5 since March 2024 (tzdata 2024a)
        "KG": "Asia/Bishkek",
        "UZ": "Asia/Tashkent",
        "TJ": "Asia/Dushanbe",
        "TM": "Asia/Ashgabat",
        "AZ": "Asia/Baku",
        "CN": "Asia/Shanghai",
        "GE": "Asia/Tbilisi",
        "TR": "Europe/Istanbul",
        "RU": "Europe/Moscow",
        "AF": "Asia/Kabul",
    }
)
"""The civil time zone (IANA) of each country the corridor's calendars are kept in: a permit of Uzbekistan valid
"until 31 December" ends at midnight in Tashkent, and a quota year begins there at midnight too."""

# pycountry carries ISO 4217 codes and names but not the "minor unit" column, so the exponents live here, by
# hand, for the corridor's currencies and those its guarantees and invoices are commonly written in. Values
# are those of the ISO 4217 list; a currency missing here is refused by `currency_exponent`, never guessed.
_MINOR_UNITS: Final = MappingProxyType(
    {
        # corridor
        "KZT": 2,
        "KGS": 2,
        "UZS": 2,
        "TJS": 2,
        "TMT": 2,
        "AZN": 2,
        # neighbours and trading partners
        "CNY": 2,
        "RUB": 2,
        "TRY": 2,
        "GEL": 2,
        "AFN": 2,
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "CHF": 2,
        "AED": 2,
        "INR": 2,
        "IRR": 2,
        "BYN": 2,
        "PKR": 2,
        "JPY": 0,
        "KRW": 0,
        "KWD": 3,
        "BHD": 3,
        "OMR": 3,
    }
)


def _is_alpha(code: str, length: int) -> bool:
    return len(code) == length and code.isascii() and code.isalpha() and code.isupper()


def is_country(code: str) -> bool:
    """True for an upper-case ISO 3166-1 alpha-2 code that pycountry knows ("KZ"; not "kz", not "XX")."""
    return _is_alpha(code, 2) and pycountry.countries.get(alpha_2=code) is not None


def is_corridor_country(code: str) -> bool:
    return code in CORRIDOR_COUNTRIES


def country_name(code: str) -> str:
    """The English short name ("Kyrgyzstan", "Türkiye"); raises `InvalidCode` for an unknown code."""
    country = pycountry.countries.get(alpha_2=code) if _is_alpha(code, 2) else None
    if country is None:
        raise InvalidCode(f"{code!r} is not an ISO 3166-1 country code: use two capital letters, e.g. KZ, UZ, AZ")
    common: str | None = getattr(country, "common_name", None)
    return common or str(country.name)


def is_currency(code: str) -> bool:
    """True for an upper-case ISO 4217 alphabetic code that pycountry knows ("KZT")."""
    return _is_alpha(code, 3) and pycountry.currencies.get(alpha_3=code) is not None


def currency_exponent(code: str) -> int:
    """Number of decimal places of the currency's minor unit (KZT 2, JPY 0, KWD 3).

    Raises `InvalidCode` for a code that is not a currency, or a currency this table does not cover yet.
    """
    if not is_currency(code):
        raise InvalidCode(f"{code!r} is not an ISO 4217 currency code: use three capital letters, e.g. KZT, USD")
    try:
        return _MINOR_UNITS[code]
    except KeyError:
        raise InvalidCode(
            f"currency {code} is valid but its minor unit is not in the corridor's table; "
            "ask the operator to add it or declare the amount in another currency"
        ) from None


def amount_text(amount: Decimal, currency: str) -> str:
    """`amount` as the API writes money: a decimal string with exactly the decimals of the currency's minor unit
    ("12000.00" USD, "5000" JPY, "1000.125" KWD), never a float. Input is checked first (`decimals_beyond`), so
    nothing is rounded here (were it, half to even); an amount in a currency the table lacks (only a peer's record
    could hold one) is written as it is, since an answer is no place to refuse it."""
    exponent = _MINOR_UNITS.get(currency)
    if exponent is None:
        return format(amount, "f")
    return format(amount.quantize(Decimal(1).scaleb(-exponent)), "f")


def decimals_beyond(amount: Decimal, currency: str) -> str | None:
    """Why `amount` cannot be an amount of `currency` — it is not a whole number of the currency's minor unit
    ("100.125 has 3 decimals; USD has 2"; trailing zeros are no decimals) — or None. Raises `InvalidCode` as
    `currency_exponent` does."""
    exponent = currency_exponent(currency)
    if amount == amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_DOWN):
        return None
    places = -int(amount.normalize().as_tuple().exponent)
    return f"{amount} has {places} decimals; {currency} has {exponent}"


def national_currency(country: str) -> str:
    """The currency of a corridor country ("UZ" → "UZS")."""
    try:
        return NATIONAL_CURRENCIES[country]
    except KeyError:
        raise InvalidCode(
            f"{country!r} is not a corridor country; expected one of {', '.join(CORRIDOR_COUNTRIES)}"
        ) from None


@functools.cache
def time_zone(country: str) -> ZoneInfo:
    """The zone a country's dates are kept in ("UZ" → Asia/Tashkent); raises `InvalidCode` for a country the corridor
    keeps no calendar for.

    Read from the `tzdata` package pinned with the project, not the host's tz database: zoneinfo prefers the host's,
    and one older than 2024a still puts Almaty at UTC+6, which would silently move every Kazakh permit's midnight. The
    corridor's calendars must not depend on how current a server's system packages are."""
    try:
        key = TIME_ZONES[country]
    except KeyError:
        raise InvalidCode(f"{country!r} has no time zone in the corridor's reference data") from None
    with resources.files("tzdata").joinpath("zoneinfo", *key.split("/")).open("rb") as data:
        return ZoneInfo.from_file(data, key=key)
