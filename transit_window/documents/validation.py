"""The rules of a certificate that need reference data, as NCTS-style functional errors (12 code-list violation,
14 rule violation, 15 not allowed), each with a JSON pointer into the request body. All problems are collected.

A phytosanitary or veterinary certificate must be one the goods need: the HS nomenclature's certificate rules
(chapters 01-05 veterinary, 06-14 phytosanitary, and per-code additions such as raw cotton) decide, so a
certificate for goods that need no such certificate is refused naming the item. Origin certificates fit any goods.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from transit_window.codes import HsNomenclature, is_country, validate_trader_id
from transit_window.documents.schemas import DocumentIn
from transit_window.errors import FieldError
from transit_window.settings import NODE_IDS

# The longest-lived of these certificates, one of origin, is valid for twelve months (CIS FTA rules of origin); a
# phytosanitary or veterinary one for weeks. A certificate issued earlier than that is a mistake, not a paper to share.
MAX_AGE = timedelta(days=366)


def check_document(
    document: DocumentIn,
    *,
    node_country: str,
    members: list[str],
    hs: HsNomenclature,
    now: datetime,
    skew_seconds: int,
) -> list[FieldError]:
    """Problems of `document` issued at `node_country`; `members` are the nodes of the current trust list."""
    errors: list[FieldError] = []

    def fail(pointer: str, detail: str, code: str = "14") -> None:
        errors.append(FieldError(pointer=f"/body{pointer}", detail=detail, code=code))

    for index, item in enumerate(document.goods):
        pointer = f"/goods/{index}/hs_code"
        reason = hs.validate(item.hs_code)
        if reason:
            fail(pointer, reason, "12")
            continue
        if document.type != "origin" and document.type not in hs.required_certificates(item.hs_code):
            chapter = item.hs_code[:2]
            fail(
                pointer,
                f"goods item {index + 1} (HS {item.hs_code}, chapter {chapter}: {hs.chapter_name(chapter)}) needs no "
                f"{document.type} certificate: {_which_goods(document.type)}",
            )
    for role in ("consignor", "consignee"):
        party = getattr(document, role)
        if not is_country(party.country):
            fail(f"/{role}/country", f"{party.country!r} is not an ISO 3166-1 country code", "12")
            continue
        reason = validate_trader_id(party.country, party.id)
        if reason:
            fail(f"/{role}/id", f"{role} id: {reason}", "12")
    if document.destination_country is not None and not is_country(document.destination_country):
        fail("/destination_country", f"{document.destination_country!r} is not an ISO 3166-1 country code", "12")
    ahead = (document.issued_at - now).total_seconds()
    if ahead > skew_seconds:
        fail("/issued_at", f"issued_at {document.issued_at.isoformat()} is {ahead / 60:.0f} minutes in the future")
    elif -ahead > MAX_AGE.total_seconds():
        fail("/issued_at", f"issued_at {document.issued_at.isoformat()} is more than {MAX_AGE.days} days ago")
    seen: set[str] = set()
    for index, country in enumerate(document.share_with):
        pointer = f"/share_with/{index}"
        if country not in NODE_IDS:
            fail(pointer, f"{country} is not a corridor country ({', '.join(NODE_IDS)})", "12")
        elif country == node_country:
            fail(pointer, f"{country} is this node: the certificate is already here", "14")
        elif country not in members:
            fail(pointer, f"{country} is not in the corridor's current trust list; it cannot be sent there", "15")
        elif country in seen:
            fail(pointer, f"{country} is listed twice", "14")
        seen.add(country)
    return errors


def _which_goods(certificate: str) -> str:
    if certificate == "phytosanitary":
        return "phytosanitary certificates are for plants and plant products (HS chapters 06-14, and raw cotton)"
    return "veterinary certificates are for live animals and animal products (HS chapters 01-05)"
