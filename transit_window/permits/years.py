"""Quota years in each issuer's own calendar.

A permit belongs to the quota year it starts in. It is valid until the end of the last day asked for, but never past the
end of its year, which is 31 December or, where the rules file grants one (`year_end` in `codes/permit_rules.json`), a
grace day of the next year (31 January for bilateral and transit permits in the bundled rules; none for multilateral
ones). Next year's quotas, and applications for next year's permits, are accepted from the rule's opening day (1
December by default). Every day here is a day of the issuer's calendar: "today" and "31 December" in Tashkent end at
midnight in Tashkent (`codes.countries.TIME_ZONES`), and are turned into UTC instants only at the edge (`start_of`),
which is what a permit's signed `nbf`/`exp` carry. The one day that is not the issuer's is the first: an application's
`valid_from` is a day of the carrier's calendar, and a permit starts with that day in the carrier's country or the
issuer's, whichever comes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from transit_window import clock
from transit_window.codes import time_zone
from transit_window.codes.permit_rules import PermitRules, QuotaKind, YearEndRule

QuotaChoice = QuotaKind | None  # None: not known yet (an application; the issuer draws partner, then multilateral)


def _day(year: int, month_day: str) -> date:
    month, day = (int(part) for part in month_day.split("-"))
    if (month, day) == (2, 29) and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        day = 28
    return date(year, month, day)


def local_today(country: str, now: datetime | None = None) -> date:
    return (now or clock.utcnow()).astimezone(time_zone(country)).date()


def start_of(country: str, day: date) -> datetime:
    """Midnight at the start of `day` in `country`, as a UTC instant."""
    return datetime.combine(day, time(0), tzinfo=time_zone(country)).astimezone(UTC)


def local_text(country: str, moment: datetime) -> str:
    """'2027-02-01 00:00 Asia/Tashkent (UTC+05:00)': how a clerk in that country reads an instant."""
    zone = time_zone(country)
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {zone.key} (UTC{offset[:3]}:{offset[3:]})"


@dataclass(frozen=True, slots=True)
class YearTerms:
    """What the rules say of quota year `year` for one issuer, permit type and kind of quota."""

    issuer: str
    type: str
    year: int
    last_day: date  # the last local day on which a permit of this year is valid
    opens_on: date  # the local day (in year - 1) from which this year's quotas and applications are accepted
    rule: YearEndRule

    @property
    def zone(self) -> ZoneInfo:
        return time_zone(self.issuer)

    @property
    def ends_at(self) -> datetime:
        return start_of(self.issuer, self.last_day + timedelta(days=1))

    def validity(self) -> str:
        grace = "" if self.last_day.year == self.year else " (its grace into the next year)"
        return (
            f"{self.year} {self.type} permits of {self.issuer} are valid until the end of {self.last_day}{grace} in "
            f"{self.zone.key}: {self.rule.reason}"
        )


class PermitYears:
    def __init__(self, rules: PermitRules) -> None:
        self.rules = rules

    def terms(self, *, issuer: str, type: str, year: int, quota: QuotaChoice) -> YearTerms:
        """With `quota=None`, the most an application may ask: the later end and the earlier opening of the two
        kinds, since the issuer decides which quota it draws."""
        if quota is None:
            partner = self.terms(issuer=issuer, type=type, year=year, quota="partner")
            multilateral = self.terms(issuer=issuer, type=type, year=year, quota="multilateral")
            longest = max(partner, multilateral, key=lambda terms: terms.last_day)
            return YearTerms(
                issuer=issuer,
                type=type,
                year=year,
                last_day=longest.last_day,
                opens_on=min(partner.opens_on, multilateral.opens_on),
                rule=longest.rule,
            )
        rule = self.rules.year_end(issuer=issuer, type=type, quota=quota)
        grace = rule.valid_into_next_year_until
        return YearTerms(
            issuer=issuer,
            type=type,
            year=year,
            last_day=_day(year + 1, grace) if grace else date(year, 12, 31),
            opens_on=_day(year - 1, rule.next_year_opens),
            rule=rule,
        )

    def open_years(self, *, issuer: str, type: str, quota: QuotaChoice, now: datetime | None = None) -> list[int]:
        """The quota years `issuer` grants and issues for today: its current year, and the next once it has opened."""
        today = local_today(issuer, now)
        following = self.terms(issuer=issuer, type=type, year=today.year + 1, quota=quota)
        return [today.year, today.year + 1] if today >= following.opens_on else [today.year]

    def why_closed(self, *, issuer: str, type: str, year: int, quota: QuotaChoice, now: datetime | None = None) -> str:
        """Why year `year` takes no quota or application at `issuer` today, naming the rule and the dates; '' when
        it does."""
        today = local_today(issuer, now)
        zone = time_zone(issuer).key
        terms = self.terms(issuer=issuer, type=type, year=year, quota=quota)
        if year == today.year or (year == today.year + 1 and today >= terms.opens_on):
            return ""
        if year < today.year:
            return (
                f"quota year {year} of {issuer} is over (today is {today} in {zone}): permits start in the year of "
                f"their quota, so ask for {today.year}"
            )
        return (
            f"{type} permits of {issuer} for {year} are granted and applied for from {terms.opens_on} in {zone} "
            f"(today is {today}): next year's quotas open on {terms.rule.next_year_opens} (MM-DD) of the year before"
            + ("" if year == today.year + 1 else f", and {year} is more than a year ahead")
        )
