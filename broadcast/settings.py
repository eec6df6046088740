"""Settings of the broadcast service (`VILLAGE_BROADCAST__*`)."""

from pydantic import BaseModel, ConfigDict, Field


class BroadcastSettings(BaseModel):
    """How broadcasts are delivered, retried and scheduled."""

    model_config = ConfigDict(extra="forbid")

    client_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="the daemon's MQTT client id (persistent session); default broadcast-<host>")
    share_group: str = Field("broadcast", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    retry_interval_s: float = Field(
        10, gt=0, le=3600, description="wait for an answer before publishing a command again")
    sweep_interval_s: float = Field(
        1, gt=0, le=60, description="how often retries, expiries and schedules are looked at")
    max_in_flight: int = Field(1000, ge=1, le=65535,
                               description="unacknowledged QoS 1 publishes kept open")
    ack_batch: int = Field(2000, ge=1, le=100_000,
                           description="acks and status changes applied per transaction")
    metrics_port: int = Field(
        9103, ge=0, le=65535,
        description="Prometheus metrics of `village broadcast daemon` at :port/metrics; 0: not served")
