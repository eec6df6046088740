"""Settings of the HTTP API (`VILLAGE_API__*`)."""

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ApiSettings(BaseModel):
    """Where the API listens and how much one request may ask for.

    The phone page verifies alert links with the alerting service's key
    (`VILLAGE_ALERTING__LINK_SECRET`), the one that signs them.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address `village api serve` listens on")
    port: int = Field(8000, ge=1, le=65535)
    default_page_size: int = Field(100, ge=1, le=10_000)
    max_page_size: int = Field(1000, ge=1, le=10_000)
    max_range_days: int = Field(
        400, ge=1, le=3660, description="longest time range of an aggregated series"
    )
    max_raw_range_days: float = Field(
        7, gt=0, le=366, description="longest time range of a raw series"
    )
    max_points: int = Field(20_000, ge=10, le=1_000_000, description="most points in one series")
    pool_size: int = Field(8, ge=1, le=200, description="database connections held by the API")
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, le=64 * 1024 * 1024,
        description="largest request body (JSON, YAML, a form); larger ones get 413 unread",
    )
    max_import_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024,
        description="largest registry CSV upload (POST /devices/import), read as it streams",
    )

    @model_validator(mode="after")
    def _page_sizes(self) -> "ApiSettings":
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self
