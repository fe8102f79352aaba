"""Dates for fixtures, computed the way the node computes them, so no test depends on the day it runs: "today" and
the quota year are the carrier's (or issuer's) own calendar (`permits/years.py`), and limit dates count from there.
A permit application without `valid_until` lasts as long as each issuer's quota year allows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from transit_window.permits.years import local_today


def today(country: str = "KZ") -> date:
    return local_today(country)


def quota_year(holder: str = "KZ") -> int:
    """The year of the quota the holder's carriers draw on when they apply today."""
    return local_today(holder).year


def limit_date(days: int, country: str = "KZ") -> str:
    return (local_today(country) + timedelta(days=days)).isoformat()


def at(day: date, hour: int, minute: int, zone: str) -> datetime:
    """A wall-clock time in `zone`, as a UTC instant."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def next_leap_day(after: int) -> date:
    year = after + 1
    while not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        year += 1
    return date(year, 2, 29)


THIS_YEAR = datetime.now(UTC).astimezone(ZoneInfo("Asia/Almaty")).year

YEAR_END_INSTANTS = {
    "dec-20": at(date(THIS_YEAR, 12, 20), 10, 0, "Asia/Almaty"),
    "dec-31-23h30-tashkent": at(date(THIS_YEAR, 12, 31), 23, 30, "Asia/Tashkent"),
    "jan-01-00h30-almaty": at(date(THIS_YEAR + 1, 1, 1), 0, 30, "Asia/Almaty"),
    "jan-31": at(date(THIS_YEAR + 1, 1, 31), 12, 0, "Asia/Almaty"),
    "leap-day": at(next_leap_day(THIS_YEAR), 12, 0, "Asia/Almaty"),
}
"""The days the calendar is tested on, in this year's terms (Y = this year): 20 December (the demo's limit date runs
into January), 23:30 on 31 December in Tashkent (Bishkek is already in Y+1), 00:30 on 1 January in Almaty (Baku is
still in Y), 31 January (the last day of the bilateral and transit grace) and the next leap day."""
