"""The border post's cache (`permits/offline.py`) without any node: which trust list and revocation list it keeps,
what it refuses, and the offline impossible-travel rule. The whole story with real nodes is in
tests/corridor/test_permits_offline.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.keys import signed, trust_body
from transit_window import clock
from transit_window.codes import OfficeDirectory
from transit_window.permits.offline import CacheError, PermitCache, Sighting, travel_alerts
from transit_window.permits.signed import RevocationList, RevokedEntry, sign_revocations
from transit_window.permits.verify import RevocationListError
from transit_window.protocol.trust import TrustError, TrustList

if TYPE_CHECKING:
    from tests.support.keys import TestMember


@pytest.fixture
def three(members: dict[str, TestMember]) -> list[TestMember]:
    return [members[node] for node in ("KZ", "UZ", "TM")]


@pytest.fixture
def trust(three: list[TestMember]) -> TrustList:
    return signed(trust_body(three, threshold=2), three)


def revocations(version: int, *, iss: str = "UZ", issued_ago: timedelta = timedelta(0)) -> RevocationList:
    issued = clock.utcnow() - issued_ago
    return RevocationList(
        iss=iss,
        version=version,
        issued_at=issued,
        next_update=issued + timedelta(hours=24),
        revoked=[RevokedEntry(id=f"UZ-KZ-2026-2-{n}", revoked_at=issued, reason="test") for n in range(1, version + 1)],
    )


def test_a_lower_version_never_replaces_the_cached_list(
    tmp_path: Path, trust: TrustList, members: dict[str, TestMember]
) -> None:
    cache = PermitCache(tmp_path)
    now = clock.utcnow()
    uz = members["UZ"].key
    # Issued a minute ago, so the "fresher" copy below is later even when the two are signed at once
    # (the lists keep their times to the millisecond: the test failed once when both fell in one).
    first = sign_revocations(revocations(2, issued_ago=timedelta(minutes=1)), key=uz)
    assert cache.store_revocations("UZ", first, trust=trust, now=now).outcome == "updated"
    older = cache.store_revocations("UZ", sign_revocations(revocations(1), key=uz), trust=trust, now=now)
    assert (older.outcome, older.revocations and older.revocations.version) == ("kept", 2)
    stale_copy = sign_revocations(revocations(2, issued_ago=timedelta(hours=1)), key=uz)
    assert cache.store_revocations("UZ", stale_copy, trust=trust, now=now).outcome == "unchanged"
    fresher = cache.store_revocations("UZ", sign_revocations(revocations(2), key=uz), trust=trust, now=now)
    assert fresher.outcome == "updated"  # same version issued later: a later next update
    kept = cache.cached_revocations("UZ", trust=trust, now=now)
    assert kept is not None and kept.version == 2 and len(kept.revoked) == 2


def test_a_list_from_the_wrong_member_or_an_unknown_key_is_refused(
    tmp_path: Path, trust: TrustList, members: dict[str, TestMember]
) -> None:
    cache = PermitCache(tmp_path)
    now = clock.utcnow()
    tm_list = sign_revocations(revocations(3, iss="TM"), key=members["TM"].key)
    with pytest.raises(RevocationListError, match="UZ's endpoint served the revocation list of TM"):
        cache.store_revocations("UZ", tm_list, trust=trust, now=now)
    with pytest.raises(RevocationListError, match="not in trust list"):
        cache.store_revocations("UZ", sign_revocations(revocations(3), key=members["XX"].key), trust=trust, now=now)
    assert not cache.revocations_path("UZ").exists()


def test_a_tampered_cached_list_is_ignored_with_a_warning(
    tmp_path: Path, trust: TrustList, members: dict[str, TestMember]
) -> None:
    cache = PermitCache(tmp_path)
    now = clock.utcnow()
    cache.accept_trust(trust, pinned_sha256=trust.sha256, now=now)
    cache.store_revocations("UZ", sign_revocations(revocations(1), key=members["UZ"].key), trust=trust, now=now)
    path = cache.revocations_path("UZ")
    header, payload, signature = path.read_text().strip().split(".")
    path.write_text(f"{header}.{payload}.{signature[:-4]}AAAA")
    _, lists, warnings = cache.load(now=now)
    assert lists == {} and len(warnings) == 1 and "revocation list of UZ is ignored" in warnings[0]


def test_the_trust_list_is_only_replaced_by_a_valid_successor(
    tmp_path: Path, trust: TrustList, three: list[TestMember], members: dict[str, TestMember]
) -> None:
    cache = PermitCache(tmp_path)
    now = clock.utcnow()
    with pytest.raises(CacheError, match="permits sync"):
        cache.load(now=now)
    assert cache.accept_trust(trust, pinned_sha256=None, now=now).outcome == "first-use"
    assert cache.accept_trust(trust, pinned_sha256=None, now=now).outcome == "unchanged"

    forged = signed(trust_body([*three, members["XX"]], version=2, threshold=2), [members["XX"]])
    with pytest.raises(TrustError, match="threshold"):
        cache.accept_trust(forged, pinned_sha256=None, now=now)
    rival = signed(trust_body(three, threshold=1), three)  # another version 1
    with pytest.raises(TrustError, match="differs from the cached version 1"):
        cache.accept_trust(rival, pinned_sha256=None, now=now)
    still = cache.cached_trust()
    assert still is not None and still.sha256 == trust.sha256

    successor = signed(trust_body([*three, members["AZ"]], version=2, threshold=2), [*three, members["AZ"]])
    assert cache.accept_trust(successor, pinned_sha256=None, now=now).outcome == "updated"
    assert cache.accept_trust(trust, pinned_sha256=None, now=now).outcome == "kept"  # a node still at version 1
    loaded, _, _ = cache.load(now=now)
    assert loaded.version == 2 and "AZ" in loaded.nodes()


def test_a_first_sync_refuses_a_list_short_of_its_own_threshold_or_the_wrong_pin(
    tmp_path: Path, trust: TrustList, three: list[TestMember]
) -> None:
    now = clock.utcnow()
    short = signed(trust_body(three, threshold=2), three[:1])
    with pytest.raises(TrustError, match="threshold is 2"):
        PermitCache(tmp_path / "a").accept_trust(short, pinned_sha256=None, now=now)
    with pytest.raises(TrustError, match="does not match the pinned"):
        PermitCache(tmp_path / "b").accept_trust(trust, pinned_sha256="0" * 64, now=now)
    assert PermitCache(tmp_path / "c").accept_trust(trust, pinned_sha256=trust.sha256, now=now).outcome == "pinned"
    assert not (tmp_path / "a" / "trust-list.json").exists() and not (tmp_path / "b" / "trust-list.json").exists()


def test_impossible_travel_offline() -> None:
    directory = OfficeDirectory()
    now = clock.utcnow()
    permit = "UZ-KZ-2026-2-1"
    at_zhibek_zholy = Sighting(permit=permit, office="KZZHZ001", at=now - timedelta(minutes=30))
    across = Sighting(permit=permit, office="UZGIS001", at=now)
    assert travel_alerts(across, [at_zhibek_zholy], directory=directory, max_speed_kmh=90) == []
    alat = Sighting(permit=permit, office="UZALT001", at=now)
    (alert,) = travel_alerts(alat, [at_zhibek_zholy], directory=directory, max_speed_kmh=90)
    assert "KZZHZ001" in alert and "UZALT001" in alert and "30 min apart" in alert
    next_day = Sighting(permit=permit, office="UZALT001", at=now + timedelta(hours=12))
    assert travel_alerts(next_day, [at_zhibek_zholy], directory=directory, max_speed_kmh=90) == []
