"""The `transit.*` message bodies: what travels between nodes about a movement. Handlers are in `inbound.py`."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MRN = Field(pattern=r"^[0-9]{2}[A-Z]{2}[A-Z0-9]{12}[JKL][0-9]$")
_TOLERANT = ConfigDict(extra="ignore")


class StepRecord(BaseModel):
    """One journey step as the country that recorded it signed it."""

    model_config = _TOLERANT

    kind: str
    office: str
    country: str
    at: AwareDatetime
    signed_by: str
    envelope_id: str | None = None
    details: dict[str, Any] = {}


class AnticipatedBody(BaseModel):
    """The movement, shared with every country on its route at release (NCTS IE050/IE001)."""

    model_config = _TOLERANT

    mrn: str = MRN
    departure_office: str
    destination_office: str
    countries: list[str] = Field(min_length=1)
    itinerary: list[str] = Field(min_length=2)
    limit_date: date
    declaration: dict[str, Any]
    journey: list[StepRecord] = []


class CrossedBody(BaseModel):
    """Goods passed a border post (NCTS IE118)."""

    model_config = _TOLERANT

    mrn: str = MRN
    office: str
    country: str
    direction: Literal["exit", "entry"]
    at: AwareDatetime
    seals_intact: bool
    remarks: str = ""


class ArrivedBody(BaseModel):
    """Goods presented at the office of destination (NCTS IE006)."""

    model_config = _TOLERANT

    mrn: str = MRN
    office: str
    at: AwareDatetime
    remarks: str = ""


class ControlResultsBody(BaseModel):
    """Control results at destination (NCTS IE018)."""

    model_config = _TOLERANT

    mrn: str = MRN
    office: str
    code: Literal["A1", "A2", "B1"]
    at: AwareDatetime
    discrepancies: list[str] = []


class ClosedBody(BaseModel):
    """The office of departure wrote the movement off and released the guarantee (NCTS IE045)."""

    model_config = _TOLERANT

    mrn: str = MRN
    office: str
    at: AwareDatetime
    outcome: str


class CancelledBody(BaseModel):
    """The declaration was cancelled before the goods left (NCTS IE009)."""

    model_config = _TOLERANT

    mrn: str = MRN
    office: str
    at: AwareDatetime
    reason: str


class RecordRequestBody(BaseModel):
    """A country on the route asks the office of departure for a record it missed (NCTS IE114/IE002)."""

    model_config = _TOLERANT

    mrn: str = MRN


class StatusRequestBody(BaseModel):
    """Reconcile: what does the other side believe about this movement (NCTS IE094)."""

    model_config = _TOLERANT

    mrn: str = MRN


class StatusResponseBody(BaseModel):
    """The answer to a status request (NCTS IE095): status and every step the responder holds."""

    model_config = _TOLERANT

    mrn: str = MRN
    status: str
    journey: list[StepRecord] = []
