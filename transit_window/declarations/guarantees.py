"""Who may draw on a guarantee: its holder, and the declarants the holder has authorised (NCTS's guarantee access
code). A declaration naming a guarantee is checked when it is lodged and again at release, since an authorisation
may be revoked in between.

The holder manages the authorisations: as a forwarder client whose party is the holder, or through the customs
client that registered the guarantee (the guarantee office's system, acting on the holder's request). Access codes
are random, shown once and kept only as SHA-256 (like API tokens); they are never logged, never stored with the
declaration and never sent along the route. Nothing here commits: the request's session owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from transit_window import clock
from transit_window.db.dialect import dialect_of
from transit_window.declarations.models import Guarantee, GuaranteeAuthorisation, Movement
from transit_window.errors import FieldError, Forbidden, InvalidInput, NotFound
from transit_window.ids import new_id

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.clients.principal import Principal
    from transit_window.declarations.schemas import GuaranteeRef
    from transit_window.fields import Party

ACCESS_CODE_PREFIX = "gac_"  # a prefix that makes a leaked code greppable


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


# -- the holder manages its authorisations -----------------------------------------------------------------------


async def managed(session: AsyncSession, principal: Principal, grn: str) -> Guarantee:
    """The guarantee, when this client may manage who uses it; another party's is not found for a forwarder (as
    for every party-scoped thing), another customs client is refused with the reason."""
    guarantee = await session.get(Guarantee, grn)
    if guarantee is None or (principal.role == "forwarder" and principal.party_id != guarantee.holder_id):
        raise NotFound(f"no guarantee {grn} registered at this node for this client")
    if principal.role == "customs" and guarantee.client_id != principal.client_id:
        raise Forbidden(
            f"guarantee {grn} belongs to holder {guarantee.holder_id}: only the holder or the customs client that "
            "registered the guarantee manages who may use it"
        )
    return guarantee


async def authorise(
    session: AsyncSession, principal: Principal, guarantee: Guarantee, *, declarant_id: str, declarant_country: str
) -> tuple[GuaranteeAuthorisation, str]:
    """Authorise a declarant; returns the authorisation and its access code (shown this once). Authorising the same
    declarant again replaces its code: the old one stops working."""
    from transit_window.codes import validate_trader_id

    reason = validate_trader_id(declarant_country, declarant_id)
    if reason:
        raise InvalidInput(f"declarant id: {reason}", errors=[FieldError("/body/declarant_id", reason, "12")])
    if (declarant_id, declarant_country) == (guarantee.holder_id, guarantee.holder_country):
        raise InvalidInput(
            f"{declarant_id} is the holder of guarantee {guarantee.grn} and needs no authorisation",
            errors=[FieldError("/body/declarant_id", "the holder itself", "14")],
        )
    now = clock.utcnow()
    if dialect_of(session).concurrent_writers:
        # two concurrent authorisations of one declarant each revoked nothing and each inserted: both codes worked.
        # The guarantee's row serialises them (SQLite has one writer at a time already).
        await session.execute(select(Guarantee.grn).where(Guarantee.grn == guarantee.grn).with_for_update())
    await _revoke_where(
        session,
        principal,
        GuaranteeAuthorisation.grn == guarantee.grn,
        GuaranteeAuthorisation.declarant_id == declarant_id,
        GuaranteeAuthorisation.declarant_country == declarant_country,
    )
    code = ACCESS_CODE_PREFIX + secrets.token_urlsafe(15)  # 120 random bits
    authorisation = GuaranteeAuthorisation(
        id=new_id(),
        grn=guarantee.grn,
        declarant_id=declarant_id,
        declarant_country=declarant_country,
        code_hash=hash_code(code),
        created_by=principal.client_id,
        created_at=now,
        revoked_at=None,
        revoked_by=None,
    )
    session.add(authorisation)
    await session.flush()
    return authorisation, code


async def in_force(session: AsyncSession, grn: str, *, after: str | None, limit: int) -> list[GuaranteeAuthorisation]:
    """Authorisations in force, oldest first (ids are time-ordered), `limit` of them after the cursor `after`."""
    statement = (
        select(GuaranteeAuthorisation)
        .where(GuaranteeAuthorisation.grn == grn, GuaranteeAuthorisation.revoked_at.is_(None))
        .order_by(GuaranteeAuthorisation.id)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(GuaranteeAuthorisation.id > after)
    return list((await session.scalars(statement)).all())


async def revoke(session: AsyncSession, principal: Principal, guarantee: Guarantee, authorisation_id: str) -> None:
    """Revoke an authorisation in force: declarations lodged with it can no longer be released."""
    found = await session.scalar(
        select(GuaranteeAuthorisation.id).where(
            GuaranteeAuthorisation.id == authorisation_id,
            GuaranteeAuthorisation.grn == guarantee.grn,
            GuaranteeAuthorisation.revoked_at.is_(None),
        )
    )
    if found is None:
        raise NotFound(f"no authorisation {authorisation_id} in force on guarantee {guarantee.grn}")
    await _revoke_where(session, principal, GuaranteeAuthorisation.id == authorisation_id)


async def _revoke_where(session: AsyncSession, principal: Principal, *conditions: object) -> None:
    await session.execute(
        update(GuaranteeAuthorisation)
        .where(*conditions, GuaranteeAuthorisation.revoked_at.is_(None))  # type: ignore[arg-type]
        .values(revoked_at=clock.utcnow(), revoked_by=principal.client_id)
        .execution_options(synchronize_session=False)
    )


# -- a declaration draws on it -----------------------------------------------------------------------------------


def _is_holder(guarantee: Guarantee, *, declarant_id: str, declarant_country: str) -> bool:
    return (declarant_id, declarant_country) == (guarantee.holder_id, guarantee.holder_country)


async def _codes_in_force(session: AsyncSession, grn: str, *, declarant_id: str, declarant_country: str) -> list[str]:
    statement = select(GuaranteeAuthorisation.code_hash).where(
        GuaranteeAuthorisation.grn == grn,
        GuaranteeAuthorisation.declarant_id == declarant_id,
        GuaranteeAuthorisation.declarant_country == declarant_country,
        GuaranteeAuthorisation.revoked_at.is_(None),
    )
    return list((await session.scalars(statement)).all())


async def check_declared_use(
    session: AsyncSession, guarantee: Guarantee, *, declarant: Party, reference: GuaranteeRef
) -> None:
    """At lodging: the declarant is the holder, or quotes the access code of an authorisation in force for it."""
    if _is_holder(guarantee, declarant_id=declarant.id, declarant_country=declarant.country):
        return
    hashes = await _codes_in_force(
        session, guarantee.grn, declarant_id=declarant.id, declarant_country=declarant.country
    )
    who = f"declarant {declarant.country} {declarant.id}"
    if not hashes:
        detail = (
            f"guarantee {guarantee.grn} belongs to holder {guarantee.holder_id}, who has not authorised {who} to use it"
        )
        raise InvalidInput(detail, errors=[FieldError("/body/guarantee/grn", detail, "15")])
    if reference.access_code is None:
        detail = f"{who} is not the holder of guarantee {guarantee.grn}: quote the access code the holder gave"
        raise InvalidInput(detail, errors=[FieldError("/body/guarantee/access_code", detail, "13")])
    quoted = hash_code(reference.access_code)
    if not any(hmac.compare_digest(quoted, stored) for stored in hashes):
        detail = f"the access code is not the one the holder of guarantee {guarantee.grn} gave {who}"
        raise InvalidInput(detail, errors=[FieldError("/body/guarantee/access_code", detail, "15")])


async def check_release_use(session: AsyncSession, movement: Movement) -> None:
    """At release: the declarant is still the holder, or still holds an authorisation in force (the holder may
    have revoked it since the declaration was lodged; authorising the declarant again lets it be released)."""
    if movement.grn is None:
        return
    guarantee = await session.get(Guarantee, movement.grn)
    declarant = movement.record.get("declarant", {})
    country = str(declarant.get("country", ""))
    if guarantee is None:
        return  # reserving it answers why
    if _is_holder(guarantee, declarant_id=movement.declarant_id, declarant_country=country):
        return
    if await _codes_in_force(session, guarantee.grn, declarant_id=movement.declarant_id, declarant_country=country):
        return
    ever = await session.scalar(
        select(GuaranteeAuthorisation.id).where(
            GuaranteeAuthorisation.grn == guarantee.grn,
            GuaranteeAuthorisation.declarant_id == movement.declarant_id,
            GuaranteeAuthorisation.declarant_country == country,
        )
    )
    if ever is not None:
        detail = (
            f"the holder of guarantee {guarantee.grn} no longer authorises declarant {country} "
            f"{movement.declarant_id} to use it (the authorisation was revoked after {movement.mrn} was lodged)"
        )
    else:  # lodged before guarantees were bound to their holders (migration 0007)
        detail = (
            f"declarant {country} {movement.declarant_id} is not the holder of guarantee {guarantee.grn} and has no "
            f"authorisation from it: the holder ({guarantee.holder_id}) authorises it with "
            f"POST /v1/guarantees/{guarantee.grn}/authorisations"
        )
    raise InvalidInput(detail, errors=[FieldError("/path/mrn", detail, "15")], grn=guarantee.grn)
