"""Node settings, read from `TW_*` environment variables (and an optional `.env`).

Peers' endpoints are deliberately *not* settings: they come from the signed trust list, so an operator cannot
point a node at an impostor by editing an environment variable.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

NODE_IDS = ("KZ", "KG", "UZ", "TJ", "TM", "AZ")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TW_", env_file=None, extra="ignore")

    node_id: str = Field(default="KZ", description="This node's id: ISO 3166-1 alpha-2 of its country.")
    database_url: str = Field(
        default="sqlite+aiosqlite:///./transit_window.db",
        description="SQLAlchemy async URL: postgresql+asyncpg://... in production, sqlite+aiosqlite:///... embedded.",
    )
    key_file: Path = Field(default=Path("node-key.pem"), description="Ed25519 private key (PEM, mode 0600).")
    trust_file: Path = Field(default=Path("trust-list.json"), description="Genesis trust list (JWS JSON).")
    genesis_sha256: str = Field(default="", description="Pinned SHA-256 (hex) of the genesis trust list payload.")
    public_url: str = Field(default="http://127.0.0.1:8101", description="Base URL peers use to reach this node.")
    host: str = Field(default="127.0.0.1", description="Listen address of `serve`.")
    workers: int = Field(default=1, ge=1, le=64, description="`serve` processes (each also runs the worker loops).")
    db_pool_size: int = Field(default=20, ge=1, description="Database connections per process (and as many overflow).")
    port: int = Field(default=8101, description="Listen port of `serve`.")

    bad_token_limit: int = Field(
        default=20, ge=1, description="Unknown or revoked tokens from one address before that address gets 429s…"
    )
    bad_token_global_limit: int = Field(
        default=200,
        ge=1,
        description="…and from all addresses together before every unknown token gets 429s (valid tokens never do)…",
    )
    bad_token_window_seconds: float = Field(default=60.0, gt=0, description="…within this many seconds.")
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks (CIDR) of reverse proxies whose `X-Forwarded-For` and "
        "`X-Forwarded-Proto` are believed. Empty: the headers are ignored and the client is the connection's peer.",
    )
    auth_cache_seconds: float = Field(
        default=15.0,
        ge=0,
        description="How long a process remembers an authenticated client (0: never, every request asks the "
        "database). On PostgreSQL a revocation reaches every process of the node at once (NOTIFY); a SQLite node "
        "refuses a client the CLI revoked while it ran within this many seconds.",
    )
    clock_skew_seconds: int = Field(default=120, description="Allowed future skew of a peer's `iat`.")
    max_message_bytes: int = Field(default=1024 * 1024, description="Largest accepted request body on the inbox.")

    run_worker: bool = Field(default=True, description="Run the delivery worker inside the API process.")
    worker_poll_seconds: float = Field(
        default=1.0,
        description="Idle poll of the worker. Messages this process commits are handed to its worker at once, already "
        "leased to it (no claim); on PostgreSQL those of API processes without a worker wake the workers "
        "(LISTEN/NOTIFY); the poll finds retries that fall due and rows whose lease ran out.",
    )
    delivery_batch_size: int = Field(default=200, description="Messages per claim and per batch to one peer.")
    delivery_lanes: int = Field(default=2, description="Batches in flight at once per worker.")
    delivery_timeout_seconds: float = Field(default=10.0, description="HTTP timeout towards peers.")
    delivery_lease_seconds: float = Field(
        default=30.0, description="How long a claim is held before another worker may take the row."
    )
    backoff_base_seconds: float = Field(default=1.0, description="First retry delay (exponential, full jitter).")
    backoff_cap_seconds: float = Field(default=600.0, description="Longest retry delay.")
    dead_after_seconds: float = Field(default=72 * 3600, description="Dead-letter undelivered messages this old.")
    gap_pull_seconds: float = Field(default=5.0, description="How often seq gaps are pulled from senders.")
    chair_duties_seconds: float = Field(
        default=60.0,
        description="How often the node checks whether it holds the secretariat and has duties due (renewal,"
        " reminders); every node checks, only the chair acts.",
    )

    offices_file: Path | None = Field(
        default=None, description="Operator's customs-office file laid over the bundled directory (same JSON schema)."
    )
    hs_file: Path | None = Field(default=None, description="Operator's HS-6 code file laid over the bundled list.")
    permit_rules_file: Path | None = Field(
        default=None,
        description="Operator's permit and certificate rules file (replaces the bundled one; same schema).",
    )
    revocation_list_hours: float = Field(
        default=24.0, gt=0, description="Next update promised by the signed permit revocation list."
    )
    permit_max_speed_kmh: float = Field(
        default=90.0, gt=0, description="A permit seen at two posts farther apart than this speed allows is an alert."
    )

    checkpoint_every_entries: int = Field(default=100, description="Sign a log checkpoint after this many entries…")
    checkpoint_every_seconds: float = Field(default=60.0, description="…or after this many seconds.")

    max_positions_bytes: int = Field(
        default=4 * 1024 * 1024, description="Largest accepted body on POST /v1/tracking/positions (10,000 pings)."
    )
    max_document_bytes: int = Field(
        default=10 * 1024 * 1024, description="Largest accepted PDF on PUT /v1/documents/{id}/pdf."
    )
    pdf_allow_active: bool = Field(
        default=False,
        description="Accept certificate PDFs with active content (JavaScript, OpenAction, Launch, embedded files).",
    )
    ping_clock_skew_seconds: int = Field(default=120, description="How far in the future a ping's time may be.")
    route_corridor_km: float = Field(
        default=40.0, description="A ping farther than this from the line through the itinerary's offices deviates."
    )
    office_radius_km: float = Field(
        default=5.0, description="Within this distance of a customs office, a stop or an opened seal is at the office."
    )
    stop_radius_km: float = Field(default=0.5, description="Pings within this distance of each other are one stop.")
    long_stop_minutes: float = Field(default=60.0, description="A stop outside any office longer than this alerts.")
    expected_speed_kmh: float = Field(
        default=40.0, description="Speed that sets when the next border crossing is due (distance / speed + grace)."
    )
    crossing_grace_minutes: float = Field(
        default=240.0, description="Added to the expected travel time before a crossing is overdue (queues, rest)."
    )
    overdue_check_seconds: float = Field(
        default=60.0, description="How often overdue crossings, and arrivals without their crossings, are looked for."
    )
    unrecorded_crossings_wait_minutes: float = Field(
        default=15.0,
        description="An arrival recorded here this long ago whose route's crossings are still not all held raises "
        "an unrecorded-crossings alert (the wait lets a crossing still in delivery, and the status answers, arrive).",
    )

    bench_floor_endpoint: bool = Field(
        default=False, description="Benchmarks only: mount POST /v1/_floor (one row per request, no auth)."
    )

    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Let webhook URLs reach loopback, link-local, private and other non-global addresses (SSRF guard "
        "off). Only for a receiver on the operator's own network or tests.",
    )
    webhook_max_failures: int = Field(
        default=10, ge=1, description="Disable a webhook subscription after this many consecutive failed attempts."
    )
    webhook_timeout_seconds: float = Field(default=10.0, description="One webhook attempt's time limit.")
    webhook_backoff_base_seconds: float = Field(default=2.0, description="First webhook retry delay.")
    webhook_backoff_cap_seconds: float = Field(default=3600.0, description="Longest webhook retry delay.")
    webhook_lease_seconds: float = Field(default=60.0, description="A claimed webhook delivery's lease.")
    webhook_batch_size: int = Field(default=100, description="Webhook deliveries claimed per round.")
    webhook_concurrency: int = Field(default=16, description="Webhook requests in flight at once per worker.")
    webhook_poll_seconds: float = Field(default=1.0, description="Idle poll of the webhook worker.")
    webhook_secret_grace_seconds: float = Field(
        default=24 * 3600, description="After a secret rotation the old secret also signs deliveries for this long."
    )

    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, GET /metrics requires `Authorization: Bearer <this token>` (for Prometheus: "
        "`authorization.credentials_file`); empty: /metrics is public, for a port only the operator's network reaches.",
    )

    log_level: str = Field(default="INFO", description="Log level.")
    log_json: bool = Field(default=True, description="JSON logs (one object per line) on stderr.")

    @field_validator("node_id")
    @classmethod
    def _node_id_upper(cls, value: str) -> str:
        value = value.strip().upper()
        if len(value) != 2 or not value.isalpha():
            raise ValueError("TW_NODE_ID must be a two-letter country code such as KZ")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: str) -> str:
        """Refuse a typo or a wildcard at start: a wrong entry would let any caller choose its address."""
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"TW_TRUSTED_PROXIES: {item!r} is not an IP address or network (CIDR); wildcards are not allowed"
                ) from None
        return ",".join(items)

    @cached_property
    def trusted_proxy_list(self) -> list[str]:
        return [item for item in self.trusted_proxies.split(",") if item]
