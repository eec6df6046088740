"""The settings root of every process: read from the environment and an optional `.env`.

Composed here, at the top, from the sections each package declares; built in each
process's `main()`, never at import. A bad setting fails at start with one line naming it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerting.settings import AlertingSettings
from broadcast.settings import BroadcastSettings
from dashboards.settings import GrafanaSettings
from devices.access_settings import AccessSettings
from devices.contract import DEFAULT_TOPIC_PREFIX, TOPIC_PREFIX_PATTERN
from ground.settings import MqttEndpoint, SettingsError, load, parse_mqtt_url
from ground.storage import StorageChoice
from ingest.settings import IngestSettings, RetentionSettings
from village.api.settings import ApiSettings
from village.console.settings import ConsoleSettings
from village.logs import LogFormat

DEVELOPMENT_LINK_SECRET = "development-only-alert-link-secret"


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
    storage: StorageChoice = Field(
        "auto", description="timescale, plain, or auto: TimescaleDB where it is preloaded"
    )
    development: bool = Field(
        False, description="allow working defaults for secrets (never in production)"
    )
    debug: bool = Field(False, description="a failing command shows its traceback")
    log_format: LogFormat = Field(
        LogFormat.TEXT, description="text: one line per event; json: one object per line")
    ready_file: Path | None = Field(
        None, description="touched while a long-running service is connected and working"
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    broadcast: BroadcastSettings = Field(default_factory=BroadcastSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
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
    def database_address(self) -> str:
        """`host:port/dbname` of the database, for messages (never the password)."""
        parts = conninfo_to_dict(self.database_url)
        return (f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/"
                f"{parts.get('dbname', '')}")

    @property
    def mqtt(self) -> MqttEndpoint:
        """The broker endpoint (validated at construction)."""
        return parse_mqtt_url(self.mqtt_url)


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning a validation error into one line naming the setting."""
    return load(Settings, **overrides)


def link_secret(settings: Settings) -> bytes:
    """The key of the alert links (alerting signs them, the API verifies them): required
    outside development mode."""
    secret = settings.alerting.link_secret
    if secret is not None:
        return secret.get_secret_value().encode()
    if settings.development:
        return DEVELOPMENT_LINK_SECRET.encode()
    raise SettingsError("VILLAGE_ALERTING__LINK_SECRET: required outside development mode")
