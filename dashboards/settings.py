"""Settings for building and pushing dashboards to Grafana (`VILLAGE_GRAFANA__*`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from dashboards.basemap import check_tiles_url
from dashboards.i18n import Language

# The only credentials that ever work without configuration: Grafana's own first-start
# admin login, accepted in development mode and nowhere else.
DEVELOPMENT_LOGIN = ("admin", "admin")


class GrafanaCredentialsError(ValueError):
    """No usable Grafana credentials are configured."""


@dataclass(frozen=True)
class DatabaseEndpoint:
    """How Grafana's PostgreSQL datasource reaches the database."""

    host: str
    port: int
    database: str
    user: str
    password: str | None

    def __repr__(self) -> str:  # never show the password
        return f"DatabaseEndpoint({self.user}@{self.host}:{self.port}/{self.database})"


def parse_database_url(url: str) -> DatabaseEndpoint:
    """Split a `postgresql://user:pass@host:port/db` URL into what Grafana asks for."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("must be a postgresql:// URL")
    database = parts.path.lstrip("/")
    if not parts.hostname or not database:
        raise ValueError("a host and a database name are required")
    return DatabaseEndpoint(
        host=parts.hostname,
        port=parts.port or 5432,
        database=database,
        user=unquote(parts.username) if parts.username else "postgres",
        password=unquote(parts.password) if parts.password else None,
    )


class GrafanaSettings(BaseModel):
    """Where Grafana is, how to log in, and how its datasource reaches our database."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field("http://127.0.0.1:3000", description="Grafana's base URL")
    token: SecretStr | None = Field(None, description="a service-account token (preferred)")
    user: str | None = Field(None, description="basic-auth user, when no token is set")
    password: SecretStr | None = Field(None, description="basic-auth password")
    timeout_s: float = Field(10, gt=0, le=300)
    folder_uid: str = Field("village", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    folder_title: str = Field("智慧乡村", min_length=1, max_length=200)
    language: Language = "zh"
    datasource_uid: str = Field("village-pg", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    datasource_name: str = Field("Village PostgreSQL", min_length=1, max_length=190)
    datasource_database_url: str | None = Field(
        None,
        description="the database as Grafana reaches it (ideally a read-only role); "
        "default VILLAGE_DATABASE_URL",
    )
    datasource_sslmode: Literal[
        "disable", "require", "verify-ca", "verify-full"
    ] = "disable"
    timescaledb: bool = Field(False, description="let Grafana's $__timeGroup use time_bucket")
    tiles_url: str | None = Field(
        None, description="the maps' XYZ tiles, e.g. a self-hosted tile server "
        "(https://tiles.example/{z}/{x}/{y}.png); none: country outlines, no internet needed")
    tiles_attribution: str = Field("", max_length=300, description="credit shown on the maps")

    @field_validator("tiles_url")
    @classmethod
    def _tiles_url_shape(cls, value: str | None) -> str | None:
        return None if value is None else check_tiles_url(value)

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("datasource_database_url")
    @classmethod
    def _database_url_shape(cls, value: str | None) -> str | None:
        if value is not None:
            parse_database_url(value)
        return value

    def credential(self, development: bool) -> str | tuple[str, str]:
        """The token or (user, password) to log in with; admin/admin only in development."""
        if self.token is not None:
            return self.token.get_secret_value()
        if self.user and self.password is not None:
            return (self.user, self.password.get_secret_value())
        if development:
            return DEVELOPMENT_LOGIN
        raise GrafanaCredentialsError(
            "set VILLAGE_GRAFANA__TOKEN, or VILLAGE_GRAFANA__USER and VILLAGE_GRAFANA__PASSWORD"
        )

    def datasource_endpoint(self, database_url: str) -> DatabaseEndpoint:
        """The database Grafana should query: its own URL if set, else the service's."""
        return parse_database_url(self.datasource_database_url or database_url)
