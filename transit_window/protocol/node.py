"""The running node: its identity, key, database, current trust list, metrics and HTTP client.

One `Node` per process (per app in tests). Built by `Node.open`, closed by `Node.close`; the API, the worker and
the CLI all use it so there is one way to reach the database and one way to talk to peers.

It lives in the protocol package because it is the protocol's node: what it holds is the signing key, the trust
list it adopts, the sealer it registers on every commit, and the database and peers' HTTP client the inbox, outbox,
delivery and log work with. Those modules take a `Node`, and the node loads its trust list with theirs, so outside
the package the two imported each other; inside, the protocol (and everything above it) has one node and nothing
below it needs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from transit_window import clock
from transit_window.clients.cache import ClientCache
from transit_window.clients.throttle import BadTokenThrottle
from transit_window.db.base import table_of
from transit_window.db.dialect import Dialect, dialect_of, dialect_of_engine
from transit_window.db.engine import create_engine, create_sessionmaker
from transit_window.metrics import Metrics
from transit_window.protocol import sealing as sealing  # registers the commit sealer: see its docstring
from transit_window.protocol.keys import SigningKey, load_private_key
from transit_window.protocol.models import TrustVersion
from transit_window.protocol.outbox import HandOver
from transit_window.protocol.trust import TrustError, TrustList, verify_genesis
from transit_window.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Node:
    settings: Settings
    key: SigningKey
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    trust: TrustList
    metrics: Metrics = field(default_factory=Metrics)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    bad_tokens: BadTokenThrottle = field(
        default_factory=lambda: BadTokenThrottle(limit=20, window_seconds=60, global_limit=200)
    )
    clients: ClientCache = field(default_factory=lambda: ClientCache(seconds=0))
    hand_over: HandOver | None = None  # this process's running delivery worker, if any (protocol/outbox.py)
    _http: httpx.AsyncClient | None = None

    @property
    def id(self) -> str:
        return self.settings.node_id

    @property
    def dialect(self) -> Dialect:
        """What this node's database does differently (concurrent writers, LISTEN/NOTIFY, ...): db/dialect.py."""
        return dialect_of_engine(self.engine)

    @classmethod
    async def open(cls, settings: Settings, *, metrics: Metrics | None = None) -> Node:
        key = load_private_key(settings.key_file)
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        sessionmaker = create_sessionmaker(engine)
        try:
            async with sessionmaker() as session:
                trust = await load_trust(session, settings)
                await session.commit()
        except BaseException:
            await engine.dispose()
            raise
        node = cls(
            settings=settings,
            key=key,
            engine=engine,
            sessionmaker=sessionmaker,
            trust=trust,
            metrics=metrics or Metrics(),
            bad_tokens=BadTokenThrottle(
                limit=settings.bad_token_limit,
                window_seconds=settings.bad_token_window_seconds,
                global_limit=settings.bad_token_global_limit,
            ),
            clients=ClientCache(seconds=settings.auth_cache_seconds),
        )
        node.set_trust(trust)
        if trust.key(key.kid) is None:
            logger.warning(
                "this node's key %s is not in trust list version %d: peers will refuse its messages",
                key.kid,
                trust.version,
                extra={"node": settings.node_id},
            )
        return node

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        await self.engine.dispose()

    @property
    def http(self) -> httpx.AsyncClient:
        """The one HTTP client for talking to peers (connection pooling, timeouts, no redirects)."""
        if self._http is None:
            timeout = httpx.Timeout(self.settings.delivery_timeout_seconds, connect=5.0)
            limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
            self._http = httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)
        return self._http

    def set_trust(self, trust: TrustList) -> None:
        self.trust = trust
        self.metrics.trust_version.set(trust.version)
        self.metrics.trust_expires.set(trust.body.expires_at.timestamp())

    def endpoint_of(self, node_id: str) -> str | None:
        member = self.trust.member(node_id)
        return member.endpoint.rstrip("/") if member else None

    def peers(self) -> list[str]:
        return [node for node in self.trust.nodes() if node != self.id]

    def wake_worker(self) -> None:
        self._wake.set()

    async def wait_for_work(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def refresh_trust(self) -> None:
        """Pick up a version another process of this node adopted (API replicas share one database)."""
        async with self.sessionmaker() as session:
            newest = await session.scalar(select(func.max(TrustVersion.version)))
            if newest is not None and newest > self.trust.version:
                document = await session.scalar(select(TrustVersion.document).where(TrustVersion.version == newest))
                if document is not None:
                    self.set_trust(TrustList.from_json(document))


async def load_trust(session: AsyncSession, settings: Settings) -> TrustList:
    """The newest accepted version from the database, or the pinned genesis on first start."""
    newest = await session.scalar(select(func.max(TrustVersion.version)))
    if newest is not None:
        document = await session.scalar(select(TrustVersion.document).where(TrustVersion.version == newest))
        assert document is not None
        return TrustList.from_json(document)
    try:
        raw = settings.trust_file.read_bytes()
    except FileNotFoundError as exc:
        raise TrustError(f"no trust list yet and TW_TRUST_FILE {settings.trust_file} does not exist") from exc
    genesis = TrustList.from_json(raw)
    verify_genesis(genesis, pinned_sha256=settings.genesis_sha256, now=clock.utcnow())
    await session.execute(  # ignore: an API and its workers may start together on a fresh database
        dialect_of(session)
        .insert_ignore(table_of(TrustVersion))
        .values(
            version=genesis.version,
            sha256=genesis.sha256,
            document=genesis.to_json().decode(),
            source="genesis",
            accepted_at=clock.utcnow(),
        )
    )
    return genesis
