"""A partner in another stack checks what the corridor signs about permits with `jwcrypto`, a JOSE library this
project does not use, from nothing but the trust list document a node serves (anchored by the genesis hash):
the permit, the issuer's revocation list and the signed receipt for the message that carried the permit."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws
from sqlalchemy import select

from tests.permits.conftest import grant, obtain
from tests.support.inprocess import InProcessCorridor
from transit_window.protocol.models import OutboxMessage


def b64url_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


class Published:
    """The trust list document as a partner reads it: the members' JWKs, each checked to be its own `kid`."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.payload = base64.urlsafe_b64decode(document["payload"] + "=" * (-len(document["payload"]) % 4))
        self.body = json.loads(self.payload)
        self.keys = jc_jwk.JWKSet()
        self.owner: dict[str, str] = {}
        self.by_node: dict[str, jc_jwk.JWK] = {}
        for member in self.body["members"]:
            for entry in member["keys"]:
                key = jc_jwk.JWK(**entry["jwk"], kid=entry["kid"])
                assert key.thumbprint() == entry["kid"], "a kid is the RFC 7638 thumbprint of its key"
                self.keys.add(key)
                self.owner[entry["kid"]] = member["node"]
                self.by_node.setdefault(member["node"], key)

    def verify(self, token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
        """Header, claims and the member whose key signed `token` (jwcrypto picks the key by `kid`)."""
        checked = jc_jws.JWS()
        checked.deserialize(token)
        checked.verify(self.keys, alg="EdDSA")
        header = checked.jose_header
        assert header["alg"] == "EdDSA"
        return header, json.loads(checked.payload), self.owner[header["kid"]]

    def key_of(self, node: str) -> jc_jwk.JWK:
        return self.by_node[node]

    def signers(self) -> set[str]:
        """Members whose signature over the trust list itself verifies."""
        found = set()
        for entry in self.document["signatures"]:
            one = jc_jws.JWS()
            one.deserialize(json.dumps({"payload": self.document["payload"], **entry}))
            one.verify(self.keys, alg="EdDSA")
            found.add(self.owner[one.jose_header["kid"]])
        return found


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_jwcrypto_verifies_a_permit_a_revocation_list_and_a_receipt_from_the_trust_list_alone(
    corridor: InProcessCorridor, authority: dict[str, dict[str, str]], genesis: tuple[Path, str]
) -> None:
    await grant(corridor, authority, issuer="UZ")
    kept = await obtain(corridor, authority)
    dropped = await obtain(corridor, authority)
    kept_id, dropped_id = (
        next(request["permit_id"] for request in application["requests"] if request["country"] == "UZ")
        for application in (kept, dropped)
    )
    revoked = await corridor["UZ"].client.post(
        f"/v1/permits/{dropped_id}/revoke", json={"reason": "carrier licence suspended"}, headers=authority["UZ"]
    )
    assert revoked.status_code == 200, revoked.text
    await corridor.deliver_all()

    permit_token = (await corridor["KZ"].client.get(f"/v1/permits/{kept_id}", headers=authority["KZ"])).json()["token"]
    listed = await corridor["UZ"].client.get("/v1/permits/revocations")  # public: no credentials
    assert listed.status_code == 200, listed.text
    async with corridor["UZ"].node.sessionmaker() as session:
        carried = await session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.type == "permit.issued", OutboxMessage.peer == "KZ", OutboxMessage.subject == kept_id
            )
        )
    assert carried is not None and carried.state == "delivered" and carried.receipt is not None

    document = (await corridor["TM"].client.get("/v1/corridor/trust-list")).json()
    published = Published(document)
    _, pinned_sha256 = genesis
    assert hashlib.sha256(published.payload).hexdigest() == pinned_sha256
    assert len(published.signers()) >= published.body["threshold"]

    header, permit, signer = published.verify(permit_token)
    assert (header["typ"], signer, permit["iss"]) == ("dtc-permit+jws", "UZ", "UZ")
    assert (permit["id"], permit["for"], permit["type"], permit["plate"]) == (kept_id, "KZ", "transit", "123ABC02")
    assert permit["route"] == ["KZ", "UZ", "TM"] and moment(permit["nbf"]) < moment(permit["exp"])

    header, revocations, signer = published.verify(listed.json()["token"])
    assert (header["typ"], signer, revocations["iss"], revocations["version"]) == ("dtc-revocations+jws", "UZ", "UZ", 1)
    assert [entry["id"] for entry in revocations["revoked"]] == [dropped_id]
    assert revocations["revoked"][0]["reason"] == "carrier licence suspended"
    assert moment(revocations["issued_at"]) < moment(revocations["next_update"])

    header, receipt, signer = published.verify(carried.receipt)
    assert (header["typ"], signer, receipt["iss"], receipt["aud"]) == ("dtc-receipt+jws", "KZ", "KZ", "UZ")
    assert (receipt["msg"], receipt["status"]) == (carried.id, "accepted")
    assert receipt["digest"] == hashlib.sha256(carried.token.encode("ascii")).hexdigest()
    envelope = b64url_json(carried.token.split(".")[1])  # the receipt answers the envelope that carried the permit
    assert (envelope["type"], envelope["body"]["token"]) == ("permit.issued", permit_token)

    header_b64, payload_b64, signature_b64 = permit_token.split(".")
    claims = b64url_json(payload_b64)
    claims["trips"] = 100
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(jc_jws.InvalidJWSSignature):
        jc_jws.JWS().deserialize(f"{header_b64}.{edited}.{signature_b64}", key=published.key_of("UZ"), alg="EdDSA")
    with pytest.raises(jc_jws.InvalidJWSSignature):
        jc_jws.JWS().deserialize(permit_token, key=published.key_of("KZ"), alg="EdDSA")
