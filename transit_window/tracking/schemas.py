"""Response bodies of the tracking API. EPCIS 2.0 names where an EPCIS user would look for them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from transit_window.api.pagination import Page


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
