"""A border post's offline kit: a cache folder holding the trust list and every member's signed revocation list,
refreshed by `transit-window permits sync` while there is a connection, read by `permits verify` when there is none.

    DIR/trust-list.json           the trust list document (JWS JSON), accepted as genesis (pinned hash, or trust on
                                  first use) or as a valid successor of the one cached before
    DIR/revocations/<NODE>.jws    each member's revocation list (compact JWS), never replaced by a lower version
    DIR/sightings.jsonl           the permits this post saw (id, office, time): the offline impossible-travel check

Nothing counts because it is on disk: the trust list is checked against its own signatures, and each revocation
list against the trust list, every time they are read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import httpx
import orjson

from transit_window import clock
from transit_window.codes import OfficeDirectory
from transit_window.codes.geo import haversine_km
from transit_window.codes.offices import Office
from transit_window.permits.signed import RevocationList
from transit_window.permits.verify import RevocationListError, open_revocation_list
from transit_window.protocol.trust import TrustError, TrustList, verify_genesis, verify_successor

TrustOutcome = Literal["first-use", "pinned", "unchanged", "updated", "kept"]
ListOutcome = Literal["updated", "unchanged", "kept", "unreachable", "refused"]


class CacheError(Exception):
    """The cache cannot be used: nothing synced yet, or what is there does not verify."""


def default_folder() -> Path:
    configured = os.environ.get("TW_PERMIT_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "transit-window"


@dataclass(slots=True)
class TrustSync:
    trust: TrustList
    outcome: TrustOutcome
    detail: str


@dataclass(slots=True)
class ListSync:
    node: str
    outcome: ListOutcome
    detail: str
    revocations: RevocationList | None  # what the cache holds for this member afterwards

    @property
    def ok(self) -> bool:
        return self.outcome in ("updated", "unchanged")


@dataclass(frozen=True, slots=True)
class Sighting:
    permit: str
    office: str
    at: datetime
    plate: str | None = None


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader never sees half a file, and a crash mid-sync leaves the previous version in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class PermitCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def trust_path(self) -> Path:
        return self.folder / "trust-list.json"

    @property
    def sightings_path(self) -> Path:
        return self.folder / "sightings.jsonl"

    def revocations_path(self, node: str) -> Path:
        return self.folder / "revocations" / f"{node}.jws"

    # -- the trust list ------------------------------------------------------------------------------------------

    def cached_trust(self) -> TrustList | None:
        if not self.trust_path.exists():
            return None
        try:
            return TrustList.from_json(self.trust_path.read_bytes())
        except (OSError, TrustError) as exc:
            raise CacheError(f"{self.trust_path}: {exc}") from exc

    def accept_trust(self, candidate: TrustList, *, pinned_sha256: str | None, now: datetime) -> TrustSync:
        """Store `candidate` if it may be trusted; raises `TrustError` (and keeps the cache as it was) if not."""
        current = self.cached_trust()
        if current is None:
            if pinned_sha256:
                verify_genesis(candidate, pinned_sha256=pinned_sha256, now=now)
                outcome: TrustOutcome = "pinned"
                detail = f"version {candidate.version} matches the pinned SHA-256"
            else:
                _self_signed(candidate, now=now)
                outcome, detail = "first-use", f"version {candidate.version} trusted on first use"
        elif candidate.sha256 == current.sha256:
            return TrustSync(current, "unchanged", f"version {current.version} is current")
        elif candidate.version < current.version:
            return TrustSync(
                current,
                "kept",
                f"the node serves version {candidate.version}, older than the cached version {current.version}: kept",
            )
        elif candidate.version == current.version:
            raise TrustError(
                f"the node serves a version {candidate.version} (sha256 {candidate.sha256}) that differs from the "
                f"cached version {current.version} (sha256 {current.sha256})"
            )
        else:
            verify_successor(current, candidate, now=now)
            outcome, detail = "updated", f"version {current.version} → {candidate.version}"
        _write_atomically(self.trust_path, candidate.to_json())
        return TrustSync(candidate, outcome, detail)

    # -- revocation lists ----------------------------------------------------------------------------------------

    def cached_revocations(self, node: str, *, trust: TrustList, now: datetime) -> RevocationList | None:
        """The cached list of `node`, verified again; None when there is none. Raises `RevocationListError`."""
        path = self.revocations_path(node)
        if not path.exists():
            return None
        revocations = open_revocation_list(path.read_text().strip(), trust=trust, now=now)
        if revocations.iss != node:
            raise RevocationListError(f"{path} holds the list of {revocations.iss}, not of {node}")
        return revocations

    def store_revocations(self, node: str, token: str, *, trust: TrustList, now: datetime) -> ListSync:
        """Keep `token` as `node`'s list unless it is not authentic or older than the cached one."""
        fresh = open_revocation_list(token, trust=trust, now=now)
        if fresh.iss != node:
            raise RevocationListError(f"{node}'s endpoint served the revocation list of {fresh.iss}")
        try:
            current = self.cached_revocations(node, trust=trust, now=now)
        except RevocationListError:
            current = None  # what was cached no longer verifies: the fresh list replaces it
        if current is not None:
            if fresh.version < current.version:
                return ListSync(
                    node, "kept", f"served version {fresh.version}, older than the cached {current.version}", current
                )
            if fresh.version == current.version and fresh.issued_at <= current.issued_at:
                return ListSync(node, "unchanged", "no newer list", current)
        _write_atomically(self.revocations_path(node), token.encode("ascii") + b"\n")
        return ListSync(node, "updated", "", fresh)

    def revocations(self, *, trust: TrustList, now: datetime) -> tuple[dict[str, RevocationList], list[str]]:
        """Every member's cached list that verifies, and a warning for each one that does not."""
        found: dict[str, RevocationList] = {}
        warnings = []
        for node in trust.nodes():
            try:
                revocations = self.cached_revocations(node, trust=trust, now=now)
            except (OSError, UnicodeDecodeError, RevocationListError) as exc:
                warnings.append(f"the cached revocation list of {node} is ignored: {exc}")
                continue
            if revocations is not None:
                found[node] = revocations
        return found, warnings

    # -- for `permits verify` ------------------------------------------------------------------------------------

    def load(self, *, now: datetime) -> tuple[TrustList, dict[str, RevocationList], list[str]]:
        """The trust list and revocation lists to verify with, and warnings; `CacheError` when there is no cache."""
        trust = self.cached_trust()
        if trust is None:
            raise CacheError(
                f"no trust list in {self.folder}: run `transit-window permits sync --node URL` while online first"
            )
        try:
            _self_signed(trust, now=now, check_expiry=False)
        except TrustError as exc:
            raise CacheError(f"{self.trust_path} does not verify: {exc}") from exc
        revocations, warnings = self.revocations(trust=trust, now=now)
        if trust.body.expires_at <= now:
            warnings.insert(
                0,
                f"the cached trust list (version {trust.version}) expired at "
                f"{clock.isoformat(trust.body.expires_at)}: run `transit-window permits sync`",
            )
        return trust, revocations, warnings

    # -- sightings -----------------------------------------------------------------------------------------------

    def sightings(self, permit_id: str) -> list[Sighting]:
        return [sighting for sighting in self._all_sightings() if sighting.permit == permit_id]

    def _all_sightings(self) -> Iterator[Sighting]:
        if not self.sightings_path.exists():
            return
        for line in self.sightings_path.read_bytes().splitlines():
            try:
                data = orjson.loads(line)
                yield Sighting(
                    permit=str(data["permit"]),
                    office=str(data["office"]),
                    at=clock.parse(str(data["at"])),
                    plate=data.get("plate"),
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a line cut short by a crash: the others still count

    def record_sighting(self, sighting: Sighting) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        line = {
            "permit": sighting.permit,
            "office": sighting.office,
            "at": clock.isoformat(sighting.at),
            "plate": sighting.plate,
        }
        with self.sightings_path.open("ab") as file:
            file.write(orjson.dumps(line) + b"\n")


def _self_signed(trust: TrustList, *, now: datetime, check_expiry: bool = True) -> None:
    if check_expiry and trust.body.expires_at <= now:
        raise TrustError(f"trust list version {trust.version} expired at {clock.isoformat(trust.body.expires_at)}")
    signers = trust.signing_members(trust, at=now)
    if len(signers) < trust.body.threshold:
        raise TrustError(
            f"trust list version {trust.version} is signed by {len(signers)} of its members "
            f"({', '.join(sorted(signers)) or 'none'}); its threshold is {trust.body.threshold}"
        )


# -- sync ------------------------------------------------------------------------------------------------------


def fetch_trust_list(http: httpx.Client, node_url: str) -> TrustList:
    """The trust list `node_url` serves; raises `httpx.HTTPError` or `TrustError`."""
    response = http.get(f"{node_url.rstrip('/')}/v1/corridor/trust-list")
    response.raise_for_status()
    return TrustList.from_json(response.content)


def sync_revocations(
    cache: PermitCache, *, trust: TrustList, http: httpx.Client, now: datetime | None = None
) -> list[ListSync]:
    """Fetch every member's list from its trust-list endpoint. A member that cannot be reached or serves a list
    that does not verify is reported; its cached list stays."""
    now = now or clock.utcnow()
    results = []
    for member in trust.body.members:
        try:
            cached = cache.cached_revocations(member.node, trust=trust, now=now)
        except (OSError, UnicodeDecodeError, RevocationListError):
            cached = None
        try:
            response = http.get(f"{member.endpoint.rstrip('/')}/v1/permits/revocations")
            response.raise_for_status()
            token = response.json()["token"]
            if not isinstance(token, str):
                raise TypeError("token is not a string")
        except httpx.HTTPError as exc:
            results.append(ListSync(member.node, "unreachable", _http_problem(exc), cached))
            continue
        except (ValueError, KeyError, TypeError) as exc:
            results.append(ListSync(member.node, "refused", f"not a revocation list answer: {exc}", cached))
            continue
        try:
            results.append(cache.store_revocations(member.node, token, trust=trust, now=now))
        except RevocationListError as exc:
            results.append(ListSync(member.node, "refused", str(exc), cached))
    return results


def _http_problem(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"answered {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# -- impossible travel -----------------------------------------------------------------------------------------


def travel_alerts(
    sighting: Sighting, earlier: list[Sighting], *, directory: OfficeDirectory, max_speed_kmh: float
) -> list[str]:
    """The offline twin of `service.check_travel`: the permit seen at another post sooner than a truck could drive
    there (great-circle distance at `max_speed_kmh`); the two sides of one crossing are the same place."""
    here = directory.get(sighting.office)
    if here is None:
        return []
    alerts = []
    for other in earlier:
        there = directory.get(other.office)
        if there is None or there.code == here.code or _same_crossing(here, there):
            continue
        km = haversine_km(here.lat, here.lon, there.lat, there.lon)
        hours = abs((sighting.at - other.at).total_seconds()) / 3600
        if km > max_speed_kmh * hours:
            speed = "at once" if hours == 0 else f"{hours * 60:.0f} min apart"
            alerts.append(
                f"{sighting.permit} seen at {other.office} ({clock.isoformat(other.at)}) and at {sighting.office} "
                f"({clock.isoformat(sighting.at)}): {km:.0f} km {speed}, faster than {max_speed_kmh:.0f} km/h"
            )
    return alerts


def _same_crossing(here: Office, there: Office) -> bool:
    return there.partner == here.code or here.partner == there.code
