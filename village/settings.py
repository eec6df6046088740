"""Settings: one pydantic-settings root, read from the environment and an optional `.env`.

Built in each process's `main()`, never at import. A bad setting fails at start with one
line naming it (see `load_settings`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerting.settings import AlertingSettings
from broadcast.settings import BroadcastSettings
from dashboards.settings import GrafanaSettings
from devices.contract import DEFAULT_TOPIC_PREFIX, TOPIC_PREFIX_PATTERN
from village.api.settings import ApiSettings


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


@dataclass(frozen=True)
class MqttEndpoint:
    """Where the broker is and how to log in, parsed from `VILLAGE_MQTT_URL`."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    # MQTT v5 unless the URL says `?protocol=3.1.1` (a broker without v5, such as amqtt:
    # no shared subscriptions and no receive maximum, see docs/ingest.md).
    mqtt_v5: bool = True

    def __repr__(self) -> str:  # never show the password
        user = f"{self.username}@" if self.username else ""
        scheme = "mqtts" if self.tls else "mqtt"
        protocol = "" if self.mqtt_v5 else "?protocol=3.1.1"
        return f"MqttEndpoint({scheme}://{user}{self.host}:{self.port}{protocol})"


MQTT_PROTOCOLS = {"5": True, "3.1.1": False}


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """Parse `mqtt://user:pass@host:port[?protocol=5|3.1.1]` or `mqtts://...` into an endpoint."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError("scheme must be mqtt:// or mqtts://")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"protocol"})
    if unknown:
        raise ValueError(f"unknown URL parameter {unknown[0]!r} (only protocol=5 or 3.1.1)")
    protocol = query.get("protocol", ["5"])
    if len(protocol) != 1 or protocol[0] not in MQTT_PROTOCOLS:
        raise ValueError("protocol must be 5 or 3.1.1")
    if not parts.hostname:
        raise ValueError("a host is required")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("port must be a number from 1 to 65535") from exc
    tls = parts.scheme == "mqtts"
    return MqttEndpoint(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        mqtt_v5=MQTT_PROTOCOLS[protocol[0]],
    )


def format_mqtt_url(endpoint: MqttEndpoint, username: str, password: str) -> str:
    """The `VILLAGE_MQTT_URL` that logs in to `endpoint` as `username` (parse_mqtt_url's
    inverse, protocol included)."""
    scheme = "mqtts" if endpoint.tls else "mqtt"
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    protocol = "" if endpoint.mqtt_v5 else "?protocol=3.1.1"
    return (f"{scheme}://{quote(username, safe='')}:{quote(password, safe='')}@{host}:"
            f"{endpoint.port}{protocol}")


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
    max_payload_bytes: int = Field(256 * 1024, ge=1024, le=16 * 1024 * 1024)
    accepted_lateness_days: float = Field(30, gt=0, le=3650)
    future_tolerance_s: float = Field(600, ge=0, le=86_400)
    dead_letter_payload_bytes: int = Field(4096, ge=64, le=1024 * 1024)
    registry_refresh_s: float = Field(10, gt=0, le=3600)
    discovery: bool = Field(
        False, description="record unknown devices as pending for approval instead of refusing them"
    )


class RetentionSettings(BaseModel):
    """How long raw data is kept, and how often rollups and retention run."""

    model_config = ConfigDict(extra="forbid")

    raw_days: int = Field(730, ge=1, le=36_500)
    rollup_refresh_s: float = Field(15, gt=0, le=3600)
    maintenance_interval_s: float = Field(3600, gt=0, le=86_400)


class Settings(BaseSettings):
    """The root of every process's configuration (`VILLAGE_*`, nested with `__`)."""

    model_config = SettingsConfigDict(
        env_prefix="VILLAGE_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
    )

    database_url: str = "postgresql://postgres@127.0.0.1:5432/village"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    development: bool = Field(
        False, description="allow working defaults for secrets (never in production)"
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    broadcast: BroadcastSettings = Field(default_factory=BroadcastSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings)

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_shape(cls, value: str) -> str:
        parse_mqtt_url(value)
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix_shape(cls, value: str) -> str:
        if not TOPIC_PREFIX_PATTERN.fullmatch(value):
            raise ValueError("must be 1 to 32 characters of [A-Za-z0-9_-], no slashes or wildcards")
        return value

    @property
    def mqtt(self) -> MqttEndpoint:
        """The broker endpoint (validated at construction)."""
        return parse_mqtt_url(self.mqtt_url)


def known_variables(model: type[BaseModel] = Settings, prefix: str = "VILLAGE_") -> set[str]:
    """Every environment variable name the settings read (sections and their fields)."""
    names = set()
    for name, field_info in model.model_fields.items():
        variable = prefix + name.upper()
        names.add(variable)
        annotation = field_info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= known_variables(annotation, variable + "__")
    return names


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning a validation error into one line naming the setting."""
    unknown = sorted(
        name for name in os.environ if name.startswith("VILLAGE_") and name not in known_variables()
    )
    if unknown:
        raise SettingsError(f"{unknown[0]}: not a setting (a typo?)")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        location = "__".join(str(part) for part in error["loc"]) or "settings"
        name = "VILLAGE_" + location.upper()
        raise SettingsError(f"{name}: {error['msg']}") from None
