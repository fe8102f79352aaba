"""Which permit a carrier needs in which country, as data: the bundled `permit_rules.json` (the reference facts) or an
operator's file (`TW_PERMIT_RULES_FILE`, same schema) that replaces it. Also destination-specific certificate rules
(the HS chapter rules are in `codes/hs.json`).

The file also says how a quota year ends (`year_end`): per issuer, permit type and kind of quota, how long a year-Y
permit stays valid into Y+1 and from which day of Y next year's quotas are granted and applied for. `years.py` reads
those rules in each issuer's own calendar.

The permit type follows from where the country sits on the route, as in bilateral road agreements: the carrier's own
country needs nothing; a country where the trip starts or ends needs a bilateral permit when the other end is the
carrier's country and a third-country permit otherwise; a country only crossed needs a transit permit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

PermitType = Literal["bilateral", "transit", "third-country", "return-load"]
PERMIT_TYPES: tuple[PermitType, ...] = ("bilateral", "transit", "third-country", "return-load")
TYPE_CODES: dict[str, int] = {"bilateral": 1, "transit": 2, "third-country": 3, "return-load": 4}  # as in e-permit ids
CertificateType = Literal["phytosanitary", "veterinary", "origin"]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
_BUNDLED = Path(__file__).with_name("permit_rules.json")


def _month_day(value: str) -> str:
    month, day = (int(part) for part in value.split("-"))
    try:
        date(2000, month, day)  # a leap year, so 02-29 is a day; years without one end it on 02-28
    except ValueError:
        raise ValueError(f"{value} is not a day of the year (MM-DD)") from None
    return value


MonthDay = Annotated[str, Field(pattern=r"^[0-9]{2}-[0-9]{2}$"), AfterValidator(_month_day)]
QuotaKind = Literal["partner", "multilateral"]


class Exemption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    territory: Country
    carrier: Country
    types: tuple[PermitType, ...] = Field(min_length=1)
    reason: str = Field(min_length=1)


class DocumentRule(BaseModel):
    """A certificate a destination asks for beyond the HS chapter rules, e.g. origin for some chapters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    destination: Country
    first_chapter: Annotated[str, Field(pattern=r"^[0-9]{2}$")]
    last_chapter: Annotated[str, Field(pattern=r"^[0-9]{2}$")]
    certificate: CertificateType
    reason: str = Field(min_length=1)

    def applies(self, *, destination: str, hs_code: str) -> bool:
        return destination == self.destination and self.first_chapter <= hs_code[:2] <= self.last_chapter


class YearEndRule(BaseModel):
    """How a quota year ends for the permits it matches. The first matching rule of the file applies; with none, a
    year-Y permit ends with 31 December and year Y+1 opens on 1 December (`DEFAULT_YEAR_END`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: Annotated[str, Field(pattern=r"^([A-Z]{2}|\*)$")] = "*"
    types: tuple[PermitType, ...] = Field(default=PERMIT_TYPES, min_length=1)
    quota: QuotaKind | Literal["any"] = "any"
    valid_into_next_year_until: MonthDay | None = Field(
        default=None, description="Last day (MM-DD) of year Y+1 on which a year-Y permit is still valid; none: 31 Dec."
    )
    next_year_opens: MonthDay = Field(
        default="12-01", description="Day (MM-DD) of year Y from which quotas for Y+1 are granted and applied for."
    )
    reason: str = Field(min_length=1)

    def applies(self, *, issuer: str, type: str, quota: QuotaKind) -> bool:
        return self.issuer in ("*", issuer) and type in self.types and self.quota in ("any", quota)


DEFAULT_YEAR_END = YearEndRule(reason="a permit is valid for the calendar year of its quota")


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = ""
    exemptions: list[Exemption] = []
    document_rules: list[DocumentRule] = []
    year_end_source: str = ""
    year_end: list[YearEndRule] = []


@dataclass(frozen=True, slots=True)
class Need:
    """What one country on a route asks of a carrier: a permit of `type`, or nothing and why."""

    country: str
    type: PermitType
    required: bool
    reason: str


class PermitRules:
    def __init__(self, data: RulesFile) -> None:
        self.data = data

    @classmethod
    def load(cls, path: Path | None = None) -> PermitRules:
        return cls(RulesFile.model_validate_json((path or _BUNDLED).read_bytes()))

    def trip_type(self, *, country: str, carrier_country: str, route: list[str]) -> PermitType:
        if country in (route[0], route[-1]):
            other = route[-1] if country == route[0] else route[0]
            return "bilateral" if other == carrier_country else "third-country"
        return "transit"

    def needs(self, *, carrier_country: str, route: list[str]) -> list[Need]:
        """One `Need` per country of the route other than the carrier's, in route order."""
        result = []
        for country in dict.fromkeys(route):
            if country == carrier_country:
                continue
            permit_type = self.trip_type(country=country, carrier_country=carrier_country, route=route)
            exemption = next(
                (
                    rule
                    for rule in self.data.exemptions
                    if rule.territory == country and rule.carrier == carrier_country and permit_type in rule.types
                ),
                None,
            )
            if exemption is None:
                reason = f"{country} asks carriers of {carrier_country} for a {permit_type} permit"
                result.append(Need(country=country, type=permit_type, required=True, reason=reason))
            else:
                result.append(Need(country=country, type=permit_type, required=False, reason=exemption.reason))
        return result

    def year_end(self, *, issuer: str, type: str, quota: QuotaKind) -> YearEndRule:
        return next(
            (rule for rule in self.data.year_end if rule.applies(issuer=issuer, type=type, quota=quota)),
            DEFAULT_YEAR_END,
        )

    def certificates_for(self, *, destination: str, hs_code: str) -> list[DocumentRule]:
        return [rule for rule in self.data.document_rules if rule.applies(destination=destination, hs_code=hs_code)]


@lru_cache(maxsize=4)
def permit_rules(path: str | None = None) -> PermitRules:
    return PermitRules.load(Path(path) if path else None)
