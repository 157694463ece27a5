"""One settings object for the API, the worker and the embedded stack.

Every value comes from an environment variable prefixed ``FOOTPRINT_`` (or a ``.env`` file).
A server URL that is unset means "the embedded stack provides it" under ``footprint run``;
a malformed value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from footprint.settings_capture import CaptureSettings
from footprint.settings_secrets import is_loopback, secret_problems
from footprint.settings_types import (
    ENV_PREFIX,
    ClickHouseUrl,
    CsvList,
    JwtSecret,
    KafkaUrl,
    PostgresUrl,
    RedisUrl,
)
from footprint.timepolicy import TimePolicy

__all__ = ["ENV_PREFIX", "Settings", "SettingsError", "get_settings", "load_settings"]

log = logging.getLogger(__name__)


class SettingsError(RuntimeError):
    """A configuration value is missing or malformed; the message names the variable."""


class Settings(CaptureSettings, BaseSettings):
    """Footprint configuration, read from ``FOOTPRINT_*`` environment variables.

    The capture's fields (the middleware's and the ingest API's) are declared in
    ``footprint/settings_capture.py``; every other one here.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", validate_default=True
    )

    env: Literal["development", "production"] = Field(
        "development",
        description="production refuses missing or published secrets at start-up (so does "
        "an API bound to a non-loopback address)",
    )

    # --- servers (unset: provided by the embedded stack under `footprint run`) ---
    kafka_url: KafkaUrl = Field(None, description="kafka://host:port[,host:port]")
    postgres_url: PostgresUrl = Field(None, description="postgresql://user:pass@host:port/db")
    clickhouse_url: ClickHouseUrl = Field(
        None, description="clickhouse://user:pass@host:9000/db (native) or chdb:///path"
    )
    redis_url: RedisUrl = Field(None, description="redis://host:port/db")
    broker: Literal["tansu", "kafka"] = Field(
        "tansu",
        description="The broker the embedded stack starts when FOOTPRINT_KAFKA_URL is unset: "
        "tansu (in-memory, no Java) or kafka (Apache Kafka, needs Java 17+ and Maven)",
    )

    data_dir: Path = Path(".footprint")

    # --- topics and the worker ---
    app_id: str = "footprint"
    footprints_topic: str = "footprints"
    dead_letter_topic: str = "footprints-dead-letter"
    partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1, le=16)
    batch_size: int = Field(
        20_000,
        ge=1,
        le=100_000,
        description="Most messages a footprint batch takes, and the footprint buffer holds while "
        "a pass runs (a message may be a pack)",
    )
    batch_seconds: float = Field(
        0.5,
        gt=0,
        le=60,
        description="How long a footprint batch collects messages after its first",
    )
    batch_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Most message bytes a footprint batch takes, and one worker pass decodes "
        "and writes, and a stream buffer holds while a pass runs, so the worker's memory stays "
        "bounded (a footprint is ~0.5 KB: 64 MiB is ~130,000; smaller passes cost throughput, "
        "see BENCHMARKS.md)",
    )
    rebalance_timeout: float = Field(3.0, gt=0, le=600)
    session_timeout: float = Field(10.0, gt=0, le=600)
    fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=60_000,
        description="How long the worker's fetches wait for records: paces idle polls, and "
        "bounds delivery latency on brokers that answer a fetch only when it times out (Tansu)",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="Faust's guarantee. Results are exact with at_least_once (every store and "
        "table write is idempotent). exactly_once adds Kafka transactions (Apache Kafka only); "
        "with faust-streaming 0.15.3 it stalled after worker kills (BENCHMARKS.md): not for "
        "production",
    )
    embedded_worker: bool = False
    worker_web_port: int = Field(6066, ge=0, le=65535)
    worker_metrics_port: int = Field(
        0, ge=0, le=65535, description="Prometheus /metrics of the worker; 0: not served"
    )
    stop_timeout: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a stop (Ctrl-C, SIGTERM) of the worker or `footprint run` may take "
        "before the process exits anyway; a batch not yet written is not committed and is read "
        "again on the next start",
    )
    worker_metrics_host: str = Field(
        "127.0.0.1",
        description="address the worker's metrics server binds (it has no authentication)",
    )

    # --- notifications ---
    notifications_topic: str = "notifications"
    notifications_dead_letter_topic: str = "notifications-dead-letter"
    notification_retention_days: float = Field(7.0, gt=0, le=3650)
    notification_batch_size: int = Field(
        2000, ge=1, le=100_000, description="Most events a notification batch takes"
    )
    notification_batch_seconds: float = Field(
        0.002,
        gt=0,
        le=60,
        description="How long a notification batch collects events after its first",
    )
    inbox_size: int = Field(100, ge=1, le=10_000)
    notification_publish_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="How long one publish waits for the broker's acknowledgements",
    )
    outbox_batch_size: int = Field(
        500, ge=1, le=10_000, description="Outbox rows the relay claims and publishes per pass"
    )
    outbox_poll_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="How often the relay looks at the outbox when no commit woke it (a fallback: "
        "commits in this process and LISTEN/NOTIFY from others wake it at once)",
    )
    outbox_retry_max_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="The longest pause between publish attempts while the "
        "broker refuses the outbox's events (the pause doubles from 0.2 s)",
    )
    jwt_secret: JwtSecret = Field(
        None, description="HS256 key for user tokens (≥ 32 characters); dev value under `run`"
    )
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"

    # --- queries ---
    stats_exclude_links: CsvList = ["/health", "/healthz"]
    live_top_n: int = Field(10, ge=1, le=1000)
    live_max_links: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Links kept per live window (and source partition) in Redis, the highest "
        "counts; visits to the others count in the totals and show as `other`",
    )
    summary_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Server-side time limit of one summary; a longer one answers 504",
    )
    summary_max_days: int = Field(366, ge=1, le=3660, description="Longest summary period")

    # --- WebSockets (per API process) ---
    ws_max_per_user: int = Field(
        10, ge=1, le=100_000, description="Open sockets per user (per client for /ws/live)"
    )
    ws_max_total: int = Field(10_000, ge=1, le=1_000_000, description="Open sockets in all")
    query_timeout: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Seconds a /api/v2/query may run in a store before it is stopped",
    )

    # --- the API server under `footprint run` ---
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)

    # --- data lifecycle (footprint/retention.py) ---
    raw_retention_days: int = Field(
        730,
        ge=0,
        le=36_500,
        description="Whole UTC days raw footprints are kept (PostgreSQL and ClickHouse); 0: "
        "for ever. A site's own raw_retention_days overrides it",
    )
    rollup_retention_days: int = Field(
        0,
        ge=0,
        le=36_500,
        description="Whole UTC days the minute rollup is kept; 0: for ever. It holds no user "
        "ids: it may outlive the raw footprints",
    )
    retention_interval_seconds: float = Field(
        3600.0,
        ge=10,
        le=7 * 86_400,
        description="How often the worker (its leader) applies the retention and makes the "
        "coming months' partitions",
    )

    @field_validator("rollup_retention_days")
    @classmethod
    def _rollups_outlive_raw(cls, v: int, info: ValidationInfo) -> int:
        raw = info.data.get("raw_retention_days")
        if v and (raw == 0 or (raw and v < raw)):
            raise ValueError(f"must be 0 or at least {ENV_PREFIX}RAW_RETENTION_DAYS ({raw})")
        return v

    @property
    def time_policy(self) -> TimePolicy:
        """The accepted footprint times, for the API and the worker."""
        return TimePolicy(self.event_max_age, self.event_max_ahead)

    @field_validator("live_max_links")
    @classmethod
    def _max_links(cls, v: int, info: ValidationInfo) -> int:
        top = info.data.get("live_top_n")
        if top is not None and v < top:
            raise ValueError(f"must be at least {ENV_PREFIX}LIVE_TOP_N ({top})")
        return v

    def auto_registers_sites(self, host: str | None = None) -> bool:
        """Whether unknown sites are registered on sight: by default in development only (as
        for secrets: FOOTPRINT_ENV=development and bound to a loopback address)."""
        if self.auto_register_sites is None:
            return self.development(host)
        return self.auto_register_sites

    @property
    def kafka_bootstrap(self) -> str:
        """The broker list as aiokafka wants it: ``host:port,host:port``."""
        return self.require("kafka_url").split("://", 1)[1]

    def development(self, host: str | None = None) -> bool:
        """Whether development secrets are tolerated: FOOTPRINT_ENV=development, loopback bind.

        ``host`` is the address the API binds (``FOOTPRINT_HOST`` by default).
        """
        return self.env == "development" and is_loopback(self.host if host is None else host)

    def enforce_secrets(self, host: str | None = None) -> None:
        """Outside development, a SettingsError naming each secret that is missing or published."""
        if self.development(host):
            return
        problems = secret_problems(lambda name: getattr(self, name), ENV_PREFIX)
        if problems:
            bind = self.host if host is None else host
            why = "FOOTPRINT_ENV=production" if self.env == "production" else f"bound to {bind}"
            raise SettingsError(
                f"refusing to start outside development ({why}): {'; '.join(problems)}. "
                "Generate a secret with `openssl rand -hex 32`."
            )

    def require(self, name: str) -> str:
        """The value of a server URL (or secret), or a SettingsError naming its variable."""
        value = getattr(self, name)
        if not value:
            hint = (
                "set a secret of at least 32 characters"
                if name == "jwt_secret"
                else "point it at a server, or start everything with `footprint run`"
            )
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} is not set: {hint}")
        return str(value)


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation failure into a message naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        lines = []
        for err in e.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            lines.append(f"{ENV_PREFIX}{field.upper()}: {err['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()
