"""The two signed documents of this feature, as compact JWS over the node's Ed25519 key (`protocol/jws.py`):

- the permit (`typ: dtc-permit+jws`): what a border post reads from the QR code and checks offline with the trust
  list alone, like e-permit's QR JWS;
- the revocation list (`typ: dtc-revocations+jws`): version, issued at, next update and the revoked ids, so an
  offline checker also knows what was revoked (e-permit has no offline revocation; we add one, like an X.509 CRL).

Both payloads are canonical JSON (sorted keys, RFC 3339 times in UTC) so the same claims always sign the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema

from transit_window import clock
from transit_window.codes.permit_rules import PermitType
from transit_window.protocol import jws
from transit_window.protocol.keys import SigningKey

PERMIT_TYP = "dtc-permit+jws"
REVOCATIONS_TYP = "dtc-revocations+jws"
PERMIT_ID = r"^[A-Z]{2}-[A-Z]{2}-[0-9]{4}-[1-4]-M?[0-9]{1,9}$"
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


def _moment(value: object) -> datetime:
    """RFC 3339 with an offset, read as UTC with the standard library's `UTC`: a border post compares these times
    with its clock for every permit it scans, and two datetimes with the very same tzinfo compare without asking
    either for its offset (pydantic's own tzinfo would make each comparison cost about a microsecond)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a time without a UTC offset")
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError("a time is an RFC 3339 string")
    return clock.parse(value)


Moment = Annotated[
    datetime,
    PlainValidator(_moment),
    PlainSerializer(clock.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Carrier(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=35)
    name: str = Field(min_length=1, max_length=70)


class PermitClaims(BaseModel):
    """The signed content of a permit. `iss` issues it (the country whose roads it opens), `for` is the carrier's."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(pattern=PERMIT_ID)
    type: PermitType
    year: int = Field(ge=2000, le=2999)
    iss: Country
    for_: Country = Field(alias="for")
    carrier: Carrier
    plate: str = Field(min_length=2, max_length=20)
    trailer: str | None = Field(default=None, max_length=20)
    trips: int = Field(ge=1, le=100)
    route: list[Country] = Field(min_length=2, max_length=12)
    nbf: Moment
    iat: Moment
    exp: Moment

    def payload(self) -> bytes:
        data = self.model_dump(mode="json", by_alias=True)
        for name in ("nbf", "iat", "exp"):
            data[name] = clock.isoformat(getattr(self, name))
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


class RevokedEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    revoked_at: AwareDatetime
    reason: str = ""


class RevocationList(BaseModel):
    """What an issuer has revoked of the permits still within their validity (expired ones drop off)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    iss: Country
    version: int = Field(ge=0)
    issued_at: AwareDatetime
    next_update: AwareDatetime
    revoked: list[RevokedEntry]

    def payload(self) -> bytes:
        data = self.model_dump(mode="json")
        data["issued_at"] = clock.isoformat(self.issued_at)
        data["next_update"] = clock.isoformat(self.next_update)
        data["revoked"] = [
            {"id": entry.id, "revoked_at": clock.isoformat(entry.revoked_at), "reason": entry.reason}
            for entry in self.revoked
        ]
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)

    @cached_property
    def by_id(self) -> dict[str, RevokedEntry]:
        """Built once per list: a border post looks up every permit it scans in lists of thousands of ids."""
        return {entry.id: entry for entry in self.revoked}

    def entry(self, permit_id: str) -> RevokedEntry | None:
        return self.by_id.get(permit_id)

    def is_stale(self, now: datetime) -> bool:
        return now > self.next_update


def sign_permit(claims: PermitClaims, *, key: SigningKey) -> str:
    return jws.sign_compact(claims.payload(), key=key, typ=PERMIT_TYP)


def sign_revocations(revocations: RevocationList, *, key: SigningKey) -> str:
    return jws.sign_compact(revocations.payload(), key=key, typ=REVOCATIONS_TYP)
