"""Settings of the alerting service (`VILLAGE_ALERTING__*`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class AlertingSettings(BaseModel):
    """How alerting loads rules, evaluates and notifies."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="run the alerting service in `village up`")
    presets: bool = Field(True, description="load the shipped preset rules for every kind")
    rules_files: list[str] = Field(
        default_factory=list,
        description="YAML rule files; a rule named like a preset replaces it",
    )
    routing_file: str | None = Field(
        None, description="YAML people, receivers and routes; none: print to the console"
    )
    language: str = Field("zh", pattern=r"^(zh|en)$")
    public_base_url: str = Field(
        "http://127.0.0.1:8000", description="where the phone page of an alert is served"
    )
    link_secret: SecretStr | None = Field(
        None, description="HMAC key of alert links; required outside development mode"
    )
    link_ttl_h: float = Field(72, gt=0, le=24 * 90)
    stream_overlap_s: float = Field(
        2, ge=0, le=3600,
        description="after a restart, rows stored this long before the saved position are read again",
    )
    first_lookback_s: float = Field(
        3600, ge=0, description="on a first start, judge readings stored this long ago"
    )
    evaluate_interval_s: float = Field(
        1, gt=0, le=3600, description="streaming pass when no ingest notification wakes it"
    )
    schedule_interval_s: float = Field(
        30, gt=0, le=3600, description="stopped-reporting and other time conditions"
    )
    dispatch_interval_s: float = Field(1, gt=0, le=3600)
    notify_timeout_s: float = Field(5, gt=0, le=120)
    retry_attempts: int = Field(3, ge=1, le=20)
    retry_backoff_s: float = Field(0.5, ge=0, le=600)
    metrics_port: int = Field(
        9102, ge=0, le=65535,
        description="Prometheus metrics of `village alerts run` at :port/metrics; 0: not served",
    )
