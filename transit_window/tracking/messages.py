"""The `tracking.alert` message body: an alert raised by one country on a movement of the route."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from transit_window.declarations.interface import MRN

Rule = Literal["route-deviation", "long-stop", "seal-opened", "overdue-crossing", "unrecorded-crossings"]
RULES: tuple[Rule, ...] = get_args(Rule)
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class AlertBody(BaseModel):
    """An alert raised by the sending country on a movement of the route (an event of its timeline)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=UUID_PATTERN)
    mrn: str = MRN
    rule: Rule
    at: datetime
    office: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    details: dict[str, Any] = {}
    device_id: str | None = Field(
        default=None, max_length=64, description="The e-seal device whose ping raised the alert (e-seal rules)"
    )
    client_id: str | None = Field(
        default=None, max_length=36, description="The sending node's API client that reported that ping"
    )
