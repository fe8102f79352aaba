"""Request and response bodies of the certificates API. Strict on the way in (`extra="forbid"`, bounded sizes);
the rules that need reference data (the HS list, the corridor's members, the clock) live in `validation.py`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from transit_window import clock
from transit_window.api.pagination import Page
from transit_window.dates import CorridorDatetime
from transit_window.fields import Country, Party, Text512
from transit_window.text import Printable

DocumentType = Literal["phytosanitary", "veterinary", "origin"]
DocumentStatus = Literal["issued", "replaced", "withdrawn"]
NUMBER_PATTERN = r"^[A-Z0-9][A-Z0-9/.-]{0,34}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# The SHA-256 of openapi/examples/phyto.pdf, the PDF the README's tour uploads with this example (tests/test_specs.py).
EXAMPLE_PDF_SHA256 = "b3be45c3a1ab6f0ed20e89751f40d082ea8ea2858f5796e7b1677d10b19bc7db"


def _upper(value: object) -> object:
    """Certificate numbers are compared upper-case: `kz-phy-1` and `KZ-PHY-1` are one certificate."""
    return value.strip().upper() if isinstance(value, str) else value


Number = Annotated[
    str, StringConstraints(min_length=1, max_length=35, pattern=NUMBER_PATTERN), Printable, BeforeValidator(_upper)
]
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CertifiedGoods(BaseModel):
    model_config = _STRICT

    hs_code: Annotated[str, StringConstraints(max_length=10), Printable] = Field(description="HS 2022, six digits")
    description: Text512
    quantity: Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=3)]
    unit: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{3}$")] = Field(
        description="UN/ECE Recommendation 20 unit code, e.g. KGM (kilogram), TNE (tonne), H87 (piece)"
    )


class DocumentIn(BaseModel):
    """A certificate issued by this country's plant-protection, veterinary or chamber-of-commerce authority."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "type": "phytosanitary",
                    "number": "KZ-PHY-2026-004417",
                    "goods": [
                        {
                            "hs_code": "080810",
                            "description": "Fresh apples, Aport variety, in cartons",
                            "quantity": "18200.000",
                            "unit": "KGM",
                        }
                    ],
                    "consignor": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
                    "consignee": {"id": "1400057701", "name": "Baku Fresh Market LLC", "country": "AZ"},
                    "destination_country": "AZ",
                    "pdf_sha256": EXAMPLE_PDF_SHA256,
                    "share_with": ["TM"],
                }
            ]
        },
    )

    type: DocumentType
    number: Number
    goods: Annotated[list[CertifiedGoods], Field(min_length=1, max_length=99)]
    consignor: Party
    consignee: Party
    destination_country: Country | None = None
    issued_at: CorridorDatetime = Field(
        default_factory=clock.utcnow,
        description="When the authority signed it (at most 366 days ago, not in the future); now when left out.",
    )
    pdf_sha256: Sha256 | None = Field(
        default=None, description="SHA-256 (lower-case hex) of the signed PDF; an upload must match it"
    )
    share_with: Annotated[list[Country], Field(max_length=10)] = Field(
        default=[], description="Corridor members to send the certificate to at once (besides those of its movements)"
    )


class WithdrawIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "issued for the wrong consignment"}]}
    )

    reason: Text512


class ShareOut(BaseModel):
    country: str
    shared_at: datetime
    acknowledged_at: datetime | None


class DocumentOut(BaseModel):
    id: str
    country: str = Field(description="The issuing country")
    type: str
    number: str
    status: str
    goods: list[dict[str, Any]]
    consignor: dict[str, Any]
    consignee: dict[str, Any]
    destination_country: str | None
    issued_at: datetime
    pdf_sha256: str | None
    has_pdf: bool = Field(description="The PDF itself is held here (only ever at the issuing node)")
    replaces: str | None
    replaced_by: str | None
    withdrawn_at: datetime | None
    withdraw_reason: str | None
    received_from: str | None = Field(description="None when issued at this node; else the issuer of this copy")
    shared_with: list[ShareOut] = Field(
        description="At the issuer: the countries sent a copy and when each acknowledged it. On a copy: this node"
    )
    created_at: datetime
    updated_at: datetime


class DocumentPage(Page[DocumentOut]):
    pass
