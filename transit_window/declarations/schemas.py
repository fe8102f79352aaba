"""Request and response bodies of the declaration and movement API. Strict on the way in (`extra="forbid"`,
bounded sizes); the semantic rules that need reference data live in `validation.py`."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from transit_window import clock
from transit_window.api.pagination import Page
from transit_window.codes import amount_text
from transit_window.dates import CorridorDate, CorridorDatetime
from transit_window.fields import Country, Party, Text35, Text512
from transit_window.text import Printable

Remarks = Annotated[str, StringConstraints(max_length=512), Printable]
OfficeRef = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[A-Z0-9]{6}$")]
# A JSON number or a decimal string; at most 3 decimals (KWD, BHD, OMR: no currency has more), and whether the
# currency has that many is a rule of `validation.check_amount`. 15 digits: every such decimal survives SQLite, which
# keeps NUMERIC columns as binary floating point, exactly.
Money = Annotated[
    Decimal,
    Field(
        gt=0,
        max_digits=15,
        decimal_places=3,
        description="A JSON number or a decimal string, with no more decimals than the currency's ISO 4217 minor "
        "unit (USD 2, JPY 0, KWD 3); answers write it as a string with exactly that many",
    ),
]
AmountText = Annotated[
    str,
    Field(
        pattern=r"^-?[0-9]+(\.[0-9]{1,3})?$",
        description="A decimal string with exactly the decimals of the currency's ISO 4217 minor unit: 12000.00 USD, "
        "5000 JPY, 1000.125 KWD",
        examples=["12000.00"],
    ),
]
Mass = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=3)]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
# A step's time: a border post or the destination records what happens as it happens, so "now" is the usual value.
WHEN = (
    "When it happened (RFC 3339 with an offset); now when left out. Not in the future, nor before the step it follows."
)


class Vehicle(BaseModel):
    model_config = _STRICT

    plate: Annotated[str, StringConstraints(min_length=2, max_length=20), Printable]
    country: Country
    trailer_plate: Annotated[str, StringConstraints(min_length=2, max_length=20), Printable] | None = None


class GoodsItem(BaseModel):
    model_config = _STRICT

    hs_code: Annotated[str, StringConstraints(max_length=10), Printable] = Field(description="HS 2022, six digits")
    description: Text512
    packages: Annotated[int, Field(ge=1, le=1_000_000)]
    package_type: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}$")] = "PK"
    gross_mass_kg: Mass
    net_mass_kg: Mass
    value: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


AccessCode = Annotated[str, StringConstraints(min_length=1, max_length=64), Printable]


class GuaranteeRef(BaseModel):
    model_config = _STRICT

    grn: Annotated[str, StringConstraints(max_length=24), Printable]
    amount: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    access_code: AccessCode | None = Field(
        default=None,
        description="The access code the guarantee's holder gave this declarant (`POST /v1/guarantees/{grn}/"
        "authorisations`); needed when the declarant is not the holder. Never stored or shared along the route.",
    )


class DocumentRef(BaseModel):
    model_config = _STRICT

    type: Literal["phytosanitary", "veterinary", "origin", "permit", "invoice", "cmr", "other"]
    number: Text35
    country: Country


class DeclarationIn(BaseModel):
    """A transit declaration (NCTS IE015), lodged by a customs system at its office of departure."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "declarant": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
                    "consignor": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
                    "consignee": {"id": "1400057701", "name": "Baku Fresh Market LLC", "country": "AZ"},
                    "carrier": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
                    "vehicle": {"plate": "123ABC02", "country": "KZ", "trailer_plate": "45TRL02"},
                    "containers": ["CSQU3054383"],
                    "seals": ["KZ-SEAL-000731"],
                    "goods": [
                        {
                            "hs_code": "080810",
                            "description": "Fresh apples, Aport variety, in cartons",
                            "packages": 1400,
                            "package_type": "CT",
                            "gross_mass_kg": "19600.000",
                            "net_mass_kg": "18200.000",
                            "value": "23660.00",
                            "currency": "USD",
                        }
                    ],
                    "itinerary": [
                        "KZALA001",
                        "KZZHZ001",
                        "UZGIS001",
                        "UZALT001",
                        "TMFAR001",
                        "TMKRW001",
                        "AZALA001",
                        "AZBAK001",
                    ],
                    "guarantee": {"grn": "26KZ0000000001234", "amount": "5000.00", "currency": "USD"},
                    "documents": [{"type": "phytosanitary", "number": "KZ-PHY-2026-004417", "country": "KZ"}],
                }
            ]
        },
    )

    declarant: Party
    consignor: Party
    consignee: Party
    carrier: Party
    vehicle: Vehicle
    containers: Annotated[list[Annotated[str, StringConstraints(max_length=11), Printable]], Field(max_length=20)] = []
    seals: Annotated[list[Text35], Field(max_length=99)] = []
    goods: Annotated[list[GoodsItem], Field(min_length=1, max_length=999)]
    itinerary: Annotated[list[OfficeRef], Field(min_length=2, max_length=20)] = Field(
        description="Ordered customs offices: departure, the border posts (exit and entry), destination."
    )
    guarantee: GuaranteeRef
    documents: Annotated[list[DocumentRef], Field(max_length=99)] = []
    limit_date: CorridorDate | None = Field(
        default=None,
        description="Date by which the goods must be presented at destination (at most 90 days ahead). Left out, the "
        "office of departure sets it from the itinerary: the day the truck is due at destination at the expected "
        "speed with the crossing grace (`TW_EXPECTED_SPEED_KMH`, `TW_CROSSING_GRACE_MINUTES`), in the destination's "
        "calendar, and one day more to present the goods.",
    )


def with_amounts_shown(record: dict[str, Any]) -> dict[str, Any]:
    """A declaration record (as stored here, or as a peer sent it) with its money written as the API writes money
    (`codes.amount_text`): the guarantee's amount and each goods item's value, in their currencies' decimals."""

    def shown(part: object, field: str) -> object:
        if not isinstance(part, dict) or not isinstance(part.get("currency"), str):
            return part
        try:
            amount = Decimal(str(part[field]))
        except (KeyError, ArithmeticError):
            return part
        return {**part, field: amount_text(amount, part["currency"])}

    result = dict(record)
    if "guarantee" in result:
        result["guarantee"] = shown(result["guarantee"], "amount")
    if isinstance(result.get("goods"), list):
        result["goods"] = [shown(item, "value") for item in result["goods"]]
    return result


class Step(BaseModel):
    kind: str
    office: str
    country: str
    at: datetime
    signed_by: str
    envelope_id: str | None
    details: dict[str, object]


class MovementOut(BaseModel):
    mrn: str
    status: str
    role: Literal["departure", "route"]
    departure_office: str
    destination_office: str
    countries: list[str]
    itinerary: list[str]
    limit_date: date
    declaration: dict[str, object]
    journey: list[Step]
    tracking_code: str | None = Field(
        default=None, description="Public tracking code for the declarant (issued at release, by the departure node)"
    )
    created_at: datetime
    updated_at: datetime


class DeclarationAccepted(BaseModel):
    mrn: str
    status: str


class MovementPage(Page[MovementOut]):
    pass


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "truck broke down"}]})

    reason: Text512


class CrossingIn(BaseModel):
    """A border post records the goods passing (NCTS IE118)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"office": "UZGIS001", "direction": "entry", "seals_intact": True}]},
    )

    office: OfficeRef
    direction: Literal["exit", "entry"]
    at: CorridorDatetime = Field(default_factory=clock.utcnow, description=WHEN)
    seals_intact: bool = True
    remarks: Remarks = ""


class ArrivalIn(BaseModel):
    """The office of destination records arrival (NCTS IE006)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"office": "AZBAK001", "remarks": "unloaded at bay 4"}]}
    )

    office: OfficeRef
    at: CorridorDatetime = Field(default_factory=clock.utcnow, description=WHEN)
    remarks: Remarks = ""


class ControlResultsIn(BaseModel):
    """Control results at destination (NCTS IE018): A1 satisfactory, A2 considered satisfactory, B1 not
    satisfactory (with discrepancies)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"code": "A1"}]})

    code: Literal["A1", "A2", "B1"]
    at: CorridorDatetime = Field(default_factory=clock.utcnow, description=WHEN)
    discrepancies: Annotated[list[Text512], Field(max_length=50)] = []


class StepAccepted(BaseModel):
    mrn: str
    status: str
    step: str
    pending: bool = Field(default=False, description="True when kept until the movement's record arrives.")


class GuaranteeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "grn": "26KZ0000000001234",
                    "holder_id": "230340000126",
                    "reference_amount": "25000.00",
                    "currency": "USD",
                }
            ]
        },
    )

    grn: Annotated[str, StringConstraints(max_length=24), Printable]
    holder_id: Text35 = Field(description="The holder's trader id, checked as declarations check party ids.")
    holder_country: Country | None = Field(
        default=None, description="Where the holder is registered (default: this node's country)."
    )
    reference_amount: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class GuaranteeOut(BaseModel):
    grn: str
    holder_id: str
    holder_country: str
    reference_amount: AmountText
    reserved: AmountText
    available: AmountText
    currency: str


class StatusRequested(BaseModel):
    mrn: str
    asked: list[str] = Field(description="Countries asked; their answers are merged into the journey as they arrive.")


class AuthorisationIn(BaseModel):
    """The holder lets a declarant use its guarantee (NCTS: the guarantee access code)."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"declarant_id": "990140000385", "declarant_country": "KZ"}]},
    )

    declarant_id: Text35
    declarant_country: Country | None = Field(default=None, description="Default: the holder's country.")


class AuthorisationOut(BaseModel):
    id: str
    grn: str
    declarant_id: str
    declarant_country: str
    created_at: datetime
    revoked_at: datetime | None


class AuthorisationCreated(AuthorisationOut):
    access_code: str = Field(
        description="Shown only now (stored as a hash): the declarant quotes it as `guarantee.access_code` in each "
        "declaration naming this guarantee."
    )


class AuthorisationPage(Page[AuthorisationOut]):
    """Authorisations in force, oldest first."""
