"""Response bodies of the tracking API. EPCIS 2.0 names where an EPCIS user would look for them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from transit_window.api.pagination import Page
from transit_window.dates import CorridorDatetime
from transit_window.text import Printable
from transit_window.tracking.alerts import AlertStatus
from transit_window.tracking.messages import Rule

MAX_PINGS = 10_000
MRN_PATTERN = r"^[0-9]{2}[A-Z]{2}[A-Z0-9]{12}[JKL][0-9]$"
SealState = Literal["closed", "open", "tampered"]


class Place(BaseModel):
    office: str | None
    name: str | None = None
    country: str
    lat: float | None = None
    lon: float | None = None


class Event(BaseModel):
    """One tracking event: what, when, where, why, and which country signed it."""

    event_id: str = Field(serialization_alias="eventID")
    type: Literal["ObjectEvent"] = "ObjectEvent"
    mrn: str
    step: str
    event_time: str = Field(serialization_alias="eventTime", description="RFC 3339 in the office's local time")
    event_time_zone_offset: str = Field(serialization_alias="eventTimeZoneOffset")
    record_time: datetime = Field(serialization_alias="recordTime")
    biz_step: str = Field(serialization_alias="bizStep")
    disposition: str
    biz_location: Place = Field(serialization_alias="bizLocation")
    dcsa_code: str | None = Field(serialization_alias="dcsaEventCode")
    rec24_code: str | None = Field(serialization_alias="unece24StatusCode")
    what: dict[str, object]
    signed_by: str = Field(serialization_alias="signedBy")
    envelope_id: str | None = Field(serialization_alias="envelopeID")
    verification: Literal["local", "verified", "relayed"] = Field(
        description="local: recorded at this node; verified: received signed by the country named; relayed: "
        "learned from another node's record or status answer"
    )
    error_declaration: dict[str, object] | None = Field(default=None, serialization_alias="errorDeclaration")
    details: dict[str, object]

    model_config = ConfigDict(populate_by_name=True)


class Timeline(BaseModel):
    mrn: str
    status: str
    events: list[Event]


class EventPage(Page[Event]):
    pass


class Consignment(BaseModel):
    mrn: str
    status: str
    countries: list[str]
    itinerary: list[Place]
    last_event: Event | None
    tracking_code: str | None = Field(description="Public tracking code, shown to the consignment's parties.")


class ConsignmentPage(Page[Consignment]):
    pass


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"party_id": "230340000999"}]})

    party_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/-]*$")


class GrantOut(BaseModel):
    mrn: str
    party_id: str


class TrackingCodeOut(BaseModel):
    mrn: str
    tracking_code: str
    url: str


class PublicStep(BaseModel):
    """One step of the public timeline, in the language asked for (`?lang=`)."""

    step: str
    label: str = Field(description="What happened; for an alert, its rule (Route deviation, Long stop, ...)")
    office: str | None
    place: str | None = Field(
        description="Where: the office by its name in the language asked for, with its country in brackets when "
        "another place of this view has the same name; for an alert on the road, the stretch of the route "
        "between the last office passed and the next one (never a position)"
    )
    country: str = Field(description="The country that recorded the step and signed it")
    time: str = Field(
        description="RFC 3339 in the local time of the office (for an alert on the road, of the last office "
        "passed), with its offset, to the minute"
    )
    alert: bool = False
    rule: str | None = Field(
        default=None, description="An alert's rule: route-deviation, long-stop, seal-opened or overdue-crossing"
    )
    detail: str | None = Field(
        default=None,
        description="An alert's measure in words: how far off the route, how long stopped, when a crossing was due",
    )
    distance_km: float | None = Field(
        default=None, description="Route deviation: km off the route; overdue crossing: km from the last office"
    )
    minutes: int | None = Field(default=None, description="Long stop: how long the truck stood still")


class PublicTrack(BaseModel):
    """What anyone holding the tracking code may see: no goods value, no party ids, no personal data, and no
    position from an e-seal ping (a truck's raw track is for customs; issue 13)."""

    mrn: str
    status: str
    final: bool = Field(
        description="The movement is closed or cancelled: this view will not change any more (stop polling)"
    )
    countries: list[str]
    route: list[Place]
    current_place: Place | None = Field(
        description="Where the truck was last: the office of the latest step (arrival included; not the write-off "
        "at the departure's desk) and its country, with the office's own coordinates; never a position reported by "
        "an e-seal. The tracking page draws the truck here"
    )
    timeline: list[PublicStep]
    as_of: str = Field(
        description="When the node read this view: RFC 3339, to the minute, in the local time the last step is shown in"
    )


class MovementAlertOut(BaseModel):
    id: str
    mrn: str
    rule: Rule
    status: AlertStatus
    raised_by: str = Field(description="The country whose node raised the alert")
    raised_at: datetime = Field(
        description="When it happened (the ping's time, when the crossing was overdue, or when the arrival without "
        "the route's crossings was recorded)"
    )
    recorded_at: datetime
    office: str | None
    lat: float | None
    lon: float | None
    details: dict[str, Any] = Field(
        description="What the rule found; for `unrecorded-crossings`: `missing` (each crossing's country, "
        "direction, office and its name), `addressed_to` (the departure country and the countries whose crossings "
        "are missing) and a `summary` naming them"
    )
    device_id: str | None = Field(
        description="The e-seal device whose ping raised the alert (null for overdue and unrecorded crossings)"
    )
    client_id: str | None = Field(
        description="The API client (of the raising node) that reported that ping; null for overdue and unrecorded "
        "crossings"
    )
    event_id: str | None = Field(description="The tracking event of this alert on the consignment's timeline")
    acknowledged_at: datetime | None
    acknowledged_note: str | None
    closed_at: datetime | None
    closed_note: str | None

    model_config = ConfigDict(from_attributes=True)


class AlertPage(Page[MovementAlertOut]):
    pass


class AlertNote(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "Driver called: diverted around road works near Taraz."}]},
    )

    note: Annotated[str, Printable] = Field(min_length=1, max_length=2000)


class PingIn(BaseModel):
    """One position report of an e-seal or tracker. Name the movement by MRN or by the seal's id (or both)."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    mrn: str | None = Field(default=None, pattern=MRN_PATTERN)
    seal_id: Annotated[str, Printable] | None = Field(default=None, min_length=1, max_length=64)
    time: CorridorDatetime = Field(description="When the position was taken, RFC 3339 with an offset")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    speed: float | None = Field(default=None, ge=0, le=300, allow_inf_nan=False, description="km/h")
    seal_state: SealState = "closed"


class PositionBatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "pings": [
                        {
                            "device_id": "ESEAL-KZ-0042",
                            "seal_id": "KZ-SEAL-000731",
                            "time": "2026-05-04T08:15:00+05:00",
                            "lat": 42.91,
                            "lon": 71.37,
                            "speed": 71.5,
                            "seal_state": "closed",
                        },
                        {
                            "device_id": "ESEAL-KZ-0042",
                            "mrn": "26KZ55020T000001J9",
                            "time": "2026-05-04T08:20:00+05:00",
                            "lat": 42.89,
                            "lon": 71.26,
                            "speed": 68.0,
                            "seal_state": "closed",
                        },
                    ]
                }
            ]
        },
    )

    pings: list[PingIn] = Field(min_length=1, max_length=MAX_PINGS)


class PositionsResult(BaseModel):
    received: int = Field(description="Pings in the batch")
    stored: int = Field(description="Pings stored now")
    duplicates: int = Field(description="Pings already stored (a resent batch) or repeated within the batch")
    alerts: list[MovementAlertOut] = Field(description="Alerts these pings raised")
