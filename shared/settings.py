"""Every setting Taktline reads, in one place (documented in docs/settings.md).

Settings come from `TAKTLINE_*` environment variables (or a `.env` file) and from the CLI,
which passes its flags as keyword arguments. Nothing here builds a module-level instance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("process", "maintenance", "collector")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TAKTLINE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # Where the services keep their data.
    database_url: str | None = Field(
        default=None,
        description="Database for every service (postgresql://… or sqlite:///…). "
        "Unset: one SQLite file per service under data_dir.",
    )
    process_database_url: str | None = Field(
        default=None, description="Database of the process service (overrides database_url)."
    )
    maintenance_database_url: str | None = Field(
        default=None, description="Database of the maintenance service (overrides database_url)."
    )
    collector_database_url: str | None = Field(
        default=None, description="Database of the collector (overrides database_url)."
    )
    database_schema_prefix: str = Field(
        default="",
        description="On PostgreSQL each service keeps its tables in the schema "
        "<prefix><service>, so services can share one database without sharing tables.",
    )
    database_pre_ping: bool = Field(
        default=False,
        description="Test each pooled PostgreSQL connection with a round trip before use. Off: after a "
        "database restart the first statement on a stale connection fails once (consumers retry it, the "
        "API answers 503 with Retry-After) and the pool reconnects.",
    )
    data_dir: Path = Field(default=Path("data"), description="Folder for SQLite files and the embedded secret.")

    # Messaging.
    amqp_url: str | None = Field(
        default=None,
        description="RabbitMQ URL (amqp://user:pass@host:5672/vhost). Unset: the in-memory "
        "transport (embedded mode only).",
    )
    exchange: str = Field(default="taktline.events", description="Topic exchange for all events.")
    dead_exchange: str = Field(default="taktline.dead", description="Exchange dead letters go to.")
    queue_prefix: str = Field(
        default="", description="Prefix of every queue name (queues are named after the service)."
    )
    consumer_prefetch: int = Field(default=500, ge=1, description="Unacknowledged messages per consumer.")
    consumer_batch_size: int = Field(
        default=500, ge=1, description="Events applied in one transaction (a message's events stay together).")
    consumer_batch_wait_ms: float = Field(
        default=10, ge=0, description="How long a batch waits to fill while the consumer is busy (a tenth when idle).")
    consumer_delivery_limit: int = Field(
        default=20, ge=1, description="Deliveries of one message before it is dead-lettered."
    )
    relay_interval: float = Field(default=0.5, gt=0, description="Seconds between outbox polls when idle.")
    relay_batch_size: int = Field(default=500, ge=1, description="Outbox rows published per round.")
    events_per_message: int = Field(
        default=100, ge=1, le=1000,
        description="Consecutive events of one type sent in one broker message (1: each alone, the form "
                    "consumers before 0.2 read; see decision 0011).")
    outbox_retention_hours: float = Field(default=24, ge=0, description="How long sent outbox rows are kept.")
    inbox_retention_hours: float = Field(
        default=168, ge=1, description="How long consumed message ids are kept to drop redeliveries."
    )

    # HTTP.
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the HTTP server binds.")
    read_cache_mb: float = Field(
        default=64, ge=0, description="Memory (MiB) per service for cached read responses; 0 turns the cache off.")

    # Auth.
    auth_secret: SecretStr | None = Field(
        default=None, description="HS256 secret for bearer tokens (at least 32 characters)."
    )
    auth_jwks_url: str | None = Field(
        default=None, description="JWKS URL of an OIDC provider; tokens are then checked with RS256."
    )
    auth_issuer: str | None = Field(default=None, description="Required `iss` claim, when set.")
    auth_audience: str | None = Field(default=None, description="Required `aud` claim, when set.")
    auth_token_ttl: int = Field(default=12 * 3600, ge=60, description="Lifetime (s) of CLI-minted tokens.")

    # Shop defaults (the live values are settings rows in the process service).
    time_zone: str = Field(default="UTC", description="Shop time zone used until one is set through /api/settings.")

    # Logs.
    log_level: str = Field(default="INFO", description="Python log level.")
    log_format: Literal["json", "text"] = Field(default="json", description="Log line format.")

    # Collector.
    collector_timeout: float = Field(
        default=10, gt=0, description="Seconds any collector socket connect, read or HTTP request may take.")
    collector_heartbeat: float = Field(
        default=10, gt=0, description="Seconds between SHDR `* PING`s; twice this without data is a silent adapter.")
    collector_poll_interval: float = Field(
        default=1, gt=0, description="Seconds between agent /sample requests once caught up.")
    collector_sample_count: int = Field(default=1000, ge=1, description="Observations asked per agent /sample.")
    collector_max_document_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest agent document read (bytes).")
    collector_backoff_max: float = Field(
        default=30, gt=0, description="Longest wait (s) between reconnects to a source or publish retries.")
    collector_relay_round_ms: float = Field(
        default=20, ge=0, le=1000,
        description="Least time between the starts of two rounds of the collector's outbox relay: the events of "
                    "pushes that commit meanwhile go out together (0: a round per push).")
    collector_supervise_interval: float = Field(
        default=5, gt=0, description="Seconds between checks of the sources table (new, changed, removed); "
        "also how long an HTTP push keeps a machine's source and mapping (another replica's change shows after it).")

    # Maintenance.
    maintenance_scheduler_interval: float = Field(
        default=30, gt=0, description="Seconds between scheduler passes (warnings, dues, interlocks).")
    maintenance_notifier_interval: float = Field(
        default=5, gt=0, description="Seconds between rounds of the notification sender.")

    # Embedded extras.
    simulate: int = Field(default=0, ge=0, description="Simulated machines started by `taktline run`.")

    @field_validator("auth_secret")
    @classmethod
    def _secret_is_strong(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("TAKTLINE_AUTH_SECRET must be at least 32 characters")
        return value

    def database_url_for(self, service: str) -> str:
        """The URL of one service's database: its own setting, the shared one, or SQLite."""
        own = getattr(self, f"{service}_database_url", None)
        if own or self.database_url:
            return own or self.database_url  # type: ignore[return-value]
        return f"sqlite:///{(self.data_dir / f'{service}.db').as_posix()}"

    def schema_for(self, service: str) -> str:
        return f"{self.database_schema_prefix}{service}"
