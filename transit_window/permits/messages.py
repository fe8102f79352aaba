"""The `permit.*` message bodies (e-permit's events between authorities). The permit JWS itself travels in
`permit.issued`, so every holder can show and check it without asking the issuer again. Handlers: `inbound.py`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from transit_window.codes.permit_rules import PermitType
from transit_window.permits.signed import PERMIT_ID, Carrier
from transit_window.text import Printable

_TOLERANT = ConfigDict(extra="ignore")
PermitId = Field(pattern=PERMIT_ID)


class QuotaGrantedBody(BaseModel):
    """The issuer's quota for the partner (`holder`, or `*` for every member): the newest `version` wins."""

    model_config = _TOLERANT

    issuer: str
    holder: str
    year: int
    type: PermitType
    quantity: int = Field(ge=0)
    issued: int = Field(ge=0)
    version: int = Field(ge=1)


class RequestedBody(BaseModel):
    """One country's part of a single-window application, asked of that country by the carrier's."""

    model_config = _TOLERANT

    application_id: Annotated[str, Printable]
    type: PermitType
    carrier: Carrier
    carrier_country: Annotated[str, Printable]
    plate: Annotated[str, Printable]
    trailer_plate: Annotated[str, Printable] | None = None
    route: list[str] = Field(min_length=2)
    valid_from: date
    valid_until: date
    trips: int = Field(ge=1)


class IssuedBody(BaseModel):
    """A permit, to the carrier's country (with the application it answers) and to the other route countries."""

    model_config = _TOLERANT

    application_id: Annotated[str, Printable] | None = None
    token: str
    quota_issued: int | None = None
    quota_quantity: int | None = None


class RefusedBody(BaseModel):
    model_config = _TOLERANT

    application_id: Annotated[str, Printable]
    type: PermitType
    reason: Annotated[str, Printable]
    code: Literal["quota-exhausted", "no-quota", "not-required", "invalid", "year-closed"]


class UsedBody(BaseModel):
    """An ENTRY or EXIT at the issuer's border, or a SIGHTING at another country's post."""

    model_config = _TOLERANT

    permit_id: str = PermitId
    activity_id: Annotated[str, Printable]
    activity: Literal["ENTRY", "EXIT", "SIGHTING"]
    office: Annotated[str, Printable]
    country: Annotated[str, Printable]
    at: AwareDatetime
    plate: Annotated[str, Printable]


class RevokedBody(BaseModel):
    model_config = _TOLERANT

    permit_id: str = PermitId
    revoked_at: AwareDatetime
    reason: Annotated[str, Printable]
