"""Handlers of the `permit.*` messages. A message that cannot be applied is answered with a signed `rejected`
receipt (`Rejection`); a quota that is used up is not such a case: the issuer answers `permit.refused`, a fact the
carrier's authority shows on the application."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from transit_window import clock
from transit_window.permits import messages, service
from transit_window.permits.models import Permit, PermitQuota, PermitRequest
from transit_window.permits.verify import verify_permit
from transit_window.protocol import outbox
from transit_window.protocol.registry import MessageTypes, Rejection

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.envelope import VerifiedEnvelope
    from transit_window.protocol.node import Node

logger = logging.getLogger(__name__)
MESSAGES = MessageTypes()  # registered by transit_window.catalogue


@MESSAGES.message_type(
    "permit.quota-granted",
    body=messages.QuotaGrantedBody,
    summary="A yearly permit quota the issuer grants a partner country (or every member).",
)
async def on_quota_granted(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, messages.QuotaGrantedBody)
    if body.issuer != envelope.payload.iss:
        raise Rejection("15", f"only {body.issuer} grants its own quotas")
    if body.holder not in (node.id, "*"):
        raise Rejection("15", f"the quota is for {body.holder}, not {node.id}")
    key = (
        PermitQuota.issuer == body.issuer,
        PermitQuota.holder == body.holder,
        PermitQuota.year == body.year,
        PermitQuota.type == body.type,
    )
    quota = await session.scalar(select(PermitQuota).where(*key))
    now = clock.utcnow()
    if quota is None:
        session.add(
            PermitQuota(
                issuer=body.issuer,
                holder=body.holder,
                year=body.year,
                type=body.type,
                quantity=body.quantity,
                issued=body.issued,
                version=body.version,
                granted_at=now,
                updated_at=now,
            )
        )
    elif body.version > quota.version:
        quota.quantity = body.quantity
        quota.issued = max(quota.issued, body.issued)
        quota.version = body.version
        quota.updated_at = now


@MESSAGES.message_type(
    "permit.requested",
    body=messages.RequestedBody,
    summary="A carrier's country asks the issuer for the permit its carrier's trip needs.",
)
async def on_requested(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, messages.RequestedBody)
    if body.carrier_country != envelope.payload.iss:
        raise Rejection("15", f"{envelope.payload.iss} applies only for its own carriers, not {body.carrier_country}'s")
    if node.id not in body.route:
        raise Rejection("15", f"{node.id} is not on the route {' → '.join(body.route)}")
    outcome = await service.issue_requested(session, node, request=body)
    if isinstance(outcome, messages.RefusedBody):
        node.metrics.permits_issued.labels(type=body.type, outcome=outcome.code).inc()
        outbox.enqueue(
            session, to=body.carrier_country, message_type="permit.refused", subject=body.application_id, body=outcome
        )
    else:
        node.metrics.permits_issued.labels(type=body.type, outcome="issued").inc()


@MESSAGES.message_type(
    "permit.issued", body=messages.IssuedBody, summary="A permit (its JWS), to every country that keeps it."
)
async def on_issued(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, messages.IssuedBody)
    verdict = verify_permit(body.token, trust=node.trust, revocations={})
    if verdict.claims is None or verdict.result in ("bad-signature", "unknown-issuer", "untrusted-key", "malformed"):
        raise Rejection("14", f"the permit does not verify: {'; '.join(verdict.reasons)}")
    claims = verdict.claims
    if claims.iss != envelope.payload.iss:
        raise Rejection("15", f"{envelope.payload.iss} relayed a permit of {claims.iss}; issuers send their own")
    if node.id not in (claims.for_, *claims.route):
        raise Rejection("15", f"{claims.id} is neither for {node.id} carriers nor on a route through {node.id}")
    await service.store_copy(session, node, claims=claims, token=body.token, application_id=body.application_id)
    if body.application_id is not None and claims.for_ == node.id:
        await session.execute(
            update(PermitRequest)
            .where(PermitRequest.application_id == body.application_id, PermitRequest.country == claims.iss)
            .values(status="issued", permit_id=claims.id, reason=None, updated_at=clock.utcnow())
            .execution_options(synchronize_session=False)
        )
    if body.quota_issued is not None:
        await session.execute(
            update(PermitQuota)
            .where(
                PermitQuota.issuer == claims.iss,
                PermitQuota.holder == ("*" if "-M" in claims.id else claims.for_),
                PermitQuota.year == claims.year,
                PermitQuota.type == claims.type,
                PermitQuota.issued < body.quota_issued,
            )
            .values(issued=body.quota_issued, updated_at=clock.utcnow())
            .execution_options(synchronize_session=False)
        )


@MESSAGES.message_type(
    "permit.refused", body=messages.RefusedBody, summary="The issuer refuses a requested permit, and why."
)
async def on_refused(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, messages.RefusedBody)
    result = await session.execute(
        update(PermitRequest)
        .where(
            PermitRequest.application_id == body.application_id,
            PermitRequest.country == envelope.payload.iss,
            PermitRequest.status == "requested",
        )
        .values(status="refused", reason=body.reason, details={"code": body.code}, updated_at=clock.utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Rejection("90", f"no open request of application {body.application_id} to {envelope.payload.iss}")


@MESSAGES.message_type(
    "permit.used", body=messages.UsedBody, summary="ENTRY/EXIT at the issuer's border, or a SIGHTING."
)
async def on_used(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, messages.UsedBody)
    if body.country != envelope.payload.iss:
        raise Rejection("15", f"{envelope.payload.iss} reports only what its own posts saw, not {body.country}'s")
    permit = await session.get(Permit, body.permit_id)
    if permit is None:
        raise Rejection("90", f"no permit {body.permit_id} at {node.id}")
    if body.activity != "SIGHTING" and envelope.payload.iss != permit.issuer:
        raise Rejection("15", f"ENTRY and EXIT of {permit.id} are recorded only by {permit.issuer}")
    alerts = await service.record_copy(session, node, body=body, sender=envelope.payload.iss)
    for alert in alerts:
        logger.warning(alert.detail, extra={"permit": alert.permit_id, "node": node.id})


@MESSAGES.message_type("permit.revoked", body=messages.RevokedBody, summary="The issuer revoked a permit.")
async def on_revoked(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, messages.RevokedBody)
    permit = await session.get(Permit, body.permit_id)
    if permit is None:
        raise Rejection("90", f"no permit {body.permit_id} at {node.id}")
    if permit.issuer != envelope.payload.iss:
        raise Rejection("15", f"{permit.id} was issued by {permit.issuer}; only it revokes it")
    if permit.status != "revoked":
        permit.status = "revoked"
        permit.revoked_at = body.revoked_at
        permit.revoke_reason = body.reason
        permit.updated_at = clock.utcnow()
