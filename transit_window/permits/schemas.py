"""Request and response bodies of the permit API. Strict on the way in; rules that need data are in `service.py`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from transit_window.api.pagination import Page
from transit_window.codes.permit_rules import PermitType
from transit_window.dates import CorridorDate, CorridorDatetime
from transit_window.fields import Text35, Text70
from transit_window.text import Printable

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
PlateText = Annotated[str, StringConstraints(min_length=2, max_length=20), Printable]


class QuotaIn(BaseModel):
    """A yearly quota this node's country grants a partner: `holder` is the partner, or `*` for every member."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"holder": "KZ", "type": "transit", "quantity": 500}]},
    )

    holder: Annotated[str, StringConstraints(pattern=r"^([A-Z]{2}|\*)$")]
    year: int | None = Field(
        default=None, ge=2000, le=2099, description="The quota year; this year of the issuer's calendar when left out."
    )
    type: PermitType
    quantity: int = Field(ge=0, le=10_000_000)


class QuotaOut(BaseModel):
    issuer: str
    holder: str
    year: int
    type: PermitType
    quantity: int
    issued: int
    remaining: int
    version: int
    granted_at: datetime
    updated_at: datetime


class QuotaList(Page[QuotaOut]):
    pass


class CarrierIn(BaseModel):
    model_config = _STRICT

    id: Text35 = Field(description="The carrier's tax or business number in the applying country (BIN, INN, VÖEN...).")
    name: Text70


class ApplicationIn(BaseModel):
    """One application for every permit a trip needs, by the carrier's authority at the carrier's own node."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "carrier": {"id": "230340000126", "name": "Almaty Fruit Export LLP"},
                    "plate": "123ABC02",
                    "trailer_plate": "45TRL02",
                    "route": ["KZ", "UZ", "TM", "AZ"],
                    "trips": 2,
                }
            ]
        },
    )

    carrier: CarrierIn
    plate: PlateText
    trailer_plate: PlateText | None = None
    route: Annotated[list[Country], Field(min_length=2, max_length=12)] = Field(
        description="Countries in the order the truck passes them, from loading to unloading."
    )
    valid_from: CorridorDate | None = Field(
        default=None,
        description="First day, in the carrier's country's calendar; the permits belong to this day's quota year. "
        "Left out: today there.",
    )
    valid_until: CorridorDate | None = Field(
        default=None,
        description="Last day. Omitted: as long as the quota year allows (31 December, or the grace into the next "
        "year that each issuer's rules grant, e.g. 31 January for bilateral and transit permits).",
    )
    trips: int = Field(default=1, ge=1, le=100, description="Round trips: each one ENTRY and one EXIT per country.")


class RequestOut(BaseModel):
    country: str
    type: PermitType
    status: Literal["not-required", "requested", "issued", "refused"]
    permit_id: str | None
    reason: str | None
    updated_at: datetime


class ApplicationOut(BaseModel):
    id: str
    carrier: CarrierIn
    carrier_country: str
    plate: str
    trailer_plate: str | None
    route: list[str]
    valid_from: date
    valid_until: date
    trips: int
    status: Literal["pending", "complete", "partly-refused"]
    requests: list[RequestOut]
    created_at: datetime


class ActivityOut(BaseModel):
    id: str
    activity: Literal["ENTRY", "EXIT", "SIGHTING"]
    office: str
    country: str
    at: datetime
    plate: str
    recorded_by: str


class PermitAlertOut(BaseModel):
    id: str
    kind: str
    detail: str
    raised_at: datetime


class PermitOut(BaseModel):
    id: str
    issuer: str
    holder: str
    year: int
    type: PermitType
    carrier: CarrierIn
    plate: str
    trailer_plate: str | None
    route: list[str]
    trips: int
    entries: int
    exits: int
    status: Literal["active", "in_use", "consumed", "revoked", "expired"]
    valid_from: datetime
    expires_at: datetime
    issued_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None
    token: str = Field(description="The permit itself: a compact JWS signed by the issuer (also the QR payload).")
    activities: list[ActivityOut] = []
    alerts: list[PermitAlertOut] = []


class PermitPage(Page[PermitOut]):
    pass


class UseIn(BaseModel):
    """What a border post saw: ENTRY/EXIT at the issuing country's border, a SIGHTING anywhere else on the route."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"activity": "ENTRY", "office": "UZGIS001", "plate": "123ABC02"}]},
    )

    activity: Literal["ENTRY", "EXIT", "SIGHTING"]
    office: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[A-Z0-9]{6}$")]
    plate: PlateText
    at: CorridorDatetime | None = Field(default=None, description="When it happened; now when left out.")
    token: Annotated[str, StringConstraints(max_length=8192), Printable] | None = Field(
        default=None, description="The scanned QR payload: checked against the permit when given."
    )


class UseOut(BaseModel):
    permit: PermitOut
    activity: ActivityOut
    alerts: list[PermitAlertOut]


class RevokeIn(BaseModel):
    model_config = _STRICT

    reason: Annotated[str, StringConstraints(min_length=1, max_length=512), Printable]


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    token: Annotated[str, StringConstraints(min_length=1, max_length=8192), Printable] = Field(
        description="The permit JWS, or the text a QR scanner read from it."
    )
    plate: PlateText | None = Field(default=None, description="The truck in front of the officer, when checked.")


class VerifyOut(BaseModel):
    result: Literal[
        "valid",
        "revoked",
        "used-up",
        "expired",
        "not-yet-valid",
        "wrong-vehicle",
        "unknown-issuer",
        "untrusted-key",
        "bad-signature",
        "malformed",
    ]
    valid: bool
    reasons: list[str]
    warnings: list[str]
    trips: int | None = Field(default=None, description="Online: the trips the permit allows (the node's record).")
    entries: int | None = Field(default=None, description="Online: ENTRYs recorded so far.")
    exits: int | None = Field(default=None, description="Online: EXITs recorded so far.")
    permit: dict[str, Any] | None
    kid: str | None
    revocation_list_version: int | None


class RevocationListOut(BaseModel):
    token: str = Field(
        description="The signed list (compact JWS, typ dtc-revocations+jws): what offline checkers keep."
    )
    iss: str
    version: int
    issued_at: datetime
    next_update: datetime
    revoked: list[dict[str, Any]]
