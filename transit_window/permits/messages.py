"""The `permit.*` message bodies (e-permit's events between authorities). The permit JWS itself travels in
`permit.issued`, so every holder can show and check it without asking the issuer again. Handlers: `remote.py`."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from transit_window.permits.rules import PermitType
from transit_window.permits.signed import PERMIT_ID, Carrier

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

    application_id: str
    type: PermitType
    carrier: Carrier
    carrier_country: str
    plate: str
    trailer_plate: str | None = None
    route: list[str] = Field(min_length=2)
    valid_from: date
    valid_until: date
    trips: int = Field(ge=1)


class IssuedBody(BaseModel):
    """A permit, to the carrier's country (with the application it answers) and to the other route countries."""

    model_config = _TOLERANT

    application_id: str | None = None
    token: str
    quota_issued: int | None = None
    quota_quantity: int | None = None


class RefusedBody(BaseModel):
    model_config = _TOLERANT

    application_id: str
    type: PermitType
    reason: str
    code: Literal["quota-exhausted", "no-quota", "not-required", "invalid", "year-closed"]


class UsedBody(BaseModel):
    """An ENTRY or EXIT at the issuer's border, or a SIGHTING at another country's post."""

    model_config = _TOLERANT

    permit_id: str = PermitId
    activity_id: str
    activity: Literal["ENTRY", "EXIT", "SIGHTING"]
    office: str
    country: str
    at: AwareDatetime
    plate: str


class RevokedBody(BaseModel):
    model_config = _TOLERANT

    permit_id: str = PermitId
    revoked_at: AwareDatetime
    reason: str
