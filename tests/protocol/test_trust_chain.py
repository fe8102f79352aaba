"""Every adopted version is served as signed, and the chain verifies from the genesis alone with another JOSE library.

Given KZ, UZ and TM, when Azerbaijan is admitted (version 2) and Uzbekistan's key is rotated (version 3), then any
node serves versions 1, 2 and 3 at `GET /v1/corridor/trust-list/{version}`, and a checker that knows only the
genesis hash walks them with joserfc (not our `jws` module): each version signed by the threshold of members of the
one before and of itself, with keys valid when it was issued.
"""

from __future__ import annotations

import base64
import hashlib
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from joserfc import jws as jose_jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import OKPKey
from pydantic import TypeAdapter

from tests.support.inprocess import InProcessCorridor
from tests.support.keys import TestMember as Member
from tests.support.keys import make_member
from transit_window import clock
from transit_window.protocol.trust import TrustList
from transit_window.protocol.trust_changes import Change, build_successor

CHANGES: TypeAdapter[list[Change]] = TypeAdapter(list[Change])


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_valid(key: dict[str, Any], moment: datetime) -> bool:
    def at(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

    not_before, not_after, revoked_at = at(key["not_before"]), at(key["not_after"]), at(key["revoked_at"])
    assert not_before is not None
    return (
        not_before <= moment
        and (not_after is None or moment <= not_after)
        and (revoked_at is None or moment < revoked_at)
    )


def signers(document: dict[str, Any], *, by: dict[str, Any], at: datetime) -> set[str]:
    """Members of the version `by` whose key, valid at `at`, made a signature over `document` that joserfc accepts."""
    keys = {key["kid"]: (member["node"], key) for member in by["members"] for key in member["keys"]}
    found: set[str] = set()
    for entry in document["signatures"]:
        header = orjson.loads(b64decode(entry["protected"]))
        assert header["typ"] == "dtc-trust+jws" and header["alg"] == "EdDSA"
        node, key = keys.get(header["kid"], (None, None))
        if node is None or key is None or not key_valid(key, at):
            continue
        flattened = {"payload": document["payload"], "protected": entry["protected"], "signature": entry["signature"]}
        try:
            # RFC 9864 deprecates the name `EdDSA` for the fully specified `Ed25519`; the corridor's headers say
            # `EdDSA` (PROTOCOL.md §1), so joserfc's warning about the name is expected here, not a failure.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SecurityWarning)
                jose_jws.deserialize_json(flattened, OKPKey.import_key(key["jwk"]), algorithms=["EdDSA"])
        except JoseError:
            continue
        found.add(node)
    return found


def walk_chain(documents: list[dict[str, Any]], *, genesis_sha256: str) -> list[int]:
    """Verify versions 1..n in order from the pinned genesis; returns the versions walked."""
    previous: dict[str, Any] | None = None
    walked = []
    for document in documents:
        payload = b64decode(document["payload"])
        body = orjson.loads(payload)
        issued = datetime.fromisoformat(body["issued_at"].replace("Z", "+00:00"))
        if previous is None:
            assert hashlib.sha256(payload).hexdigest() == genesis_sha256
        else:
            assert body["version"] == previous["version"] + 1
            assert len(signers(document, by=previous, at=issued)) >= previous["threshold"]
        assert len(signers(document, by=body, at=issued)) >= body["threshold"]
        walked.append(body["version"])
        previous = body
    return walked


async def adopt(corridor: InProcessCorridor, changes: list[dict[str, Any]], sign_with: list[Member]) -> TrustList:
    uz = corridor["UZ"]
    version = TrustList.from_body(build_successor(uz.node.trust.body, CHANGES.validate_python(changes)))
    for member in sign_with:
        version.sign(member.key)
    response = await uz.client.post("/v1/admin/trust-list", json=version.document(), headers=uz.admin)
    assert response.status_code == 200, response.text
    await corridor.deliver_all()
    return version


async def test_every_adopted_version_verifies_from_the_genesis_with_joserfc(
    corridor: InProcessCorridor, members: dict[str, Member], genesis: tuple[Path, str], tmp_path: Path
) -> None:
    az = members["AZ"]
    admit = {"kind": "admit", "node": "AZ", "name": "Azerbaijan", "endpoint": az.endpoint, "jwk": az.key.public_jwk}
    await adopt(corridor, [admit], [members["KZ"], members["UZ"], members["AZ"]])
    spare = make_member("UZ", tmp_path, name="rotated")
    await adopt(
        corridor,
        [{"kind": "rotate-key", "node": "UZ", "jwk": spare.key.public_jwk}],
        [members["KZ"], members["TM"], spare],
    )
    kz = corridor["KZ"]
    assert kz.node.trust.version == 3
    documents = []
    for version in (1, 2, 3):
        response = await kz.client.get(f"/v1/corridor/trust-list/{version}")
        assert response.status_code == 200, response.text
        documents.append(response.json())
    assert walk_chain(documents, genesis_sha256=genesis[1]) == [1, 2, 3]
    assert documents[2] == kz.node.trust.document()

    missing = await kz.client.get("/v1/corridor/trust-list/4")
    assert missing.status_code == 404 and "holds no trust-list version 4" in missing.json()["detail"]


async def test_a_chain_with_a_forged_or_short_link_does_not_verify(
    corridor: InProcessCorridor, members: dict[str, Member], genesis: tuple[Path, str]
) -> None:
    az = members["AZ"]
    admit = {"kind": "admit", "node": "AZ", "name": "Azerbaijan", "endpoint": az.endpoint, "jwk": az.key.public_jwk}
    await adopt(corridor, [admit], [members["KZ"], members["UZ"], members["AZ"]])
    uz = corridor["UZ"]
    documents = [(await uz.client.get(f"/v1/corridor/trust-list/{version}")).json() for version in (1, 2)]
    # Only one founder's signature left on version 2: below the genesis's threshold of 2.
    short = {**documents[1], "signatures": documents[1]["signatures"][:1]}
    with pytest.raises(AssertionError):
        walk_chain([documents[0], short], genesis_sha256=genesis[1])
    # A signature copied from another version does not verify over this payload.
    forged = {**documents[1], "signatures": documents[0]["signatures"]}
    assert signers(forged, by=orjson.loads(b64decode(documents[0]["payload"])), at=clock.utcnow()) == set()
