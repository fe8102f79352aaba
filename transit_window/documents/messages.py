"""The `document.*` message bodies: what travels between nodes about a certificate. Handlers are in `inbound.py`.

As on the IPPC ePhyto hub, the issuing country sends the certificate to the importing and transit countries, and
they acknowledge it; the PDF itself stays with the issuer (only its SHA-256 travels).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from transit_window.text import Printable

_TOLERANT = ConfigDict(extra="ignore")
DOCUMENT_ID = Field(min_length=1, max_length=36)


class DocumentIssuedBody(BaseModel):
    """A certificate as its issuing country signed it (also sent again when the PDF's hash is set later)."""

    model_config = _TOLERANT

    id: str = DOCUMENT_ID
    country: str = Field(pattern=r"^[A-Z]{2}$")
    type: Annotated[str, Printable] = Field(min_length=1, max_length=16)
    number: Annotated[str, Printable] = Field(min_length=1, max_length=35)
    goods: list[dict[str, Any]] = Field(min_length=1)
    consignor: dict[str, Any]
    consignee: dict[str, Any]
    destination_country: Annotated[str, Printable] | None = None
    issued_at: AwareDatetime
    pdf_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    replaces: Annotated[str, Printable] | None = None


class DocumentWithdrawnBody(BaseModel):
    """The issuer withdrew the certificate, or replaced it by another (`replaced_by`)."""

    model_config = _TOLERANT

    document_id: str = DOCUMENT_ID
    reason: Annotated[str, Printable] = Field(max_length=512)
    replaced_by: Annotated[str, Printable] | None = None


class DocumentAcknowledgedBody(BaseModel):
    """The importing (or transit) country's authority took note of the certificate."""

    model_config = _TOLERANT

    document_id: str = DOCUMENT_ID
    at: AwareDatetime
