"""Settings of an ingest worker (`VILLAGE_INGEST__*`) and of raw-data retention
(`VILLAGE_RETENTION__*`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ground.mqtt import BROKER_MESSAGE_SIZE_LIMIT


class IngestSettings(BaseModel):
    """How an ingest worker subscribes, batches and holds messages."""

    model_config = ConfigDict(extra="forbid")

    share_group: str = Field("ingest", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    client_id: str | None = Field(None, description="MQTT client id; default ingest-<host>-<n>")
    max_in_flight: int = Field(
        4000,
        ge=10,
        le=65535,
        description="MQTT v5 receive maximum: unacknowledged messages held in memory at most",
    )
    batch_max_messages: int = Field(2000, ge=1, le=65535)
    batch_max_wait_ms: int = Field(50, ge=1, le=10_000)
    batch_max_bytes: int = Field(
        2 * 1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024,
        description="payload bytes per batch at most",
    )
    max_payload_bytes: int = Field(
        256 * 1024, ge=1024, lt=BROKER_MESSAGE_SIZE_LIMIT,
        description="larger payloads are dead-lettered (too_large); must stay below the "
                    "broker's limit, above which the broker refuses them itself",
    )
    accepted_lateness_days: float = Field(30, gt=0, le=3650)
    future_tolerance_s: float = Field(600, ge=0, le=86_400)
    dead_letter_payload_bytes: int = Field(4096, ge=64, le=1024 * 1024)
    registry_refresh_s: float = Field(10, gt=0, le=3600)
    discovery: bool = Field(
        False, description="record unknown devices as pending for approval instead of refusing them"
    )
    metrics_port: int = Field(
        9101, ge=0, le=65535,
        description="Prometheus metrics of worker slot n at :port+n-1/metrics; 0: not served",
    )


class RetentionSettings(BaseModel):
    """How long raw data and records are kept, and how often rollups and retention run."""

    model_config = ConfigDict(extra="forbid")

    raw_days: int = Field(730, ge=1, le=36_500)
    dead_letter_days: int = Field(90, ge=1, le=36_500, description="refused messages kept")
    alert_history_days: int = Field(
        730, ge=1, le=36_500, description="resolved alerts and notifications kept")
    broadcast_days: int = Field(730, ge=1, le=36_500, description="broadcasts and their audit kept")
    rollup_refresh_s: float = Field(15, gt=0, le=3600)
    maintenance_interval_s: float = Field(3600, gt=0, le=86_400)
